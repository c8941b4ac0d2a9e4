#!/usr/bin/env bash
# Installs the real servers the tests and the demo run against (see ../shared/TOOLCHAIN.md), into a
# cache outside the work tree keyed by version. Idempotent: a second run only checks, in seconds.
# Precedence per tool: its environment variable, then PATH, then the cache, then a fresh install.
set -euo pipefail

CACHE="${CALL_CAMPAIGNS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/call-campaigns/tools}"
TEMPORAL_CLI_VERSION=v1.5.1
# The Temporal server the CLI v1.5.1 embeds as its dev server; also the Compose images' version
# (docker-compose.yml; test/compose.test.ts keeps the two equal).
TEMPORAL_SERVER_VERSION=v1.29.1
LIVEKIT_VERSION=v1.13.5
TEST_SERVER_VERSION=1.38.0
SLF4J_VERSION=2.0.17
mkdir -p "$CACHE"
started=$(date +%s)
repo="$(cd "$(dirname "$0")/.." && pwd)"
say() { printf 'setup: %s\n' "$*"; }

apt_updated=""
apt_install() { # apt_install <package>...: installs the Debian packages not yet installed
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ---- Go-built servers: Temporal CLI and livekit-server (built in parallel when both are missing)
temporal_bin="${TEMPORAL_CLI:-}"; temporal_how="env TEMPORAL_CLI"
if [ -z "$temporal_bin" ] && command -v temporal >/dev/null 2>&1; then temporal_bin=$(command -v temporal); temporal_how="PATH"; fi
if [ -z "$temporal_bin" ]; then temporal_bin="$CACHE/temporal-cli-$TEMPORAL_CLI_VERSION/temporal"; temporal_how="cache"; fi

livekit_bin="${LIVEKIT_SERVER:-}"; livekit_how="env LIVEKIT_SERVER"
if [ -z "$livekit_bin" ] && command -v livekit-server >/dev/null 2>&1; then livekit_bin=$(command -v livekit-server); livekit_how="PATH"; fi
if [ -z "$livekit_bin" ]; then livekit_bin="$CACHE/livekit-server-$LIVEKIT_VERSION/livekit-server"; livekit_how="cache"; fi

pids=(); cli_pid=""
if [ ! -x "$temporal_bin" ]; then
  command -v go >/dev/null || { echo "setup: Go is needed to build the Temporal CLI (apt-get install golang or see TOOLCHAIN.md)" >&2; exit 1; }
  say "building Temporal CLI $TEMPORAL_CLI_VERSION from the Go module proxy (~3-6 min on a new machine)…"
  mkdir -p "$(dirname "$temporal_bin")"
  GOBIN="$(dirname "$temporal_bin")" go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" &
  cli_pid=$!; pids+=($cli_pid); temporal_how="installed"
fi
if [ ! -x "$livekit_bin" ]; then
  command -v go >/dev/null || { echo "setup: Go is needed to build livekit-server" >&2; exit 1; }
  say "building livekit-server $LIVEKIT_VERSION from the Go module proxy (~2-5 min on a new machine)…"
  dir="$(dirname "$livekit_bin")"; mkdir -p "$dir"
  ( GOBIN="$dir" go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION" && mv "$dir/server" "$livekit_bin" ) &
  pids+=($!); livekit_how="installed"
fi
# ---- Temporal's own server and its SQL schema tool (the production server, on PostgreSQL), from the
# Go module proxy, with the module's versioned PostgreSQL schemas and example config (not committed:
# they belong to that exact server version). src/dev/temporal-server.ts runs them.
server_dir="${TEMPORAL_SERVER_DIR:-}"; server_how="env TEMPORAL_SERVER_DIR"
if [ -z "$server_dir" ]; then server_dir="$CACHE/temporal-server-$TEMPORAL_SERVER_VERSION"; server_how="cache"; fi
server_complete() { [ -x "$1/temporal-server" ] && [ -x "$1/temporal-sql-tool" ] && [ -d "$1/schema/postgresql/v12/visibility/versioned" ] && [ -f "$1/config/development-postgres12.yaml" ]; }
if ! server_complete "$server_dir"; then
  [ "$server_how" = cache ] || { echo "setup: TEMPORAL_SERVER_DIR=$server_dir lacks temporal-server, temporal-sql-tool, schema/postgresql/v12 or config/: unset it to build them" >&2; exit 1; }
  command -v go >/dev/null || { echo "setup: Go is needed to build the Temporal server (apt-get install golang or see TOOLCHAIN.md)" >&2; exit 1; }
  say "building Temporal server $TEMPORAL_SERVER_VERSION and temporal-sql-tool from the Go module proxy (~4-8 min on a new machine)…"
  (
    set -e
    # The CLI embeds this server (with some dependencies at other versions): built after it, the
    # packages they share come from the Go build cache rather than being compiled twice at once.
    if [ -n "$cli_pid" ]; then while kill -0 "$cli_pid" 2>/dev/null; do sleep 2; done; fi
    tmp="$server_dir.tmp.$$"; rm -rf "$tmp"; mkdir -p "$tmp/schema/postgresql" "$tmp/config"
    GOBIN="$tmp" go install "go.temporal.io/server/cmd/server@$TEMPORAL_SERVER_VERSION" "go.temporal.io/server/cmd/tools/sql@$TEMPORAL_SERVER_VERSION"
    mv "$tmp/server" "$tmp/temporal-server"; mv "$tmp/sql" "$tmp/temporal-sql-tool"
    src=$(go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    [ -d "$src/schema/postgresql/v12" ] || { echo "setup: no schema/postgresql/v12 in the server module ($src)" >&2; exit 1; }
    cp -R "$src/schema/postgresql/v12" "$tmp/schema/postgresql/"
    cp "$src/config/development-postgres12.yaml" "$tmp/config/"
    chmod -R u+w "$tmp" # the module cache's files are read-only
    rm -rf "$server_dir"; mv "$tmp" "$server_dir"
  ) &
  pids+=($!); server_how="installed"
fi

# An earlier install may have left the binary under its module name.
[ ! -x "$livekit_bin" ] && [ -x "$(dirname "$livekit_bin")/server" ] && mv "$(dirname "$livekit_bin")/server" "$livekit_bin"

# ---- Temporal time-skipping test server (Java, Maven Central)
test_server="${TEMPORAL_TEST_SERVER:-}"; test_server_how="env TEMPORAL_TEST_SERVER"
if [ -z "$test_server" ]; then
  ts_dir="$CACHE/temporal-test-server-$TEST_SERVER_VERSION"
  test_server="$ts_dir/test-server"; test_server_how="cache"
  if [ ! -x "$test_server" ] || [ -z "$(ls "$ts_dir/lib" 2>/dev/null)" ]; then
    command -v java >/dev/null || apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null || apt_install maven
    mkdir -p "$ts_dir"
    cat > "$ts_dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>call-campaigns</groupId><artifactId>temporal-test-server-deps</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>io.temporal</groupId><artifactId>temporal-test-server</artifactId><version>$TEST_SERVER_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId><version>$SLF4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
    say "fetching Temporal test server $TEST_SERVER_VERSION from Maven Central…"
    (cd "$ts_dir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib)
    printf '#!/bin/sh\nexec java -cp "%s/lib/*" io.temporal.testserver.TestServer "$@"\n' "$ts_dir" > "$test_server"
    chmod +x "$test_server"; test_server_how="installed"
  fi
fi

# ---- Debian packages: Redis, PostgreSQL
apt_install redis-server postgresql-15
redis_bin="${REDIS_SERVER:-$(command -v redis-server)}"
pg_bin="${PG_BIN_DIR:-/usr/lib/postgresql/15/bin}"

# ---- phone-sim (tools/phone-sim): the phone-network simulator behind livekit-server (Go module proxy)
sim_src="$repo/tools/phone-sim"
sim_hash=$(cat "$sim_src/go.mod" "$sim_src/go.sum" "$sim_src"/*.go | sha256sum | cut -c1-12)
sim_bin="$CACHE/phone-sim-$sim_hash/phone-sim"; sim_how="cache"
if [ ! -x "$sim_bin" ]; then
  say "building phone-sim (livekit protocol, psrpc, server-sdk-go) from the Go module proxy…"
  mkdir -p "$(dirname "$sim_bin")"
  (cd "$sim_src" && go build -o "$sim_bin" .)
  sim_how="installed"
fi

# ---- the phones' audio clips (scripts/phone-audio.sh: espeak-ng and sox, encoded by opusenc), generated, not committed
apt_install espeak-ng sox opus-tools

# ---- offline speech recognition (agent/offline-stt.ts: PocketSphinx and its US-English model), and
# flite's voices for the spoken answers of the speech tests and benchmark (src/dev/speech-clips.ts)
apt_install pocketsphinx pocketsphinx-en-us flite

# ---- headless Chromium (Debian), for the Web UI tests (the codec server through the real UI)
apt_install chromium
chromium_bin="${CHROMIUM:-$(command -v chromium)}"
audio_hash=$(sha256sum "$repo/scripts/phone-audio.sh" | cut -c1-12)
audio_dir="$CACHE/phone-audio-$audio_hash"; audio_how="cache"
if [ ! -f "$audio_dir/voicemail-greeting.ogg" ]; then
  bash "$repo/scripts/phone-audio.sh" "$audio_dir.tmp" && rm -rf "$audio_dir" && mv "$audio_dir.tmp" "$audio_dir"
  audio_how="generated"
fi
espeak_bin="${ESPEAK_NG:-$(command -v espeak-ng)}"

# ---- compose-check (tools/compose-check): compose-go, Docker Compose v2's own parser, for docker-compose.yml
compose_src="$repo/tools/compose-check"
compose_hash=$(cat "$compose_src/go.mod" "$compose_src/go.sum" "$compose_src/main.go" | sha256sum | cut -c1-12)
compose_bin="$CACHE/compose-check-$compose_hash/compose-check"; compose_how="cache"
if [ ! -x "$compose_bin" ]; then
  say "building compose-check (compose-go) from the Go module proxy…"
  mkdir -p "$(dirname "$compose_bin")"
  (cd "$compose_src" && go build -o "$compose_bin" .)
  compose_how="installed"
fi

for pid in "${pids[@]}"; do wait "$pid"; done
[ -x "$temporal_bin" ] || { echo "setup: Temporal CLI build failed" >&2; exit 1; }
[ -x "$livekit_bin" ] || { echo "setup: livekit-server build failed" >&2; exit 1; }
server_complete "$server_dir" || { echo "setup: Temporal server build failed (see the go output above)" >&2; exit 1; }

# The tool list lives in this checkout (node_modules/.cache), not in the shared cache: two checkouts
# (branches, CI clones) may need different builds of the project's own tools.
tools_json="$repo/node_modules/.cache/call-campaigns/tools.json"
mkdir -p "$(dirname "$tools_json")"
cat > "$tools_json" <<JSON
{
  "temporal": "$temporal_bin",
  "temporalTestServer": "$test_server",
  "temporalServer": "$server_dir",
  "livekitServer": "$livekit_bin",
  "redisServer": "$redis_bin",
  "pgBinDir": "$pg_bin",
  "composeCheck": "$compose_bin",
  "phoneSim": "$sim_bin",
  "phoneAudio": "$audio_dir",
  "espeakNg": "$espeak_bin",
  "chromium": "$chromium_bin"
}
JSON

say "temporal CLI        $temporal_bin ($temporal_how)"
say "temporal server     $server_dir ($server_how)"
say "time-skipping server $test_server ($test_server_how)"
say "livekit-server      $livekit_bin ($livekit_how)"
say "redis-server        $redis_bin"
say "postgresql          $pg_bin"
say "compose-check       $compose_bin ($compose_how)"
say "phone-sim           $sim_bin ($sim_how)"
say "phone audio clips   $audio_dir ($audio_how)"
say "espeak-ng           $espeak_bin"
say "chromium            $chromium_bin"
say "done in $(( $(date +%s) - started )) s (tool list: $tools_json)"
