/**
 * An in-memory embedded database on its own thread, served on a Unix socket like a data
 * directory's owner serves it (./embedded.ts): for a process whose main thread is busy with other
 * work — the forecast, where the worker, the client and the phone model share it — so the
 * database's CPU runs beside it instead of in turns with it. Started with {@link hostDatabaseThread}.
 */
import { PGlite } from '@electric-sql/pglite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { packageVersion, readStartCache, writeStartCache } from '../start-cache';
import { serveDatabase, SOCKET_FILE, Turns } from './embedded';
import { openPostgres, type Sql } from './sql';

interface HostData {
  socket: string;
}

/** Starts the thread, waits until it serves, and connects to it (a `pg` pool of `connections`). */
export async function hostDatabaseThread(connections = 4): Promise<Sql> {
  const dir = mkdtempSync(join(tmpdir(), 'call-campaigns-db-'));
  const socket = join(dir, SOCKET_FILE);
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const self = import.meta.url;
  // Run from TypeScript sources, the thread registers tsx's loader before it loads this module.
  const worker = self.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(self)}); })`, { eval: true, workerData: { socket } satisfies HostData })
    : new Worker(new URL(self), { workerData: { socket } satisfies HostData });
  const stopped = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the database thread ended at start (exit code ${code})`)));
    });
  } catch (err) {
    process.off('exit', removeDir);
    removeDir();
    throw err;
  }
  const sql = await openPostgres({ host: dir, port: 5432, user: 'postgres', database: 'postgres', max: connections, connectionTimeoutMillis: 10_000 });
  return {
    ...sql,
    kind: 'pglite',
    async close() {
      try {
        await sql.close();
      } finally {
        worker.postMessage('close');
        await stopped;
        process.off('exit', removeDir);
        removeDir();
      }
    },
  };
}

/**
 * A new empty in-memory database. initdb takes ~2 s and ~3.5 s of CPU; loading the files of an
 * empty database made earlier by the same PGlite version (the start-up cache) takes ~1 s.
 */
async function emptyDatabase(): Promise<PGlite> {
  const key = packageVersion('@electric-sql/pglite');
  const cached = readStartCache('pglite-empty', key, '.tar.gz');
  if (cached) {
    const db = await PGlite.create({ loadDataDir: new Blob([new Uint8Array(cached)]) }).catch(() => undefined);
    if (db) return db;
  }
  const db = await PGlite.create({});
  // Dumped before anything is written: the files of an empty database.
  const dump = await db.dumpDataDir('gzip').catch(() => undefined);
  if (dump) writeStartCache('pglite-empty', key, '.tar.gz', new Uint8Array(await dump.arrayBuffer()));
  return db;
}

if (!isMainThread && parentPort && (workerData as HostData | undefined)?.socket) {
  const port = parentPort;
  const db = await emptyDatabase();
  const server = await serveDatabase(db, new Turns(), (workerData as HostData).socket);
  port.once('message', () => {
    void (async () => {
      await server.close().catch(() => undefined);
      await db.close().catch(() => undefined);
      port.close();
    })();
  });
  port.postMessage('ready');
}
