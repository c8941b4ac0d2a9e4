/**
 * The per-process channel broker: the attempts of this worker process that wait for a channel of
 * its trunk are registered here, and one loop serves them all — a grant tick every ~200 ms while
 * any wait (and at once when this process releases a lease), which keeps their waiter rows alive,
 * grants free channels to the waiters of every process, and resolves this process's waiters whose
 * lease exists. Calls up in this process are renewed together, one statement per period. The
 * database work grows with ticks, not with waiters × polls.
 */
import type { Logger } from 'pino';
import { ChannelRefusal, type CallLimits, type ChannelGrant } from '../contracts';
import type { Sql } from '../store/sql';
import { safeMessage } from '../errors';
import { CALL_SLOT_LATENESS_MS, takeCallSlot, type CallSlot } from './call-slots';

/** The largest block of call slots a late process takes (see waitForCallSlot). */
const MAX_SLOT_BLOCK = 1024;
import { grantTick, type TickResult, type TickTimes, type WaiterRow } from './grant-tick';
import { channelHolder, practiceOfWorkflow } from './holder';
import { findLease, leaveQueue, releaseLease, renewIfLive, renewLeases, type Lease } from './leases';
import { DEFAULT_TRUNK_LIMITS, ensureTrunkLimits } from './limits';
import { setTrunkAgent } from './agent-capacity';

/** What an attempt asks the gate for. */
export interface ChannelRequest {
  workflowId: string;
  attempt: number;
  practiceId: string;
  campaignId?: string;
  /** Sooner deadlines go first (UTC ISO 8601 or a Date). */
  deadline: string | Date;
  /** Stop waiting then. */
  giveUpAt: string | Date;
  /**
   * At `giveUpAt` the waiter row stays in the queue (until its TTL) instead of leaving it: the
   * caller's next step waits for the same holder at once (planning's short try, then the
   * workflow's `acquireChannel`), so the queue is not left and re-entered — and a channel granted
   * in between is found there. A caller that then stops calls {@link ChannelGate.abandon}.
   */
  staysQueued?: boolean;
}

/** What the activities need of the gate (the broker; tests may stand in). */
export interface ChannelGate {
  readonly trunkId: string;
  /** Waits for a lease; resolves refused at `giveUpAt` or when the campaign is cancelled; rejects when `signal` aborts. */
  acquire(request: ChannelRequest, signal?: AbortSignal): Promise<ChannelGrant>;
  /**
   * Before a dial: the attempt's live lease is renewed; an expired or missing one (the dial started
   * late, or the workflow never asked) is waited for again, up to `waitMs`. Resolves whether the
   * attempt holds a channel.
   */
  ensureLease(workflowId: string, attempt: number, waitMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Keeps renewing the holder's lease while its call is up in this process; call the returned function to stop. */
  hold(holder: string): () => void;
  /** Renews the holder's lease now; false when it has none. */
  renew(holder: string): Promise<boolean>;
  /** Ends the holder's lease (idempotent); waiters here are served at once. */
  release(holder: string): Promise<void>;
  /** The holder stops waiting for good: its waiter row and any lease granted to it go (idempotent). */
  abandon(holder: string): Promise<void>;
  /**
   * Waits for a calls-per-second slot of the trunk (and of the holder's campaign) and returns when
   * the INVITE may be sent: at most {@link CALL_SLOT_LATENESS_MS} after the slot (a later wake takes
   * a larger block of slots: ./call-slots.ts).
   */
  waitForCallSlot(holder: string, signal?: AbortSignal): Promise<CallSlot>;
  /** The holder's lease, if any. */
  lease(holder: string): Promise<Lease | undefined>;
}

export interface BrokerOptions extends Partial<TickTimes> {
  /** Period of the grant tick while this process has waiters, in ms. Default 200. */
  tickMs?: number;
  /** Leases of calls up here are renewed this often, in ms. Default a sixth of the lease TTL. */
  renewEveryMs?: number;
  /**
   * The agent dispatched to the trunk's calls (the worker's AGENT_NAME), written to the trunk's row:
   * grants are then bounded by the capacity the agent's workers report (./agent-capacity.ts). Null:
   * no agent (scripted phones). Undefined: the row's current setting is left alone.
   */
  agentName?: string | null;
  /**
   * The calls-per-second limits hold on a clock this many times faster than the wall clock (the
   * forecast, whose calls are played that much faster than modelled). Default 1.
   */
  clockScale?: number;
  logger?: Logger;
}

/**
 * Lease TTL: a lease nobody renews ends this long after its grant or last renewal. It must outlast
 * the gap a killed worker leaves in the renewals of a call that is still up: the dial's heartbeat
 * timeout (15 s) before Temporal notices, plus the workflow task and the start of `checkCall`,
 * which renews it once it finds the call up — about 20 s; 60 s leaves room for a loaded machine.
 */
export const DEFAULT_LEASE_TTL_MS = 60_000;
const DEFAULTS: Required<Omit<BrokerOptions, 'logger' | 'renewEveryMs' | 'agentName' | 'clockScale'>> = {
  tickMs: 200,
  leaseTtlMs: DEFAULT_LEASE_TTL_MS,
  waiterTtlMs: 10_000,
  keepExpiredMs: 10 * 60_000,
};
/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface LocalWaiter {
  row: WaiterRow;
  startedAt: number;
  settle(grant: ChannelGrant): void;
  done: Promise<ChannelGrant>;
  timer?: NodeJS.Timeout;
}

export class ChannelBroker implements ChannelGate {
  private readonly times: TickTimes;
  private readonly tickMs: number;
  private readonly waiters = new Map<string, LocalWaiter>();
  /** Waiters whose rows the next tick must write. */
  private readonly fresh = new Set<string>();
  private lastRefresh = 0;
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly held = new Map<string, number>();
  /** The campaign of each lease this process's dials hold (null: none), read by ensureLease; dropped when the dial lets go. */
  private readonly campaignOf = new Map<string, { practiceId: string; campaignId: string } | null>();
  private readonly renewTimer: NodeJS.Timeout;
  private closed = false;
  /** Ticks run, for tests and the benchmark. */
  ticks = 0;
  /** The last tick's view of the trunk. */
  lastTick: TickResult | undefined;

