/**
 * One SQL executor over the two databases the project supports: embedded PGlite (default) and
 * PostgreSQL (`DATABASE_URL`). Same dialect, same schema, same store code on top.
 *
 * Dialect: what PostgreSQL 15 (the oldest server supported) and PGlite (PostgreSQL 18 in WASM) both
 * run. Driver differences the store absorbs: `count(*)`/`bigint` come back as strings from pg and as
 * numbers (or BigInt) from PGlite — always wrap them in `Number()`; `timestamptz` is a `Date` and
 * `jsonb` is parsed in both.
 */
import { PGlite } from '@electric-sql/pglite';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import pg from 'pg';

/** Runs parameterised SQL. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

/** A database: queries, transactions, close. */
export interface Sql extends Queryable {
  /**
   * Runs `fn` in one transaction (on one connection, READ COMMITTED); commits when it resolves,
   * rolls back when it throws. On PGlite transactions and queries never interleave (one connection).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** `pglite` or `postgres`. */
  readonly kind: 'pglite' | 'postgres';
}

/**
 * Embedded PGlite: in memory, or persistent in `dataDir`. A data directory belongs to one process at
 * a time (PGlite has no locking of its own and two writers would corrupt it): a lock file next to
 * it (`<dataDir>.lock`, holding the owner's pid) refuses a second opener while the owner lives.
 */
export async function openPglite(dataDir?: string): Promise<Sql> {
  const releaseLock = dataDir ? lockDataDir(resolve(dataDir)) : () => undefined;
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir ? { dataDir } : {});
  } catch (err) {
    releaseLock();
    throw err;
  }
  let closed = false;
  const wrap = (q: { query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>; exec(text: string): Promise<unknown> }): Queryable => ({
    query: (text, params) => q.query(text, params) as never,
    exec: async (text) => void (await q.exec(text)),
  });
  return {
    kind: 'pglite',
    ...wrap(db),
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await db.close();
      } finally {
        releaseLock();
      }
    },
  };
}

/**
 * Takes `<dir>.lock` for this process; returns its release. A lock whose owner is gone is taken
 * over. A guard against opening a data directory twice by mistake (worker and CLI at once), not a
 * mutex for adversaries: two processes taking over the same stale lock in the same instant could
 * both win.
 */
function lockDataDir(dir: string): () => void {
  const lockFile = `${dir}.lock`;
  mkdirSync(dirname(lockFile), { recursive: true });
  const create = (): boolean => {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  };
  for (let tries = 0; !create(); tries += 1) {
    const owner = lockOwner(lockFile);
    if (owner !== undefined || tries >= 3) {
      const who = owner === process.pid ? 'this process (opened twice)' : `process ${owner ?? '(unknown)'}`;
      throw new Error(
        `PGlite data directory ${dir} is in use by ${who}; one process at a time may open it ` +
          `(set DATABASE_URL to share a PostgreSQL database between processes; remove ${lockFile} if no process uses it)`,
      );
    }
    rmSync(lockFile, { force: true }); // stale: its owner is gone
  }
  const release = () => {
    process.off('exit', release);
    if (lockOwner(lockFile) === process.pid) rmSync(lockFile, { force: true });
  };
  process.once('exit', release);
  return release;
}

/** The live process holding the lock file, `'unknown'` while one is still writing it, undefined when stale or gone. */
function lockOwner(lockFile: string): number | 'unknown' | undefined {
  let text: string;
  let modified: number;
  try {
    text = readFileSync(lockFile, 'utf8').trim();
    modified = statSync(lockFile).mtimeMs;
  } catch {
    return undefined;
  }
  const pid = Number(text);
  if (text !== '' && Number.isInteger(pid) && pid > 0) return processAlive(pid) ? pid : undefined;
  return Date.now() - modified < 10_000 ? 'unknown' : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** PostgreSQL through a pg pool. Fails here, not at the first query, when the server is unreachable. */
export async function openPostgres(url: string): Promise<Sql> {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 10_000 });
  // An idle client whose connection dies (server restart) is dropped by the pool; without a
  // listener the pool's 'error' event would crash the process. The next query reconnects.
  pool.on('error', () => undefined);
  try {
    const probe = await pool.connect();
    probe.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  let closed = false;
  return {
    kind: 'postgres',
    query: (text, params) => pool.query(text, params) as never,
    exec: async (text) => void (await pool.query(text)),
    async transaction(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: (text, params) => client.query(text, params) as never,
          exec: async (text) => void (await client.query(text)),
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // A connection that cannot even roll back is destroyed rather than returned to the pool.
        await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
        throw err;
      } finally {
        client.release(broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
