/**
 * Import of a practice's schedule export into a campaign: CSV (a file, streamed) or JSON rows
 * (the API). Every row is checked with exactly the single-confirmation rules
 * ({@link parseConfirmationRequest}); valid rows are queued in `campaign_contacts` in batches, bad
 * rows are listed in an {@link ImportReport} by line (CSV) or row (JSON), field and problem.
 *
 * The report never holds a value from a row — not a name, a phone number, a time, nor an id: it is
 * printed on terminals and may be pasted into tickets. It names lines, columns and campaign ids only.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse, type CsvError } from 'csv-parse';
import { confirmationWorkflowId, type CallPolicy, type ConfirmationRequest } from '../contracts';
import { UserError } from '../errors';
import type { Sql } from '../store/sql';
import { parseConfirmationRequest, validateId, ValidationError } from '../validation';
import { CONTACT_BATCH_SIZE, getCampaign, queueContactBatch, validatePractice, type CampaignPractice, type ConfirmedBy, type ContactBatchResult, type ContactRow } from './store';

/** The schedule's columns and the {@link ConfirmationRequest} field each one fills. */
export const CSV_COLUMNS = {
  appointment_id: 'appointmentId',
  patient_id: 'patientId',
  patient_name: 'patientName',
  phone: 'phone',
  patient_time_zone: 'patientTimeZone',
  appointment_start: 'appointmentStart',
  provider: 'provider',
  reason: 'reason',
  practice_callback_number: 'practiceCallbackNumber',
} as const satisfies Record<string, keyof ConfirmationRequest>;
export type CsvColumn = keyof typeof CSV_COLUMNS;
/** Row fields: the request fields a row may set (the practice and the campaign are set per campaign). */
export type RowField = (typeof CSV_COLUMNS)[CsvColumn];
/** Columns every schedule must have. */
export const REQUIRED_COLUMNS: readonly CsvColumn[] = ['appointment_id', 'patient_id', 'patient_name', 'phone', 'patient_time_zone', 'appointment_start', 'provider', 'reason'];
/** Columns a schedule may have: a row's own callback number overrides the campaign's. */
export const OPTIONAL_COLUMNS: readonly CsvColumn[] = ['practice_callback_number'];
const ROW_FIELDS = Object.values(CSV_COLUMNS) as RowField[];
const COLUMN_OF = Object.fromEntries(Object.entries(CSV_COLUMNS).map(([column, field]) => [field, column])) as Record<RowField, CsvColumn>;

/** Longest CSV row accepted, in characters: a real row is a few hundred; a longer one is a broken file (an unclosed quote swallowing the rest). */
export const MAX_CSV_ROW_CHARS = 64 * 1024;
/** Most rows of one JSON import (the API holds them in memory; larger schedules go as CSV). */
export const MAX_JSON_ROWS = 100_000;

/** The schedule file cannot be imported at all (no header, a missing column): nothing was imported. Exit code 2. */
export class ImportFileError extends UserError {}

/** Where a row is: `line` (CSV: the file's line where the row starts) or `row` (JSON: 1-based index). */
export interface RowRef {
  line?: number;
  row?: number;
}

/** One problem with one field of a row. `field` is the CSV column (JSON: the row's key), or `(row)` / `(file)`. */
export interface RowProblem extends RowRef {
  field: string;
  problem: string;
}

/** A row whose appointment id an earlier valid row of the same input has: not queued again. */
export interface DuplicateRow extends RowRef {
  /** Where the kept row is (`line` or `row`, like the duplicate). */
  first: RowRef;
}

/** A valid row whose appointment is confirmed (or being confirmed) elsewhere: not queued. */
export interface AlreadyConfirmingRow extends RowRef {
  by: ConfirmedBy;
}

/** What an import (or a check) did. No value of any row. */
export interface ImportReport {
  practiceId: string;
  /** Absent for a check without a campaign (`campaign validate`). */
  campaignId?: string;
  source: 'csv' | 'json';
  /** True for a check: nothing was stored, and appointments confirmed elsewhere were not looked up (that needs the database). */
  checkedOnly: boolean;
  /** Rows read (blank lines and the header not counted). */
  rowsRead: number;
  /** Rows that passed every check, duplicates not counted. */
  valid: number;
  /** Contacts queued by this import. */
  added: number;
  /** Valid rows already in this campaign (a re-import adds nothing). */
  alreadyImported: number;
  duplicates: DuplicateRow[];
  alreadyConfirming: AlreadyConfirmingRow[];
  invalid: RowProblem[];
  /** Columns of the header that are not schedule columns (CSV), each named once. */
  ignoredColumns: string[];
  /** True when the file could not be read to its end (see the `(file)` entry of `invalid`). */
  incomplete: boolean;
}

