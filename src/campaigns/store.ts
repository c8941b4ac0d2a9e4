/**
 * The campaign tables (migration 3): the `campaigns` row and the import's writes to
 * `campaign_contacts`. Runs on PGlite and PostgreSQL through {@link Sql}. Never logs: contact rows
 * hold health data.
 *
 * Sections: campaign settings (create, read) and the import's contact batches. Other campaign
 * queries (progress, controls) belong in their own sections.
 */
import { campaignWorkflowId, DEFAULT_CAMPAIGN_LIMITS, type CallLimits, type CallPolicy, type CampaignState } from '../contracts';
import { json, type Queryable, type Sql } from '../store/sql';
import { getConfirmationRequestSchema, problemCollector, validateCallLimits, validateId, validatePhone, validateText, ValidationError } from '../validation';

// ---------------------------------------------------------------------------------------------
// Campaign settings
// ---------------------------------------------------------------------------------------------


/** The practice a campaign calls for: given per campaign, never per row (a row may only override the callback number). */
export interface CampaignPractice {
  practiceId: string;
  practiceName: string;
  /** E.164; rows may override it with their own `practice_callback_number`. */
  practiceCallbackNumber: string;
}

/** What {@link createCampaign} takes. */
export interface CampaignSettings extends CampaignPractice {
  campaignId: string;
  /** Default {@link DEFAULT_CAMPAIGN_LIMITS}. */
  limits?: CallLimits;
  /** Overrides of the confirmation call policy for every contact (validated like a confirmation's). */
  policy?: Partial<CallPolicy>;
}

/** A campaign as stored. */
export interface StoredCampaign extends CampaignPractice {
  campaignId: string;
  workflowId: string;
  state: CampaignState;
  limits: CallLimits;
  policy?: Partial<CallPolicy>;
  createdAt: Date;
}

/** Result of {@link createCampaign}. */
export interface CreateCampaignResult {
  campaign: StoredCampaign;
  /** False when the campaign existed already (then `campaign` is the stored one, unchanged). */
  created: boolean;
  /**
   * Settings given now that differ from the stored ones (names only: `practiceName`, `limits`, …).
   * They were not applied: a campaign's settings do not change by creating it again (limits change
   * through the running campaign's controls).
   */
  ignoredChanges: string[];
}

/**
 * Checks campaign settings with the single-confirmation rules (ids, practice name, callback number,
 * policy) and the limits. Throws {@link ValidationError} naming every bad field (never its value).
 */
export function validateCampaignSettings(settings: CampaignSettings): Required<Omit<CampaignSettings, 'policy'>> & Pick<CampaignSettings, 'policy'> {
  const { problems, check } = problemCollector();
  const s = settings as Partial<CampaignSettings> | undefined;
  const practice = check(() => validatePractice((s ?? {}) as CampaignPractice));
  const campaignId = check(() => validateId('campaignId', s?.campaignId));
  const limits = check(() => validateLimits(s?.limits ?? DEFAULT_CAMPAIGN_LIMITS));
  let policy: Partial<CallPolicy> | undefined;
  if (s?.policy !== undefined) {
    const parsed = getConfirmationRequestSchema().shape.policy.safeParse(s.policy);
    if (parsed.success) policy = parsed.data as Partial<CallPolicy>;
    else problems.push(...parsed.error.issues.map((i) => ({ field: ['policy', ...i.path].join('.'), problem: i.message })));
  }
  if (problems.length > 0) throw new ValidationError(problems);
  return { ...practice!, campaignId: campaignId!, limits: limits!, ...(policy ? { policy } : {}) };
}

/** Checks the practice of a campaign (id, name, callback number) with the single-confirmation rules. */
export function validatePractice(practice: CampaignPractice): CampaignPractice {
  const { problems, check } = problemCollector();
  const out: Partial<CampaignPractice> = {};
  const fields: [keyof CampaignPractice, (v: unknown) => string][] = [
    ['practiceId', (v) => validateId('practiceId', v)],
    // The confirmation's `practiceName` rule: required, at most 200 characters, no control characters.
    ['practiceName', (v) => validateText('practiceName', v, 200)],
    ['practiceCallbackNumber', (v) => validatePhone('practiceCallbackNumber', v)],
  ];
  for (const [field, fn] of fields) {
    const value = check(() => fn(practice?.[field]));
    if (value !== undefined) out[field] = value;
  }
  if (problems.length > 0) throw new ValidationError(problems);
  return out as CampaignPractice;
}

