/**
 * The scheduling-system port's reference implementation and the compliance records, on embedded
 * PGlite (default) or PostgreSQL (`databaseUrl`). It never logs: its rows hold health data.
 */
import { ConsentState, type CallOutcome, type OutcomeDetail, type RegisterConfirmationInput } from '../contracts';
import type {
  AuditEntry,
  AuditRow,
  ConfirmationStore,
  ReserveAttemptInput,
  ReserveAttemptResult,
  StoredAppointment,
} from '../ports';
import { migrate } from './migrations';
import { openPglite, openPostgres, type Queryable, type Sql } from './sql';

export { MIGRATIONS } from './migrations';

/** Where the data lives: PostgreSQL when `databaseUrl` is set, else PGlite in `dataDir` (in memory without one). */
export interface StoreConfig {
  databaseUrl?: string;
  dataDir?: string;
}

/** Opens the database and applies pending migrations. */
export async function createStore(config: StoreConfig = {}): Promise<ConfirmationStore & { readonly kind: Sql['kind'] }> {
  const sql = config.databaseUrl ? await openPostgres(config.databaseUrl) : await openPglite(config.dataDir);
  const store = new SqlStore(sql);
  try {
    await store.migrate();
  } catch (err) {
    await sql.close();
    throw err;
  }
  return store;
}

const WEEK_MS = 7 * 24 * 60 * 60 * 1000;

/** One implementation for both databases. */
export class SqlStore implements ConfirmationStore {
  constructor(private readonly sql: Sql) {}

  get kind(): Sql['kind'] {
    return this.sql.kind;
  }

  async migrate(): Promise<void> {
    await migrate(this.sql);
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  async registerConfirmation(input: RegisterConfirmationInput): Promise<void> {
    await this.sql.query(
      `INSERT INTO appointments (practice_id, appointment_id, patient_id, phone, time_zone, starts_at, workflow_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (practice_id, appointment_id) DO UPDATE SET
         patient_id = EXCLUDED.patient_id, phone = EXCLUDED.phone, time_zone = EXCLUDED.time_zone,
         starts_at = EXCLUDED.starts_at, workflow_id = EXCLUDED.workflow_id, updated_at = now()`,
      [input.practiceId, input.appointmentId, input.patientId, input.phone, input.patientTimeZone, new Date(input.appointmentStart), input.workflowId],
    );
  }

  async activeWorkflowIdsForPhone(phone: string): Promise<string[]> {
    const { rows } = await this.sql.query<{ workflow_id: string }>(
      `SELECT workflow_id FROM appointments WHERE phone = $1 AND status = 'PENDING' ORDER BY created_at`,
      [phone],
    );
    return rows.map((r) => r.workflow_id);
  }

  async writeBack(practiceId: string, appointmentId: string, outcome: CallOutcome, detail?: OutcomeDetail): Promise<void> {
    await this.sql.query(
      `UPDATE appointments SET status = 'DONE', outcome = $3, outcome_detail = $4, updated_at = now()
       WHERE practice_id = $1 AND appointment_id = $2`,
      [practiceId, appointmentId, outcome, detail === undefined ? null : JSON.stringify(detail)],
    );
  }

  async getAppointment(practiceId: string, appointmentId: string): Promise<StoredAppointment | undefined> {
    const { rows } = await this.sql.query<Record<string, unknown>>(
      `SELECT * FROM appointments WHERE practice_id = $1 AND appointment_id = $2`,
      [practiceId, appointmentId],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      practiceId: r.practice_id as string,
      appointmentId: r.appointment_id as string,
      patientId: r.patient_id as string,
      phone: r.phone as string,
      timeZone: r.time_zone as string,
      startsAt: new Date(r.starts_at as string | Date),
      workflowId: r.workflow_id as string,
      status: r.status as StoredAppointment['status'],
      outcome: (r.outcome as CallOutcome | null) ?? null,
      outcomeDetail: json<OutcomeDetail>(r.outcome_detail),
    };
  }

  async recordConsent(input: { practiceId: string; phone: string; patientId?: string; granted: boolean; source: string }): Promise<void> {
    await this.sql.query(
      `INSERT INTO consent (practice_id, phone, patient_id, granted, source, recorded_at) VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (practice_id, phone) DO UPDATE SET
         patient_id = COALESCE(EXCLUDED.patient_id, consent.patient_id), granted = EXCLUDED.granted,
         source = EXCLUDED.source, recorded_at = now()`,
      [input.practiceId, input.phone, input.patientId ?? null, input.granted, input.source],
    );
  }

  async consentState(practiceId: string, phone: string): Promise<ConsentState> {
    const { rows } = await this.sql.query<{ dnc: boolean; granted: boolean | null }>(
      `SELECT EXISTS (SELECT 1 FROM do_not_call WHERE phone = $2) AS dnc,
              (SELECT granted FROM consent WHERE practice_id = $1 AND phone = $2) AS granted`,
      [practiceId, phone],
    );
    const r = rows[0]!;
    if (r.dnc) return ConsentState.DO_NOT_CALL;
    if (r.granted === null || r.granted === undefined) return ConsentState.MISSING;
    return r.granted ? ConsentState.GRANTED : ConsentState.REVOKED;
  }

  async addDoNotCall(phone: string, source: string, reason: string): Promise<void> {
    await this.sql.query(
      `INSERT INTO do_not_call (phone, reason, source) VALUES ($1, $2, $3) ON CONFLICT (phone) DO NOTHING`,
      [phone, reason, source],
    );
  }

  async reserveAttempt(input: ReserveAttemptInput): Promise<ReserveAttemptResult> {
    return this.sql.transaction(async (tx) => {
      // Serialise reservations per number: two racers for the last slot see each other's row.
      await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [input.phone]);
      const existing = await tx.query(`SELECT 1 FROM attempt_ledger WHERE workflow_id = $1 AND attempt = $2`, [input.workflowId, input.attempt]);
      const counts = await countCalls(tx, input);
      if (existing.rows.length > 0) return { reserved: true, ...counts };
      if (counts.dayCount >= input.maxCallsPerDay || counts.weekCount >= input.maxCallsPerWeek) {
        return { reserved: false, ...counts };
      }
      await tx.query(
        `INSERT INTO attempt_ledger (workflow_id, attempt, appointment_id, phone, placed_at, local_date) VALUES ($1, $2, $3, $4, $5, $6)`,
        [input.workflowId, input.attempt, input.appointmentId, input.phone, input.at, input.localDate],
      );
      return { reserved: true, dayCount: counts.dayCount + 1, weekCount: counts.weekCount + 1, oldestInWeek: counts.oldestInWeek ?? input.at };
    });
  }

