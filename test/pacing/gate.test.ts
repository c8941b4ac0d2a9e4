/**
 * The channel gate on a real database (PGlite): grant order (soonest deadline within a practice,
 * fairness between practices), campaign limits and states, limit changes at the next tick, grant
 * latency after another process's release, lease expiry, and calls-per-second slots.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CampaignState, ChannelRefusal, type ChannelGrant } from '../../src/contracts';
import {
  CALL_SLOT_LATENESS_MS,
  campaignKey,
  ChannelBroker,
  grantTick,
  channelHolder,
  liveLeaseCount,
  pickGrants,
  setTrunkLimits,
  slotIntervalMs,
  takeCallSlot,
  takeExtraLeg,
  type BrokerOptions,
  type Candidate,
} from '../../src/pacing';
import { createStore, type SqlStore } from '../../src/store';

const TRUNK = 'ST_test';
let store: SqlStore;
let brokers: ChannelBroker[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const far = () => new Date(Date.now() + 60_000).toISOString();
const deadline = (minutes: number) => new Date(Date.UTC(2026, 11, 1, 12, minutes)).toISOString();

beforeEach(async () => {
  store = await createStore({});
});
afterEach(async () => {
  for (const b of brokers) b.close();
  brokers = [];
  await store.close();
});

async function broker(channels: number, options: BrokerOptions = {}, callsPerSecond = 5): Promise<ChannelBroker> {
  const b = await ChannelBroker.start(store.sql, TRUNK, { limits: { channels, callsPerSecond }, ...options });
  brokers.push(b);
  return b;
}

async function campaign(practiceId: string, campaignId: string, channels: number, state = CampaignState.RUNNING, cps = 1): Promise<void> {
  await store.sql.query(
    `INSERT INTO campaigns (practice_id, campaign_id, workflow_id, practice_name, practice_callback_number, state, max_channels, max_calls_per_second)
     VALUES ($1, $2, $3, 'Practice', '+13125550100', $4, $5, $6)`,
    [practiceId, campaignId, `campaign:${practiceId}:${campaignId}`, state, channels, cps],
  );
}
const setCampaignState = (practiceId: string, campaignId: string, state: CampaignState) =>
  store.sql.query(`UPDATE campaigns SET state = $3 WHERE practice_id = $1 AND campaign_id = $2`, [practiceId, campaignId, state]);

/** Leases by practice. */
async function leasesByPractice(): Promise<Record<string, number>> {
  const { rows } = await store.sql.query<{ practice_id: string; n: number }>(
    `SELECT practice_id, count(*) AS n FROM channel_leases WHERE expires_at > now() GROUP BY practice_id`,
  );
  return Object.fromEntries(rows.map((r) => [r.practice_id, Number(r.n)]));
}

/** Fills the trunk with `n` leases of practice `fill`, held until released. */
async function fill(b: ChannelBroker, n: number): Promise<string[]> {
  const holders: string[] = [];
  for (let i = 0; i < n; i += 1) {
    expect(await b.acquire({ workflowId: `confirm:fill:F${i}`, attempt: 1, practiceId: 'fill', deadline: deadline(0), giveUpAt: far() })).toMatchObject({ granted: true });
    holders.push(channelHolder(`confirm:fill:F${i}`, 1));
  }
  return holders;
}

