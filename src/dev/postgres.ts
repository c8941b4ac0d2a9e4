/**
 * A throwaway PostgreSQL 15 server for tests of the production database path: Debian's binaries
 * (`/usr/lib/postgresql/15/bin`, `$PG_BIN_DIR`, or what `npm run setup` recorded), a fresh cluster in
 * a temporary directory, trust authentication for the user `app`, TCP on 127.0.0.1 only.
 *
 * PostgreSQL refuses to run as root: as root, `initdb` and `postgres` run as the `postgres` user
 * (the directory is chowned to it). The server is spawned with that uid directly rather than
 * through `runuser`, so the process we hold is the postmaster itself: our signals reach it, and a
 * SIGKILL cannot leave it orphaned behind a killed `runuser`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { freePort } from './temporal-dev-server';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { resolveTool } from './tools';
import { serverStartDeadlineMs } from './deadlines';

export interface PostgresServer {
  /** `postgres://app@127.0.0.1:<port>/postgres` */
  url: string;
  /**
   * Stops the server and starts it again on the same data directory and port (a database restart
   * under running clients): `immediate` (default) is PostgreSQL's crash-like shutdown (SIGQUIT: no
   * checkpoint, recovery from the WAL at start), `fast` its clean one. `downMs` keeps it down that
   * long before starting it again. Resolves once it accepts connections again.
   */
  restart(options?: { mode?: 'fast' | 'immediate'; downMs?: number }): Promise<void>;
  /** Stops the server (fast shutdown, SIGKILL after 5 s) and removes its directory. */
  stop(): Promise<void>;
}

/** Debian's PostgreSQL 15, used when neither `$PG_BIN_DIR` nor `npm run setup` names one. */
export const DEFAULT_PG_BIN_DIR = '/usr/lib/postgresql/15/bin';

/** The directory holding `initdb` and `postgres`; throws saying to run `npm run setup` when there is none. */
export function pgBinDir(): string {
  let bin: string;
  try {
    bin = resolveTool('pgBinDir');
  } catch (err) {
    if (process.env.PG_BIN_DIR || !existsSync(join(DEFAULT_PG_BIN_DIR, 'postgres'))) throw err;
    bin = DEFAULT_PG_BIN_DIR;
  }
  for (const tool of ['initdb', 'postgres']) {
    if (!existsSync(join(bin, tool))) {
      throw new Error(`PostgreSQL is not installed (no ${tool} in ${bin}): run \`npm run setup\` (installs postgresql-15), or set PG_BIN_DIR`);
    }
  }
  return bin;
}

/** uid and gid of the `postgres` user, when we are root (PostgreSQL will not run as root). */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root needs the `postgres` user to run PostgreSQL: run `npm run setup` (installs postgresql-15)');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}


export interface PostgresOptions {
  /**
   * Commits survive a crash of the server (`synchronous_commit=on`, PostgreSQL's default and
   * production's). Off by default: a throwaway server commits without waiting for its WAL to be
   * written, so a crash (an immediate `restart`) can lose the last ~0.6 s of acknowledged commits —
   * a test that crashes the database must turn this on. (`fsync` stays off either way: a process
   * crash, unlike a machine's, loses nothing the kernel holds.)
   */
  crashSafe?: boolean;
}

/** Starts a fresh server in a temporary directory; resolves once it accepts connections. */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = pgBinDir();
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'call-campaigns-pg-'));
  const as = { ...user, cwd: dir, env: { ...process.env, LC_ALL: 'C', LANG: 'C' }, crashSafe: options.crashSafe ?? false };
  try {
    if (user) chownSync(dir, user.uid, user.gid);
    const data = join(dir, 'data');
    const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'app', '-E', 'UTF8', '--no-locale', '--no-sync'], {
      ...as,
      encoding: 'utf8',
    });
    if (init.status !== 0) throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr || init.error?.message}`);
    // The port is free when chosen but may be taken before the server binds it: then try another.
    let port = 0;
    let running: RunningServer | undefined;
    for (let tries = 1; !running; tries += 1) {
      try {
        port = await freePort();
        running = await startServer(bin, data, dir, port, as);
      } catch (err) {
        if (!(err instanceof PortTaken) || tries >= 5) throw err;
      }
    }
    let current = running;
    let stopped: Promise<void> | undefined;
    const removeOnExit = () => rmSync(dir, { recursive: true, force: true });
    process.once('exit', removeOnExit);
    return {
      url: current.url,
      async restart({ mode = 'immediate', downMs = 0 } = {}) {
        if (stopped) throw new Error('postgres: stopped; start a new one instead of restarting it');
        await current.halt(mode === 'immediate' ? 'SIGQUIT' : 'SIGINT');
        if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
        // Same port: the clients' URL stays valid. It was ours a moment ago; another process taking it
        // in between is a failure of the test machine, reported as such.
        current = await startServer(bin, data, dir, port, as);
      },
      stop: () =>
        (stopped ??= (async () => {
          process.off('exit', removeOnExit);
          await current.halt('SIGINT');
          rmSync(dir, { recursive: true, force: true });
        })()),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

class PortTaken extends Error {}

/** One run of the postmaster on a data directory. */
interface RunningServer {
  url: string;
  /** Shuts it down with `signal` (SIGKILL after 5 s); resolves once it has exited. Keeps the data. */
  halt(signal: 'SIGINT' | 'SIGQUIT'): Promise<void>;
}

async function startServer(
  bin: string,
  data: string,
  dir: string,
  port: number,
  as: { uid?: number; gid?: number; cwd: string; env: NodeJS.ProcessEnv; crashSafe: boolean },
): Promise<RunningServer> {
  // A throwaway cluster: no fsync, no waiting for the WAL (unless commits must survive a crash).
  const args = ['-D', data, '-k', dir, '-h', '127.0.0.1', '-p', String(port)];
  const commit = `synchronous_commit=${as.crashSafe ? 'on' : 'off'}`;
  for (const setting of ['fsync=off', commit, 'full_page_writes=off', 'max_connections=200']) args.push('-c', setting);
  const { crashSafe: _, ...spawnOptions } = as;
  const child = spawn(join(bin, 'postgres'), args, { ...spawnOptions, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  // Never leave a server behind, even when the test process exits without stopping it.
  const killOnExit = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  const running = () => child.exitCode === null && child.signalCode === null && !spawnError;

  let halted: Promise<void> | undefined;
  const halt = (signal: 'SIGINT' | 'SIGQUIT') =>
    (halted ??= (async () => {
      process.off('exit', killOnExit);
      if (running()) {
        // SIGINT is PostgreSQL's fast shutdown: it ends open sessions. (SIGTERM, the smart shutdown,
        // would wait for every client to disconnect.) SIGQUIT, the immediate one, is a crash without
        // the mess: backends quit at once, the next start recovers from the WAL. SIGKILL of the
        // postmaster alone would leave its backends holding the shared memory. SIGKILL when slow.
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    })());

  const url = `postgres://app@127.0.0.1:${port}/postgres`;
  const timeoutMs = serverStartDeadlineMs();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!running()) {
      process.off('exit', killOnExit);
      await (spawnError ? Promise.resolve() : exited);
      if (/could not bind|already in use/i.test(stderr)) throw new PortTaken(`port ${port} taken`);
      throw new Error(`postgres exited (${child.exitCode ?? child.signalCode ?? spawnError?.message}): ${stderr}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.end();
      return { url, halt };
    } catch {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) {
        process.off('exit', killOnExit);
        child.kill('SIGKILL');
        await exited;
        throw new Error(`postgres did not accept connections within ${timeoutMs / 1000} s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
