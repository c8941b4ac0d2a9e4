/**
 * The gate across worker processes, on PostgreSQL: child processes with their own brokers wait for
 * the same trunk. The channels in use never exceed the trunk's (seen by the processes' calls and by
 * sampling the database), call slots never put more than R in a 1-s window, and the channels of a
 * SIGKILLed process come back within the lease TTL.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { liveLeaseCount, setTrunkLimits } from '../../src/pacing';
import { createStore, type SqlStore } from '../../src/store';
import { LoadProcess, maxConcurrent, maxInOneSecond, slotTimes } from '../helpers/pacing-load';

let postgres: PostgresServer;
let store: SqlStore;
beforeAll(async () => {
  postgres = await startPostgres();
  store = await createStore({ databaseUrl: postgres.url });
});
afterAll(async () => {
  await store?.close();
  await postgres?.stop();
});

/** Samples the trunk's live leases until stopped; resolves the most seen. */
function sampleLeases(trunkId: string): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      max = Math.max(max, await liveLeaseCount(store.sql, trunkId));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return max;
    },
  };
}

it('three processes × 30 waiters: never more calls up than channels, never more than R slots in a 1-s window', async () => {
  const trunkId = 'ST_multi';
  const channels = 4;
  const R = 5;
  await setTrunkLimits(store.sql, trunkId, { channels, callsPerSecond: R });
  const sampler = sampleLeases(trunkId);
  const procs = ['a', 'b', 'c'].map(
    (name, i) => new LoadProcess({ databaseUrl: postgres.url, trunkId, name, practiceId: `p${i}`, waiters: 30, holdMinMs: 100, holdMaxMs: 600 }),
  );
  await Promise.all(procs.map((p) => p.done));
  const sampled = await sampler.stop();
  for (const p of procs) expect(p.count('end'), p.stderr).toBe(30);
  expect(maxConcurrent(procs)).toBeLessThanOrEqual(channels);
  expect(maxConcurrent(procs)).toBe(channels); // and the channels were used
  expect(sampled).toBeLessThanOrEqual(channels);
  expect(maxInOneSecond(slotTimes(procs, 'at'))).toBeLessThanOrEqual(R);
});

it("a SIGKILLed process's channels come back within the lease TTL", async () => {
  const trunkId = 'ST_kill';
  await setTrunkLimits(store.sql, trunkId, { channels: 3, callsPerSecond: 50 });
  const leaseTtlMs = 3_000;
  const victim = new LoadProcess({ databaseUrl: postgres.url, trunkId, name: 'victim', practiceId: 'p1', waiters: 3, holdMinMs: 0, holdMaxMs: 0, holdForever: true, leaseTtlMs });
  while (victim.count('slot') < 3) await new Promise((r) => setTimeout(r, 20));
  const survivor = new LoadProcess({ databaseUrl: postgres.url, trunkId, name: 'survivor', practiceId: 'p2', waiters: 3, holdMinMs: 50, holdMaxMs: 100, leaseTtlMs });
  await survivor.ready;
  // The victim renews its calls' leases: nothing is granted while it lives.
  await new Promise((r) => setTimeout(r, leaseTtlMs + 1_000));
  expect(survivor.count('grant')).toBe(0);
  await victim.kill();
  const killedAt = Date.now();
  await survivor.done;
  const firstGrant = Math.min(...survivor.events.flatMap((e) => ('grant' in e ? [e.t] : [])));
  expect(survivor.count('end'), survivor.stderr).toBe(3);
  expect(firstGrant - killedAt).toBeLessThan(leaseTtlMs + 1_000);
});
