/**
 * Lease rows outside the grant tick: look one up, renew, release, and leave the queue. A lease is
 * created only by a grant tick (under the trunk's row lock); everything here only extends or ends.
 */
import type { Queryable, Sql } from '../store/sql';

/** A channel lease as stored. */
export interface Lease {
  holder: string;
  trunkId: string;
  practiceId: string;
  campaignId?: string;
  deadline: Date;
  grantedAt: Date;
  expiresAt: Date;
  /** Whether it still counts (not expired). */
  live: boolean;
}

/** The holder's lease (live or recently expired), if any. */
export async function findLease(sql: Queryable, holder: string): Promise<Lease | undefined> {
  const { rows } = await sql.query<{
    holder: string;
    trunk_id: string;
    practice_id: string;
    campaign_id: string | null;
    deadline: Date | string;
    granted_at: Date | string;
    expires_at: Date | string;
    live: boolean;
  }>(`SELECT *, expires_at > now() AS live FROM channel_leases WHERE holder = $1`, [holder]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    holder: r.holder,
    trunkId: r.trunk_id,
    practiceId: r.practice_id,
    campaignId: r.campaign_id ?? undefined,
    deadline: new Date(r.deadline),
    grantedAt: new Date(r.granted_at),
    expiresAt: new Date(r.expires_at),
    live: r.live,
  };
}

/**
 * Extends the holders' leases to now + `ttlMs`: the calls are up. An expired lease whose row is
 * still there is revived — it counts again, because the call it stands for is up (the count must
 * reflect the calls, even past the limit after a long stall). Returns the holders renewed.
 */
export async function renewLeases(sql: Queryable, holders: readonly string[], ttlMs: number): Promise<string[]> {
  if (holders.length === 0) return [];
  const { rows } = await sql.query<{ holder: string }>(
    `UPDATE channel_leases SET expires_at = now() + ($2::double precision * interval '1 millisecond') WHERE holder = ANY($1::text[]) RETURNING holder`,
    [holders, ttlMs],
  );
  return rows.map((r) => r.holder);
}

/**
 * Extends the holder's lease to now + `ttlMs` if it is still live, in one statement (the dial's
 * check-and-renew). Returns the lease's campaign when it was live, undefined when expired or absent.
 */
export async function renewIfLive(sql: Queryable, holder: string, ttlMs: number): Promise<{ practiceId: string; campaignId?: string } | undefined> {
  const { rows } = await sql.query<{ practice_id: string; campaign_id: string | null }>(
    `UPDATE channel_leases SET expires_at = now() + ($2::double precision * interval '1 millisecond')
     WHERE holder = $1 AND expires_at > now() RETURNING practice_id, campaign_id`,
    [holder, ttlMs],
  );
  const r = rows[0];
  return r ? { practiceId: r.practice_id, ...(r.campaign_id ? { campaignId: r.campaign_id } : {}) } : undefined;
}

/** Ends the holder's lease (idempotent). Returns whether there was one. */
export async function releaseLease(sql: Queryable, holder: string): Promise<boolean> {
  const { rows } = await sql.query<{ holder: string }>(`DELETE FROM channel_leases WHERE holder = $1 RETURNING holder`, [holder]);
  return rows.length > 0;
}

/**
 * A waiter gives up: its waiter row and any lease granted meanwhile go, under the trunk's row lock,
 * so no tick is half-way through granting it (a grant it committed just before is released here).
 */
export async function leaveQueue(sql: Sql, trunkId: string, holder: string): Promise<void> {
  await sql.transaction(async (tx) => {
    await tx.query(`SELECT 1 FROM trunk_limits WHERE trunk_id = $1 FOR UPDATE`, [trunkId]);
    await tx.query(`DELETE FROM channel_waiters WHERE holder = $1`, [holder]);
    await tx.query(`DELETE FROM channel_leases WHERE holder = $1`, [holder]);
  });
}

/** Live leases of the trunk (progress, tests, the benchmark). */
export async function liveLeaseCount(sql: Queryable, trunkId: string): Promise<number> {
  const { rows } = await sql.query<{ n: number | string }>(`SELECT count(*) AS n FROM channel_leases WHERE trunk_id = $1 AND expires_at > now()`, [trunkId]);
  return Number(rows[0]!.n);
}
