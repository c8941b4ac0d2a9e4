// compose-check validates a Compose file with compose-go, the parser Docker Compose v2 itself uses,
// so the project can check docker-compose.yml on machines without a Docker engine.
//
// Usage: compose-check [-env KEY=VALUE ...] [-json] FILE
//
// With -json it prints the resolved project (variables interpolated, paths absolute) as JSON, for
// tests that compare the file with what the project runs elsewhere.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
)

type envFlags []string

func (e *envFlags) String() string     { return strings.Join(*e, ",") }
func (e *envFlags) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	var env envFlags
	flag.Var(&env, "env", "KEY=VALUE for variable interpolation (repeatable)")
	asJSON := flag.Bool("json", false, "print the resolved project as JSON")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-env KEY=VALUE ...] [-json] FILE")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{flag.Arg(0)},
		cli.WithEnv(env),
		cli.WithResolvedPaths(true),
		cli.WithInterpolation(true),
		// Secrets' env files exist only where the stack is deployed; validate the file, not the host.
		cli.WithLoadOptions(func(o *loader.Options) { o.SkipResolveEnvironment = true }),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *asJSON {
		out, err := project.MarshalJSON()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(out))
		return
	}
	fmt.Printf("ok: project %s, services %s\n", project.Name, strings.Join(project.ServiceNames(), ","))
}
