/**
 * A worker process's share of a pacing load, for the multi-process tests and `scripts/bench-pacing.ts`:
 * opens PostgreSQL, starts a channel broker on the trunk, and runs `waiters` attempts at once — each
 * waits for a channel, takes a call slot, "calls" for a random time, releases. Prints one JSON line
 * per event on stdout: {ready}, {grant, holder, t}, {slot, at, sent}, {end, holder, t}, {done}. With
 * `holdForever`, granted calls never end (the test SIGKILLs the process). No health data: ids only.
 */
import { ChannelBroker, channelHolder } from '../pacing';
import { openPostgres } from '../store/sql';

interface LoadConfig {
  databaseUrl: string;
  trunkId: string;
  name: string;
  practiceId: string;
  waiters: number;
  holdMinMs: number;
  holdMaxMs: number;
  tickMs?: number;
  leaseTtlMs?: number;
  holdForever?: boolean;
  /** Deadlines spread over this many minutes (soonest first in the queue). */
  deadlineSpreadMinutes?: number;
}

const config = JSON.parse(process.argv[2]!) as LoadConfig;
const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const sql = await openPostgres(config.databaseUrl);
const broker = await ChannelBroker.start(sql, config.trunkId, {
  tickMs: config.tickMs,
  leaseTtlMs: config.leaseTtlMs,
  renewEveryMs: config.leaseTtlMs ? config.leaseTtlMs / 6 : undefined,
});
say({ ready: process.pid });
const base = Date.now();
await Promise.all(
  Array.from({ length: config.waiters }, async (_, i) => {
    const workflowId = `confirm:${config.practiceId}:${config.name}-${i}`;
    const holder = channelHolder(workflowId, 1);
    const deadline = new Date(base + 3_600_000 + ((i * 60_000 * (config.deadlineSpreadMinutes ?? 60)) / Math.max(1, config.waiters)));
    const grant = await broker.acquire({ workflowId, attempt: 1, practiceId: config.practiceId, deadline, giveUpAt: new Date(Date.now() + 600_000) });
    if (!grant.granted) return say({ refused: holder });
    say({ grant: holder, t: Date.now() });
    const unhold = broker.hold(holder);
    const slot = await broker.waitForCallSlot(holder);
    say({ slot: holder, at: slot.at.getTime(), sent: Date.now() });
    if (config.holdForever) return new Promise(() => {});
    await new Promise((r) => setTimeout(r, config.holdMinMs + Math.random() * (config.holdMaxMs - config.holdMinMs)));
    say({ end: holder, t: Date.now() });
    unhold();
    await broker.release(holder);
  }),
);
say({ done: true, ticks: broker.ticks });
broker.close();
await sql.close();
