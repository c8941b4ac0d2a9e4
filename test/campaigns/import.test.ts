/**
 * Schedule import: CSV edge cases, the confirmation rules per row, the report (never a row's
 * value), duplicates, appointments confirmed elsewhere, idempotent re-import, and a 10,000-row
 * import — against real PGlite, and the storage paths once more against PostgreSQL 15.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatReport,
  ImportFileError,
  importCsv,
  importJsonRows,
  REQUIRED_COLUMNS,
  validateCsv,
  validateJsonRows,
  type ImportReport,
} from '../../src/campaigns/import';
import { makeScheduleText } from '../../src/campaigns/sample';
import { createCampaign, getCampaign } from '../../src/campaigns/store';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { UserError } from '../../src/errors';
import { createStore, type SqlStore } from '../../src/store';
import { isE164, ValidationError } from '../../src/validation';
import { csvOf, NOW, PRACTICE, row } from './helpers';

const SAMPLE = fileURLToPath(new URL('../../src/campaigns/sample-schedule.csv', import.meta.url));
const opts = { now: NOW };

/** The error a promise rejects with (an Error saying so when it resolves). */
const failure = (p: Promise<unknown>): Promise<Error> => p.then(() => new Error('resolved'), (e: unknown) => e as Error);

/** Every printed or stored form of a report. */
const printed = (report: ImportReport) => `${JSON.stringify(report)}\n${formatReport(report)}`;

