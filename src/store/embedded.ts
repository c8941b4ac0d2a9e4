/**
 * One owner per embedded database. PGlite is PostgreSQL in one process: two processes opening the
 * same data directory would both write it and damage it. So the first process to open a data
 * directory owns it — it holds `<dataDir>.lock` — and serves it to the others over the PostgreSQL
 * wire protocol on a Unix socket next to the data (`<dataDir>.sock/.s.PGSQL.5432`, private to the
 * user). Every other process (the CLI while a worker or the demo runs, a second worker) finds the
 * owner's socket in the lock file and connects with `pg` as to PostgreSQL. When the owner goes
 * away, the next process to open the database becomes the owner.
 *
 * Why not `@electric-sql/pglite-socket`: its 0.2.x releases pin one exact PGlite version (0.2.17
 * wants 0.5.14; 0.5.16 is installed here), and it does not keep the owner's own transactions apart
 * from socket clients: tried with 0.2.17, a client's INSERT sent while the owning process had a
 * `db.transaction()` open ran inside that transaction and vanished when it rolled back. (Its
 * multiplexer also runs each wire message of a connection as its own turn; 600 concurrent
 * parameterised queries showed no mix-up, but nothing in it keeps another connection's Parse out
 * from between a Parse and its Bind.) The server below gives each connection the database for a
 * whole message batch (up to Sync) and for a whole transaction, and the owner's own queries take
 * turns with them on the same lock.
 */
import type { PGlite } from '@electric-sql/pglite';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/** What `<dataDir>.lock` holds. */
export interface LockInfo {
  pid: number;
  /** What the owner is (`worker`, `cli`, `demo`, …), for messages. */
  name?: string;
  /** The owner's socket, once it serves. */
  socket?: string;
  /** When the lock was taken (ms since the epoch). */
  since?: number;
  /** A bare pid: written by a version that never serves the database (so there is no point waiting). */
  legacy?: boolean;
}

/** The data directory is owned by a process that cannot be reached: a sentence naming what to do. */
export class DatabaseInUseError extends Error {
  override readonly name = 'DatabaseInUseError';
}

/** PostgreSQL's socket file name for port 5432 (what `pg` connects to given the directory). */
export const SOCKET_FILE = '.s.PGSQL.5432';
/** A client holding the database in a transaction but silent this long is cut off (its transaction rolls back). */
export const IDLE_IN_TRANSACTION_MS = 30_000;

/**
 * The socket directory for a data directory: `<dataDir>.sock` (mode 700), or a private directory
 * under the system's temporary directory when that path is too long for a Unix socket (~107 bytes).
 */
export function socketDirFor(dataDir: string): string {
  const near = `${dataDir}.sock`;
  if (Buffer.byteLength(join(near, SOCKET_FILE)) <= 100) return near;
  const hash = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return join(tmpdir(), `call-campaigns-${process.getuid?.() ?? 'u'}-${hash}`);
}

export function readLock(lockFile: string): LockInfo | undefined {
  let text: string;
  try {
    text = readFileSync(lockFile, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (/^\d+$/.test(text)) return { pid: Number(text), legacy: true }; // an older version's lock
  try {
    const info = JSON.parse(text) as LockInfo;
    return Number.isInteger(info.pid) ? info : undefined;
  } catch {
    return undefined; // being written, or garbage
  }
}

export function writeLock(lockFile: string, info: LockInfo, flag: 'wx' | 'w'): void {
  writeFileSync(lockFile, JSON.stringify(info), { flag, mode: 0o600 });
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Age of a file in ms, or undefined when it is gone. */
export function ageOf(file: string): number | undefined {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/** A FIFO lock: who holds the database right now (the owner's own queries or one socket client). */
export class Turns {
  private tail: Promise<void> = Promise.resolve();

  /** Waits for the turn; resolves with its release. */
  take(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const before = this.tail;
    this.tail = before.then(() => mine);
    return before.then(() => {
      let done = false;
      return () => {
        if (done) return;
        done = true;
        release();
      };
    });
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.take();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;
const PROTOCOL_3 = 196608;
/** Sync: ends an extended-query batch and resets an aborted one. */
const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);

/**
 * Serves `db` on a Unix socket at `path` (mode 600). Each connection gets the database for a whole
 * batch (Query, or Parse…Sync) and, while it has a transaction open, for the whole transaction.
 */
export async function serveDatabase(db: PGlite, turns: Turns, path: string): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    handleConnection(db, turns, socket);
  });
  rmSync(path, { force: true }); // a socket file left by an owner that died (we hold the lock)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return {
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      rmSync(path, { force: true });
    },
  };
}

