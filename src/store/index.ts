/**
 * The scheduling-system port's reference implementation and the compliance records, on embedded
 * PGlite (default) or PostgreSQL (`databaseUrl`). It never logs: its rows hold health data.
 */
import {
  ConsentState,
  type CallOutcome,
  type Phase,
  type OutcomeDetail,
  type RegisterConfirmationInput,
  type TimeZoneCheck,
  type TimeZoneOverrideInput,
} from '../contracts';
import type {
  AuditEntry,
  AuditRow,
  ConfirmationStore,
  LedgerCall,
  ReserveAttemptInput,
  ReserveAttemptResult,
  PhaseChange,
  StoredAppointment,
  TimeZoneOverride,
  TimeZoneOverrideRecord,
} from '../ports';
import { migrate } from './migrations';
import { json, openPglite, openPostgres, type Sql } from './sql';
import { hostDatabaseThread } from './thread-host';

export { MIGRATIONS, type Migration } from './migrations';
export type { Sql, Queryable } from './sql';
export { DatabaseInUseError } from './embedded';

/**
 * Where the data lives: PostgreSQL when `databaseUrl` is set, else PGlite in `dataDir` (in memory
 * without one). A PGlite data directory is shared between processes through its owner (the first
 * to open it); see ./embedded.ts.
 */
export interface StoreConfig {
  databaseUrl?: string;
  dataDir?: string;
  /** What this process is (`worker`, `cli`, `demo`), named to others when it owns the data directory. */
  processName?: string;
  /**
   * An in-memory database (no `dataDir`) on its own thread (`thread`), reached over its socket like
   * a data directory's owner, instead of on the caller's thread (`inline`, the default).
   */
  embedded?: 'inline' | 'thread';
}

/** Opens the database and applies pending migrations. */
export async function createStore(config: StoreConfig = {}): Promise<SqlStore> {
  const sql = config.databaseUrl
    ? await openPostgres(config.databaseUrl)
    : config.embedded === 'thread' && !config.dataDir
      ? await hostDatabaseThread()
      : await openPglite(config.dataDir, { name: config.processName });
  const store = new SqlStore(sql);
  try {
    await store.migrate();
  } catch (err) {
    await sql.close();
    throw err;
  }
  return store;
}

/** One implementation for both databases. `sql` is the raw executor, for operators' queries and tests. */
export class SqlStore implements ConfirmationStore {
  constructor(readonly sql: Sql) {}

  get kind(): Sql['kind'] {
    return this.sql.kind;
  }