describe('grant order', () => {
  it('within a practice the soonest deadline goes first', async () => {
    const b = await broker(1);
    const [filler] = await fill(b, 1);
    const order: string[] = [];
    const waits = [30, 10, 20].map((m) =>
      b.acquire({ workflowId: `confirm:p1:A${m}`, attempt: 1, practiceId: 'p1', deadline: deadline(m), giveUpAt: far() }).then((g) => {
        order.push(`A${m}`);
        return g;
      }),
    );
    await sleep(400); // all three are queued
    await b.release(filler!);
    for (let i = 0; i < 3; i += 1) {
      while (order.length <= i) await sleep(10);
      await b.release(channelHolder(`confirm:p1:${order[i]}`, 1));
    }
    await Promise.all(waits);
    expect(order).toEqual(['A10', 'A20', 'A30']);
  });

  it('is fair between practices: 200 waiters of A and 20 of B share the trunk about half and half', async () => {
    const b = await broker(10);
    const fillers = await fill(b, 10);
    const grants: ChannelGrant[] = [];
    const grantedTo: string[] = [];
    // A's deadlines are all sooner than B's: deadline order alone would starve B.
    const all = [
      ...Array.from({ length: 200 }, (_, i) => ({ practiceId: 'A', id: `A${i}`, m: i % 50 })),
      ...Array.from({ length: 20 }, (_, i) => ({ practiceId: 'B', id: `B${i}`, m: 100 + i })),
    ].map((w) =>
      b.acquire({ workflowId: `confirm:${w.practiceId}:${w.id}`, attempt: 1, practiceId: w.practiceId, deadline: deadline(w.m), giveUpAt: far() }).then(async (g) => {
        grants.push(g);
        grantedTo.push(w.practiceId);
        // A short call, then the channel is free again.
        await sleep(20 + Math.random() * 60);
        await b.release(channelHolder(`confirm:${w.practiceId}:${w.id}`, 1));
      }),
    );
    await sleep(500);
    for (const f of fillers) await b.release(f);
    // The first grants after the trunk frees up: five each.
    while (grantedTo.length < 10) await sleep(5);
    expect(grantedTo.slice(0, 10).filter((p) => p === 'B')).toHaveLength(5);
    // While both wait, B keeps about half the grants.
    while (grantedTo.filter((p) => p === 'B').length < 20) await sleep(10);
    const untilBDone = grantedTo.slice(0, grantedTo.lastIndexOf('B') + 1);
    const shareB = untilBDone.filter((p) => p === 'B').length / untilBDone.length;
    expect(shareB).toBeGreaterThan(0.4);
    await Promise.all(all);
    expect(grants.every((g) => g.granted)).toBe(true);
  });

  it('the database applies the pure rule: the same grants, in the same order, as pickGrants on random queues', async () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const pick = <T,>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    await broker(1);
    for (let round = 0; round < 25; round += 1) {
      await store.sql.query('DELETE FROM channel_leases');
      await store.sql.query('DELETE FROM channel_waiters');
      await store.sql.query('DELETE FROM campaigns');
      const channels = 3 + Math.floor(rand() * 8);
      await setTrunkLimits(store.sql, TRUNK, { channels, callsPerSecond: 5 });
      const campaignLimits = new Map<string, number>();
      for (const [p, c] of [['p1', 'c1'], ['p1', 'c2'], ['p2', 'c1']] as const) {
        const max = 1 + Math.floor(rand() * 4);
        campaignLimits.set(campaignKey(p, c), max);
        await campaign(p, c, max);
      }
      const owners = [['p1', 'c1'], ['p1', 'c2'], ['p1', null], ['p2', 'c1'], ['p2', null], ['p3', null]] as const;
      const leases = Math.floor(rand() * channels);
      const used = new Map<string, number>();
      const campaignUsed = new Map<string, number>();
      for (let i = 0; i < leases; i += 1) {
        const [p, c] = pick(owners);
        await store.sql.query(`INSERT INTO channel_leases (holder, trunk_id, practice_id, campaign_id, deadline, granted_at, expires_at) VALUES ($1, $2, $3, $4, now(), now(), now() + interval '1 minute')`, [`confirm:${p}:L${round}-${i}#a1`, TRUNK, p, c]);
        used.set(p, (used.get(p) ?? 0) + 1);
        if (c) campaignUsed.set(campaignKey(p, c), (campaignUsed.get(campaignKey(p, c)) ?? 0) + 1);
      }
      const candidates: Candidate[] = [];
      for (let i = 0; i < 5 + Math.floor(rand() * 30); i += 1) {
        const [p, c] = pick(owners);
        // Few distinct deadlines and enqueue times: ties are decided by the later keys, down to the holder.
        const deadlineAt = Date.UTC(2026, 11, 1, 12, Math.floor(rand() * 4));
        const enqueuedAt = Date.UTC(2026, 10, 30, 12, 0, Math.floor(rand() * 3));
        const holder = `confirm:${p}:W${round}-${String(Math.floor(rand() * 1000)).padStart(3, '0')}-${i}#a1`;
        candidates.push({ holder, practiceId: p, campaignId: c, deadline: deadlineAt, enqueuedAt });
        await store.sql.query(
          `INSERT INTO channel_waiters (holder, trunk_id, practice_id, campaign_id, deadline, enqueued_at, alive_until) VALUES ($1, $2, $3, $4, $5, $6, now() + interval '1 minute')`,
          [holder, TRUNK, p, c, new Date(deadlineAt), new Date(enqueuedAt)],
        );
      }
      const campaignRoom = new Map([...campaignLimits].map(([k, max]) => [k, max - (campaignUsed.get(k) ?? 0)]));
      const expected = pickGrants(candidates, { free: channels - leases, practiceLeases: used, campaignRoom }).map((c) => c.holder);
      const result = await grantTick(store.sql, { trunkId: TRUNK, upsert: [], watch: [], sweep: false, leaseTtlMs: 60_000, waiterTtlMs: 10_000, keepExpiredMs: 60_000 });
      expect(result.granted, `round ${round}`).toEqual(expected);
      expect(result.inUse).toBe(leases + expected.length);
    }
  });

  it('the pure rule: fewest in use first, ties by soonest deadline; campaign room respected', () => {
    const c = (holder: string, practiceId: string, deadlineMs: number, campaignId: string | null = null) => ({ holder, practiceId, campaignId, deadline: deadlineMs, enqueuedAt: 0 });
    const picked = pickGrants([c('a1', 'A', 1), c('a2', 'A', 2), c('b1', 'B', 5), c('b2', 'B', 6, 'k'), c('b3', 'B', 7, 'k')], {
      free: 4,
      practiceLeases: new Map([['A', 3]]),
      campaignRoom: new Map([['B\u0000k', 1]]),
    });
    expect(picked.map((p) => p.holder)).toEqual(['b1', 'b2', 'a1', 'a2']);
  });
});