function handleConnection(db: PGlite, turns: Turns, socket: Socket): void {
  let buffer = Buffer.alloc(0);
  let started = false;
  let release: (() => void) | undefined;
  /** In the middle of an extended-query batch (Parse… sent, Sync not yet). */
  let midBatch = false;
  let idleTimer: NodeJS.Timeout | undefined;
  let chain = Promise.resolve();
  let ended = false;

  /**
   * Replies are gathered and written once a batch is answered (Sync, Query, Flush, or nothing more
   * queued): PGlite hands them over in many small pieces, and a write each cost the owner a fifth of
   * its CPU on a busy forecast.
   */
  let replies: Uint8Array[] = [];
  let queued = 0;
  const send = (data: Uint8Array) => {
    if (data.length > 0) replies.push(Buffer.from(data));
  };
  const flush = () => {
    if (replies.length === 0) return;
    const out = replies.length === 1 ? replies[0]! : Buffer.concat(replies);
    replies = [];
    if (socket.writable) socket.write(out);
  };

  const exec = async (message: Uint8Array) => {
    await db.runExclusive(() => db.execProtocolRawStream(message, { onRawData: send }));
  };

  /** Gives the database back, leaving no half batch or open transaction behind. */
  const giveBack = async () => {
    if (!release) return;
    clearTimeout(idleTimer);
    try {
      if (midBatch) await db.runExclusive(() => db.execProtocolRaw(SYNC));
      if (db.isInTransaction()) await db.runExclusive(() => db.execProtocolRaw(query('ROLLBACK')));
    } catch {
      // the database is closing: nothing to give back
    }
    midBatch = false;
    release();
    release = undefined;
  };

  const handle = async (message: Buffer, type: number | undefined) => {
    if (ended) return;
    if (type === 0x58) return end(); // Terminate: not for the shared backend
    clearTimeout(idleTimer);
    release ??= await turns.take();
    if (ended) return giveBack();
    try {
      await exec(message);
    } finally {
      if (queued === 0 || type === undefined || type === 0x51 /* Query */ || type === 0x53 /* Sync */ || type === 0x48 /* Flush */) flush();
    }
    if (type === undefined || type === 0x51 /* Query */ || type === 0x53 /* Sync */) {
      midBatch = false;
      if (db.isInTransaction()) {
        // Keep the turn for the rest of the transaction; a silent client loses it (and its transaction).
        idleTimer = setTimeout(() => end(), IDLE_IN_TRANSACTION_MS);
        idleTimer.unref();
      } else {
        await giveBack();
      }
    } else {
      midBatch = true;
    }
  };

  const end = () => {
    if (ended) return;
    ended = true;
    socket.destroy();
    chain = chain.then(giveBack, giveBack);
  };

  /** Handles messages one after another, in arrival order; `queued` counts those not started yet. */
  const enqueue = (message: Buffer, type: number | undefined) => {
    queued += 1;
    chain = chain
      .then(() => {
        queued -= 1;
        return handle(message, type);
      })
      .catch(() => end());
  };

  socket.on('error', () => end());
  socket.on('close', () => end());
  socket.on('data', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      if (!started) {
        if (buffer.length < 8) return;
        const length = buffer.readInt32BE(0);
        const code = buffer.readInt32BE(4);
        if (length < 8 || length > 10_000) return end();
        if (buffer.length < length) return;
        const message = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        if (code === SSL_REQUEST || code === GSS_REQUEST) {
          socket.write('N'); // no encryption on a local socket
          continue;
        }
        if (code !== PROTOCOL_3) return end(); // CancelRequest (80877102: nothing to cancel) or unknown
        started = true;
        enqueue(Buffer.from(message), undefined);
        continue;
      }
      if (buffer.length < 5) return;
      const length = buffer.readInt32BE(1);
      if (length < 4) return end();
      if (buffer.length < length + 1) return;
      const message = Buffer.from(buffer.subarray(0, length + 1));
      buffer = buffer.subarray(length + 1);
      const type = message[0]!;
      enqueue(message, type);
    }
  });
}

/** A simple-protocol Query message. */
function query(sql: string): Uint8Array {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const out = Buffer.alloc(5 + text.length);
  out[0] = 0x51;
  out.writeInt32BE(4 + text.length, 1);
  text.copy(out, 5);
  return out;
}

/** `worker`, `cli`, `demo`… from the entry script's name, for messages about who owns the database. */
export function processName(): string {
  const script = process.argv[1] ? basename(process.argv[1]).replace(/\.[cm]?[jt]s$/, '') : '';
  return script || 'node';
}

export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}


