/**
 * Pacing benchmark (`npm run bench:pacing`): worker processes on one PostgreSQL share a trunk; each
 * runs waiters that wait for a channel, take a call slot, hold the call a random 0.5–3 s and release.
 * Prints the maximum concurrent calls (from the processes' calls and sampled from the database) and
 * the most call slots / INVITE sends in any 1-s window against the limits, and the channel
 * utilisation while waiters wait (goal ≥ 95 %).
 *
 * Options (env): PROCESSES (2), WAITERS per process (100), CHANNELS (10), CPS (10), HOLD_MIN_MS (500), HOLD_MAX_MS (3000).
 */
import { startPostgres } from '../src/dev/postgres';
import { liveLeaseCount, setTrunkLimits } from '../src/pacing';
import { createStore } from '../src/store';
import { LoadProcess, maxConcurrent, maxInOneSecond, slotTimes } from '../test/helpers/pacing-load';

const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const processes = num('PROCESSES', 2);
const waiters = num('WAITERS', 100);
const channels = num('CHANNELS', 10);
const cps = num('CPS', 10);
const holdMinMs = num('HOLD_MIN_MS', 500);
const holdMaxMs = num('HOLD_MAX_MS', 3_000);
const trunkId = 'ST_bench';

const postgres = await startPostgres();
const store = await createStore({ databaseUrl: postgres.url });
try {
  await setTrunkLimits(store.sql, trunkId, { channels, callsPerSecond: cps });
  let sampledMax = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      sampledMax = Math.max(sampledMax, await liveLeaseCount(store.sql, trunkId));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const started = Date.now();
  const procs = Array.from(
    { length: processes },
    (_, i) => new LoadProcess({ databaseUrl: postgres.url, trunkId, name: `w${i}`, practiceId: `p${i % 2}`, waiters, holdMinMs, holdMaxMs }),
  );
  await Promise.all(procs.map((p) => p.done));
  sampling = false;
  await sampler;
  const wall = Date.now() - started;
  for (const p of procs) if (p.count('end') !== waiters) throw new Error(`a load process ended early: ${p.stderr}`);

  // Utilisation while waiters wait: from the first grant to the last grant (someone waits all along),
  // the time-integral of calls up (grant → end) over channels × that span.
  const intervals = procs.flatMap((p) => {
    const grants = new Map<string, number>();
    const out: [number, number][] = [];
    for (const e of p.events) {
      if ('grant' in e) grants.set(e.grant, e.t);
      if ('end' in e) out.push([grants.get(e.end)!, e.t]);
    }
    return out;
  });
  const firstGrant = Math.min(...intervals.map((i) => i[0]));
  const lastGrant = Math.max(...intervals.map((i) => i[0]));
  const held = intervals.reduce((sum, [a, b]) => sum + Math.max(0, Math.min(b, lastGrant) - Math.max(a, firstGrant)), 0);
  const utilisation = held / (channels * (lastGrant - firstGrant));
  const ticks = procs.reduce((sum, p) => sum + ((p.events.find((e) => 'done' in e) as { ticks?: number } | undefined)?.ticks ?? 0), 0);

  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  console.log(`pacing: ${processes} processes × ${waiters} waiters, trunk ${channels} channels / ${cps} calls per second, calls held ${holdMinMs}–${holdMaxMs} ms`);
  console.log(`  max concurrent calls (processes' calls)   ${maxConcurrent(procs)}  (limit ${channels})`);
  console.log(`  max live leases (database, sampled 20 ms) ${sampledMax}  (limit ${channels})`);
  console.log(`  max call slots in any 1-s window          ${maxInOneSecond(slotTimes(procs, 'at'))}  (limit ${cps})`);
  console.log(`  max INVITE sends in any 1-s window        ${maxInOneSecond(slotTimes(procs, 'sent'))}  (limit ${cps})`);
  console.log(`  channel utilisation while waiters wait    ${pct(utilisation)}  (goal ≥ 95 %)`);
  console.log(`  grant ticks (all processes)               ${ticks}  (${(ticks / (wall / 1000)).toFixed(1)} per s)`);
  console.log(`  wall time                                 ${(wall / 1000).toFixed(1)} s`);
} finally {
  await store.close();
  await postgres.stop();
}
