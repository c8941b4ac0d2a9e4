/**
 * Campaign results for the front desk, from the database: contents of the CSV and JSON exports,
 * spreadsheet-formula neutralising, paging — and the `campaign` CLI commands end to end (real
 * process, real PGlite data directory).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importCsv } from '../../src/campaigns/import';
import { campaignResults, csvCell, RESULTS_CSV_HEADER, writeCampaignResults, type ResultRow } from '../../src/campaigns/results';
import { makeScheduleText } from '../../src/campaigns/sample';
import { createCampaign } from '../../src/campaigns/store';
import { UserError } from '../../src/errors';
import { startTemporalDevServer } from '../../src/dev/temporal-dev-server';
import { createStore, type SqlStore } from '../../src/store';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';
import { csvOf, NOW, PRACTICE, row } from './helpers';

const campaign = { practiceId: PRACTICE.practiceId, campaignId: 'results' };

/** What `writeCampaignResults` writes, as text. */
async function exported(store: SqlStore, format: 'csv' | 'json', pageSize?: number): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await writeCampaignResults(store.sql, campaign, format, out, { pageSize });
  out.end();
  return Buffer.concat(chunks).toString('utf8');
}

describe('campaign results', () => {
  let store: SqlStore;
  beforeAll(async () => {
    store = await createStore({});
    await createCampaign(store.sql, { ...PRACTICE, campaignId: campaign.campaignId });
    const rows = [
      row(1, { appointment_start: '2026-12-01T09:00:00-06:00', patient_time_zone: 'America/Chicago' }),
      row(2, { appointment_start: '2026-12-01T10:00:00-06:00', patient_name: '=HYPERLINK("http://x","Sam")', phone: '+13125550102' }),
      row(3, { appointment_start: '2026-12-01T11:00:00-06:00', patient_name: 'Rivera, Ana' }),
      row(4, { appointment_start: '2026-12-01T12:00:00-06:00', patient_name: '-Robin', patient_time_zone: 'America/Los_Angeles' }),
    ];
    await importCsv(store.sql, campaign, csvOf(rows), { now: NOW });
    const q = (text: string, params: unknown[] = []) => store.sql.query(text, params);
    // A1: confirmed after two calls; A2: wants another time (the agent's note holds a formula and a line break);
    // A3: still running; A4: skipped (confirmed elsewhere).
    await q(`UPDATE campaign_contacts SET status = 'STARTED' WHERE appointment_id IN ('A1', 'A2', 'A3')`);
    await q(`UPDATE campaign_contacts SET status = 'SKIPPED', skip_reason = 'already being confirmed by a single confirmation' WHERE appointment_id = 'A4'`);
    const appt = (id: string, phone: string, phase: string, outcome: string | null, detail: unknown) =>
      q(
        `INSERT INTO appointments (practice_id, appointment_id, patient_id, phone, time_zone, starts_at, workflow_id, status, outcome, outcome_detail, phase, campaign_id)
         VALUES ('p1', $1, 'P', $2, 'America/Chicago', now(), 'confirm:p1:' || $1, $3, $4, $5, $6, 'results')`,
        [id, phone, outcome ? 'DONE' : 'PENDING', outcome, detail === null ? null : JSON.stringify(detail), phase],
      );
    await appt('A1', '+12125550101', 'DONE', 'CONFIRMED', null);
    await appt('A2', '+13125550102', 'DONE', 'RESCHEDULE_REQUESTED', { reschedulePreference: '@Tuesday mornings, "early"', note: '=1+2\nsecond line' });
    await appt('A3', '+12125550103', 'WAITING', null, null);
    const ledger = (wf: string, attempt: number, at: string) =>
      q(`INSERT INTO attempt_ledger (workflow_id, attempt, appointment_id, phone, placed_at, local_date) VALUES ($1, $2, 'x', '+12125550100', $3, '2026-11-30')`, [wf, attempt, at]);
    await ledger('confirm:p1:A1', 1, '2026-11-30T15:00:00Z');
    await ledger('confirm:p1:A1', 2, '2026-11-30T17:30:05Z');
    await ledger('confirm:p1:A2', 1, '2026-11-30T16:00:00Z');
    await ledger('confirm:other:A1', 1, '2026-11-30T16:00:00Z'); // another practice's appointment A1: not counted
  });
  afterAll(async () => {
    await store?.close();
  });

  it('reads outcome, attempts, last call in the patient zone, reschedule preference, note and skip reason, soonest first', async () => {
    const rows: ResultRow[] = [];
    for await (const r of campaignResults(store.sql, campaign)) rows.push(r);
    expect(rows).toEqual([
      {
        appointmentId: 'A1',
        patientId: 'P1',
        patientName: 'Pat 1',
        phone: '+12125550101',
        appointmentStart: '2026-12-01T09:00:00-06:00',
        status: 'STARTED',
        outcome: 'CONFIRMED',
        phase: 'DONE',
        attempts: 2,
        lastCallAt: '2026-11-30T11:30:05-06:00',
        reschedulePreference: null,
        note: null,
        skipReason: null,
      },
      expect.objectContaining({ appointmentId: 'A2', outcome: 'RESCHEDULE_REQUESTED', attempts: 1, lastCallAt: '2026-11-30T11:00:00-05:00', reschedulePreference: '@Tuesday mornings, "early"', note: '=1+2\nsecond line' }),
      expect.objectContaining({ appointmentId: 'A3', status: 'STARTED', outcome: null, phase: 'WAITING', attempts: 0, lastCallAt: null }),
      expect.objectContaining({ appointmentId: 'A4', status: 'SKIPPED', outcome: null, phase: null, skipReason: 'already being confirmed by a single confirmation' }),
    ]);
  });

  it('exports CSV a spreadsheet reads back as written, formulas neutralised, phone numbers left alone', async () => {
    const text = await exported(store, 'csv');
    expect(text.startsWith(RESULTS_CSV_HEADER)).toBe(true);
    const records = parse(text, { columns: true }) as Record<string, string>[];
    expect(records.map((r) => r.appointment_id)).toEqual(['A1', 'A2', 'A3', 'A4']);
    expect(records[0]).toEqual({
      appointment_id: 'A1',
      patient_id: 'P1',
      patient_name: 'Pat 1',
      phone: '+12125550101',
      appointment_start: '2026-12-01T09:00:00-06:00',
      status: 'STARTED',
      outcome: 'CONFIRMED',
      phase: 'DONE',
      attempts: '2',
      last_call_at: '2026-11-30T11:30:05-06:00',
      reschedule_preference: '',
      note: '',
      skip_reason: '',
    });
    expect(records[1]).toMatchObject({
      patient_name: `'=HYPERLINK("http://x","Sam")`,
      phone: '+13125550102',
      reschedule_preference: `'@Tuesday mornings, "early"`,
      note: `'=1+2\nsecond line`,
    });
    expect(records[2]!.patient_name).toBe('Rivera, Ana');
    expect(records[3]!.patient_name).toBe(`'-Robin`);
    expect(csvCell('+1 (212) 555-0100')).toBe(`'+1 (212) 555-0100`);
    expect(csvCell('+12125550100')).toBe('+12125550100');
    expect(csvCell(' padded ')).toBe('" padded "');
    expect(csvCell(null)).toBe('');
  });

  it('exports JSON: the same rows, paged any size', async () => {
    const all = JSON.parse(await exported(store, 'json')) as ResultRow[];
    expect(all.map((r) => r.appointmentId)).toEqual(['A1', 'A2', 'A3', 'A4']);
    expect(all[1]!.note).toBe('=1+2\nsecond line');
    for (const pageSize of [1, 2, 3, 4]) expect(JSON.parse(await exported(store, 'json', pageSize))).toEqual(all);
    expect(await exported(store, 'csv', 1)).toBe(await exported(store, 'csv'));
  });

  it('an empty campaign exports a header (CSV) or [] (JSON); an unknown one is refused before anything is written', async () => {
    await createCampaign(store.sql, { ...PRACTICE, campaignId: 'empty' });
    const out = new PassThrough();
    let written = '';
    out.on('data', (c: Buffer) => (written += c.toString()));
    expect(await writeCampaignResults(store.sql, { practiceId: 'p1', campaignId: 'empty' }, 'json', out)).toBe(0);
    expect(JSON.parse(written)).toEqual([]);
    written = '';
    await expect(writeCampaignResults(store.sql, { practiceId: 'p1', campaignId: 'nope' }, 'csv', out)).rejects.toThrow(UserError);
    expect(written).toBe('');
  });

  it('exports 10,000 contacts in pages', async () => {
    await createCampaign(store.sql, { ...PRACTICE, campaignId: 'big' });
    await importCsv(store.sql, { practiceId: 'p1', campaignId: 'big' }, makeScheduleText({ rows: 10_000, seed: 9, now: NOW, firstId: 100_000 }), { now: NOW });
    const out = new PassThrough();
    let lines = 0;
    out.on('data', (c: Buffer) => (lines += c.toString().split('\r\n').length - 1));
    const t = performance.now();
    expect(await writeCampaignResults(store.sql, { practiceId: 'p1', campaignId: 'big' }, 'csv', out)).toBe(10_000);
    console.log(`10,000-contact results export (CSV, PGlite): ${((performance.now() - t) / 1000).toFixed(2)} s`);
    expect(lines).toBe(10_001);
  });
});

