/**
 * The channel gate bounded by agent capacity, on a real database (PGlite): the grants follow the
 * live capacity the agent's workers report, across trunks naming the agent; no report (or only
 * expired ones) means no bound; a trunk naming no agent is never bounded.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_REPORT_TTL_MS, agentCapacity, ChannelBroker, liveLeaseCount, removeAgentWorker, reportAgentWorker, takeExtraLeg, workerCapacity } from '../../src/pacing';
import { createStore, type SqlStore } from '../../src/store';

const AGENT = 'appointment-confirmer';
let store: SqlStore;
let brokers: ChannelBroker[] = [];
const far = () => new Date(Date.now() + 60_000).toISOString();
const soon = (ms: number) => new Date(Date.now() + ms).toISOString();

beforeEach(async () => {
  store = await createStore({});
});
afterEach(async () => {
  for (const b of brokers) b.close();
  brokers = [];
  await store.close();
});

async function broker(trunk: string, channels: number, agentName: string | null = AGENT): Promise<ChannelBroker> {
  const b = await ChannelBroker.start(store.sql, trunk, { limits: { channels, callsPerSecond: 50 }, agentName, tickMs: 50 });
  brokers.push(b);
  return b;
}

/** Asks for `n` channels at once (each gives up after `ms`); resolves how many were granted. */
async function ask(b: ChannelBroker, prefix: string, n: number, ms = 600): Promise<number> {
  const grants = await Promise.all(
    Array.from({ length: n }, (_, i) => b.acquire({ workflowId: `confirm:p:${prefix}${i}`, attempt: 1, practiceId: 'p', deadline: far(), giveUpAt: soon(ms) })),
  );
  return grants.filter((g) => g.granted).length;
}

const report = (workerId: string, maxCalls: number, activeCalls: number, readyProcesses: number, ttlMs?: number) =>
  reportAgentWorker(store.sql, { workerId, agentName: AGENT, maxCalls, activeCalls, readyProcesses }, ttlMs);

describe('agent capacity bounds the channels', () => {
  it('capacity = min(max calls, in progress + warm); summed over live workers', async () => {
    expect(workerCapacity({ maxCalls: 2, activeCalls: 1, readyProcesses: 3 })).toBe(2);
    expect(workerCapacity({ maxCalls: 5, activeCalls: 1, readyProcesses: 1 })).toBe(2);
    await report('w1', 2, 0, 2);
    await report('w2', 4, 1, 0);
    await report('gone', 9, 0, 9, -1); // already expired
    expect(await agentCapacity(store.sql, AGENT)).toMatchObject({ workers: 2, capacity: 3, activeCalls: 1, readyProcesses: 2 });
  });

  it('no worker reporting: no bound (the trunk alone); reports bound the grants to the agents\' capacity', async () => {
    const b = await broker('ST_a', 5);
    expect(await ask(b, 'free', 5)).toBe(5);
    for (let i = 0; i < 5; i += 1) await b.release(`confirm:p:free${i}#a1`);
    await report('w1', 2, 0, 2);
    expect(await ask(b, 'bound', 5)).toBe(2);
    expect(await liveLeaseCount(store.sql, 'ST_a')).toBe(2);
    expect(b.lastTick?.agent).toMatchObject({ name: AGENT, capacity: 2, inUse: 2 });
    // More warm processes: more channels, up to the trunk's.
    await report('w2', 10, 0, 10);
    expect(await ask(b, 'more', 5)).toBe(3);
    expect(await liveLeaseCount(store.sql, 'ST_a')).toBe(5);
  });

  it("an extra leg (the warm transfer's call to the front desk) gets a free channel while the agents hold new calls back, and takes no agent's room", async () => {
    const b = await broker('ST_a', 4);
    await report('w1', 2, 0, 2);
    expect(await ask(b, 'call', 3)).toBe(2); // agent-bound: 2 of the 4 channels
    // The call's own agent places the leg: a channel of the trunk, no warm process.
    const leg = await takeExtraLeg(b, { workflowId: 'confirm:p:call0', attempt: 1, waitMs: 2_000 });
    expect(leg).toBeDefined();
    expect(await liveLeaseCount(store.sql, 'ST_a')).toBe(3);
    expect(b.lastTick?.agent).toMatchObject({ capacity: 2, inUse: 2 });
    // Still agent-bound for calls; a freed call's room goes to a call, not lost to the leg.
    expect(await ask(b, 'more', 1, 400)).toBe(0);
    await b.release('confirm:p:call0#a1');
    expect(await ask(b, 'next', 1)).toBe(1);
    await leg!.release();
    expect(await liveLeaseCount(store.sql, 'ST_a')).toBe(2);
  });

  it('a call still in progress whose lease is released (its job finishing) lends no room: only warm processes do', async () => {
    const b = await broker('ST_a', 5);
    // One call in progress, no warm process, and no lease (the attempt ended before the job did).
    await report('w1', 2, 1, 0);
    expect(await ask(b, 'finishing', 1, 400)).toBe(0);
    // A worker at its maximum (1 call, its job still leaving the room) lends nothing, however many
    // processes are warm: it refuses jobs, so a call let ring would have no agent (seen in CI).
    await report('w1', 1, 1, 1);
    expect(await ask(b, 'full', 1, 400)).toBe(0);
    // A warm process it may give a call: a call.
    await report('w1', 2, 1, 1);
    expect(await ask(b, 'warm', 1, 400)).toBe(1);
  });

  it('is shared by every trunk naming the agent; a trunk naming none is not bounded', async () => {
    await report('w1', 3, 0, 3);
    const a = await broker('ST_a', 5);
    const b = await broker('ST_b', 5);
    const none = await broker('ST_c', 5, null);
    expect(await ask(a, 'a', 2)).toBe(2);
    expect(await ask(b, 'b', 3)).toBe(1);
    expect(await ask(none, 'c', 4)).toBe(4);
  });

  it('a worker that stops (removed) or dies (expires) stops counting', async () => {
    const b = await broker('ST_a', 5);
    await report('w1', 1, 0, 1);
    await report('w2', 1, 0, 1, 300);
    await new Promise((r) => setTimeout(r, 400));
    expect(await ask(b, 'x', 3)).toBe(1);
    await removeAgentWorker(store.sql, 'w1');
    // Nobody reports any more: no bound.
    expect(await ask(b, 'y', 3)).toBe(3);
    expect(AGENT_REPORT_TTL_MS).toBeLessThanOrEqual(10_000);
  });
});