  private constructor(
    readonly sql: Sql,
    readonly trunkId: string,
    private readonly options: BrokerOptions,
  ) {
    this.times = {
      leaseTtlMs: options.leaseTtlMs ?? DEFAULTS.leaseTtlMs,
      waiterTtlMs: options.waiterTtlMs ?? DEFAULTS.waiterTtlMs,
      keepExpiredMs: options.keepExpiredMs ?? DEFAULTS.keepExpiredMs,
    };
    this.tickMs = options.tickMs ?? DEFAULTS.tickMs;
    this.renewTimer = setInterval(() => void this.renewHeld(), options.renewEveryMs ?? this.times.leaseTtlMs / 6);
    this.renewTimer.unref();
  }

  /**
   * Starts the broker of `trunkId`: inserts the trunk's limits row with `limits` (the worker's
   * config) when there is none — an existing row wins.
   */
  static async start(sql: Sql, trunkId: string, options: BrokerOptions & { limits?: CallLimits } = {}): Promise<ChannelBroker> {
    await ensureTrunkLimits(sql, trunkId, options.limits ?? DEFAULT_TRUNK_LIMITS);
    if (options.agentName !== undefined) await setTrunkAgent(sql, trunkId, options.agentName);
    return new ChannelBroker(sql, trunkId, options);
  }

  /** Waiters of this process. */
  get waiting(): number {
    return this.waiters.size;
  }

