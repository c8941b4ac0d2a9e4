/**
 * A campaign's results for the front desk, from the database (never from workflow histories): per
 * contact the outcome, the attempts, the last call in the patient's time, the reschedule
 * preference — the call-back list. Read page by page, written as the pages come, so a
 * 10,000-contact campaign never sits in memory at once.
 *
 * This is the one place campaign health data leaves the database, on the user's request: the
 * rows go to the stream the user chose and nowhere else (no logs).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { DateTime } from 'luxon';
import type { ContactStatus } from '../contracts';
import { UserError } from '../errors';
import type { Queryable } from '../store/sql';
import { validateId } from '../validation';
import { getCampaign } from './store';

/** One contact's result. Health data. */
export interface ResultRow {
  appointmentId: string;
  patientId: string;
  patientName: string;
  phone: string;
  /** As imported (ISO 8601 with offset). */
  appointmentStart: string;
  /** What became of the contact row (QUEUED, STARTED, SKIPPED, CANCELLED). */
  status: ContactStatus;
  /** The confirmation's final outcome (`appointments.outcome`); null while it runs or before it starts. */
  outcome: string | null;
  /** Where the confirmation stands (`appointments.phase`); null before it starts. */
  phase: string | null;
  /** Calls placed (attempt ledger rows of the confirmation). */
  attempts: number;
  /** When the last call was placed, ISO 8601 in the patient's time zone; null before the first. */
  lastCallAt: string | null;
  reschedulePreference: string | null;
  note: string | null;
  /** Why the campaign did not call (SKIPPED rows). */
  skipReason: string | null;
}

/** Columns of the CSV export, in order, and the field each one shows. */
export const RESULT_COLUMNS = [
  ['appointment_id', 'appointmentId'],
  ['patient_id', 'patientId'],
  ['patient_name', 'patientName'],
  ['phone', 'phone'],
  ['appointment_start', 'appointmentStart'],
  ['status', 'status'],
  ['outcome', 'outcome'],
  ['phase', 'phase'],
  ['attempts', 'attempts'],
  ['last_call_at', 'lastCallAt'],
  ['reschedule_preference', 'reschedulePreference'],
  ['note', 'note'],
  ['skip_reason', 'skipReason'],
] as const satisfies readonly (readonly [string, keyof ResultRow])[];

/** Contacts read per query. */
export const RESULTS_PAGE_SIZE = 1_000;

export type ResultFormat = 'csv' | 'json';

/**
 * The campaign's results, soonest appointment first, a page at a time (keyset pagination: every
 * page is one indexed query, however far into the campaign). Throws {@link UserError} when there
 * is no such campaign.
 */
export async function* campaignResults(sql: Queryable, campaign: { practiceId: string; campaignId: string }, options: { pageSize?: number } = {}): AsyncGenerator<ResultRow> {
  const practiceId = validateId('practiceId', campaign?.practiceId);
  const campaignId = validateId('campaignId', campaign?.campaignId);
  if (!(await getCampaign(sql, practiceId, campaignId))) {
    throw new UserError(`there is no campaign ${campaignId} of practice ${practiceId} in this database: check both ids (and DATABASE_URL / PGLITE_DATA_DIR).`, 2);
  }
  const pageSize = Math.max(1, options.pageSize ?? RESULTS_PAGE_SIZE);
  let after: { startsAt: Date; appointmentId: string } | undefined;
  for (;;) {
    const { rows } = await sql.query<Record<string, unknown>>(
      `SELECT c.appointment_id, c.patient_id, c.patient_name, c.phone, c.patient_time_zone, c.appointment_start, c.starts_at,
              c.status, c.skip_reason, a.outcome, a.phase, a.outcome_detail, l.attempts, l.last_call_at
       FROM campaign_contacts c
       LEFT JOIN appointments a ON a.practice_id = c.practice_id AND a.appointment_id = c.appointment_id
       LEFT JOIN LATERAL (
         SELECT count(*) AS attempts, max(placed_at) AS last_call_at FROM attempt_ledger WHERE workflow_id = c.workflow_id
       ) l ON true
       WHERE c.practice_id = $1 AND c.campaign_id = $2
         AND ($3::timestamptz IS NULL OR (c.starts_at, c.appointment_id) > ($3::timestamptz, $4::text))
       ORDER BY c.starts_at, c.appointment_id
       LIMIT $5`,
      [practiceId, campaignId, after?.startsAt.toISOString() ?? null, after?.appointmentId ?? null, pageSize],
    );
    for (const r of rows) yield resultRow(r);
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1]!;
    after = { startsAt: last.starts_at as Date, appointmentId: String(last.appointment_id) };
  }
}

function resultRow(r: Record<string, unknown>): ResultRow {
  const detail = (r.outcome_detail ?? {}) as { reschedulePreference?: unknown; note?: unknown };
  const zone = String(r.patient_time_zone);
  const last = r.last_call_at as Date | null;
  return {
    appointmentId: String(r.appointment_id),
    patientId: String(r.patient_id),
    patientName: String(r.patient_name),
    phone: String(r.phone),
    appointmentStart: String(r.appointment_start),
    status: r.status as ContactStatus,
    outcome: (r.outcome as string | null) ?? null,
    phase: (r.phase as string | null) ?? null,
    attempts: Number(r.attempts ?? 0),
    lastCallAt: last ? DateTime.fromJSDate(last).setZone(zone).toISO({ suppressMilliseconds: true }) : null,
    reschedulePreference: typeof detail.reschedulePreference === 'string' ? detail.reschedulePreference : null,
    note: typeof detail.note === 'string' ? detail.note : null,
    skipReason: (r.skip_reason as string | null) ?? null,
  };
}

const E164_SHAPE = /^\+[1-9]\d{6,14}$/;

/**
 * One CSV cell (RFC 4180 quoting). A cell a spreadsheet would run as a formula (`=`, `+`, `-`,
 * `@`, tab, carriage return first) gets a leading `'`: patient names and the agent's notes come
 * from outside and the front desk opens this file in a spreadsheet. Phone numbers in E.164 start
 * with `+` and are left alone — a number is no formula, and the desk dials what it reads.
 */
export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text) && !E164_SHAPE.test(text)) text = `'${text}`;
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A result row as a CSV line (CRLF, as spreadsheets expect). */
export function resultCsvLine(row: ResultRow): string {
  return `${RESULT_COLUMNS.map(([, field]) => csvCell(row[field])).join(',')}\r\n`;
}

/** Header line of the CSV export. */
export const RESULTS_CSV_HEADER = `${RESULT_COLUMNS.map(([column]) => column).join(',')}\r\n`;

/**
 * Writes the campaign's results to `out` as CSV (header, then a line per contact) or JSON (an
 * array of {@link ResultRow}), waiting for the stream to drain between pages. Returns the number of
 * contacts written. Does not end `out`.
 */
export async function writeCampaignResults(sql: Queryable, campaign: { practiceId: string; campaignId: string }, format: ResultFormat, out: Writable, options: { pageSize?: number } = {}): Promise<number> {
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  let n = 0;
  const rows = campaignResults(sql, campaign, options);
  // The first row (or the end) before anything is written: a missing campaign fails without a stray header.
  let next = await rows.next();
  await write(format === 'csv' ? RESULTS_CSV_HEADER : '[');
  for (; !next.done; next = await rows.next()) {
    const row = next.value;
    await write(format === 'csv' ? resultCsvLine(row) : `${n === 0 ? '\n' : ',\n'}  ${JSON.stringify(row)}`);
    n += 1;
  }
  if (format === 'json') await write(n === 0 ? ']\n' : '\n]\n');
  return n;
}