  async migrate(): Promise<void> {
    await migrate(this.sql);
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /**
   * Upserts the appointment row. The workflow registers it on its first plan and after a move, while
   * it runs; status and outcome are left alone, so a late retry of a planning activity never turns a
   * written-back outcome into PENDING again (a workflow id runs once).
   */
  async registerConfirmation(input: RegisterConfirmationInput): Promise<void> {
    await this.sql.query(
      `INSERT INTO appointments (practice_id, appointment_id, patient_id, phone, time_zone, starts_at, workflow_id, campaign_id, phase)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'PLANNING')
       ON CONFLICT (practice_id, appointment_id) DO UPDATE SET
         patient_id = EXCLUDED.patient_id, phone = EXCLUDED.phone, time_zone = EXCLUDED.time_zone,
         starts_at = EXCLUDED.starts_at, workflow_id = EXCLUDED.workflow_id,
         campaign_id = COALESCE(EXCLUDED.campaign_id, appointments.campaign_id), updated_at = now()`,
      [
        input.practiceId,
        input.appointmentId,
        input.patientId,
        input.phone,
        input.patientTimeZone,
        new Date(input.appointmentStart),
        input.workflowId,
        input.campaignId ?? null,
      ],
    );
  }

  async activeWorkflowIdsForPhone(phone: string, practiceId?: string): Promise<string[]> {
    const { rows } = await this.sql.query<{ workflow_id: string }>(
      `SELECT workflow_id FROM appointments WHERE phone = $1 AND status = 'PENDING' AND ($2::text IS NULL OR practice_id = $2)
       ORDER BY created_at, workflow_id`,
      [phone, practiceId ?? null],
    );
    return rows.map((r) => r.workflow_id);
  }

  async writeBack(practiceId: string, appointmentId: string, outcome: CallOutcome, detail?: OutcomeDetail): Promise<void> {
    await this.sql.query(
      `UPDATE appointments SET status = 'DONE', phase = 'DONE', next_call_at = NULL, outcome = $3, outcome_detail = $4, updated_at = now()
       WHERE practice_id = $1 AND appointment_id = $2`,
      [practiceId, appointmentId, outcome, detail === undefined ? null : JSON.stringify(detail)],
    );
  }

  async getAppointment(practiceId: string, appointmentId: string): Promise<StoredAppointment | undefined> {
    const { rows } = await this.sql.query<Record<string, unknown>>(
      `SELECT * FROM appointments WHERE practice_id = $1 AND appointment_id = $2`,
      [practiceId, appointmentId],
    );
    return appointmentRow(rows[0]);
  }

  async appointmentOfWorkflow(workflowId: string): Promise<StoredAppointment | undefined> {
    const { rows } = await this.sql.query<Record<string, unknown>>(`SELECT * FROM appointments WHERE workflow_id = $1`, [workflowId]);
    return appointmentRow(rows[0]);
  }

  async recordConsent(input: { practiceId: string; phone: string; patientId?: string; granted: boolean; source: string }): Promise<void> {
    // Appended, never overwritten: the consent history is evidence; the latest record counts.
    await this.sql.query(
      `INSERT INTO consent (practice_id, phone, patient_id, granted, source) VALUES ($1, $2, $3, $4, $5)`,
      [input.practiceId, input.phone, input.patientId ?? null, input.granted, input.source],
    );
  }

  async consentState(practiceId: string, phone: string): Promise<ConsentState> {
    return (await this.callingFacts(practiceId, phone)).consent;
  }

  async callingFacts(practiceId: string, phone: string): Promise<{ consent: ConsentState; override: TimeZoneOverride | undefined }> {
    // One statement: a plan runs it for every attempt.
    const { rows } = await this.sql.query<Record<string, unknown> & { dnc: boolean; granted: boolean | null }>(
      `SELECT EXISTS (SELECT 1 FROM do_not_call WHERE phone = $2) AS dnc,
              (SELECT granted FROM consent WHERE practice_id = $1 AND phone = $2 ORDER BY id DESC LIMIT 1) AS granted,
              o.id, o.zone, o.reason, o.actor, o.recorded_at
       FROM (SELECT 1) AS one
       LEFT JOIN LATERAL (SELECT * FROM time_zone_overrides WHERE practice_id = $1 AND phone = $2 ORDER BY id DESC LIMIT 1) AS o ON true`,
      [practiceId, phone],
    );
    const r = rows[0]!;
    const consent = r.dnc
      ? ConsentState.DO_NOT_CALL
      : r.granted === null || r.granted === undefined
        ? ConsentState.MISSING
        : r.granted
          ? ConsentState.GRANTED
          : ConsentState.REVOKED;
    return { consent, override: r.id === null || r.id === undefined ? undefined : overrideInForce(r) };
  }

  async recordTimeZoneOverride(input: TimeZoneOverrideInput): Promise<number> {
    // Appended, never overwritten: the override's history is its audit trail; the latest record counts.
    const { rows } = await this.sql.query<{ id: string | number }>(
      `INSERT INTO time_zone_overrides (practice_id, phone, zone, reason, actor) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [input.practiceId, input.phone, input.zone, input.reason, input.actor],
    );
    return Number(rows[0]!.id);
  }

  async timeZoneOverride(practiceId: string, phone: string): Promise<TimeZoneOverride | undefined> {
    const { rows } = await this.sql.query<Record<string, unknown>>(
      `SELECT * FROM time_zone_overrides WHERE practice_id = $1 AND phone = $2 ORDER BY id DESC LIMIT 1`,
      [practiceId, phone],
    );
    return rows[0] ? overrideInForce(rows[0]) : undefined;
  }

  async listTimeZoneOverrides(practiceId: string, phone: string): Promise<TimeZoneOverrideRecord[]> {
    const { rows } = await this.sql.query<Record<string, unknown>>(
      `SELECT * FROM time_zone_overrides WHERE practice_id = $1 AND phone = $2 ORDER BY id`,
      [practiceId, phone],
    );
    return rows.map(overrideRow);
  }

  async addDoNotCall(phone: string, source: string, reason: string): Promise<void> {
    await this.sql.query(
      `INSERT INTO do_not_call (phone, reason, source) VALUES ($1, $2, $3) ON CONFLICT (phone) DO NOTHING`,
      [phone, reason, source],
    );
  }

  async reserveAttempt(input: ReserveAttemptInput): Promise<ReserveAttemptResult> {
    // One statement (migration 7's reserve_attempt): serialised per number by an advisory lock, so
    // two racers for the last slot queue and the second counts the first one's row; a retried
    // activity finds its reservation and gets the first result, with no second row.
    const { rows } = await this.sql.query<{
      reserved: boolean;
      other_number: boolean;
      day_count: number | null;
      week_count: number | null;
      oldest_in_week: Date | string | null;
    }>(`SELECT * FROM reserve_attempt($1, $2, $3, $4, $5, $6::date, $7, $8)`, [
      input.workflowId,
      input.attempt,
      input.appointmentId,
      input.phone,
      input.at,
      input.localDate,
      input.maxCallsPerDay,
      input.maxCallsPerWeek,
    ]);
    const r = rows[0]!;
    // Never answer for a number whose ledger does not hold the call (the message names no number).
    if (r.other_number) throw new Error(`attempt ${input.attempt} of ${input.workflowId} is reserved for another number`);
    const oldest = r.oldest_in_week === null ? undefined : new Date(r.oldest_in_week);
    return withOldest({ reserved: r.reserved, dayCount: Number(r.day_count), weekCount: Number(r.week_count) }, input.maxCallsPerWeek, oldest);
  }

  async callsToNumber(phone: string, since: Date): Promise<LedgerCall[]> {
    const { rows } = await this.sql.query<{ placed_at: Date | string; local_date: Date | string }>(
      `SELECT placed_at, to_char(local_date, 'YYYY-MM-DD') AS local_date FROM attempt_ledger WHERE phone = $1 AND placed_at > $2`,
      [phone, since],
    );
    return rows.map((r) => ({ placedAt: new Date(r.placed_at), localDate: String(r.local_date) }));
  }

  async attemptOutcome(workflowId: string, attempt: number): Promise<CallOutcome | null> {
    const { rows } = await this.sql.query<{ outcome: CallOutcome | null }>(
      `SELECT outcome FROM attempt_ledger WHERE workflow_id = $1 AND attempt = $2`,
      [workflowId, attempt],
    );
    return rows[0]?.outcome ?? null;
  }

  async recordAttemptOutcome(workflowId: string, attempt: number, outcome: CallOutcome, sipStatusCode?: number): Promise<void> {
    await this.sql.query(`UPDATE attempt_ledger SET outcome = $3, sip_status_code = $4, outcome_at = now() WHERE workflow_id = $1 AND attempt = $2`, [
      workflowId,
      attempt,
      outcome,
      sipStatusCode ?? null,
    ]);
  }

  async releaseReservation(workflowId: string, attempt: number): Promise<boolean> {
    const { rows } = await this.sql.query<{ attempt: number }>(
      `DELETE FROM attempt_ledger WHERE workflow_id = $1 AND attempt = $2 AND outcome IS NULL RETURNING attempt`,
      [workflowId, attempt],
    );
    return rows.length > 0;
  }

  async recordPhase(practiceId: string, appointmentId: string, phase: Phase, nextCallAt?: Date): Promise<void> {
    await this.sql.query(
      `UPDATE appointments SET phase = $3, next_call_at = $4, updated_at = now() WHERE practice_id = $1 AND appointment_id = $2`,
      [practiceId, appointmentId, phase, nextCallAt ?? null],
    );
  }

  async appendAudit(e: AuditEntry, then?: PhaseChange): Promise<void> {
    const insert = `INSERT INTO audit_log (idempotency_key, workflow_id, run_id, appointment_id, practice_id, phone, attempt, decided_at,
         decided_at_local, time_zone, time_zone_source, rule_set, rule_set_version, consent_state, day_count, week_count,
         decision, outcome, sip_status_code, sip_status, detail, time_zones)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
       ON CONFLICT (idempotency_key) DO NOTHING`;
    const params = [
      e.idempotencyKey, e.workflowId, e.runId, e.appointmentId, e.practiceId, e.phone, e.attempt, e.decidedAt,
      e.decidedAtLocal, e.timeZone, e.timeZoneSource, e.ruleSet, e.ruleSetVersion, e.consentState, e.dayCount, e.weekCount,
      e.decision, e.outcome, e.sipStatusCode, e.sipStatus, e.detail === null ? null : JSON.stringify(e.detail),
      e.timeZones ? JSON.stringify(e.timeZones) : null,
    ];
    if (!then) {
      await this.sql.query(insert, params);
      return;
    }
    // A data-modifying WITH runs to completion whether or not the UPDATE reads it: one round trip.
    await this.sql.query(
      `WITH audited AS (${insert})
       UPDATE appointments SET phase = $23, next_call_at = $24, updated_at = now() WHERE practice_id = $5 AND appointment_id = $4`,
      [...params, then.phase, then.nextCallAt ?? null],
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
      // Planning rows only (and only those written since migration 6).
      ...(r.time_zones == null ? {} : { timeZones: json<TimeZoneCheck>(r.time_zones) }),
    }));
  }
}

/** Calls to the number on the patient-local day, and in the rolling week (at − 7 days, at], with the oldest of those. */
/** `oldestInWeek` is reported when the week is full (a slot opens 7 days after it). */
function withOldest(result: ReserveAttemptResult, maxCallsPerWeek: number, oldest: Date | undefined): ReserveAttemptResult {
  return result.weekCount >= maxCallsPerWeek && oldest ? { ...result, oldestInWeek: oldest } : result;
}

/** Maps an appointments row. */
function appointmentRow(r: Record<string, unknown> | undefined): StoredAppointment | undefined {
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

/** The override a latest time_zone_overrides row puts in force: none when that record withdrew it. */
function overrideInForce(r: Record<string, unknown>): TimeZoneOverride | undefined {
  const latest = overrideRow(r);
  return latest.zone ? { ...latest, zone: latest.zone } : undefined;
}

/** Maps a time_zone_overrides row. */
function overrideRow(r: Record<string, unknown>): TimeZoneOverrideRecord {
  return {
    id: Number(r.id),
    zone: (r.zone as string | null) ?? null,
    reason: r.reason as string,
    actor: r.actor as string,
    recordedAt: new Date(r.recorded_at as string | Date),
  };
}
