/**
 * One SQL executor over the two databases the project supports: embedded PGlite (default) and
 * PostgreSQL (`DATABASE_URL`). Same dialect, same schema, same store code on top.
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** Runs parameterised SQL. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
  /** Runs several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
}

/** A database: queries, transactions, close. */
export interface Sql extends Queryable {
  /** Runs `fn` in one transaction (on one connection); commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** `pglite` or `postgres`. */
  readonly kind: 'pglite' | 'postgres';
}

/** Embedded PGlite: in memory, or persistent in `dataDir`. */
export async function openPglite(dataDir?: string): Promise<Sql> {
  const db = await PGlite.create(dataDir ? { dataDir } : {});
  return {
    kind: 'pglite',
    query: (text, params) => db.query(text, params) as never,
    exec: async (text) => void (await db.exec(text)),
    transaction: (fn) =>
      db.transaction((tx) => fn({ query: (text, params) => tx.query(text, params) as never, exec: async (text) => void (await tx.exec(text)) })),
    close: () => db.close(),
  };
}

/** PostgreSQL through a pg pool. */
export async function openPostgres(url: string): Promise<Sql> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // Fail at start, not at the first query, when the server is unreachable.
  const probe = await pool.connect();
  probe.release();
  return {
    kind: 'postgres',
    query: (text, params) => pool.query(text, params) as never,
    exec: async (text) => void (await pool.query(text)),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({ query: (text, params) => client.query(text, params) as never, exec: async (text) => void (await client.query(text)) });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
