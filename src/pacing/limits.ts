/**
 * Trunk limits (channels, calls per second) in the `trunk_limits` table: the source of truth shared
 * by every worker process. A worker inserts its trunk's row from its config when there is none; the
 * API/CLI change it with {@link setTrunkLimits}; the gate reads it at every grant tick.
 */
import { callLimitProblems } from '../validation';
import type { CallLimits } from '../contracts';
import { InvalidDataError } from '../ports';
import type { Queryable } from '../store/sql';

/** Defaults of a trunk's limits (`TRUNK_MAX_CHANNELS`, `TRUNK_MAX_CALLS_PER_SECOND`). */
export const DEFAULT_TRUNK_LIMITS: Readonly<CallLimits> = Object.freeze({ channels: 10, callsPerSecond: 5 });

/** Problems of (part of) a set of limits, each naming the field (the shared rules of src/validation.ts); empty when fine. */
export function limitProblems(limits: Partial<CallLimits>): string[] {
  return callLimitProblems(limits).map((p) => `${p.field}: ${p.problem}`);
}

function check(limits: Partial<CallLimits>): void {
  const problems = limitProblems(limits);
  if (problems.length > 0) throw new InvalidDataError(problems.join('; '));
}

const row = (r: { max_channels: number | string; max_calls_per_second: number | string }): CallLimits => ({
  channels: Number(r.max_channels),
  callsPerSecond: Number(r.max_calls_per_second),
});

/** The trunk's stored limits, or undefined when it has no row. */
export async function getTrunkLimits(sql: Queryable, trunkId: string): Promise<CallLimits | undefined> {
  const { rows } = await sql.query<{ max_channels: number; max_calls_per_second: number }>(
    'SELECT max_channels, max_calls_per_second FROM trunk_limits WHERE trunk_id = $1',
    [trunkId],
  );
  return rows[0] ? row(rows[0]) : undefined;
}

/**
 * Inserts the trunk's row with `defaults` when it has none (a worker's config), and returns what is
 * stored: an existing row wins over the config.
 */
export async function ensureTrunkLimits(sql: Queryable, trunkId: string, defaults: CallLimits = DEFAULT_TRUNK_LIMITS): Promise<CallLimits> {
  check(defaults);
  await sql.query(
    `INSERT INTO trunk_limits (trunk_id, max_channels, max_calls_per_second) VALUES ($1, $2, $3) ON CONFLICT (trunk_id) DO NOTHING`,
    [trunkId, defaults.channels, defaults.callsPerSecond],
  );
  return (await getTrunkLimits(sql, trunkId))!;
}

/**
 * Changes the trunk's limits (either or both; a trunk without a row gets the defaults for the
 * other). Takes effect at the next grant tick of every worker (within ~200 ms) and the next call
 * slot. Lowering channels below the calls up now ends none of them: no new grant until under.
 */
export async function setTrunkLimits(sql: Queryable, trunkId: string, limits: Partial<CallLimits>): Promise<CallLimits> {
  check(limits);
  if (limits.channels === undefined && limits.callsPerSecond === undefined) throw new InvalidDataError('limits: give channels and/or callsPerSecond');
  const { rows } = await sql.query<{ max_channels: number; max_calls_per_second: number }>(
    `INSERT INTO trunk_limits (trunk_id, max_channels, max_calls_per_second) VALUES ($1, COALESCE($2, $4::integer), COALESCE($3, $5::double precision))
     ON CONFLICT (trunk_id) DO UPDATE SET
       max_channels = COALESCE($2, trunk_limits.max_channels),
       max_calls_per_second = COALESCE($3, trunk_limits.max_calls_per_second),
       updated_at = now()
     RETURNING max_channels, max_calls_per_second`,
    [trunkId, limits.channels ?? null, limits.callsPerSecond ?? null, DEFAULT_TRUNK_LIMITS.channels, DEFAULT_TRUNK_LIMITS.callsPerSecond],
  );
  return row(rows[0]!);
}
