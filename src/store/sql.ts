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
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { ageOf, DatabaseInUseError, ensurePrivateDir, processAlive, processName, readLock, serveDatabase, socketDirFor, SOCKET_FILE, Turns, writeLock, type LockInfo } from './embedded';

export { DatabaseInUseError } from './embedded';

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
   * Use only `tx` inside `fn`: on an embedded database the transaction holds the whole database, so
   * a query on the outer `Sql` would wait for it forever.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** `pglite` or `postgres`. */
  readonly kind: 'pglite' | 'postgres';
}

/** Where an embedded database lives, and who is opening it (for messages naming the owner). */
export interface PgliteOptions {
  /** What this process is (`worker`, `cli`, `demo`); default: the entry script's name. */
  name?: string;
  /** How long to wait for an owner that is still opening the database (ms). Default 30 s (a large directory on a busy machine). */
  waitMs?: number;
}

/**
 * Embedded PGlite: in memory (no `dataDir`: private to the caller), or persistent in `dataDir`.
 * A data directory has one owner process (see ./embedded.ts): the first opener owns it and serves
 * it on a Unix socket; later openers — other processes, or this one again — reach it through the
 * owner as PostgreSQL clients. When the owner goes away, the next query elects a new owner (this
 * process, if it gets there first). A process that can neither own nor reach it is refused at once
 * with {@link DatabaseInUseError}.
 */
export async function openPglite(dataDir?: string, options: PgliteOptions = {}): Promise<Sql> {
  if (!dataDir) return wrapPglite(await PGlite.create({}), new Turns(), async () => undefined);
  const dir = resolve(dataDir);
  const name = options.name ?? processName();
  const waitMs = options.waitMs ?? 30_000;
  let current = await elect(dir, name, waitMs);
  let lost = false;
  let closed = false;
  let electing: Promise<Sql> | undefined;
  const connection = async (): Promise<Sql> => {
    if (closed) throw new Error('the database is closed');
    if (lost && !electing) {
      // The owner went away: close what is left of the old connection and find (or become) the new one.
      electing = (async () => {
        await current.close().catch(() => undefined);
        current = await elect(dir, name, waitMs);
        lost = false;
        return current;
      })().finally(() => (electing = undefined));
    }
    return electing ?? current;
  };
  /** Runs `op` on the current connection; a lost owner is replaced, and an op that never reached it is retried once. */
  const run = async <T>(op: (sql: Sql) => Promise<T>): Promise<T> => {
    for (let tries = 0; ; tries += 1) {
      const sql = await connection();
      try {
        return await op(sql);
      } catch (err) {
        if (sql.kind !== 'postgres' || !ownerGone(err)) throw err;
        if (sql === current) lost = true;
        // Refused at connect: nothing was sent, so trying again cannot run it twice.
        if (tries === 0 && neverSent(err)) continue;
        throw new Error(`the database owner went away during a query (${errorCode(err)}); the next one reconnects`, { cause: err });
      }
    }
  };
  return {
    kind: 'pglite',
    query: (text, params) => run((sql) => sql.query(text, params)),
    exec: (text) => run((sql) => sql.exec(text)),
    transaction: (fn) => run((sql) => sql.transaction(fn)),
    async close() {
      if (closed) return;
      closed = true;
      await electing?.catch(() => undefined);
      await current.close();
    },
  };
}

/** This process's locks, by lock file: a lock naming our pid that is not here is a stale one (pid reused). */
const OWNED = new Set<string>();