describe('CSV reading (no database)', () => {
  it('the bundled sample is valid: a dozen fictional patients across US time zones', async () => {
    const report = await validateCsv(createReadStream(SAMPLE), PRACTICE, opts);
    expect(report).toMatchObject({ rowsRead: 12, valid: 12, invalid: [], duplicates: [], ignoredColumns: [], checkedOnly: true, incomplete: false });
    expect(formatReport(report)).toContain('Nothing was stored');
  });

  it('takes the columns in any order, BOM, CRLF, quoted commas and line breaks, blank lines; lines are physical lines', async () => {
    const columns = [...REQUIRED_COLUMNS].reverse();
    const r1 = row(1, { patient_name: 'Rivera, Sam' });
    const r2 = row(2, { reason: 'cleaning\r\nand check-up' }); // a quoted line break: not allowed in a reason (control characters)
    const r3 = row(3, { phone: 'bad' });
    const text = '\ufeff' + ['', columns.join(','), '', ...[r1, r2, r3].map((r) => columns.map((c) => (/[,\r\n]/.test(r[c]!) ? `"${r[c]}"` : r[c])).join(',')), '', ''].join('\r\n');
    // Lines: 1 blank, 2 header, 3 blank, 4 r1, 5–6 r2 (quoted CRLF), 7 r3.
    const report = await validateCsv(text, PRACTICE, opts);
    expect(report.rowsRead).toBe(3);
    expect(report.valid).toBe(1);
    expect(report.invalid).toEqual([
      { line: 5, field: 'reason', problem: expect.stringContaining('control characters') },
      { line: 7, field: 'phone', problem: expect.stringContaining('E.164') },
    ]);
  });

  it('counts lines right across LF, CR and CRLF, runs of blank lines and multi-line fields', async () => {
    const header = REQUIRED_COLUMNS.join(',');
    const good = (n: number) => Object.values(row(n)).join(',');
    const bad = (n: number) => Object.values(row(n, { patient_time_zone: 'Mars/Base' })).join(',');
    const multi = (n: number) => Object.values(row(n, { patient_name: '"Sam\n\nRivera"' })).join(',');
    const text = `${header}\n\n\r\n${good(1)}\r${multi(2)}\r\n${bad(3)}\n\n${bad(4)}\r\n,,,\n${bad(5)}`;
    // 1 header, 2–3 blank, 4 good, 5–7 multi (invalid: line breaks), 8 bad, 9 blank, 10 bad, 11 ",,," (blank row), 12 bad.
    const report = await validateCsv(text, PRACTICE, opts);
    expect(report.rowsRead).toBe(5);
    expect(report.invalid.map((p) => [p.line, p.field])).toEqual([
      [5, 'patient_name'],
      [8, 'patient_time_zone'],
      [10, 'patient_time_zone'],
      [12, 'patient_time_zone'],
    ]);
  });

  it('ignores extra columns and lists each once; header names are case- and space-insensitive', async () => {
    const columns = ['Notes', ...REQUIRED_COLUMNS.map((c) => (c === 'patient_name' ? ' Patient Name ' : c)), 'insurance', 'notes', ''];
    const rows = [row(1, { Notes: 'x', insurance: 'y' }), row(2)].map((r) => ({ ...r, ' Patient Name ': r.patient_name! }));
    const report = await validateCsv(csvOf(rows, columns), PRACTICE, opts);
    expect(report.valid).toBe(2);
    expect(report.ignoredColumns).toEqual(['Notes', 'insurance', 'notes', '(unnamed column 12)']);
    expect(formatReport(report)).toContain('Ignored columns (not schedule columns): Notes, insurance, notes, (unnamed column 12).');
  });

  it('refuses a header without a required column, naming the columns and never the cells', async () => {
    const columns = REQUIRED_COLUMNS.filter((c) => c !== 'phone' && c !== 'reason');
    await expect(validateCsv(csvOf([row(1)], columns), PRACTICE, opts)).rejects.toThrow(/header \(line 1\) has no phone, reason columns.*nothing was imported/);
    // No header at all: the first data row is taken as the header; its values are never echoed.
    const headless = csvOf([row(1, { patient_name: 'PHIMARK-name', phone: '+12125550111' })]).split('\n').slice(1).join('\n');
    const err = await failure(validateCsv(headless, PRACTICE, opts));
    expect(err).toBeInstanceOf(ImportFileError);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).not.toMatch(/PHIMARK|5550111/);
    expect(err.message).toContain('the first line must name the columns');
  });

  it('refuses a header naming a schedule column twice', async () => {
    const columns = [...REQUIRED_COLUMNS, 'Phone'];
    await expect(validateCsv(csvOf([{ ...row(1), Phone: '+12125550100' }], columns), PRACTICE, opts)).rejects.toThrow(/names phone 2 times \(columns 4, 9\)/);
  });

  it('refuses an empty file; a header without rows reads nothing', async () => {
    for (const text of ['', '\ufeff', '\n\r\n\n']) {
      await expect(validateCsv(text, PRACTICE, opts)).rejects.toThrow(/the file is empty/);
    }
    const report = await validateCsv(`${REQUIRED_COLUMNS.join(',')}\n\n`, PRACTICE, opts);
    expect(report.rowsRead).toBe(0);
    expect(formatReport(report)).toContain('no appointment rows');
  });

  it('reports rows with too few or too many fields per row; trailing empty fields are fine', async () => {
    const header = REQUIRED_COLUMNS.join(',');
    const good = Object.values(row(1)).join(',');
    const text = [header, good, Object.values(row(2)).slice(0, 6).join(','), `${Object.values(row(3)).join(',')},extra`, `${Object.values(row(4)).join(',')},,`, ''].join('\n');
    const report = await validateCsv(text, PRACTICE, opts);
    expect(report.rowsRead).toBe(4);
    expect(report.valid).toBe(2);
    expect(report.invalid).toEqual([
      { line: 3, field: '(row)', problem: expect.stringContaining('has 6 fields where the header has 8') },
      { line: 4, field: '(row)', problem: expect.stringContaining('has 9 fields where the header has 8') },
    ]);
  });

  it('an unclosed quote ends the read: earlier rows count, the report says where and that the rest was not read', async () => {
    const header = REQUIRED_COLUMNS.join(',');
    const text = [header, Object.values(row(1)).join(','), Object.values(row(2, { patient_name: '"Sam' })).join(','), Object.values(row(3)).join(','), ''].join('\n');
    const report = await validateCsv(text, PRACTICE, opts);
    expect(report.valid).toBe(1);
    expect(report.incomplete).toBe(true);
    expect(report.invalid).toEqual([{ line: 3, field: '(file)', problem: expect.stringContaining('never closed') }]);
    expect(formatReport(report)).toContain('could not be read to its end');
  });

  it('a row longer than 64 KB ends the read at its line (a file broken that way is no schedule past it)', async () => {
    const lines = csvOf([row(1), row(2, { provider: `Dr. ${'x'.repeat(70_000)}` }), row(3)]).split('\n');
    const report = await validateCsv(lines.join('\n'), PRACTICE, opts);
    expect(report).toMatchObject({ valid: 1, incomplete: true, invalid: [{ line: 3, field: '(file)', problem: expect.stringContaining('longer than 64 KB') }] });
  });

  it('a stray quote inside a field is text, not a broken file', async () => {
    const text = csvOf([row(1)]).replace('Pat 1', 'Pat "Sunny" 1');
    const report = await validateCsv(text.replace('"Pat ""Sunny"" 1"', 'Pat "Sunny" 1'), PRACTICE, opts);
    expect(report).toMatchObject({ valid: 1, invalid: [] });
  });

  it('bytes that are not UTF-8 are reported by column, not imported garbled', async () => {
    const bytes = Buffer.concat([Buffer.from(csvOf([row(1)]).replace('Pat 1', 'Ren')), Buffer.from([])]);
    const at = bytes.indexOf('Ren') + 3;
    const latin1 = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xe9]), bytes.subarray(at)]); // "René" in Windows-1252
    const report = await validateCsv(Readable.from([latin1]), PRACTICE, opts);
    expect(report.invalid).toEqual([{ line: 2, field: 'patient_name', problem: expect.stringContaining('CSV UTF-8') }]);
  });

  it('checks every row with the single-confirmation rules, by CSV column', async () => {
    const rows = [
      row(1, { appointment_id: 'A:1' }),
      row(2, { appointment_start: '2026-11-29T10:00:00-05:00' }),
      row(3, { appointment_start: '2026-12-02T10:00:00' }),
      row(4, { patient_time_zone: 'Mars/Base' }),
      row(5, { patient_name: '' }),
      row(6, { practice_callback_number: '+1312' }),
      row(7, { practice_callback_number: '+13125550177' }),
      row(8, { practice_callback_number: '' }),
      row(9, { appointment_start: '2028-01-01T10:00:00-05:00' }),
    ];
    const report = await validateCsv(csvOf(rows, [...REQUIRED_COLUMNS, 'practice_callback_number']), PRACTICE, opts);
    expect(report.invalid.map((p) => [p.line, p.field])).toEqual([
      [2, 'appointment_id'],
      [3, 'appointment_start'],
      [4, 'appointment_start'],
      [5, 'patient_time_zone'],
      [6, 'patient_name'],
      [7, 'practice_callback_number'],
      [10, 'appointment_start'],
    ]);
    expect(report.invalid[1]!.problem).toBe('must be in the future');
    expect(report.valid).toBe(2);
  });

  it('refuses a bad practice before reading, naming the fields', async () => {
    const err = await validateCsv(csvOf([row(1)]), { practiceId: 'p 1', practiceName: '', practiceCallbackNumber: '555' }, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).problems.map((p) => p.field)).toEqual(['practiceId', 'practiceName', 'practiceCallbackNumber']);
  });

  it('reports duplicates of an appointment id with the line of the kept row; an invalid first copy does not count', async () => {
    const rows = [row(1), row(2, { phone: 'x', appointment_id: 'A9' }), row(3), row(1, { patient_name: 'Other' }), row(9), row(3)];
    const report = await validateCsv(csvOf(rows), PRACTICE, opts);
    expect(report.valid).toBe(3);
    expect(report.duplicates).toEqual([
      { line: 5, first: { line: 2 } },
      { line: 7, first: { line: 4 } },
    ]);
    expect(formatReport(report)).toContain('line 5: same appointment as line 2');
  });

  it('JSON rows: the same rules, by row index and key', async () => {
    const json = (n: number, o: Record<string, unknown> = {}) => ({
      appointmentId: `A${n}`,
      patientId: `P${n}`,
      patientName: `Pat ${n}`,
      phone: '+12125550100',
      patientTimeZone: 'America/Chicago',
      appointmentStart: '2026-12-02T10:30:00-06:00',
      provider: 'Dr. Rivera',
      reason: 'cleaning',
      ...o,
    });
    const report = await validateJsonRows([json(1), json(2, { phone: 12125550100 }), 'x', json(4, { practiceId: 'other', notes: 'y' }), json(1)], PRACTICE, opts);
    expect(report.source).toBe('json');
    expect(report.valid).toBe(1);
    expect(report.invalid).toEqual([
      { row: 2, field: 'phone', problem: expect.stringContaining('must be a string') },
      { row: 3, field: '(row)', problem: expect.stringContaining('must be an object') },
      { row: 4, field: '(row)', problem: expect.stringContaining('unknown field(s): practiceId, notes') },
    ]);
    expect(report.duplicates).toEqual([{ row: 5, first: { row: 1 } }]);
    expect(formatReport(report)).toContain('row 2: phone');
    await expect(validateJsonRows({ rows: [] }, PRACTICE, opts)).rejects.toThrow(ValidationError);
  });

  it('the generator writes valid schedules with distinct fictional numbers over many area codes', async () => {
    const text = makeScheduleText({ rows: 2_000, seed: 3, now: NOW });
    expect(makeScheduleText({ rows: 2_000, seed: 3, now: NOW })).toBe(text);
    const phones = text.split('\r\n').slice(1, -1).map((l) => l.split(',')[3]!);
    expect(new Set(phones).size).toBe(2_000);
    expect(phones.every((p) => /^\+1\d{3}5550[1]\d\d$/.test(p) && isE164(p))).toBe(true);
    expect(new Set(phones.map((p) => p.slice(2, 5))).size).toBeGreaterThan(100);
    const report = await validateCsv(text, PRACTICE, opts);
    expect(report).toMatchObject({ valid: 2_000, invalid: [] });
  });
});