/** Checks channel and call-rate limits with the shared rules ({@link validateCallLimits}); fields named `limits.*`. */
export function validateLimits(limits: CallLimits): CallLimits {
  return validateCallLimits(limits, 'limits');
}

/** Maps a `campaigns` row. */
export function campaignRow(row: Record<string, unknown> | undefined): StoredCampaign | undefined {
  if (!row) return undefined;
  return {
    practiceId: String(row.practice_id),
    campaignId: String(row.campaign_id),
    workflowId: String(row.workflow_id),
    practiceName: String(row.practice_name),
    practiceCallbackNumber: String(row.practice_callback_number),
    state: row.state as CampaignState,
    limits: { channels: Number(row.max_channels), callsPerSecond: Number(row.max_calls_per_second) },
    ...(row.policy ? { policy: json<Partial<CallPolicy>>(row.policy)! } : {}),
    createdAt: new Date(row.created_at as string | Date),
  };
}

/**
 * Creates the campaign's row (state RUNNING) unless it exists. Idempotent: creating it again
 * returns the stored campaign unchanged, and names in `ignoredChanges` the given settings that
 * differ — a second create never silently rewrites the practice, the callback number or the limits
 * of a campaign that may be calling already. Throws {@link ValidationError} for bad settings.
 */
export async function createCampaign(sql: Queryable, settings: CampaignSettings): Promise<CreateCampaignResult> {
  const s = validateCampaignSettings(settings);
  const { rows } = await sql.query<Record<string, unknown>>(
    `INSERT INTO campaigns (practice_id, campaign_id, workflow_id, practice_name, practice_callback_number, max_channels, max_calls_per_second, policy)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (practice_id, campaign_id) DO NOTHING
     RETURNING *`,
    [s.practiceId, s.campaignId, campaignWorkflowId(s.practiceId, s.campaignId), s.practiceName, s.practiceCallbackNumber, s.limits.channels, s.limits.callsPerSecond, s.policy ? JSON.stringify(s.policy) : null],
  );
  if (rows[0]) return { campaign: campaignRow(rows[0])!, created: true, ignoredChanges: [] };
  const stored = await getCampaign(sql, s.practiceId, s.campaignId);
  if (!stored) throw new Error('campaign row vanished between insert and read');
  const ignoredChanges: string[] = [];
  if (stored.practiceName !== s.practiceName) ignoredChanges.push('practiceName');
  if (stored.practiceCallbackNumber !== s.practiceCallbackNumber) ignoredChanges.push('practiceCallbackNumber');
  if (stored.limits.channels !== s.limits.channels || stored.limits.callsPerSecond !== s.limits.callsPerSecond) ignoredChanges.push('limits');
  if (canonical(stored.policy) !== canonical(s.policy)) ignoredChanges.push('policy');
  return { campaign: stored, created: false, ignoredChanges };
}

/** JSON with sorted keys (jsonb does not keep key order). */
function canonical(value: object | undefined): string {
  if (!value) return '';
  return JSON.stringify(Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b))));
}

/** The stored campaign, or undefined. */
export async function getCampaign(sql: Queryable, practiceId: string, campaignId: string): Promise<StoredCampaign | undefined> {
  const { rows } = await sql.query<Record<string, unknown>>(`SELECT * FROM campaigns WHERE practice_id = $1 AND campaign_id = $2`, [practiceId, campaignId]);
  return campaignRow(rows[0]);
}

// ---------------------------------------------------------------------------------------------
// Import: contact batches
// ---------------------------------------------------------------------------------------------

/** One validated contact, ready to queue. Health data. */
export interface ContactRow {
  appointmentId: string;
  patientId: string;
  patientName: string;
  phone: string;
  patientTimeZone: string;
  /** As imported (ISO 8601 with offset). */
  appointmentStart: string;
  provider: string;
  reason: string;
  /** The row's own callback number, when it overrides the campaign's. */
  practiceCallbackNumber?: string;
  /** File line (CSV) where the row starts; absent for API rows. */
  sourceLine?: number;
  /** `confirm:<practice>:<appointment>`. */
  workflowId: string;
}

/** Who confirms an appointment already: another campaign, or a confirmation started on its own. */
export type ConfirmedBy = { campaignId: string } | { single: true };

/** What became of one batch, by appointment id. */
export interface ContactBatchResult {
  added: Set<string>;
  alreadyImported: Set<string>;
  alreadyConfirming: Map<string, ConfirmedBy>;
}

/** Rows per INSERT (and per transaction): large enough that 10,000 rows take a few statements, small enough to keep parameters bounded. */
export const CONTACT_BATCH_SIZE = 500;