describe('campaigns', () => {
  it('a campaign never gets more than its channels; a paused one gets none until resumed; a cancelled one is refused', async () => {
    const b = await broker(10);
    await campaign('p1', 'c1', 2);
    await campaign('p1', 'c2', 5, CampaignState.PAUSED);
    await campaign('p1', 'c3', 5);
    const ask = (campaignId: string, i: number) =>
      b.acquire({ workflowId: `confirm:p1:${campaignId}-${i}`, attempt: 1, practiceId: 'p1', campaignId, deadline: deadline(i), giveUpAt: far() });
    const c1 = Array.from({ length: 4 }, (_, i) => ask('c1', i));
    const c2 = Array.from({ length: 3 }, (_, i) => ask('c2', i));
    await sleep(600);
    expect(await leasesByPractice()).toEqual({ p1: 2 });
    await setCampaignState('p1', 'c2', CampaignState.RUNNING);
    await Promise.all(c2);
    expect(await liveLeaseCount(store.sql, TRUNK)).toBe(5);
    // c1 is still held at 2.
    await sleep(400);
    expect(await liveLeaseCount(store.sql, TRUNK)).toBe(5);
    await setCampaignState('p1', 'c3', CampaignState.CANCELLED);
    expect(await ask('c3', 0)).toMatchObject({ granted: false, refusal: ChannelRefusal.CAMPAIGN_CANCELLED });
    await b.release(channelHolder('confirm:p1:c1-0', 1));
    await b.release(channelHolder('confirm:p1:c1-1', 1));
    expect((await Promise.all(c1)).every((g) => g.granted)).toBe(true);
  });

  it('a waiter whose campaign is cancelled while it waits is refused', async () => {
    const b = await broker(1);
    await fill(b, 1);
    await campaign('p1', 'c1', 3);
    const waiting = b.acquire({ workflowId: 'confirm:p1:X', attempt: 1, practiceId: 'p1', campaignId: 'c1', deadline: deadline(1), giveUpAt: far() });
    await sleep(300);
    await setCampaignState('p1', 'c1', CampaignState.CANCELLED);
    expect(await waiting).toMatchObject({ granted: false, refusal: ChannelRefusal.CAMPAIGN_CANCELLED });
    const { rows } = await store.sql.query('SELECT * FROM channel_waiters');
    expect(rows).toEqual([]);
  });
});