/** Backends of the storage tests: PGlite always; PostgreSQL 15 as in test/store. */
let postgres: PostgresServer | undefined;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

const backends: [string, () => Promise<SqlStore>][] = [
  ['pglite', () => createStore({})],
  ['postgres', () => createStore({ databaseUrl: postgres!.url })],
];

describe.each(backends)('import into a campaign (%s)', (kind, open) => {
  let store: SqlStore;
  let campaigns = 0;
  /** A new campaign of practice p1 (or `practiceId`). */
  const newCampaign = async (practiceId: string = PRACTICE.practiceId) => {
    const campaignId = `c${(campaigns += 1)}-${kind}`;
    await createCampaign(store.sql, { ...PRACTICE, practiceId, campaignId });
    return { practiceId, campaignId };
  };
  const contacts = async (c: { practiceId: string; campaignId: string }) =>
    (await store.sql.query<Record<string, unknown>>(`SELECT * FROM campaign_contacts WHERE practice_id = $1 AND campaign_id = $2 ORDER BY source_line`, [c.practiceId, c.campaignId])).rows;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('createCampaign is idempotent and never silently changes a stored campaign', async () => {
    const settings = { ...PRACTICE, practiceId: `p-create-${kind}`, campaignId: 'spring', limits: { channels: 5, callsPerSecond: 0.5 }, policy: { maxAttempts: 2 } };
    const first = await createCampaign(store.sql, settings);
    expect(first.created).toBe(true);
    expect(first.campaign).toMatchObject({ workflowId: `campaign:p-create-${kind}:spring`, state: 'RUNNING', limits: { channels: 5, callsPerSecond: 0.5 }, policy: { maxAttempts: 2 } });
    const again = await createCampaign(store.sql, settings);
    expect(again).toMatchObject({ created: false, ignoredChanges: [] });
    const changed = await createCampaign(store.sql, { ...settings, practiceName: 'Other Dental', limits: { channels: 9, callsPerSecond: 3 }, policy: { maxAttempts: 3 } });
    expect(changed.ignoredChanges).toEqual(['practiceName', 'limits', 'policy']);
    expect(changed.campaign).toMatchObject({ practiceName: PRACTICE.practiceName, limits: { channels: 5, callsPerSecond: 0.5 } });
    expect(await getCampaign(store.sql, settings.practiceId, 'spring')).toMatchObject({ practiceName: PRACTICE.practiceName });
    const bad = await createCampaign(store.sql, { ...settings, campaignId: 'a:b', limits: { channels: 0, callsPerSecond: 0 }, policy: { maxAttempts: 99 } }).catch((e: unknown) => e);
    expect((bad as ValidationError).problems.map((p) => p.field)).toEqual(['campaignId', 'limits.channels', 'limits.callsPerSecond', 'policy.maxAttempts']);
  });

  it('queues valid rows (even when others are bad), stores what the confirmation needs, and re-imports idempotently', async () => {
    const c = await newCampaign();
    const rows = [row(1), row(2, { phone: 'bad' }), row(3, { practice_callback_number: '+13125550177' }), row(1), row(4)];
    const text = csvOf(rows, [...REQUIRED_COLUMNS, 'practice_callback_number'], '\r\n');
    const seen: number[] = [];
    const report = await importCsv(store.sql, c, text, { ...opts, onProgress: (p) => seen.push(p.rowsStored) });
    expect(report).toMatchObject({ checkedOnly: false, rowsRead: 5, valid: 3, added: 3, alreadyImported: 0, alreadyConfirming: [] });
    expect(report.invalid.map((p) => [p.line, p.field])).toEqual([[3, 'phone']]);
    expect(report.duplicates).toEqual([{ line: 5, first: { line: 2 } }]);
    expect(seen.at(-1)).toBe(3);
    const stored = await contacts(c);
    expect(stored.map((r) => [r.appointment_id, r.source_line, r.status, r.workflow_id, r.practice_callback_number])).toEqual([
      ['A1', 2, 'QUEUED', `confirm:p1:A1`, null],
      ['A3', 4, 'QUEUED', `confirm:p1:A3`, '+13125550177'],
      ['A4', 6, 'QUEUED', `confirm:p1:A4`, null],
    ]);
    expect(stored[0]).toMatchObject({ patient_name: 'Pat 1', phone: '+12125550101', patient_time_zone: 'America/New_York', appointment_start: '2026-12-02T10:30:00-05:00' });
    expect((stored[0]!.starts_at as Date).toISOString()).toBe('2026-12-02T15:30:00.000Z');

    const again = await importCsv(store.sql, c, text, opts);
    expect(again).toMatchObject({ added: 0, alreadyImported: 3, valid: 3 });
    expect(formatReport(again)).toContain('0 added, 3 already imported');
    expect(await contacts(c)).toHaveLength(3);

    // More rows later: only the new ones are added.
    const more = await importCsv(store.sql, c, csvOf([row(4), row(5)]), opts);
    expect(more).toMatchObject({ added: 1, alreadyImported: 1 });
  });

  it('does not queue appointments already being confirmed: a single start, another campaign (queued or started); cancelled elsewhere is fine', async () => {
    const c = await newCampaign();
    const other = await newCampaign();
    const q = (text: string, params: unknown[]) => store.sql.query(text, params);
    await q(`INSERT INTO appointments (practice_id, appointment_id, patient_id, phone, time_zone, starts_at, workflow_id, status, outcome) VALUES ('p1', 'S1', 'P', '+12125550100', 'UTC', now(), 'confirm:p1:S1', 'DONE', 'CONFIRMED')`, []);
    await q(`INSERT INTO appointments (practice_id, appointment_id, patient_id, phone, time_zone, starts_at, workflow_id, campaign_id) VALUES ('p1', 'S2', 'P', '+12125550100', 'UTC', now(), 'confirm:p1:S2', $1)`, [other.campaignId]);
    await importCsv(store.sql, other, csvOf([row(10, { appointment_id: 'Q1' }), row(11, { appointment_id: 'Q2' }), row(12, { appointment_id: 'Q3' })]), opts);
    await q(`UPDATE campaign_contacts SET status = 'STARTED' WHERE campaign_id = $1 AND appointment_id = 'Q2'`, [other.campaignId]);
    await q(`UPDATE campaign_contacts SET status = 'CANCELLED' WHERE campaign_id = $1 AND appointment_id = 'Q3'`, [other.campaignId]);
    // Another practice's appointment with the same id is another appointment.
    await importCsv(store.sql, await newCampaign('p2'), csvOf([row(20, { appointment_id: 'X1' })]), opts);

    const ids = ['S1', 'S2', 'Q1', 'Q2', 'Q3', 'X1', 'N1'];
    const report = await importCsv(store.sql, c, csvOf(ids.map((id, i) => row(30 + i, { appointment_id: id }))), opts);
    expect(report.alreadyConfirming).toEqual([
      { line: 2, by: { single: true } },
      { line: 3, by: { campaignId: other.campaignId } },
      { line: 4, by: { campaignId: other.campaignId } },
      { line: 5, by: { campaignId: other.campaignId } },
    ]);
    expect(report).toMatchObject({ added: 3, valid: 7 });
    expect((await contacts(c)).map((r) => r.appointment_id)).toEqual(['Q3', 'X1', 'N1']);
    const text = formatReport(report);
    expect(text).toContain('line 2: by a single confirmation');
    expect(text).toContain(`line 3: by campaign ${other.campaignId}`);
  });

  it('JSON rows through the API, by row', async () => {
    const c = await newCampaign();
    const rows = [101, 102].map((n) => ({ ...Object.fromEntries(Object.entries(row(n)).map(([k, v]) => [k.replace(/_(\w)/g, (_, x: string) => x.toUpperCase()), v])) }));
    const report = await importJsonRows(store.sql, c, [...rows, { ...rows[0], phone: 'x' }], opts);
    expect(report).toMatchObject({ source: 'json', added: 2, duplicates: [], invalid: [{ row: 3, field: 'phone' }] });
    expect((await contacts(c)).map((r) => [r.appointment_id, r.source_line])).toEqual([
      ['A101', null],
      ['A102', null],
    ]);
    expect((await importJsonRows(store.sql, c, rows, opts)).alreadyImported).toBe(2);
  });

  it('refuses a campaign that does not exist, or cannot take rows, with what to do', async () => {
    await expect(importCsv(store.sql, { practiceId: 'p1', campaignId: 'nope' }, csvOf([row(1)]), opts)).rejects.toThrow(/no campaign nope of practice p1: create it first/);
    const c = await newCampaign();
    await store.sql.query(`UPDATE campaigns SET state = 'CANCELLED' WHERE practice_id = $1 AND campaign_id = $2`, [c.practiceId, c.campaignId]);
    await expect(importCsv(store.sql, c, csvOf([row(1)]), opts)).rejects.toThrow(/is cancelled: it takes no more rows; import them into a new campaign/);
    await expect(importCsv(store.sql, { practiceId: 'p1', campaignId: 'a b' }, csvOf([row(1)]), opts)).rejects.toThrow(ValidationError);
  });

  it('a missing column imports nothing', async () => {
    const c = await newCampaign();
    await expect(importCsv(store.sql, c, csvOf([row(1)], REQUIRED_COLUMNS.slice(1)), opts)).rejects.toThrow(/no appointment_id column/);
    expect(await contacts(c)).toHaveLength(0);
  });

  it('never puts a value of a row in the report, its printed form, or an error', async () => {
    const c = await newCampaign();
    const mark = (n: number, col: string) => `PHIMARK-${n}-${col}`;
    // Bad rows: every field marked (the marked ids are valid ids; names/phones/times/zones invalid or valid-looking alike).
    const bad = (n: number, o: Record<string, string>) => ({ ...Object.fromEntries(REQUIRED_COLUMNS.map((col) => [col, mark(n, col)])), ...o });
    const rows = [
      bad(1, {}),
      bad(2, { phone: '+1212555PHIMARK', patient_time_zone: 'PHIMARK/Zone' }),
      row(3, { patient_name: 'PHIMARK Valid Name', appointment_id: 'PHIMARK-A3', patient_id: 'PHIMARK-P3', provider: 'PHIMARK doc', reason: 'PHIMARK why' }),
      row(4, { patient_name: 'PHIMARK Dup', appointment_id: 'PHIMARK-A3', patient_id: 'PHIMARK-P4' }), // duplicate
      row(5, { appointment_id: 'PHIMARK-S1', patient_name: 'PHIMARK confirming' }), // already confirming
      { ...row(6, { patient_name: 'PHIMARK short row' }) },
      row(7, { appointment_start: '2020-01-01T00:00:00-05:00', patient_name: 'PHIMARK past' }),
      row(8, { patient_name: `PHIMARK${'x'.repeat(300)}` }),
      row(9, { reason: 'PHIMARK\u202eevil' }),
    ];
    await store.sql.query(`INSERT INTO appointments (practice_id, appointment_id, patient_id, phone, time_zone, starts_at, workflow_id) VALUES ('p1', 'PHIMARK-S1', 'P', '+12125550100', 'UTC', now(), 'confirm:p1:PHIMARK-S1')`);
    const columns = [...REQUIRED_COLUMNS, 'practice_callback_number'];
    let text = csvOf(rows.map((r, i) => ({ ...r, practice_callback_number: i === 0 ? 'PHIMARK-cb' : '' })), columns);
    text = text.replace(/^(.*PHIMARK short row.*)$/m, (l) => l.split(',').slice(0, 5).join(','));
    const report = await importCsv(store.sql, c, text, opts);
    expect(report.invalid.length).toBeGreaterThan(10);
    expect(report.duplicates).toHaveLength(1);
    expect(report.alreadyConfirming).toHaveLength(1);
    expect(printed(report)).not.toContain('PHIMARK');
    expect(printed(report)).not.toMatch(/555\d{4}|2020-01-01|Dr\.|cleaning/);
    const checked = await validateCsv(text, PRACTICE, opts);
    expect(printed(checked)).not.toContain('PHIMARK');
    // Errors: a headless file (data row as header), a bad practice, a bad campaign id.
    const errors = await Promise.all([
      failure(importCsv(store.sql, c, text.split('\n').slice(1).join('\n'), opts)),
      failure(validateCsv(text, { ...PRACTICE, practiceName: 'PHIMARK\u0007' }, opts)),
      failure(importCsv(store.sql, { practiceId: 'p1', campaignId: 'PHIMARK:x' }, text, opts)),
      validateJsonRows([{ phone: 'PHIMARK', notes: 'PHIMARK' }, { phone: 'PHIMARK' }], PRACTICE, opts).then((r) => new Error(printed(r))),
    ]);
    for (const err of errors) {
      expect(err).toBeInstanceOf(Error);
      expect(err.message).not.toContain('PHIMARK');
    }
  });

  it('imports 10,000 rows in seconds (printed), with progress, and re-imports them as no-ops', async () => {
    const c = await newCampaign();
    const text = makeScheduleText({ rows: 10_000, seed: 5, now: NOW });
    const progress: { rowsRead: number; rowsStored: number }[] = [];
    let t = performance.now();
    const report = await importCsv(store.sql, c, Readable.from([text.slice(0, 400_000), text.slice(400_000)]), { ...opts, onProgress: (p) => progress.push(p) });
    const importMs = performance.now() - t;
    t = performance.now();
    const again = await importCsv(store.sql, c, text, opts);
    const againMs = performance.now() - t;
    console.log(`[${kind}] 10,000-row import: ${(importMs / 1000).toFixed(2)} s (${Math.round(10_000 / (importMs / 1000))} rows/s); re-import ${(againMs / 1000).toFixed(2)} s`);
    expect(report).toMatchObject({ rowsRead: 10_000, valid: 10_000, added: 10_000, invalid: [] });
    expect(again).toMatchObject({ added: 0, alreadyImported: 10_000 });
    expect(importMs).toBeLessThan(60_000);
    expect(progress.length).toBeGreaterThanOrEqual(20);
    expect(progress.at(-1)).toEqual({ rowsRead: 10_000, rowsStored: 10_000 });
    for (let i = 1; i < progress.length; i += 1) expect(progress[i]!.rowsStored).toBeGreaterThanOrEqual(progress[i - 1]!.rowsStored);
    expect(Number((await store.sql.query<{ n: unknown }>(`SELECT count(*) AS n FROM campaign_contacts WHERE campaign_id = $1`, [c.campaignId])).rows[0]!.n)).toBe(10_000);
  });
});
