/**
 * Calls per second: each INVITE takes a slot first. Slots of a trunk (and of a campaign) are handed
 * out in one statement holding the trunk's row (and the campaign's), spaced by the interval below,
 * on the database's clock — the one clock every worker process shares.
 *
 * Why the margin. Slots k and k+R are at least R·d apart. An INVITE leaves at its slot plus some
 * lateness j in [0, J] (timer lateness, the request to LiveKit), so R+1 consecutive INVITEs span at
 * least R·d − J. For no 1-s window to hold R+1 of them that span must reach 1 s: d ≥ (1 s + J) / R.
 * The dial activity enforces the bound on j: a process that wakes more than J after its slot (a GC
 * pause, a loaded machine, an answer from the database handled late) does not send but takes a new
 * slot. The slot is placed on the process's clock from the round trip that read the database's
 * clock, and that round trip's uncertainty counts as lateness. J = 75 ms costs 7.5 % of the rate
 * (R = 5: one INVITE every 215 ms instead of 200); a bench at load 10 on 2 cores showed 50 ms was
 * not enough between the check and the request leaving.
 *
 * A process that keeps waking late (a loaded machine) takes blocks of consecutive slots: an INVITE of a
 * block of k slots may leave up to J + (k − 1)·d after the block's first slot — it stands in for the
 * block's last slot, and the block's other slots stay unused — so the bound above holds for every
 * INVITE, however late. The block doubles at each late wake: a late process still calls, at the cost
 * of the slots it leaves unused, never above the limit.
 */
import type { Queryable, Sql } from '../store/sql';

/** Most an INVITE may leave after its slot; a later wake takes a new slot instead. */
export const CALL_SLOT_LATENESS_MS = 75;

/** Spacing of the slots at `callsPerSecond`, in ms (see the module comment). */
export function slotIntervalMs(callsPerSecond: number): number {
  return (1000 + CALL_SLOT_LATENESS_MS) / callsPerSecond;
}

/** A call slot: the INVITE may be sent at `at` (database clock), `delayMs` from now. */
export interface CallSlot {
  at: Date;
  /** How much later than the lateness bound the INVITE may still leave: (slots taken − 1) × the interval, in ms (0 for one slot). */
  spareMs: number;
  delayMs: number;
  /**
   * The slot on this process's clock (`Date.now()` ms): `at` less the database's time, added to the
   * middle of the round trip that read the database's time — not to when the answer was handled,
   * which a busy event loop delays by varying amounts (that delay bunched INVITEs past the limit).
   */
  localAt: number;
  /** How far `localAt` may be off: half the round trip less the time spent in the database, in ms. */
  uncertaintyMs: number;
}

/** How a slot is taken. */
export interface SlotOptions {
  /** Consecutive slots to take as one block (see the module comment). Default 1. */
  slots?: number;
  /**
   * The limits hold on a clock this many times faster than the database's: the slots' spacing is
   * divided by it. The forecast plays its calls that much faster than modelled. Default 1.
   */
  clockScale?: number;
}

/** What {@link tryTakeCallSlot} did: took a slot, or found the campaign's next slot later than the trunk's. */
export type SlotAttempt = ({ taken: true } & CallSlot) | { taken: false; retryInMs: number };

/**
 * Takes the next call slot of the trunk, and of the campaign when given: t = max(now, trunk's next);
 * the trunk's next moves to t + its interval, the campaign's to t + its own. One statement (the
 * database function `take_call_slot`, migration 7), rows locked trunk first, then campaign (the grant
 * tick locks the trunk only): slot takers never deadlock. When the campaign's next slot is later
 * than t, nothing is taken — a call waiting for its campaign must not hold the trunk's slots (other
 * campaigns' calls would queue behind it): the caller comes back in `retryInMs`.
 *
 * The slot is placed on this process's clock from the round trip less the time the function spent
 * (lock waits included), the rest split evenly between the way there and back: half of that rest is
 * the placement's uncertainty.
 */
export async function tryTakeCallSlot(sql: Queryable, trunkId: string, campaign?: { practiceId: string; campaignId: string }, options: SlotOptions = {}): Promise<SlotAttempt> {
  const slots = Math.max(1, Math.floor(options.slots ?? 1));
  const scale = options.clockScale ?? 1;
  const sentAt = Date.now();
  const { rows } = await sql.query<{
    has_trunk: boolean;
    taken: boolean;
    slot_ms: number | null;
    now_ms: number;
    started_ms: number;
    ended_ms: number;
    retry_in_ms: number | null;
    trunk_interval_ms: number;
    campaign_interval_ms: number | null;
  }>(`SELECT * FROM take_call_slot($1, $2, $3, $4, $5, $6)`, [trunkId, campaign?.practiceId ?? null, campaign?.campaignId ?? null, slots, scale, CALL_SLOT_LATENESS_MS]);
  const receivedAt = Date.now();
  const r = rows[0]!;
  if (!r.has_trunk) throw new Error(`trunk ${trunkId} has no limits row (the worker inserts it at start)`);
  const now = Number(r.now_ms);
  if (!r.taken) return { taken: false, retryInMs: Math.max(1, Number(r.retry_in_ms)) };
  const at = Number(r.slot_ms);
  const inside = Math.max(0, Number(r.ended_ms) - Number(r.started_ms));
  const uncertaintyMs = Math.max(0, receivedAt - sentAt - inside) / 2;
  // The database's `now` on this clock: sent, plus the way there, plus the time in the function before `now` was read.
  const localNow = sentAt + uncertaintyMs + Math.max(0, now - Number(r.started_ms));
  const spareInterval = Math.min(Number(r.trunk_interval_ms), r.campaign_interval_ms === null ? Infinity : Number(r.campaign_interval_ms));
  return {
    taken: true,
    at: new Date(at),
    spareMs: (slots - 1) * spareInterval,
    delayMs: Math.max(0, at - now),
    localAt: localNow + (at - now),
    uncertaintyMs,
  };
}

/**
 * The next call slot of the trunk (and campaign): {@link tryTakeCallSlot}, waiting out a campaign
 * whose next slot is later. The caller sleeps `delayMs`, then sends the INVITE.
 */
export async function takeCallSlot(
  sql: Sql,
  trunkId: string,
  campaign?: { practiceId: string; campaignId: string },
  signal?: AbortSignal,
  options: SlotOptions = {},
): Promise<CallSlot> {
  for (;;) {
    const slot = await tryTakeCallSlot(sql, trunkId, campaign, options);
    if (slot.taken) return { at: slot.at, spareMs: slot.spareMs, delayMs: slot.delayMs, localAt: slot.localAt, uncertaintyMs: slot.uncertaintyMs };
    signal?.throwIfAborted();
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, slot.retryInMs)));
  }
}
