/**
 * Agent capacity, shared through the database: each voice-agent worker (agent/main.ts) reports what
 * it can serve right now — calls in progress, warm job processes ready for a call, its maximum —
 * with a heartbeat and an expiry (`agent_workers`, migration 5). The channel gate's grant tick
 * bounds the channels in use of every trunk that names the agent (`trunk_limits.agent_name`) by
 * the live total capacity, so dials never outrun the agents that can serve them.
 *
 * No live row for the agent → no bound (scripted phones, a deployment whose agents do not report):
 * the trunk's channels alone decide, as before.
 */
import type { Queryable } from '../store/sql';

/** What one agent worker reports. */
export interface AgentWorkerReport {
  /** Unique per worker process (`<host>:<pid>:<random>`). */
  workerId: string;
  agentName: string;
  /** AGENT_MAX_CALLS. */
  maxCalls: number;
  /** Calls (jobs) in progress. */
  activeCalls: number;
  /** Warm job processes waiting for a call (stored as at most maxCalls − activeCalls: those it may still give one). */
  readyProcesses: number;
  /** Answered calls it refused so far (no warm process): a backlog sign. */
  refusedJobs?: number;
}

/** Calls a worker can hold at once right now: min(max, in progress + ready). */
export function workerCapacity(r: Pick<AgentWorkerReport, 'maxCalls' | 'activeCalls' | 'readyProcesses'>): number {
  return Math.max(0, Math.min(r.maxCalls, r.activeCalls + r.readyProcesses));
}

/** A report lives this long unless renewed, in ms (a worker heartbeats every second). */
export const AGENT_REPORT_TTL_MS = 5_000;

const interval = (param: string) => `(${param}::double precision * interval '1 millisecond')`;

/**
 * Writes (or renews) a worker's report. The warm processes stored are those the worker may still
 * give a call: a worker at its maximum refuses jobs (and tells livekit-server it is full) however
 * many processes are warm — among its calls may be one whose lease is already released (the job
 * still leaving the room), so the gate would otherwise lend that room to a call no agent takes.
 */
export async function reportAgentWorker(sql: Queryable, report: AgentWorkerReport, ttlMs = AGENT_REPORT_TTL_MS): Promise<void> {
  const r = { ...report, readyProcesses: Math.max(0, Math.min(report.readyProcesses, report.maxCalls - report.activeCalls)) };
  await sql.query(
    `INSERT INTO agent_workers (worker_id, agent_name, max_calls, active_calls, ready_processes, capacity, refused_jobs, reported_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now() + ${interval('$8')})
     ON CONFLICT (worker_id) DO UPDATE SET agent_name = EXCLUDED.agent_name, max_calls = EXCLUDED.max_calls,
       active_calls = EXCLUDED.active_calls, ready_processes = EXCLUDED.ready_processes, capacity = EXCLUDED.capacity,
       refused_jobs = EXCLUDED.refused_jobs, reported_at = EXCLUDED.reported_at, expires_at = EXCLUDED.expires_at`,
    [r.workerId, r.agentName, r.maxCalls, r.activeCalls, r.readyProcesses, workerCapacity(r), r.refusedJobs ?? 0, ttlMs],
  );
}

/** Removes a worker's report (it stops; a killed worker's row expires on its own). */
export async function removeAgentWorker(sql: Queryable, workerId: string): Promise<void> {
  await sql.query('DELETE FROM agent_workers WHERE worker_id = $1', [workerId]);
}

/** The live capacity of an agent name, over its reporting workers. */
export interface AgentCapacity {
  /** Workers with a live report; 0 → no bound. */
  workers: number;
  capacity: number;
  activeCalls: number;
  readyProcesses: number;
  refusedJobs: number;
}

export async function agentCapacity(sql: Queryable, agentName: string): Promise<AgentCapacity> {
  const { rows } = await sql.query<Record<keyof AgentCapacity, number | string | null>>(
    `SELECT count(*) AS workers, COALESCE(sum(capacity), 0) AS capacity, COALESCE(sum(active_calls), 0) AS "activeCalls",
            COALESCE(sum(ready_processes), 0) AS "readyProcesses", COALESCE(sum(refused_jobs), 0) AS "refusedJobs"
     FROM agent_workers WHERE agent_name = $1 AND expires_at > now()`,
    [agentName],
  );
  const r = rows[0]!;
  return {
    workers: Number(r.workers),
    capacity: Number(r.capacity),
    activeCalls: Number(r.activeCalls),
    readyProcesses: Number(r.readyProcesses),
    refusedJobs: Number(r.refusedJobs),
  };
}

/**
 * Names the agent dispatched to a trunk's calls (the worker's AGENT_NAME; null: none). Unlike the
 * limits, the worker's config wins: it is what the worker dispatches.
 */
export async function setTrunkAgent(sql: Queryable, trunkId: string, agentName: string | null): Promise<void> {
  await sql.query('UPDATE trunk_limits SET agent_name = $2 WHERE trunk_id = $1 AND agent_name IS DISTINCT FROM $2', [trunkId, agentName]);
}