/** Rows read and contacts stored so far, for a progress line. */
export interface ImportProgress {
  rowsRead: number;
  rowsStored: number;
}

export interface ImportOptions {
  /** The clock appointment times are checked against (default: now). */
  now?: Date;
  /** Called as rows are read (every few hundred) and after every stored batch. */
  onProgress?: (progress: ImportProgress) => void;
  /** Contacts per stored batch (default {@link CONTACT_BATCH_SIZE}). */
  batchSize?: number;
}

/** A schedule in CSV: its text, its bytes, or a stream of them (a file). */
export type CsvInput = string | Uint8Array | Readable | AsyncIterable<string | Uint8Array>;

/** What a check needs besides the rows: the practice, and (for an import) the campaign and its policy. */
export interface RowContext extends CampaignPractice {
  campaignId?: string;
  policy?: Partial<CallPolicy>;
}

/** A row as read, before the confirmation rules. */
interface SourceRow {
  at: RowRef;
  values?: Partial<Record<RowField, unknown>>;
  problems?: { field: string; problem: string }[];
  /** The input ends here: nothing after it was read. */
  fatal?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/**
 * Checks a CSV schedule without storing anything (and without the database: appointments already
 * confirmed elsewhere are found only by {@link importCsv}). Throws {@link ValidationError} for a bad
 * practice, {@link ImportFileError} for a file that is no schedule (empty, missing columns).
 */
export async function validateCsv(input: CsvInput, context: RowContext, options: ImportOptions = {}): Promise<ImportReport> {
  const ctx = checkContext(context);
  const header: HeaderInfo = { ignoredColumns: [] };
  return run('csv', csvRows(input, header), header, ctx, undefined, options);
}

/** Checks JSON rows (an array of objects with {@link RowField} keys) without storing anything. */
export async function validateJsonRows(rows: unknown, context: RowContext, options: ImportOptions = {}): Promise<ImportReport> {
  const ctx = checkContext(context);
  return run('json', jsonRows(rows), { ignoredColumns: [] }, ctx, undefined, options);
}

/**
 * Imports a CSV schedule into an existing campaign (see `createCampaign`): valid rows are queued,
 * the rest reported. Idempotent: importing the same file again adds nothing. Valid rows are stored
 * even when other rows are bad, batch by batch as the file is read.
 */
export async function importCsv(sql: Sql, campaign: { practiceId: string; campaignId: string }, input: CsvInput, options: ImportOptions = {}): Promise<ImportReport> {
  const ctx = await campaignContext(sql, campaign);
  const header: HeaderInfo = { ignoredColumns: [] };
  return run('csv', csvRows(input, header), header, ctx, (batch) => queueContactBatch(sql, ctx.practiceId, ctx.campaignId!, batch), options);
}

/** Imports JSON rows (an array of objects with {@link RowField} keys, like a ConfirmationRequest's) into an existing campaign. */
export async function importJsonRows(sql: Sql, campaign: { practiceId: string; campaignId: string }, rows: unknown, options: ImportOptions = {}): Promise<ImportReport> {
  const ctx = await campaignContext(sql, campaign);
  return run('json', jsonRows(rows), { ignoredColumns: [] }, ctx, (batch) => queueContactBatch(sql, ctx.practiceId, ctx.campaignId!, batch), options);
}

function checkContext(context: RowContext): RowContext {
  const practice = validatePractice(context);
  const campaignId = context.campaignId === undefined ? undefined : validateId('campaignId', context.campaignId);
  return { ...practice, ...(campaignId ? { campaignId } : {}), ...(context.policy ? { policy: context.policy } : {}) };
}

/** The stored campaign's practice and policy; a campaign that cannot take rows is refused with what to do. */
async function campaignContext(sql: Sql, campaign: { practiceId: string; campaignId: string }): Promise<RowContext> {
  const practiceId = validateId('practiceId', campaign?.practiceId);
  const campaignId = validateId('campaignId', campaign?.campaignId);
  const stored = await getCampaign(sql, practiceId, campaignId);
  if (!stored) throw new UserError(`there is no campaign ${campaignId} of practice ${practiceId}: create it first (check both ids).`, 2);
  if (stored.state === 'CANCELLED' || stored.state === 'COMPLETED') {
    throw new UserError(`campaign ${campaignId} of practice ${practiceId} is ${stored.state.toLowerCase()}: it takes no more rows; import them into a new campaign.`, 2);
  }
  return { practiceId, campaignId, practiceName: stored.practiceName, practiceCallbackNumber: stored.practiceCallbackNumber, ...(stored.policy ? { policy: stored.policy } : {}) };
}

// ---------------------------------------------------------------------------------------------
// The pipeline: rows → confirmation rules → duplicates → batches → report
// ---------------------------------------------------------------------------------------------

interface HeaderInfo {
  ignoredColumns: string[];
}

type Sink = (batch: ContactRow[]) => Promise<ContactBatchResult>;

async function run(source: 'csv' | 'json', rows: AsyncIterable<SourceRow>, header: HeaderInfo, ctx: RowContext, sink: Sink | undefined, options: ImportOptions): Promise<ImportReport> {
  const now = options.now ?? new Date();
  const batchSize = Math.max(1, options.batchSize ?? CONTACT_BATCH_SIZE);
  const report: ImportReport = {
    practiceId: ctx.practiceId,
    ...(ctx.campaignId ? { campaignId: ctx.campaignId } : {}),
    source,
    checkedOnly: !sink,
    rowsRead: 0,
    valid: 0,
    added: 0,
    alreadyImported: 0,
    duplicates: [],
    alreadyConfirming: [],
    invalid: [],
    ignoredColumns: header.ignoredColumns,
    incomplete: false,
  };
  const nameOf = (field: string): string => (source === 'csv' ? (COLUMN_OF[field as RowField] ?? '(row)') : ROW_FIELDS.includes(field as RowField) ? field : '(row)');
  // Appointment id → where its first valid row is. Ids only: a 10,000-row file keeps 10,000 short strings.
  const seen = new Map<string, RowRef>();
  let batch: { contact: ContactRow; at: RowRef }[] = [];
  let rowsStored = 0;
  const progress = () => options.onProgress?.({ rowsRead: report.rowsRead, rowsStored });

  const flush = async () => {
    if (batch.length === 0) return;
    const current = batch;
    batch = [];
    if (sink) {
      const result = await sink(current.map((b) => b.contact));
      for (const { contact, at } of current) {
        const id = contact.appointmentId;
        if (result.added.has(id)) report.added += 1;
        else if (result.alreadyImported.has(id)) report.alreadyImported += 1;
        else {
          const by = result.alreadyConfirming.get(id);
          if (by) report.alreadyConfirming.push({ ...at, by });
        }
      }
    }
    rowsStored += current.length;
    progress();
  };

  for await (const row of rows) {
    if (row.fatal) report.incomplete = true;
    else report.rowsRead += 1;
    if (report.rowsRead % 500 === 0 && !row.fatal) progress();
    if (row.problems) {
      for (const p of row.problems) report.invalid.push({ ...row.at, ...p });
      continue;
    }
    const values = row.values!;
    const request: Record<string, unknown> = {
      practiceId: ctx.practiceId,
      practiceName: ctx.practiceName,
      practiceCallbackNumber: ctx.practiceCallbackNumber,
      ...(ctx.campaignId ? { campaignId: ctx.campaignId } : {}),
      ...(ctx.policy ? { policy: ctx.policy } : {}),
    };
    for (const field of ROW_FIELDS) {
      const value = values[field];
      // An empty callback cell means "the campaign's number"; any other field is required and the rules say so.
      if (field === 'practiceCallbackNumber' && (value === undefined || value === '')) continue;
      if (value !== undefined) request[field] = value;
    }
    let parsed: ConfirmationRequest;
    try {
      parsed = parseConfirmationRequest(request, now);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      for (const p of err.problems) report.invalid.push({ ...row.at, field: nameOf(p.field.split('.')[0]!), problem: p.problem });
      continue;
    }
    const first = seen.get(parsed.appointmentId);
    if (first) {
      report.duplicates.push({ ...row.at, first });
      continue;
    }
    seen.set(parsed.appointmentId, row.at);
    report.valid += 1;
    const override = values.practiceCallbackNumber !== undefined && values.practiceCallbackNumber !== '';
    batch.push({
      at: row.at,
      contact: {
        appointmentId: parsed.appointmentId,
        patientId: parsed.patientId,
        patientName: parsed.patientName,
        phone: parsed.phone,
        patientTimeZone: parsed.patientTimeZone,
        appointmentStart: parsed.appointmentStart,
        provider: parsed.provider,
        reason: parsed.reason,
        ...(override ? { practiceCallbackNumber: parsed.practiceCallbackNumber } : {}),
        ...(row.at.line !== undefined ? { sourceLine: row.at.line } : {}),
        workflowId: confirmationWorkflowId(ctx.practiceId, parsed.appointmentId),
      },
    });
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  progress();
  return report;
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

const LINE_BREAK = /\r\n|\r|\n/g;
const lineBreaks = (value: string): number => value.match(LINE_BREAK)?.length ?? 0;
/** What csv-parse's decoder puts where the bytes are not UTF-8 (an Excel "CSV" in Windows-1252). */
const REPLACEMENT_CHAR = '\uFFFD';

/** A header cell as a column name: case, surrounding spaces and inner spaces/hyphens do not matter (`Appointment ID`). */
function columnName(cell: string): string {
  return cell.trim().toLowerCase().replace(/[\s-]+/g, '_');
}

/** A header cell as shown in the report: printable, bounded. Column names are not health data; the header is checked to be one before this runs. */
function shownColumn(cell: string, index: number): string {
  // eslint-disable-next-line no-control-regex -- removing control characters is the point
  const clean = cell.replace(/[\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g, ' ').trim();
  if (clean === '') return `(unnamed column ${index + 1})`;
  return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}

/** The parser's failure as a sentence (its own message may quote the text: never used). */
function csvFailure(err: CsvError | Error): string {
  switch ((err as CsvError).code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'a quoted field that starts on or after this line is never closed (a missing "): the rest of the file was not read; fix the quote and import the file again';
    case 'CSV_MAX_RECORD_SIZE':
      return `a row longer than ${MAX_CSV_ROW_CHARS / 1024} KB starts on or after this line (probably a missing "): the rest of the file was not read`;
    default:
      return `the file is not valid CSV from this line on (${(err as CsvError).code ?? 'parse error'}): the rest of the file was not read`;
  }
}

/**
 * Reads CSV records with csv-parse (BOM, CRLF / LF / CR, quoted commas and line breaks, blank
 * lines) and yields them as rows by the header's columns. Line numbers are the file's physical
 * lines where each row starts: csv-parse's own count is off after some line endings, so it is
 * rebuilt from what it reports exactly — blank lines skipped (`info.empty_lines`) and the line
 * breaks inside each record's fields.
 */
async function* csvRows(input: CsvInput, header: HeaderInfo): AsyncGenerator<SourceRow> {
  const parser = parse({
    bom: true,
    info: true,
    relax_column_count: true,
    // A stray quote inside a field (`5" tall`) is kept as text rather than failing the file.
    relax_quotes: true,
    skip_empty_lines: true,
    record_delimiter: ['\r\n', '\n', '\r'],
    max_record_size: MAX_CSV_ROW_CHARS,
    // A parse error as an event, not a stream error: a stream that errors drops the records it
    // had parsed but not yet handed over (all of them, for a file given in one chunk).
    skip_records_with_error: true,
  });
  let failure: CsvError | undefined;
  parser.on('skip', (err: CsvError) => {
    failure ??= err;
  });
  const source = typeof input === 'string' || input instanceof Uint8Array ? Readable.from([input]) : Readable.from(input);
  // Errors of the source (a file that cannot be read) reach the loop through the parser, which the pipeline destroys with them.
  const feeding = pipeline(source, parser).catch(() => undefined);
  let columns: (CsvColumn | undefined)[] | undefined;
  let width = 0;
  let endLine = 0;
  let emptyLines = 0;
  let records = 0;
  /** The first parse error ends the read where it happened: records the parser made of the rest are not trusted. */
  const stopped = () => failure !== undefined && records >= (failure.records as number);
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { empty_lines: number } }>) {
      if (stopped()) break;
      records += 1;
      const line = endLine + 1 + (info.empty_lines - emptyLines);
      emptyLines = info.empty_lines;
      endLine = line + record.reduce((n, cell) => n + lineBreaks(cell), 0);
      if (!columns) {
        columns = readHeader(record, line, header);
        width = record.length;
        continue;
      }
      // A row of empty cells (`,,,,` — spreadsheets export blank rows so) is a blank line.
      if (record.every((cell) => cell.trim() === '')) continue;
      const at = { line };
      const extra = record.slice(width);
      if (record.length < width || extra.some((cell) => cell.trim() !== '')) {
        yield { at, problems: [{ field: '(row)', problem: `has ${record.length} fields where the header has ${width}: check for a missing or extra comma, or an unquoted comma inside a value` }] };
        continue;
      }
      const values: Partial<Record<RowField, unknown>> = {};
      const problems: { field: string; problem: string }[] = [];
      columns.forEach((column, i) => {
        if (!column) return;
        const cell = record[i]!;
        if (cell.includes(REPLACEMENT_CHAR)) problems.push({ field: column, problem: 'holds characters that are not UTF-8 text: save the file as "CSV UTF-8"' });
        // Spreadsheet exports pad cells with spaces: trimmed before the confirmation rules (which keep them for phone numbers and ids).
        values[CSV_COLUMNS[column]] = cell.trim();
      });
      yield problems.length > 0 ? { at, problems } : { at, values };
    }
  } finally {
    parser.destroy();
    await feeding;
  }
  if (failure) {
    if (!columns) {
      throw new ImportFileError(`the header row cannot be read as CSV (${failure.code}: a quote that is never closed, or a row that is far too long); nothing was imported.`, 2);
    }
    const line = endLine + 1 + Math.max(0, Number(failure.empty_lines ?? emptyLines) - emptyLines);
    yield { at: { line }, problems: [{ field: '(file)', problem: csvFailure(failure) }], fatal: true };
  }
  if (!columns) throw new ImportFileError(`the file is empty: its first line must be the header naming the columns (${REQUIRED_COLUMNS.join(', ')}); nothing was imported.`, 2);
}

/** Maps header cells to columns; refuses a header that lacks a column or names one twice. Never quotes a cell it does not recognise unless the header is valid. */
function readHeader(record: string[], line: number, header: HeaderInfo): (CsvColumn | undefined)[] {
  const names = record.map(columnName);
  const columns = names.map((name) => (Object.hasOwn(CSV_COLUMNS, name) ? (name as CsvColumn) : undefined));
  const missing = REQUIRED_COLUMNS.filter((c) => !columns.includes(c));
  if (missing.length > 0) {
    // A file without a header has a data row here: its cells are health data, never echoed.
    throw new ImportFileError(
      `the header (line ${line}) has no ${missing.join(', ')} column${missing.length > 1 ? 's' : ''}: the first line must name the columns ${REQUIRED_COLUMNS.join(', ')} (any order; optional: ${OPTIONAL_COLUMNS.join(', ')}); nothing was imported.`,
      2,
    );
  }
  for (const column of [...REQUIRED_COLUMNS, ...OPTIONAL_COLUMNS]) {
    const at = columns.flatMap((c, i) => (c === column ? [i + 1] : []));
    if (at.length > 1) throw new ImportFileError(`the header (line ${line}) names ${column} ${at.length} times (columns ${at.join(', ')}): keep one; nothing was imported.`, 2);
  }
  const ignored = new Set<string>();
  record.forEach((cell, i) => {
    if (!columns[i]) ignored.add(shownColumn(cell, i));
  });
  header.ignoredColumns.push(...ignored);
  return columns;
}

// ---------------------------------------------------------------------------------------------
// JSON rows
// ---------------------------------------------------------------------------------------------

/** Names of unknown keys, bounded (a hostile key must not make the report huge), never their values. */
function unknownKeys(keys: string[]): string {
  const shown = keys.filter((k) => /^[A-Za-z0-9_.-]{1,40}$/.test(k)).slice(0, 10);
  const rest = keys.length - shown.length;
  return `unknown field(s): ${[...shown, ...(rest > 0 ? [`${rest} other${rest > 1 ? 's' : ''}`] : [])].join(', ')} (a row has ${ROW_FIELDS.join(', ')}; the practice is set per campaign)`;
}

async function* jsonRows(rows: unknown): AsyncGenerator<SourceRow> {
  if (!Array.isArray(rows)) throw new ValidationError([{ field: 'rows', problem: 'must be an array of objects (appointmentId, patientId, patientName, phone, …)' }]);
  if (rows.length > MAX_JSON_ROWS) throw new ValidationError([{ field: 'rows', problem: `must hold at most ${MAX_JSON_ROWS} rows (import larger schedules as CSV)` }]);
  for (let i = 0; i < rows.length; i += 1) {
    const at = { row: i + 1 };
    const value: unknown = rows[i];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      yield { at, problems: [{ field: '(row)', problem: 'must be an object (appointmentId, patientId, patientName, phone, …)' }] };
      continue;
    }
    const unknown = Object.keys(value).filter((k) => !ROW_FIELDS.includes(k as RowField));
    if (unknown.length > 0) {
      yield { at, problems: [{ field: '(row)', problem: unknownKeys(unknown) }] };
      continue;
    }
    yield { at, values: value as Partial<Record<RowField, unknown>> };
  }
}

