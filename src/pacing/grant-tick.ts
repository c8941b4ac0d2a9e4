/**
 * One grant tick of the channel gate: ONE transaction holding the trunk's `trunk_limits` row
 * (FOR UPDATE), so grants of every worker process are serialised per trunk and the channels in use
 * never exceed the limit. It expires dead leases and waiters, refreshes the calling process's
 * waiters, grants the free channels ({@link pickGrants}) to live waiters, and reports on the calling
 * process's waiters. Its cost does not depend on how many waiters a process has (a handful of statements per
 * tick, arrays for the process's own waiters), and only one tick runs per process at a time.
 */
import { CampaignState } from '../contracts';
import type { Queryable, Sql } from '../store/sql';
import { agentRoom } from './agent-capacity';
import { campaignKey, pickGrants, type Candidate } from './fair-share';

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

const interval = (param: string) => `(${param}::double precision * interval '1 millisecond')`;

/** Runs one tick (see the module comment). Throws when the trunk has no limits row. */
export function grantTick(sql: Sql, input: TickInput): Promise<TickResult> {
  return sql.transaction((tx) => tick(tx, input));
}

async function tick(tx: Queryable, input: TickInput): Promise<TickResult> {
  const { trunkId } = input;
  const { rows: trunk } = await tx.query<{ max_channels: number; agent_name: string | null }>(
    `SELECT max_channels, agent_name FROM trunk_limits WHERE trunk_id = $1 FOR UPDATE`,
    [trunkId],
  );
  if (!trunk[0]) throw new Error(`trunk ${trunkId} has no limits row (the worker inserts it at start)`);
  const channels = Number(trunk[0].max_channels);
  const agentName = trunk[0].agent_name;
  if (input.sweep ?? true) {
    await tx.query(`DELETE FROM channel_leases WHERE trunk_id = $1 AND expires_at < now() - ${interval('$2')}`, [trunkId, input.keepExpiredMs]);
    await tx.query(`DELETE FROM channel_waiters WHERE trunk_id = $1 AND alive_until < now()`, [trunkId]);
  }
  if (input.upsert.length > 0) {
    // A holder with a live lease is not waiting any more (granted by another process's tick).
    await tx.query(
      `INSERT INTO channel_waiters (holder, trunk_id, practice_id, campaign_id, deadline, alive_until)
       SELECT u.holder, $1, u.practice_id, u.campaign_id, u.deadline::timestamptz, now() + ${interval('$6')}
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u (holder, practice_id, campaign_id, deadline)
       WHERE NOT EXISTS (SELECT 1 FROM channel_leases l WHERE l.holder = u.holder AND l.expires_at > now())
       ON CONFLICT (holder) DO UPDATE SET alive_until = EXCLUDED.alive_until, deadline = EXCLUDED.deadline`,
      [
        trunkId,
        input.upsert.map((w) => w.holder),
        input.upsert.map((w) => w.practiceId),
        input.upsert.map((w) => w.campaignId ?? null),
        input.upsert.map((w) => w.deadline.toISOString()),
        input.waiterTtlMs,
      ],
    );
  }
  const { rows: used } = await tx.query<{ practice_id: string; campaign_id: string | null; n: number | string }>(
    `SELECT practice_id, campaign_id, count(*) AS n FROM channel_leases WHERE trunk_id = $1 AND expires_at > now() GROUP BY practice_id, campaign_id`,
    [trunkId],
  );
  let inUse = used.reduce((sum, r) => sum + Number(r.n), 0);
  // Dials never outrun the agents: the channels in use of every trunk naming the agent stay within
  // the capacity its workers report (each leased call may be answered and need a warm process).
  const agent = agentName ? await agentRoom(tx, agentName) : undefined;
  const free = Math.min(channels - inUse, agent ? agent.capacity - agent.inUse : Infinity);
  const granted: string[] = [];
  if (free > 0) {
    // Per (practice, campaign), its `free` soonest eligible waiters are all any grant could need.
    const { rows } = await tx.query<{
      holder: string;
      practice_id: string;
      campaign_id: string | null;
      deadline: Date | string;
      enqueued_at: Date | string;
      max_channels: number | null;
    }>(
      `SELECT holder, practice_id, campaign_id, deadline, enqueued_at, max_channels FROM (
         SELECT w.holder, w.practice_id, w.campaign_id, w.deadline, w.enqueued_at, c.max_channels,
                row_number() OVER (PARTITION BY w.practice_id, w.campaign_id ORDER BY w.deadline, w.enqueued_at, w.holder) AS rn
         FROM channel_waiters w
         LEFT JOIN campaigns c ON c.practice_id = w.practice_id AND c.campaign_id = w.campaign_id
         WHERE w.trunk_id = $1 AND w.alive_until >= now() AND (c.state IS NULL OR c.state = $3)
       ) ranked WHERE rn <= $2`,
      [trunkId, free, CampaignState.RUNNING],
    );
    if (rows.length > 0) {
      const practiceLeases = new Map<string, number>();
      const campaignLeases = new Map<string, number>();
      for (const r of used) {
        practiceLeases.set(r.practice_id, (practiceLeases.get(r.practice_id) ?? 0) + Number(r.n));
        if (r.campaign_id !== null) campaignLeases.set(campaignKey(r.practice_id, r.campaign_id), Number(r.n));
      }
      const campaignRoom = new Map<string, number>();
      for (const r of rows) {
        if (r.campaign_id === null || r.max_channels === null) continue;
        const key = campaignKey(r.practice_id, r.campaign_id);
        campaignRoom.set(key, Number(r.max_channels) - (campaignLeases.get(key) ?? 0));
      }
      const candidates: Candidate[] = rows.map((r) => ({
        holder: r.holder,
        practiceId: r.practice_id,
        campaignId: r.campaign_id,
        deadline: new Date(r.deadline).getTime(),
        enqueuedAt: new Date(r.enqueued_at).getTime(),
      }));
      for (const c of pickGrants(candidates, { free, practiceLeases, campaignRoom })) granted.push(c.holder);
    }
    if (granted.length > 0) {
      // The waiters become leases in one statement.
      await tx.query(
        `WITH moved AS (DELETE FROM channel_waiters WHERE holder = ANY($1::text[]) RETURNING holder, trunk_id, practice_id, campaign_id, deadline)
         INSERT INTO channel_leases (holder, trunk_id, practice_id, campaign_id, deadline, granted_at, expires_at)
         SELECT holder, trunk_id, practice_id, campaign_id, deadline, now(), now() + ${interval('$2')} FROM moved
         ON CONFLICT (holder) DO UPDATE SET trunk_id = EXCLUDED.trunk_id, practice_id = EXCLUDED.practice_id,
           campaign_id = EXCLUDED.campaign_id, deadline = EXCLUDED.deadline, granted_at = EXCLUDED.granted_at, expires_at = EXCLUDED.expires_at`,
        [granted, input.leaseTtlMs],
      );
      inUse += granted.length;
    }
  }
  let leased: string[] = [];
  let cancelled: string[] = [];
  if (input.watch.length > 0) {
    const { rows: mine } = await tx.query<{ holder: string; cancelled: boolean }>(
      `SELECT l.holder, false AS cancelled FROM channel_leases l WHERE l.holder = ANY($1::text[]) AND l.expires_at > now()
       UNION ALL
       SELECT w.holder, true FROM channel_waiters w JOIN campaigns c ON c.practice_id = w.practice_id AND c.campaign_id = w.campaign_id
       WHERE w.holder = ANY($1::text[]) AND c.state = $2`,
      [input.watch, CampaignState.CANCELLED],
    );
    leased = mine.filter((r) => !r.cancelled).map((r) => r.holder);
    cancelled = mine.filter((r) => r.cancelled).map((r) => r.holder);
    if (cancelled.length > 0) await tx.query(`DELETE FROM channel_waiters WHERE holder = ANY($1::text[])`, [cancelled]);
  }
  return {
    granted,
    leased,
    cancelled,
    channels,
    inUse,
    ...(agent && agentName ? { agent: { name: agentName, capacity: agent.capacity, inUse: agent.inUse + granted.length } } : {}),
  };
}
