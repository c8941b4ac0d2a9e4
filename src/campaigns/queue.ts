/**
 * The campaign's side of the database: its settings and state, the queue of contacts still to
 * start, the control audit, and progress counted from the rows the confirmations write — never from
 * workflow histories. Rows hold health data: nothing here logs, and errors never quote a value.
 */
import {
  ContactStatus,
  type CampaignState,
  Phase,
  type CallLimits,
  type CallOutcome,
  type CampaignProgress,
  type ConfirmationRequest,
} from '../contracts';
import { json, type Queryable } from '../store/sql';
import { campaignRow, type StoredCampaign } from './store';

export { getCampaign, type StoredCampaign } from './store';

/** A queued contact, ready to start as a confirmation. Health data. */
export interface QueuedContact {
  workflowId: string;
  request: ConfirmationRequest;
}

/** Campaigns, newest first (of one practice when given). */
export async function listCampaigns(sql: Queryable, practiceId?: string): Promise<StoredCampaign[]> {
  const { rows } = await sql.query<Record<string, unknown>>(
    `SELECT * FROM campaigns WHERE ($1::text IS NULL OR practice_id = $1) ORDER BY created_at DESC, practice_id, campaign_id`,
    [practiceId ?? null],
  );
  return rows.map((r) => campaignRow(r)!);
}

/** Writes the campaign's state and limits (the workflow mirrors its own here; the channel gate reads them). */
export async function setCampaignState(sql: Queryable, practiceId: string, campaignId: string, state: CampaignState, limits: CallLimits): Promise<void> {
  await sql.query(
    `UPDATE campaigns SET state = $3, max_channels = $4, max_calls_per_second = $5, updated_at = now() WHERE practice_id = $1 AND campaign_id = $2`,
    [practiceId, campaignId, state, limits.channels, limits.callsPerSecond],
  );
}

/** One audited control of a campaign. */
export interface CampaignEvent {
  idempotencyKey: string;
  practiceId: string;
  campaignId: string;
  action: string;
  actor: string;
  reason?: string;
  at: Date;
  detail?: Record<string, unknown>;
}

/** Appends a control to the campaign's audit log (once per idempotency key). */
export async function appendCampaignEvent(sql: Queryable, e: CampaignEvent): Promise<void> {
  await sql.query(
    `INSERT INTO campaign_events (idempotency_key, practice_id, campaign_id, action, actor, reason, at, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING`,
    [e.idempotencyKey, e.practiceId, e.campaignId, e.action, e.actor, e.reason ?? null, e.at, e.detail === undefined ? null : JSON.stringify(e.detail)],
  );
}

/** The campaign's audit log, oldest first. */
export async function listCampaignEvents(sql: Queryable, practiceId: string, campaignId: string): Promise<(CampaignEvent & { id: number })[]> {
  const { rows } = await sql.query<Record<string, unknown>>(
    `SELECT * FROM campaign_events WHERE practice_id = $1 AND campaign_id = $2 ORDER BY id`,
    [practiceId, campaignId],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    idempotencyKey: r.idempotency_key as string,
    practiceId: r.practice_id as string,
    campaignId: r.campaign_id as string,
    action: r.action as string,
    actor: r.actor as string,
    ...(r.reason ? { reason: r.reason as string } : {}),
    at: new Date(r.at as string | Date),
    ...(r.detail ? { detail: json<Record<string, unknown>>(r.detail)! } : {}),
  }));
}