/** Becomes the owner of `dir`, or connects to its live owner; refuses when neither is possible. */
async function elect(dir: string, name: string, waitMs: number): Promise<Sql> {
  const lockFile = `${dir}.lock`;
  mkdirSync(dirname(lockFile), { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    const info = readLock(lockFile);
    if (info?.socket) {
      const client = await connectToOwner(info.socket).catch(() => undefined);
      if (client) return client;
    }
    try {
      writeLock(lockFile, { pid: process.pid, name, since: Date.now() }, 'wx');
      return await becomeOwner(dir, lockFile, name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock(lockFile);
    if (isStale(lockFile, holder)) {
      takeOver(lockFile, holder);
      continue;
    }
    // An owner that is still opening the database gets `waitMs` to start serving it; one that never will, none.
    if (Date.now() >= deadline || holder?.legacy) {
      const who = holder ? `process ${holder.pid}${holder.name ? ` (${holder.name})` : ''}` : 'another process';
      const why = holder?.legacy
        ? 'which does not share it (an older version)'
        : !holder?.socket
          ? `which has not finished opening it after ${Math.round(waitMs / 1000)} s`
          : 'which does not answer on its socket';
      throw new DatabaseInUseError(
        `the database in ${dir} is in use by ${who}, ${why}; stop that process, or set DATABASE_URL to use PostgreSQL (remove ${lockFile} only if no such process runs)`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A lock whose owner is gone (dead pid, or our own pid reused after a restart), or a garbage file older than 10 s. */
function isStale(lockFile: string, holder: LockInfo | undefined): boolean {
  if (!holder) return (ageOf(lockFile) ?? 0) > 10_000;
  if (holder.pid === process.pid) return !OWNED.has(lockFile);
  return !processAlive(holder.pid);
}

/**
 * Removes a stale lock. Two processes may find the same stale lock at once: the removal happens
 * under `<lock>.takeover` (mkdir is atomic), after checking the lock is still the stale one, so the
 * slower process cannot remove the lock the faster one has just taken.
 */
function takeOver(lockFile: string, stale: LockInfo | undefined): void {
  const mutex = `${lockFile}.takeover`;
  try {
    mkdirSync(mutex);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Held by a process that died in the middle of a takeover: free it for the next round.
    if ((ageOf(mutex) ?? 0) > 10_000) rmSync(mutex, { recursive: true, force: true });
    return;
  }
  try {
    const now = readLock(lockFile);
    if (JSON.stringify(now) === JSON.stringify(stale) && isStale(lockFile, now)) rmSync(lockFile, { force: true });
  } finally {
    rmSync(mutex, { recursive: true, force: true });
  }
}

/** Opens PGlite in `dir` (we hold its lock) and serves it on the socket next to it. */
async function becomeOwner(dir: string, lockFile: string, name: string): Promise<Sql> {
  OWNED.add(lockFile);
  const releaseLock = () => {
    process.off('exit', releaseLock);
    OWNED.delete(lockFile);
    if (readLock(lockFile)?.pid === process.pid) rmSync(lockFile, { force: true });
  };
  process.once('exit', releaseLock);
  let db: PGlite | undefined;
  let server: { close(): Promise<void> } | undefined;
  try {
    db = await PGlite.create({ dataDir: dir });
    const turns = new Turns();
    const socketDir = socketDirFor(dir);
    ensurePrivateDir(socketDir);
    const socket = join(socketDir, SOCKET_FILE);
    server = await serveDatabase(db, turns, socket);
    writeLock(lockFile, { pid: process.pid, name, socket, since: Date.now() }, 'w');
    const stop = server;
    return wrapPglite(db, turns, async () => {
      try {
        await stop.close();
      } finally {
        releaseLock();
      }
    });
  } catch (err) {
    await server?.close().catch(() => undefined);
    await db?.close().catch(() => undefined);
    releaseLock();
    throw new Error(`cannot open the database in ${dir} (${errorCode(err)})`, { cause: err });
  }
}

/** The owner's own access: in process, taking turns with the socket clients. */
function wrapPglite(db: PGlite, turns: Turns, beforeClose: () => Promise<void>): Sql {
  let closed = false;
  const wrap = (q: { query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>; exec(text: string): Promise<unknown> }): Queryable => ({
    query: (text, params) => q.query(text, params) as never,
    exec: async (text) => void (await q.exec(text)),
  });
  return {
    kind: 'pglite',
    query: (text, params) => turns.run(() => db.query(text, params)) as never,
    exec: (text) => turns.run(async () => void (await db.exec(text))),
    transaction: (fn) => turns.run(() => db.transaction((tx) => fn(wrap(tx)))),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await beforeClose();
      } finally {
        await turns.run(() => db.close());
      }
    },
  };
}

/** A client of the owner's socket: PostgreSQL protocol, a small pool. */
async function connectToOwner(socket: string): Promise<Sql> {
  const sql = await openPostgres({ host: dirname(socket), port: 5432, user: 'postgres', database: 'postgres', max: 4, connectionTimeoutMillis: 3_000 });
  return sql;
}

/** Errors that mean the owner (or the PostgreSQL server) is not there any more. */
function ownerGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code && ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE'].includes(code)) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(String((err as Error)?.message));
}

function neverSent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ECONNREFUSED' || code === 'ENOENT';
}

/** A short, value-free description of an error: its code, or its class. */
function errorCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errno?: unknown };
  return e?.code ?? (typeof e?.errno === 'number' ? `errno ${e.errno}` : (e?.name ?? 'unknown error'));
}

/** PostgreSQL through a pg pool. Fails here, not at the first query, when the server is unreachable. */
export async function openPostgres(target: string | pg.PoolConfig): Promise<Sql> {
  const pool = new pg.Pool(typeof target === 'string' ? { connectionString: target, max: 10, connectionTimeoutMillis: 10_000 } : target);
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
      // A checked-out client has no pool listener: its connection dying (a database restart) mid-
      // transaction would emit an unhandled 'error' and crash the process. The query in flight fails
      // with it anyway; the client is destroyed on release.
      const onError = (err: Error) => (broken ??= err);
      client.on('error', onError);
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
        client.off('error', onError);
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

/** jsonb comes back parsed from both drivers; tolerate text for safety. */
export function json<T>(value: unknown): T | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}
