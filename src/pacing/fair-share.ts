/**
 * Which waiting attempts get the free channels of one grant tick: pure, so the rule is tested on its
 * own. Between practices: the practice with the fewest channels in use (live leases plus grants of
 * this tick) goes first, ties by its soonest deadline — a practice's 5,000-row campaign cannot hold
 * back another practice's same-day confirmations. Within a practice: soonest deadline first. A
 * campaign never gets more than its own channels.
 */

/** One waiting attempt. */
export interface Candidate {
  holder: string;
  practiceId: string;
  /** Campaign (with the practice), or null for a single confirmation. */
  campaignId: string | null;
  /** Calls for the appointment stop then (epoch ms). */
  deadline: number;
  /** When it started waiting (epoch ms): ties of deadlines go first-come. */
  enqueuedAt: number;
}

/** What the tick found in use. */
export interface ShareState {
  /** Channels free on the trunk now. */
  free: number;
  /** Live leases per practice on the trunk. */
  practiceLeases: ReadonlyMap<string, number>;
  /** Channels a campaign may still take (its limit minus its live leases), by {@link campaignKey}; absent: no campaign limit. */
  campaignRoom: ReadonlyMap<string, number>;
}

/** Key of a campaign in {@link ShareState.campaignRoom}. */
export function campaignKey(practiceId: string, campaignId: string): string {
  return `${practiceId}\u0000${campaignId}`;
}

const byDeadline = (a: Candidate, b: Candidate): number =>
  a.deadline - b.deadline || a.enqueuedAt - b.enqueuedAt || (a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : 0);

/** The candidates to grant now, in grant order. */
export function pickGrants(candidates: readonly Candidate[], state: ShareState): Candidate[] {
  const queues = new Map<string, Candidate[]>();
  for (const c of candidates) {
    const q = queues.get(c.practiceId);
    if (q) q.push(c);
    else queues.set(c.practiceId, [c]);
  }
  for (const q of queues.values()) q.sort(byDeadline);
  const inUse = new Map(state.practiceLeases);
  const room = new Map(state.campaignRoom);
  const hasRoom = (c: Candidate): boolean => c.campaignId === null || (room.get(campaignKey(c.practiceId, c.campaignId)) ?? Infinity) > 0;
  const picked: Candidate[] = [];
  let free = state.free;
  while (free > 0) {
    let best: { practice: string; queue: Candidate[]; index: number } | undefined;
    for (const [practice, queue] of queues) {
      // The practice's soonest waiter whose campaign has room (a full campaign's waiters wait on).
      const index = queue.findIndex(hasRoom);
      if (index < 0) {
        queues.delete(practice);
        continue;
      }
      if (!best) {
        best = { practice, queue, index };
        continue;
      }
      const used = inUse.get(practice) ?? 0;
      const bestUsed = inUse.get(best.practice) ?? 0;
      const head = queue[index]!;
      const bestHead = best.queue[best.index]!;
      if (used < bestUsed || (used === bestUsed && byDeadline(head, bestHead) < 0)) best = { practice, queue, index };
    }
    if (!best) break;
    const [chosen] = best.queue.splice(best.index, 1);
    picked.push(chosen!);
    free -= 1;
    inUse.set(best.practice, (inUse.get(best.practice) ?? 0) + 1);
    if (chosen!.campaignId !== null) {
      const key = campaignKey(chosen!.practiceId, chosen!.campaignId);
      const left = room.get(key);
      if (left !== undefined) room.set(key, left - 1);
    }
  }
  return picked;
}