/** Up to `limit` queued contacts, soonest appointment first, as confirmation requests of the campaign. */
export async function nextQueued(sql: Queryable, campaign: StoredCampaign, limit: number): Promise<QueuedContact[]> {
  if (limit <= 0) return [];
  const { rows } = await sql.query<Record<string, unknown>>(
    `SELECT * FROM campaign_contacts WHERE practice_id = $1 AND campaign_id = $2 AND status = 'QUEUED'
     ORDER BY starts_at, appointment_id LIMIT $3`,
    [campaign.practiceId, campaign.campaignId, limit],
  );
  return rows.map((r) => ({
    workflowId: r.workflow_id as string,
    request: {
      appointmentId: r.appointment_id as string,
      patientId: r.patient_id as string,
      patientName: r.patient_name as string,
      phone: r.phone as string,
      patientTimeZone: r.patient_time_zone as string,
      appointmentStart: r.appointment_start as string,
      practiceId: campaign.practiceId,
      practiceName: campaign.practiceName,
      practiceCallbackNumber: (r.practice_callback_number as string | null) ?? campaign.practiceCallbackNumber,
      provider: r.provider as string,
      reason: r.reason as string,
      campaignId: campaign.campaignId,
      ...(campaign.policy ? { policy: campaign.policy } : {}),
    },
  }));
}

/** Marks a contact started (its confirmation runs under `workflowId`). */
export async function markStarted(sql: Queryable, practiceId: string, campaignId: string, appointmentId: string, workflowId: string, at: Date): Promise<void> {
  await sql.query(
    `UPDATE campaign_contacts SET status = 'STARTED', workflow_id = $4, started_at = $5
     WHERE practice_id = $1 AND campaign_id = $2 AND appointment_id = $3 AND status = 'QUEUED'`,
    [practiceId, campaignId, appointmentId, workflowId, at],
  );
}

/** Marks a contact skipped: another campaign or a single start confirms the appointment, or it can no longer be confirmed. */
export async function markSkipped(sql: Queryable, practiceId: string, campaignId: string, appointmentId: string, reason: string): Promise<void> {
  await sql.query(
    `UPDATE campaign_contacts SET status = 'SKIPPED', skip_reason = $4
     WHERE practice_id = $1 AND campaign_id = $2 AND appointment_id = $3 AND status = 'QUEUED'`,
    [practiceId, campaignId, appointmentId, reason],
  );
}