// ---------------------------------------------------------------------------------------------
// The report for people
// ---------------------------------------------------------------------------------------------

/** Entries listed per section of {@link formatReport}; the JSON report has them all. */
export const REPORT_LIST_LIMIT = 50;

const where = (at: RowRef): string => (at.line !== undefined ? `line ${at.line}` : `row ${at.row}`);
const plural = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** The report as text for a terminal: counts, then each bad row by line, field and problem. No row values. */
export function formatReport(report: ImportReport): string {
  const out: string[] = [];
  const what = report.campaignId ? `campaign ${report.campaignId} of practice ${report.practiceId}` : `practice ${report.practiceId}`;
  if (report.checkedOnly) {
    out.push(
      `Checked ${plural(report.rowsRead, 'row')} for ${what}: ${report.valid.toLocaleString('en-US')} valid, ${report.invalid.length === 0 ? 'none' : plural(new Set(report.invalid.map(where)).size, 'row')} invalid, ${plural(report.duplicates.length, 'duplicate')}.`,
      'Nothing was stored. This checks the rows only: appointments already being confirmed (by another campaign or a single start) are found when the rows are imported.',
    );
  } else {
    out.push(
      `Imported into ${what}: ${plural(report.rowsRead, 'row')} read, ${report.added.toLocaleString('en-US')} added, ${report.alreadyImported.toLocaleString('en-US')} already imported, ` +
        `${plural(report.duplicates.length, 'duplicate')}, ${report.alreadyConfirming.length.toLocaleString('en-US')} already being confirmed, ${plural(new Set(report.invalid.map(where)).size, 'invalid row')}.`,
    );
  }
  if (report.rowsRead === 0 && !report.incomplete) out.push(report.source === 'csv' ? 'The file has a header but no appointment rows.' : 'There are no rows.');
  if (report.incomplete) out.push('The file could not be read to its end (see the (file) problem below): rows after it were not read.');
  if (report.ignoredColumns.length > 0) out.push(`Ignored columns (not schedule columns): ${report.ignoredColumns.join(', ')}.`);
  const section = <T>(title: string, items: T[], line: (item: T) => string) => {
    if (items.length === 0) return;
    out.push('', title);
    for (const item of items.slice(0, REPORT_LIST_LIMIT)) out.push(`  ${line(item)}`);
    if (items.length > REPORT_LIST_LIMIT) out.push(`  … and ${(items.length - REPORT_LIST_LIMIT).toLocaleString('en-US')} more (the JSON report lists every one).`);
  };
  section('Invalid rows (not imported; fix them and import the file again — rows already imported are not added twice):', report.invalid, (p) => `${where(p)}: ${p.field} — ${p.problem}`);
  section('Duplicates (the same appointment_id as an earlier row; only the earlier row is used):', report.duplicates, (d) => `${where(d)}: same appointment as ${where(d.first)}`);
  section('Already being confirmed (not queued again):', report.alreadyConfirming, (a) => `${where(a)}: by ${'campaignId' in a.by ? `campaign ${a.by.campaignId}` : 'a single confirmation'}`);
  return out.join('\n');
}