  async acquire(request: ChannelRequest, signal?: AbortSignal): Promise<ChannelGrant> {
    if (this.closed) throw new Error('the channel broker is closed');
    signal?.throwIfAborted();
    const holder = channelHolder(request.workflowId, request.attempt);
    const existing = this.waiters.get(holder);
    if (existing) return existing.done;
    const startedAt = Date.now();
    // Idempotent: a retried activity finds its own lease. Planning's short try skips the look-up (a
    // round trip on every call's path): its attempt is new, and a lease it holds all the same (a
    // retried plan) is reported by the first tick — or, should the try end first, found here by the
    // workflow's acquireChannel, which waits in the same place in the queue.
    if (request.staysQueued !== true) {
      const lease = await findLease(this.sql, holder);
      if (lease?.live) return { granted: true, waitedMs: 0 };
    }
    let settle!: (grant: ChannelGrant) => void;
    const done = new Promise<ChannelGrant>((resolve) => (settle = resolve));
    const waiter: LocalWaiter = {
      row: { holder, practiceId: request.practiceId, campaignId: request.campaignId, deadline: new Date(request.deadline) },
      startedAt,
      settle,
      done,
    };
    this.waiters.set(holder, waiter);
    this.fresh.add(holder);
    const giveUp = () => void this.leave(holder, { granted: false, refusal: ChannelRefusal.GAVE_UP, waitedMs: Date.now() - startedAt }, request.staysQueued === true);
    waiter.timer = setTimeout(giveUp, Math.min(MAX_TIMER_MS, Math.max(0, new Date(request.giveUpAt).getTime() - Date.now())));
    waiter.timer.unref();
    const onAbort = () => void this.leave(holder, undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    // The first tick comes at once, unless one is running or due within a period anyway.
    if (!this.running && this.timer === undefined) this.kick();
    try {
      const grant = await done;
      if (signal?.aborted) throw signal.reason;
      return grant;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A waiter gives up (or is aborted): it stops being watched, and its rows go (unless it `staysQueued`). */
  private async leave(holder: string, grant: ChannelGrant | undefined, staysQueued = false): Promise<void> {
    const waiter = this.waiters.get(holder);
    if (!waiter) return;
    this.forget(holder);
    if (staysQueued) {
      waiter.settle(grant ?? { granted: false, refusal: ChannelRefusal.GAVE_UP, waitedMs: Date.now() - waiter.startedAt });
      return;
    }
    try {
      await leaveQueue(this.sql, this.trunkId, holder);
    } catch (err) {
      // The row expires on its own (alive_until); a lease granted meanwhile expires with its TTL.
      this.options.logger?.warn({ holder, error: safeMessage(err) }, 'leaving the channel queue failed');
    }
    waiter.settle(grant ?? { granted: false, refusal: ChannelRefusal.GAVE_UP, waitedMs: Date.now() - waiter.startedAt });
  }

  private forget(holder: string): void {
    const waiter = this.waiters.get(holder);
    if (waiter?.timer) clearTimeout(waiter.timer);
    this.waiters.delete(holder);
    this.fresh.delete(holder);
  }

  /** Runs a tick now (or right after the running one). */
  private kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.running = true;
    void this.runTick().finally(() => {
      this.running = false;
      if (this.closed || this.waiters.size === 0) {
        this.again = false;
        return;
      }
      if (this.again) {
        this.again = false;
        this.kick();
        return;
      }
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, this.tickMs);
      this.timer.unref();
    });
  }

  private async runTick(): Promise<void> {
    const now = Date.now();
    const refresh = now - this.lastRefresh >= this.times.waiterTtlMs / 3;
    const upsertHolders = refresh ? [...this.waiters.keys()] : [...this.fresh];
    const upsert = upsertHolders.flatMap((h) => (this.waiters.get(h) ? [this.waiters.get(h)!.row] : []));
    this.fresh.clear();
    let result: TickResult;
    try {
      // Dead rows are swept when this process's waiter rows are refreshed (every third of their TTL).
      result = await grantTick(this.sql, { ...this.times, trunkId: this.trunkId, upsert, watch: [...this.waiters.keys()], sweep: refresh });
    } catch (err) {
      for (const h of upsertHolders) if (this.waiters.has(h)) this.fresh.add(h);
      this.options.logger?.warn({ trunkId: this.trunkId, error: safeMessage(err) }, 'channel grant tick failed; trying again');
      return;
    }
    if (refresh) this.lastRefresh = now;
    this.ticks += 1;
    this.lastTick = result;
    this.noteAgentBound(result);
    for (const holder of result.leased) {
      const waiter = this.waiters.get(holder);
      if (!waiter) continue;
      this.forget(holder);
      waiter.settle({ granted: true, waitedMs: Date.now() - waiter.startedAt });
    }
    for (const holder of result.cancelled) {
      const waiter = this.waiters.get(holder);
      if (!waiter) continue;
      this.forget(holder);
      waiter.settle({ granted: false, refusal: ChannelRefusal.CAMPAIGN_CANCELLED, waitedMs: Date.now() - waiter.startedAt });
    }
  }

  /** When the agent's capacity (not the trunk) holds this process's waiters back: a log line every 10 s — the backlog made visible. */
  private noteAgentBound(result: TickResult): void {
    const agent = result.agent;
    const bound = agent !== undefined && this.waiters.size > 0 && agent.inUse >= agent.capacity && result.inUse < result.channels;
    if (!bound) {
      this.agentBoundSince = undefined;
      return;
    }
    const now = Date.now();
    this.agentBoundSince ??= now;
    if (now - this.agentBoundLoggedAt < 10_000) return;
    this.agentBoundLoggedAt = now;
    this.options.logger?.info(
      { trunkId: this.trunkId, agentName: agent.name, agentCapacity: agent.capacity, agentCallsInUse: agent.inUse, channels: result.channels, channelsInUse: result.inUse, waiting: this.waiters.size, boundForMs: now - this.agentBoundSince },
      'calls wait for agent capacity (the agents, not the trunk, are the limit)',
    );
  }

  private agentBoundSince: number | undefined;
  private agentBoundLoggedAt = 0;

  async ensureLease(workflowId: string, attempt: number, waitMs: number, signal?: AbortSignal): Promise<boolean> {
    const holder = channelHolder(workflowId, attempt);
    // The common case in one statement: the lease is live (granted moments ago) and now renewed.
    const live = await renewIfLive(this.sql, holder, this.times.leaseTtlMs);
    if (live) {
      this.campaignOf.set(holder, live.campaignId ? { practiceId: live.practiceId, campaignId: live.campaignId } : null);
      return true;
    }
    const lease = await findLease(this.sql, holder);
    // Expired (the dial started long after the grant) or never granted (a run from before the gate):
    // wait for a channel like any attempt, as urgent as its old deadline.
    const grant = await this.acquire(
      {
        workflowId,
        attempt,
        practiceId: lease?.practiceId ?? practiceOfWorkflow(workflowId) ?? 'unknown',
        campaignId: lease?.campaignId,
        deadline: lease?.deadline ?? new Date(),
        giveUpAt: new Date(Date.now() + waitMs),
      },
      signal,
    );
    return grant.granted;
  }

  hold(holder: string): () => void {
    this.held.set(holder, (this.held.get(holder) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.held.get(holder) ?? 1) - 1;
      if (n <= 0) {
        this.held.delete(holder);
        this.campaignOf.delete(holder);
      }
      else this.held.set(holder, n);
    };
  }

  async renew(holder: string): Promise<boolean> {
    return (await renewLeases(this.sql, [holder], this.times.leaseTtlMs)).length > 0;
  }

  private async renewHeld(): Promise<void> {
    if (this.held.size === 0 || this.closed) return;
    try {
      await renewLeases(this.sql, [...this.held.keys()], this.times.leaseTtlMs);
    } catch (err) {
      this.options.logger?.warn({ trunkId: this.trunkId, error: safeMessage(err) }, 'renewing channel leases failed; trying again');
    }
  }

  async release(holder: string): Promise<void> {
    this.campaignOf.delete(holder);
    const had = await releaseLease(this.sql, holder);
    if (had && this.waiters.size > 0) this.kick();
  }

  async abandon(holder: string): Promise<void> {
    const waiter = this.waiters.get(holder);
    if (waiter) {
      await this.leave(holder, undefined);
    } else {
      this.campaignOf.delete(holder);
      await leaveQueue(this.sql, this.trunkId, holder);
    }
    if (this.waiters.size > 0) this.kick();
  }

  async waitForCallSlot(holder: string, signal?: AbortSignal): Promise<CallSlot> {
    // The lease's campaign (its calls-per-second limit), as ensureLease read it moments ago.
    let campaign = this.campaignOf.get(holder) ?? undefined;
    if (!this.campaignOf.has(holder)) {
      const lease = await findLease(this.sql, holder);
      campaign = lease?.campaignId ? { practiceId: lease.practiceId, campaignId: lease.campaignId } : undefined;
    }
    for (let slots = 1; ; slots = Math.min(MAX_SLOT_BLOCK, slots * 2)) {
      const slot = await takeCallSlot(this.sql, this.trunkId, campaign, signal, { slots, clockScale: this.options.clockScale });
      const waitMs = slot.localAt - Date.now();
      if (waitMs > 0) await abortableSleep(waitMs, signal);
      // Woke too late (a stall), or the slot's place on this clock is too uncertain: sending now
      // could crowd the next slots' window. A block of slots leaves room for that much lateness
      // (./call-slots.ts); the next block is twice as large, so a machine that is always late still
      // calls, never above the limit.
      const lateMs = Date.now() - slot.localAt + slot.uncertaintyMs;
      if (lateMs <= CALL_SLOT_LATENESS_MS + slot.spareMs) return slot;
      this.options.logger?.warn({ trunkId: this.trunkId, lateMs, slots }, 'woke late for a call slot; taking a larger block of slots');
    }
  }

  lease(holder: string): Promise<Lease | undefined> {
    return findLease(this.sql, holder);
  }

  /** Stops the loops; waiting acquires resolve GAVE_UP (their rows expire on their own). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewTimer);
    if (this.timer) clearTimeout(this.timer);
    for (const [holder, waiter] of [...this.waiters]) {
      this.forget(holder);
      waiter.settle({ granted: false, refusal: ChannelRefusal.GAVE_UP, waitedMs: Date.now() - waiter.startedAt });
    }
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
