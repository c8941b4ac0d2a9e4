/**
 * `npm run worker`'s entry as a process of its own, configured from the environment like
 * production: for tests that kill workers (SIGKILL) or run several at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Starts a worker process with `env` over this process's environment; resolves once it polls. `logFile` keeps its output. */
export async function startWorkerProcess(env: Record<string, string>, options: { logFile?: string } = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker started')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    if (options.logFile) {
      const file = options.logFile;
      child.stdout!.on('data', (d: Buffer) => appendFileSync(file, d));
      child.stderr!.on('data', (d: Buffer) => appendFileSync(file, d));
    }
    child.once('exit', (code) => reject(new Error(`worker exited (${code}): ${out.slice(-2_000)}`)));
  });
  return child;
}
