/**
 * The project's PostgreSQL restarted under a worker: a transaction whose connection dies fails (the
 * activity retries it) instead of crashing the process with an unhandled 'error' event, and the next
 * queries reconnect.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { openPostgres, type Sql } from '../../src/store/sql';

let postgres: PostgresServer;
let sql: Sql;

beforeAll(async () => {
  postgres = await startPostgres({ crashSafe: true });
  sql = await openPostgres(postgres.url);
});

afterAll(async () => {
  await sql?.close();
  await postgres?.stop();
});

it('a transaction open while the database restarts fails, the process lives, and the next query reconnects', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const tx = sql.transaction(async (q) => {
      await q.query('SELECT 1');
      inside();
      await held; // between statements: no query in flight when the connection dies
      await q.query('SELECT 2');
    });
    await entered;
    await postgres.restart({ mode: 'immediate' });
    release();
    await expect(tx).rejects.toThrow();
    // Give a late 'error' event the turn it needs to surface.
    await new Promise((r) => setTimeout(r, 200));
    expect(uncaught).toEqual([]);
    const { rows } = await sql.query<{ n: number }>('SELECT 1 AS n');
    expect(rows[0]!.n).toBe(1);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});