/**
 * Queues a batch of contacts (status QUEUED) in one transaction, skipping appointments that are
 * already in this campaign (`alreadyImported`), that have a confirmation already — an
 * `appointments` row, whatever its status: a workflow id runs once per appointment, ever — or that
 * another campaign of the practice has queued or started (`alreadyConfirming`).
 *
 * Imports of one practice are serialised by an advisory lock held for the transaction, so two
 * campaigns importing the same appointment at once cannot both queue it.
 */
export async function queueContactBatch(sql: Sql, practiceId: string, campaignId: string, contacts: readonly ContactRow[]): Promise<ContactBatchResult> {
  const result: ContactBatchResult = { added: new Set(), alreadyImported: new Set(), alreadyConfirming: new Map() };
  if (contacts.length === 0) return result;
  return sql.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('campaign-import'), hashtext($1))`, [practiceId]);
    const ids = contacts.map((c) => c.appointmentId);
    const workflowIds = contacts.map((c) => c.workflowId);
    const mine = await tx.query<{ appointment_id: string }>(
      `SELECT appointment_id FROM campaign_contacts WHERE practice_id = $1 AND campaign_id = $2 AND appointment_id = ANY($3::text[])`,
      [practiceId, campaignId, ids],
    );
    for (const r of mine.rows) result.alreadyImported.add(r.appointment_id);
    const confirmations = await tx.query<{ appointment_id: string; campaign_id: string | null }>(
      `SELECT appointment_id, campaign_id FROM appointments WHERE practice_id = $1 AND appointment_id = ANY($2::text[])`,
      [practiceId, ids],
    );
    for (const r of confirmations.rows) {
      if (result.alreadyImported.has(r.appointment_id)) continue;
      // Started by this campaign: its contact row is here (a row that is not would be a deleted one: not queued again either).
      if (r.campaign_id === campaignId) result.alreadyImported.add(r.appointment_id);
      else result.alreadyConfirming.set(r.appointment_id, r.campaign_id ? { campaignId: r.campaign_id } : { single: true });
    }
    // By workflow id (indexed; one per practice and appointment) rather than by the primary key, whose campaign column comes first.
    const others = await tx.query<{ appointment_id: string; campaign_id: string }>(
      `SELECT appointment_id, min(campaign_id) AS campaign_id FROM campaign_contacts
       WHERE workflow_id = ANY($1::text[]) AND practice_id = $2 AND campaign_id <> $3 AND status IN ('QUEUED', 'STARTED')
       GROUP BY appointment_id`,
      [workflowIds, practiceId, campaignId],
    );
    for (const r of others.rows) {
      if (result.alreadyImported.has(r.appointment_id) || result.alreadyConfirming.has(r.appointment_id)) continue;
      result.alreadyConfirming.set(r.appointment_id, { campaignId: r.campaign_id });
    }
    const fresh = contacts.filter((c) => !result.alreadyImported.has(c.appointmentId) && !result.alreadyConfirming.has(c.appointmentId));
    if (fresh.length > 0) {
      const column = <T>(fn: (c: ContactRow) => T) => fresh.map(fn);
      const inserted = await tx.query<{ appointment_id: string }>(
        `INSERT INTO campaign_contacts (practice_id, campaign_id, appointment_id, patient_id, patient_name, phone, patient_time_zone,
           appointment_start, starts_at, provider, reason, practice_callback_number, source_line, workflow_id)
         SELECT $1, $2, t.* FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[],
           $10::text[], $11::text[], $12::text[], $13::integer[], $14::text[]) AS t
         ON CONFLICT DO NOTHING
         RETURNING appointment_id`,
        [
          practiceId,
          campaignId,
          column((c) => c.appointmentId),
          column((c) => c.patientId),
          column((c) => c.patientName),
          column((c) => c.phone),
          column((c) => c.patientTimeZone),
          column((c) => c.appointmentStart),
          // As UTC instants: the drivers need not agree on how they send a JavaScript Date inside an array.
          column((c) => new Date(c.appointmentStart).toISOString()),
          column((c) => c.provider),
          column((c) => c.reason),
          column((c) => c.practiceCallbackNumber ?? null),
          column((c) => c.sourceLine ?? null),
          column((c) => c.workflowId),
        ],
      );
      for (const r of inserted.rows) result.added.add(r.appointment_id);
      // A conflict the checks above did not see (only within this campaign: the lock holds out other imports).
      for (const c of fresh) if (!result.added.has(c.appointmentId)) result.alreadyImported.add(c.appointmentId);
    }
    return result;
  });
}
