/**
 * A throwaway PostgreSQL 15 server (Debian's binaries, via `npm run setup`) for tests of the
 * production database path. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './temporal-dev-server';
import { resolveTool } from './tools';

export interface PostgresServer {
  /** `postgres://app@127.0.0.1:<port>/postgres` */
  url: string;
  stop(): Promise<void>;
}

/** Starts a fresh server in a temporary directory; resolves once it accepts connections. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = resolveTool('pgBinDir');
  if (!existsSync(join(bin, 'postgres'))) throw new Error(`PostgreSQL is not installed in ${bin}: run \`npm run setup\``);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'call-campaigns-pg-'));
  const run = (cmd: string, args: string[]) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]) as [string, string[]];
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const init = spawnSync(...run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'app', '--no-sync']), { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const child = spawn(...run(join(bin, 'postgres'), ['-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port), '-c', 'fsync=off']), {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const url = `postgres://app@127.0.0.1:${port}/postgres`;

  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  for (let i = 0; ; i += 1) {
    if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}): ${stderr}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return { url, stop };
    } catch {
      await client.end().catch(() => undefined);
      if (i > 150) {
        await stop();
        throw new Error(`postgres did not accept connections: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