describe('campaign CLI', () => {
  const ROOT = fileURLToPath(new URL('../..', import.meta.url));
  const TSX = createRequire(import.meta.url).resolve('tsx');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'campaign-cli-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `npm run cli -- …` as a process: exit code and output. */
  function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), ...args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PGLITE_DATA_DIR: join(dir, 'db'), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }
  const practice = ['--practice', 'p1', '--practice-name', 'Bright Smiles Dental', '--callback', '+13125550100'];

  it('validate: exit 0 when every row is valid, 1 when not (the report names line and column, never a value), 2 for a file that is no schedule, 3 for a missing file', async () => {
    const good = join(dir, 'good.csv');
    writeFileSync(good, makeScheduleText({ rows: 12, seed: 2 }));
    const ok = await cli(['campaign', 'validate', good, ...practice]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('Checked 12 rows for practice p1: 12 valid, none invalid');
    expect(ok.stdout).toContain('appointments already being confirmed');

    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, makeScheduleText({ rows: 3, seed: 2 }).replace(/^(A000002,[^,]*,[^,]*,)[^,]*/m, '$1PHIMARK-phone'));
    const failed = await cli(['campaign', 'validate', bad, ...practice, '--json']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout).invalid).toEqual([{ line: 3, field: 'phone', problem: expect.any(String) }]);
    expect(failed.stdout + failed.stderr).not.toContain('PHIMARK');

    const headless = join(dir, 'headless.csv');
    writeFileSync(headless, readFileSync(bad, 'utf8').split('\r\n').slice(1).join('\r\n'));
    const noHeader = await cli(['campaign', 'validate', headless, ...practice]);
    expect(noHeader.code).toBe(2);
    expect(noHeader.stderr).toMatch(/^call-campaigns: the header \(line 1\) has no .* column/);
    expect(noHeader.stderr).not.toContain('PHIMARK');

    const missing = await cli(['campaign', 'validate', join(dir, 'nope.csv'), ...practice]);
    expect(missing).toMatchObject({ code: 3, stderr: expect.stringContaining('cannot read') });

    const badOption = await cli(['campaign', 'validate', good, '--practice', 'p:1', '--practice-name', 'X', '--callback', '12']);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toMatch(/--practice: must be .*; --callback: not a valid phone number/);
    // Nothing was stored: validate never opens the database.
    expect(() => statSync(join(dir, 'db'))).toThrow();
  });

  it('start: imports and starts the campaign, prints its id, the report and the Web UI link; the same file again adds nothing and names the running campaign', async () => {
    const temporal = await startTemporalDevServer();
    try {
      const env = { TEMPORAL_ADDRESS: temporal.address, PAYLOAD_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, PGLITE_DATA_DIR: join(dir, 'start-db'), TEMPORAL_UI_URL: 'http://ui.example:8233' };
      const file = join(dir, 'start.csv');
      writeFileSync(file, makeScheduleText({ rows: 6, seed: 7 }));
      const first = await cli(['campaign', 'start', file, ...practice, '--campaign', 'cli-start', '--channels', '2', '--cps', '1'], env);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('campaign cli-start of p1: started (workflow campaign:p1:cli-start)');
      expect(first.stdout).toContain('6 rows read, 6 added, 0 already imported, 0 duplicates, 0 already being confirmed, 0 invalid rows');
      expect(first.stdout).toContain('watch it: npm run cli -- campaign status cli-start --practice p1');
      expect(first.stdout).toContain('Web UI: http://ui.example:8233/namespaces/default/workflows/campaign%3Ap1%3Acli-start');

      const again = await cli(['campaign', 'start', file, ...practice, '--campaign', 'cli-start', '--json'], env);
      expect(again.code).toBe(0);
      const json = JSON.parse(again.stdout) as { campaignId: string; report: { added: number }; workflow: { created: boolean; status: string } };
      expect(json).toMatchObject({ campaignId: 'cli-start', report: { added: 0 }, workflow: { created: false, status: 'RUNNING' } });
      // No name or number of the schedule in anything printed.
      const schedule = readFileSync(file, 'utf8');
      const names = schedule.split('\r\n').slice(1, 3).map((line) => line.split(',')[2]!).filter(Boolean);
      for (const name of names) expect(first.stdout + again.stdout).not.toContain(name);
    } finally {
      await temporal.stop();
    }
  });

  it('results: CSV to a private file, JSON to standard output; an unknown campaign is named', async () => {
    const store = await createStore({ dataDir: join(dir, 'db') });
    try {
      await createCampaign(store.sql, { ...PRACTICE, campaignId: 'cli' });
      await importCsv(store.sql, { practiceId: 'p1', campaignId: 'cli' }, makeScheduleText({ rows: 5, seed: 4 }));
    } finally {
      await store.close();
    }
    const out = join(dir, 'results.csv');
    const toFile = await cli(['campaign', 'results', 'cli', '--practice', 'p1', '--out', out]);
    expect(toFile).toMatchObject({ code: 0, stdout: '' });
    expect(toFile.stderr).toContain('5 appointments written');
    expect(readFileSync(out, 'utf8').split('\r\n')).toHaveLength(7);
    expect(statSync(out).mode & 0o777).toBe(0o600);

    const json = await cli(['campaign', 'results', 'cli', '--practice', 'p1', '--format', 'json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as ResultRow[]).map((r) => r.status)).toEqual(['QUEUED', 'QUEUED', 'QUEUED', 'QUEUED', 'QUEUED']);

    const unknown = await cli(['campaign', 'results', 'nope', '--practice', 'p1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('there is no campaign nope of practice p1');
    const badFormat = await cli(['campaign', 'results', 'cli', '--practice', 'p1', '--format', 'xml']);
    expect(badFormat).toMatchObject({ code: 2, stderr: expect.stringContaining('--format: must be csv or json') });
  });
});