/** Cancels every queued contact of the campaign; returns how many. */
export async function cancelQueued(sql: Queryable, practiceId: string, campaignId: string): Promise<number> {
  const { rows } = await sql.query<{ n: string | number }>(
    `WITH c AS (UPDATE campaign_contacts SET status = 'CANCELLED' WHERE practice_id = $1 AND campaign_id = $2 AND status = 'QUEUED' RETURNING 1)
     SELECT count(*) AS n FROM c`,
    [practiceId, campaignId],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Workflow ids of the campaign's confirmations that have not ended (started, no final outcome written back). */
export async function runningConfirmations(sql: Queryable, practiceId: string, campaignId: string): Promise<string[]> {
  const { rows } = await sql.query<{ workflow_id: string }>(
    `SELECT c.workflow_id FROM campaign_contacts c
     LEFT JOIN appointments a ON a.practice_id = c.practice_id AND a.appointment_id = c.appointment_id
     WHERE c.practice_id = $1 AND c.campaign_id = $2 AND c.status = 'STARTED' AND (a.status IS NULL OR a.status <> 'DONE')
     ORDER BY c.starts_at, c.appointment_id`,
    [practiceId, campaignId],
  );
  return rows.map((r) => r.workflow_id);
}

const PROGRESS_WINDOW_MS = 5 * 60 * 1000;

/**
 * Progress of the campaign at `now` (the workflow's clock: the ledger records workflow time), from
 * the contact rows, the appointment rows the confirmations write and the attempt ledger.
 */
export async function campaignProgress(sql: Queryable, campaign: StoredCampaign, now: Date): Promise<CampaignProgress> {
  const key = [campaign.practiceId, campaign.campaignId];
  const [statuses, phases, calls] = await Promise.all([
    sql.query<{ status: ContactStatus; n: string | number }>(
      `SELECT status, count(*) AS n FROM campaign_contacts WHERE practice_id = $1 AND campaign_id = $2 GROUP BY status`,
      key,
    ),
    // The appointment row belongs to this campaign's confirmation only when its workflow is the contact's.
    sql.query<{ done: boolean; phase: Phase | null; outcome: CallOutcome | null; n: string | number; next_call_at: Date | string | null }>(
      `SELECT a.status = 'DONE' AS done, a.phase, a.outcome, count(*) AS n,
              min(a.next_call_at) FILTER (WHERE a.status <> 'DONE' AND a.next_call_at >= $3) AS next_call_at
       FROM campaign_contacts c
       JOIN appointments a ON a.practice_id = c.practice_id AND a.appointment_id = c.appointment_id AND a.workflow_id = c.workflow_id
       WHERE c.practice_id = $1 AND c.campaign_id = $2 AND c.status = 'STARTED'
       GROUP BY 1, 2, 3`,
      [...key, now],
    ),
    sql.query<{ placed: string | number; recent: string | number; up: string | number }>(
      `SELECT count(*) AS placed,
              count(*) FILTER (WHERE l.placed_at > $3) AS recent,
              -- Channels held now (live leases), not attempts reserved: those include calls waiting for a channel.
              (SELECT count(*) FROM channel_leases cl WHERE cl.practice_id = $1 AND cl.campaign_id = $2 AND cl.expires_at > now()) AS up
       FROM campaign_contacts c JOIN attempt_ledger l ON l.workflow_id = c.workflow_id
       WHERE c.practice_id = $1 AND c.campaign_id = $2 AND c.status = 'STARTED'`,
      [...key, new Date(now.getTime() - PROGRESS_WINDOW_MS)],
    ),
  ]);
  const byStatus: Record<ContactStatus, number> = { QUEUED: 0, STARTED: 0, SKIPPED: 0, CANCELLED: 0 };
  for (const r of statuses.rows) byStatus[r.status] = Number(r.n);
  const byPhase: Partial<Record<Phase, number>> = {};
  const byOutcome: Partial<Record<CallOutcome, number>> = {};
  let registered = 0;
  let finished = 0;
  let nextCallAt: Date | undefined;
  for (const r of phases.rows) {
    const n = Number(r.n);
    registered += n;
    if (r.done) {
      finished += n;
      if (r.outcome) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + n;
    }
    const phase = r.done ? Phase.DONE : (r.phase ?? Phase.PLANNING);
    byPhase[phase] = (byPhase[phase] ?? 0) + n;
    if (r.next_call_at) {
      const at = new Date(r.next_call_at);
      if (!nextCallAt || at < nextCallAt) nextCallAt = at;
    }
  }
  // Started, and not registered by its first plan yet: planning.
  if (byStatus.STARTED > registered) byPhase[Phase.PLANNING] = (byPhase[Phase.PLANNING] ?? 0) + byStatus.STARTED - registered;
  const c = calls.rows[0];
  const placed = Number(c?.placed ?? 0);
  const callsPerMinute = Number(c?.recent ?? 0) / (PROGRESS_WINDOW_MS / 60_000);
  const outstanding = byStatus.STARTED - finished;
  const remaining = byStatus.QUEUED + outstanding;
  let estimatedFinishAt: string | undefined;
  if (remaining === 0) estimatedFinishAt = now.toISOString();
  else if (callsPerMinute > 0 && finished > 0) {
    // Calls each remaining contact is likely to need, at the calls-per-minute of the last 5 minutes.
    const callsPerContact = Math.max(1, placed / Math.max(1, finished + outstanding));
    estimatedFinishAt = new Date(now.getTime() + ((remaining * callsPerContact) / callsPerMinute) * 60_000).toISOString();
  }
  return {
    practiceId: campaign.practiceId,
    campaignId: campaign.campaignId,
    state: campaign.state,
    limits: campaign.limits,
    total: byStatus.QUEUED + byStatus.STARTED + byStatus.SKIPPED + byStatus.CANCELLED,
    byStatus,
    byPhase,
    byOutcome,
    outstanding,
    // Calls up: the campaign's live channel leases (a call waiting for a channel holds none).
    callsInProgress: Number(c?.up ?? 0),
    callsPerMinute: Math.round(callsPerMinute * 10) / 10,
    callsPlaced: placed,
    ...(nextCallAt ? { nextCallAt: nextCallAt.toISOString() } : {}),
    ...(estimatedFinishAt ? { estimatedFinishAt } : {}),
    at: now.toISOString(),
  };
}