  async attemptOutcome(workflowId: string, attempt: number): Promise<CallOutcome | null> {
    const { rows } = await this.sql.query<{ outcome: CallOutcome | null }>(
      `SELECT outcome FROM attempt_ledger WHERE workflow_id = $1 AND attempt = $2`,
      [workflowId, attempt],
    );
    return rows[0]?.outcome ?? null;
  }

  async recordAttemptOutcome(workflowId: string, attempt: number, outcome: CallOutcome, sipStatusCode?: number): Promise<void> {
    await this.sql.query(`UPDATE attempt_ledger SET outcome = $3, sip_status_code = $4 WHERE workflow_id = $1 AND attempt = $2`, [
      workflowId,
      attempt,
      outcome,
      sipStatusCode ?? null,
    ]);
  }

  async appendAudit(e: AuditEntry): Promise<void> {
    await this.sql.query(
      `INSERT INTO audit_log (idempotency_key, workflow_id, run_id, appointment_id, practice_id, phone, attempt, decided_at,
         decided_at_local, time_zone, time_zone_source, rule_set, rule_set_version, consent_state, day_count, week_count,
         decision, outcome, sip_status_code, sip_status, detail)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
       ON CONFLICT (idempotency_key) DO NOTHING`,
      [
        e.idempotencyKey, e.workflowId, e.runId, e.appointmentId, e.practiceId, e.phone, e.attempt, e.decidedAt,
        e.decidedAtLocal, e.timeZone, e.timeZoneSource, e.ruleSet, e.ruleSetVersion, e.consentState, e.dayCount, e.weekCount,
        e.decision, e.outcome, e.sipStatusCode, e.sipStatus, e.detail === null ? null : JSON.stringify(e.detail),
      ],
    );
  }

  async listAudit(filter: { workflowId?: string; appointmentId?: string } = {}): Promise<AuditRow[]> {
    const { rows } = await this.sql.query<Record<string, unknown>>(
      `SELECT * FROM audit_log WHERE ($1::text IS NULL OR workflow_id = $1) AND ($2::text IS NULL OR appointment_id = $2) ORDER BY id`,
      [filter.workflowId ?? null, filter.appointmentId ?? null],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      idempotencyKey: r.idempotency_key as string,
      workflowId: r.workflow_id as string,
      runId: r.run_id as string,
      appointmentId: r.appointment_id as string,
      practiceId: r.practice_id as string,
      phone: r.phone as string,
      attempt: Number(r.attempt),
      decidedAt: new Date(r.decided_at as string | Date),
      decidedAtLocal: r.decided_at_local as string,
      timeZone: r.time_zone as string,
      timeZoneSource: r.time_zone_source as string,
      ruleSet: r.rule_set as string,
      ruleSetVersion: r.rule_set_version as string,
      consentState: (r.consent_state as AuditRow['consentState']) ?? null,
      dayCount: r.day_count === null ? null : Number(r.day_count),
      weekCount: r.week_count === null ? null : Number(r.week_count),
      decision: r.decision as AuditRow['decision'],
      outcome: (r.outcome as CallOutcome | null) ?? null,
      sipStatusCode: r.sip_status_code === null ? null : Number(r.sip_status_code),
      sipStatus: (r.sip_status as string | null) ?? null,
      detail: json<Record<string, unknown>>(r.detail),
    }));
  }
}

/** Calls to the number on the patient-local day, and in the rolling week before `at`. */
async function countCalls(tx: Queryable, input: ReserveAttemptInput): Promise<{ dayCount: number; weekCount: number; oldestInWeek?: Date }> {
  const { rows } = await tx.query<{ day_count: string | number; week_count: string | number; oldest: string | Date | null }>(
    `SELECT count(*) FILTER (WHERE local_date = $2::date) AS day_count,
            count(*) FILTER (WHERE placed_at > $3 AND placed_at <= $4) AS week_count,
            min(placed_at) FILTER (WHERE placed_at > $3 AND placed_at <= $4) AS oldest
     FROM attempt_ledger WHERE phone = $1`,
    [input.phone, input.localDate, new Date(input.at.getTime() - WEEK_MS), input.at],
  );
  const r = rows[0]!;
  return { dayCount: Number(r.day_count), weekCount: Number(r.week_count), oldestInWeek: r.oldest ? new Date(r.oldest) : undefined };
}

/** jsonb comes back parsed from both drivers; tolerate text for safety. */
function json<T>(value: unknown): T | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}