describe('limits, release, expiry', () => {
  it('a limit change takes effect at the next tick', async () => {
    const b = await broker(2);
    const waits = Array.from({ length: 5 }, (_, i) =>
      b.acquire({ workflowId: `confirm:p1:A${i}`, attempt: 1, practiceId: 'p1', deadline: deadline(i), giveUpAt: far() }),
    );
    await sleep(500);
    expect(await liveLeaseCount(store.sql, TRUNK)).toBe(2);
    const t0 = Date.now();
    await setTrunkLimits(store.sql, TRUNK, { channels: 5 });
    await Promise.all(waits);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(await liveLeaseCount(store.sql, TRUNK)).toBe(5);
  });

  it('a channel released by another process is granted here within 1 s', async () => {
    const holderProcess = await broker(1);
    const waiterProcess = await broker(1);
    const [held] = await fill(holderProcess, 1);
    const waiting = waiterProcess.acquire({ workflowId: 'confirm:p1:W', attempt: 1, practiceId: 'p1', deadline: deadline(1), giveUpAt: far() });
    await sleep(500);
    const t0 = Date.now();
    await holderProcess.release(held!);
    expect(await waiting).toMatchObject({ granted: true });
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('a waiter that stays queued at giveUpAt keeps its place: a channel freed meanwhile is found by its next wait; abandon clears it', async () => {
    const b = await broker(1);
    const [filler] = await fill(b, 1);
    const holder = channelHolder('confirm:p1:Q', 1);
    const request = { workflowId: 'confirm:p1:Q', attempt: 1, practiceId: 'p1', deadline: deadline(1) };
    const tried = await b.acquire({ ...request, giveUpAt: new Date(Date.now() + 300).toISOString(), staysQueued: true });
    expect(tried).toMatchObject({ granted: false, refusal: ChannelRefusal.GAVE_UP });
    expect((await store.sql.query<{ holder: string }>('SELECT holder FROM channel_waiters')).rows.map((r) => r.holder)).toEqual([holder]);
    // The channel frees before the next wait starts (the workflow's hand-over): the queued row gets it.
    await b.release(filler!);
    const other = await broker(1);
    // Another process's tick grants the free channel; the queued row's deadline is the soonest.
    expect(
      await other.acquire({ workflowId: 'confirm:p1:T', attempt: 1, practiceId: 'p1', deadline: deadline(5), giveUpAt: new Date(Date.now() + 300).toISOString() }),
    ).toMatchObject({ granted: false });
    expect(await b.lease(holder)).toMatchObject({ live: true });
    expect(await b.acquire({ ...request, giveUpAt: far() })).toMatchObject({ granted: true, waitedMs: 0 });
    // A stop before the call: the lease and any row go.
    await b.abandon(holder);
    expect(await b.lease(holder)).toBeUndefined();
    expect((await store.sql.query('SELECT * FROM channel_waiters')).rows).toEqual([]);
  });

  it('gives up at giveUpAt: no waiter row and no lease left', async () => {
    const b = await broker(1);
    await fill(b, 1);
    const t0 = Date.now();
    const grant = await b.acquire({ workflowId: 'confirm:p1:G', attempt: 1, practiceId: 'p1', deadline: deadline(1), giveUpAt: new Date(Date.now() + 400).toISOString() });
    expect(grant).toMatchObject({ granted: false, refusal: ChannelRefusal.GAVE_UP });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    expect((await store.sql.query('SELECT * FROM channel_waiters')).rows).toEqual([]);
    expect(await b.lease(channelHolder('confirm:p1:G', 1))).toBeUndefined();
  });

  it('is idempotent: a retried acquire finds its lease', async () => {
    const b = await broker(1);
    const input = { workflowId: 'confirm:p1:I', attempt: 1, practiceId: 'p1', deadline: deadline(1), giveUpAt: far() };
    expect(await b.acquire(input)).toMatchObject({ granted: true });
    expect(await b.acquire(input)).toMatchObject({ granted: true, waitedMs: 0 });
    expect(await liveLeaseCount(store.sql, TRUNK)).toBe(1);
  });

  it("an extra leg (the warm transfer's call to the front desk) takes a channel and a call slot, and gives up when no channel is free", async () => {
    const b = await broker(2, {}, 1);
    const [held] = await fill(b, 1);
    // The last free channel: taken, with a slot (the trunk's next slot moved a whole interval on).
    const before = Date.now();
    const leg = await takeExtraLeg(b, { workflowId: 'confirm:p1:T', attempt: 2, waitMs: 2_000 });
    expect(leg?.holder).toBe(channelHolder('confirm:p1:T/staff', 2));
    expect(await b.lease(leg!.holder)).toMatchObject({ practiceId: 'p1', live: true });
    const next = (await store.sql.query<{ next: Date }>('SELECT next_call_at AS next FROM trunk_limits WHERE trunk_id = $1', [TRUNK])).rows[0]!.next;
    expect(new Date(next).getTime()).toBeGreaterThanOrEqual(before + slotIntervalMs(1) - 50);
    // The trunk is full now: a second leg waits, gives up at waitMs, and leaves no row behind.
    const t0 = Date.now();
    expect(await takeExtraLeg(b, { workflowId: 'confirm:p1:U', attempt: 1, waitMs: 400 })).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    expect((await store.sql.query('SELECT * FROM channel_waiters')).rows).toEqual([]);
    // Released: the channel goes back (idempotent), and a confirmation's channel is untouched.
    await leg!.release();
    await leg!.release();
    expect(await b.lease(leg!.holder)).toBeUndefined();
    expect(await b.lease(held!)).toMatchObject({ live: true });
    expect(await liveLeaseCount(store.sql, TRUNK)).toBe(1);
  });

  it('a lease nobody renews expires within its TTL and its channel goes to a waiter; a held one is renewed', async () => {
    const b = await broker(2, { leaseTtlMs: 1_000, renewEveryMs: 200 });
    const [dead, alive] = await fill(b, 2);
    const stopHolding = b.hold(alive!);
    const waiting = b.acquire({ workflowId: 'confirm:p1:E', attempt: 1, practiceId: 'p1', deadline: deadline(1), giveUpAt: far() });
    const t0 = Date.now();
    expect(await waiting).toMatchObject({ granted: true });
    expect(Date.now() - t0).toBeLessThan(1_600);
    expect(await b.lease(dead!)).toMatchObject({ live: false });
    expect(await b.lease(alive!)).toMatchObject({ live: true });
    stopHolding();
  });
});

describe('calls per second', () => {
  it('no 1-s window holds more than R slots of the trunk; a campaign is paced at its own rate without holding others back', async () => {
    const R = 5;
    await broker(10, {}, R);
    await campaign('p1', 'slow', 5, CampaignState.RUNNING, 1);
    const trunkSlots = await Promise.all(Array.from({ length: 16 }, () => takeCallSlot(store.sql, TRUNK)));
    const at = trunkSlots.map((s) => s.at.getTime()).sort((a, b) => a - b);
    for (let i = 0; i + R < at.length; i += 1) expect(at[i + R]! - at[i]!).toBeGreaterThanOrEqual(1_000);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(slotIntervalMs(R) - 1);

    const slow = { practiceId: 'p1', campaignId: 'slow' };
    const t0 = Date.now();
    const [campaignSlots, others] = await Promise.all([
      Promise.all(Array.from({ length: 3 }, () => takeCallSlot(store.sql, TRUNK, slow))),
      Promise.all(Array.from({ length: 3 }, () => takeCallSlot(store.sql, TRUNK))),
    ]);
    const c = campaignSlots.map((s) => s.at.getTime()).sort((a, b) => a - b);
    expect(c[1]! - c[0]!).toBeGreaterThanOrEqual(1_050 - 1);
    expect(c[2]! - c[1]!).toBeGreaterThanOrEqual(1_050 - 1);
    // The trunk's other calls were not queued behind the campaign's waits.
    expect(Math.max(...others.map((s) => s.at.getTime())) - t0).toBeLessThan(c[2]! - t0);
  });

  it('a block of slots moves the next slot by the whole block and leaves its spare time; a clock scale spaces slots closer', async () => {
    const R = 5;
    await broker(10, {}, R);
    const block = await takeCallSlot(store.sql, TRUNK, undefined, undefined, { slots: 3 });
    expect(block.spareMs).toBeCloseTo(2 * slotIntervalMs(R), 6);
    const next = await takeCallSlot(store.sql, TRUNK);
    expect(next.spareMs).toBe(0);
    expect(next.at.getTime() - block.at.getTime()).toBeGreaterThanOrEqual(Math.floor(3 * slotIntervalMs(R)));

    // The forecast's clock: the same limit on a clock 100 times faster.
    const fast = await Promise.all(Array.from({ length: 5 }, () => takeCallSlot(store.sql, TRUNK, undefined, undefined, { clockScale: 100 })));
    const at = fast.map((s) => s.at.getTime()).sort((a, b) => a - b);
    expect(at[4]! - at[0]!).toBeLessThan(4 * slotIntervalMs(R));
    for (let i = 1; i < at.length; i += 1) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(Math.floor(slotIntervalMs(R * 100)));
  });

  it('a dial that wakes late for its slot takes a larger block instead of crowding the next slots', async () => {
    const R = 5;
    const b = await broker(10, {}, R);
    await takeCallSlot(store.sql, TRUNK); // the next slot is one interval (215 ms) away
    const waiting = b.waitForCallSlot('confirm:p1:L#a1');
    await sleep(60); // the slot is taken; the dial sleeps until it
    const until = Date.now() + 450;
    while (Date.now() < until) {
      // A stalled event loop (a GC pause, a loaded machine): the dial wakes ~300 ms after its slot.
    }
    const slot = await waiting;
    // Late by more than the bound: a block of 2 was taken, and the INVITE may use its spare interval.
    expect(slot.spareMs).toBeCloseTo(slotIntervalMs(R), 6);
    const next = await takeCallSlot(store.sql, TRUNK);
    expect(next.at.getTime() - slot.at.getTime()).toBeGreaterThanOrEqual(Math.floor(2 * slotIntervalMs(R)));
    expect(Date.now() - slot.localAt).toBeLessThanOrEqual(CALL_SLOT_LATENESS_MS + slot.spareMs + 50);
  });

  it('waitForCallSlot returns at its slot; a rate change applies to the next slot', async () => {
    const b = await broker(10, {}, 2);
    const times: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      await b.waitForCallSlot('confirm:p1:S#a1');
      times.push(Date.now());
    }
    expect(times[2]! - times[0]!).toBeGreaterThanOrEqual(2 * slotIntervalMs(2) - 20);
    await setTrunkLimits(store.sql, TRUNK, { callsPerSecond: 20 });
    await b.waitForCallSlot('confirm:p1:S#a1'); // the slot taken at rate 2 spaces this one
    const t = Date.now();
    await b.waitForCallSlot('confirm:p1:S#a1');
    await b.waitForCallSlot('confirm:p1:S#a1');
    expect(Date.now() - t).toBeLessThan(300);
  });
});
