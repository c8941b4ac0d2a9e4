/**
 * One grant tick of the channel gate: ONE statement — the database function `grant_tick`
 * (migrations 8) — holding the trunk's `trunk_limits` row (FOR UPDATE), so grants of every worker
 * process are serialised per trunk and the channels in use never exceed the limit. It expires dead
 * leases and waiters, refreshes the calling process's waiters, grants the free channels to live
 * waiters by the fair-share rule ({@link pickGrants} states it; the function applies it), and reports
 * on the calling process's waiters. The row is locked for the statement alone, never across round
 * trips to this process (on the embedded database a transaction holds the whole database while it
 * lasts). Its cost does not depend on how many waiters a process has (arrays for the process's own
 * waiters), and only one tick runs per process at a time.
 */
import { CampaignState } from '../contracts';
import type { Queryable } from '../store/sql';

/** A waiter as the broker keeps it (its row in `channel_waiters`). */
export interface WaiterRow {
  holder: string;
  practiceId: string;
  campaignId?: string;
  deadline: Date;
}

/** Durations of a tick, in ms. */
export interface TickTimes {
  /** A lease lives this long after its grant or last renewal. */
  leaseTtlMs: number;
  /** A waiter row nobody refreshes is dropped after this long. */
  waiterTtlMs: number;
  /** Expired leases are kept this long (an attempt whose dial starts late finds what it held), then deleted. */
  keepExpiredMs: number;
}

export interface TickInput extends TickTimes {
  trunkId: string;
  /** Waiter rows to write or keep alive (new ones, and all of the process's when due). */
  upsert: readonly WaiterRow[];
  /** The process's waiting holders: the tick says which have a lease, and which are refused. */
  watch: readonly string[];
  /**
   * Also delete dead waiter rows and long-expired leases. Neither is ever granted or counted (the
   * grant reads live waiters and counts live leases), so the sweep can run every few seconds
   * instead of at every tick: two statements fewer in most ticks. Default true.
   */
  sweep?: boolean;
}

export interface TickResult {
  /** Holders granted by this tick (any process's). */
  granted: string[];
  /** Watched holders that hold a live lease (granted by this tick or another process's). */
  leased: string[];
  /** Watched holders whose campaign is cancelled: refused (their waiter rows are deleted). */
  cancelled: string[];
  /** Channels of the trunk and live leases, after the grants. */
  channels: number;
  inUse: number;
  /**
   * The trunk's agent and its live capacity vs the leases of every trunk naming it (after the
   * grants); absent when the trunk names no agent or no worker of it reports (no bound).
   */
  agent?: { name: string; capacity: number; inUse: number };
}

/** Runs one tick (see the module comment). Throws when the trunk has no limits row. */
export async function grantTick(sql: Queryable, input: TickInput): Promise<TickResult> {
  const { trunkId } = input;
  const { rows } = await sql.query<{
    o_has_trunk: boolean;
    o_channels: number | null;
    o_in_use: number;
    o_granted: string[];
    o_leased: string[];
    o_cancelled: string[];
    o_agent_name: string | null;
    o_agent_capacity: number | null;
    o_agent_in_use: number | null;
  }>(`SELECT * FROM grant_tick($1, $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7, $8, $9, $10, $11, $12)`, [
    trunkId,
    input.upsert.map((w) => w.holder),
    input.upsert.map((w) => w.practiceId),
    input.upsert.map((w) => w.campaignId ?? null),
    input.upsert.map((w) => w.deadline.toISOString()),
    [...input.watch],
    input.sweep ?? true,
    input.leaseTtlMs,
    input.waiterTtlMs,
    input.keepExpiredMs,
    CampaignState.RUNNING,
    CampaignState.CANCELLED,
  ]);
  const r = rows[0]!;
  if (!r.o_has_trunk) throw new Error(`trunk ${trunkId} has no limits row (the worker inserts it at start)`);
  return {
    granted: r.o_granted,
    leased: r.o_leased,
    cancelled: r.o_cancelled,
    channels: Number(r.o_channels),
    inUse: Number(r.o_in_use),
    ...(r.o_agent_name !== null ? { agent: { name: r.o_agent_name, capacity: Number(r.o_agent_capacity), inUse: Number(r.o_agent_in_use) } } : {}),
  };
}
