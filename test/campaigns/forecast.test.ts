/**
 * `campaign forecast`: the phone model's file validation and seeded draws, and a small forecast of
 * the real campaign on the time-skipping test server — deterministic for a seed, never more calls up
 * at once than the channels on the test server's clock, and no health data in the report.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../src/bundle';
import { DEFAULT_PHONE_MODEL, drawCall, loadPhoneModel, parsePhoneModel } from '../../src/campaigns/forecast/phone-model';
import { formatForecast, runForecast, type ForecastReport } from '../../src/campaigns/forecast/run';
import { makeScheduleText } from '../../src/campaigns/sample';
import { ValidationError } from '../../src/validation';

const problemsOf = (fn: () => unknown): { field: string; problem: string }[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.problems;
    throw err;
  }
  throw new Error('no ValidationError');
};

describe('phone model file', () => {
  it('overrides the defaults part by part', () => {
    const m = parsePhoneModel({ talkSeconds: { min: 10, mode: 20, max: 30 } });
    expect(m.talkSeconds).toEqual({ min: 10, mode: 20, max: 30 });
    expect(m.pickup).toEqual(DEFAULT_PHONE_MODEL.pickup);
    expect(m.verdicts).toEqual(DEFAULT_PHONE_MODEL.verdicts);
    expect(parsePhoneModel({})).toEqual(DEFAULT_PHONE_MODEL);
  });

  it('names each bad field and what is wrong with it', () => {
    expect(problemsOf(() => parsePhoneModel({ pickup: { answer: 0.5, busy: 0.5, noAnswer: 0.5, voicemail: 0 } }))).toEqual([
      { field: 'pickup', problem: expect.stringMatching(/add up to 1/) },
    ]);
    expect(problemsOf(() => parsePhoneModel({ byLocalHour: { '25': DEFAULT_PHONE_MODEL.pickup } }))[0]!.field).toMatch(/^byLocalHour/);
    expect(problemsOf(() => parsePhoneModel({ byLocalHour: { '9': { answer: 2, busy: 0, noAnswer: 0, voicemail: 0 } } }))).toContainEqual({
      field: 'byLocalHour.9.answer',
      problem: 'must be from 0 to 1',
    });
    expect(problemsOf(() => parsePhoneModel({ talkSeconds: { min: 50, mode: 20, max: 30 } }))).toEqual([{ field: 'talkSeconds', problem: 'must have min <= mode <= max' }]);
    expect(problemsOf(() => parsePhoneModel({ ringSeconds: { min: 1, mode: 'x', max: 3 } }))).toEqual([{ field: 'ringSeconds.mode', problem: 'must be a number of seconds' }]);
    expect(problemsOf(() => parsePhoneModel({ verdicts: { ...DEFAULT_PHONE_MODEL.verdicts, maybe: 0 } }))).toEqual([
      { field: 'verdicts.maybe', problem: 'is not a field of the phone model' },
    ]);
    expect(problemsOf(() => parsePhoneModel({ answerRate: 0.4 }))).toEqual([{ field: 'answerRate', problem: 'is not a field of the phone model' }]);
    expect(problemsOf(() => parsePhoneModel([1, 2]))).toEqual([{ field: '(model)', problem: 'must be a JSON object' }]);
  });

  it('a file: unreadable, not JSON, or a bad field — named with --model, never quoting the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forecast-model-'));
    try {
      await expect(loadPhoneModel(join(dir, 'missing.json'))).rejects.toThrow(/--model: cannot read .*missing\.json \(ENOENT\)/);
      writeFileSync(join(dir, 'bad.json'), '{"pickup": secret-value');
      const notJson = (await loadPhoneModel(join(dir, 'bad.json')).then(
        () => new Error('loaded'),
        (e: Error) => e,
      ));
      expect(notJson.message).toMatch(/--model: .*bad\.json is not JSON/);
      expect(notJson.message).not.toContain('secret-value');
      writeFileSync(join(dir, 'rates.json'), JSON.stringify({ verdicts: { confirm: 0.9, cancel: 0.9, reschedule: 0, noVerdict: 0, optOut: 0, wrongNumber: 0 } }));
      await expect(loadPhoneModel(join(dir, 'rates.json'))).rejects.toThrow('--model verdicts: the rates must add up to 1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('draws depend on the seed, the confirmation and the attempt only', () => {
    const at = new Date('2026-12-07T15:30:00Z');
    const a = drawCall(DEFAULT_PHONE_MODEL, 7, 'confirm:p:A1', 1, at, 'America/Chicago', 30);
    expect(drawCall(DEFAULT_PHONE_MODEL, 7, 'confirm:p:A1', 1, at, 'America/Chicago', 30)).toEqual(a);
    expect(a.localHour).toBe(9);
    const kinds = (seed: number) => Array.from({ length: 200 }, (_, i) => drawCall(DEFAULT_PHONE_MODEL, seed, `confirm:p:A${i}`, 1, at, 'America/Chicago', 30).kind);
    expect(kinds(7)).toEqual(kinds(7));
    expect(kinds(8)).not.toEqual(kinds(7));
    // The rates hold roughly: about 35 % answer at 9:00 (2,000 draws).
    const many = Array.from({ length: 2000 }, (_, i) => drawCall(DEFAULT_PHONE_MODEL, 1, `w${i}`, 1, at, 'America/Chicago', 30));
    const answered = many.filter((d) => d.kind === 'answer').length / many.length;
    expect(answered).toBeGreaterThan(0.3);
    expect(answered).toBeLessThan(0.4);
    // Rings out at the ringing timeout; a person or a voicemail answers before it.
    for (const d of many) {
      if (d.kind === 'noAnswer') expect(d.ringSeconds).toBe(30);
      else expect(d.ringSeconds).toBeLessThan(30);
    }
  });
});

describe('forecast of a small campaign (time-skipping test server)', () => {
  let bundle: WorkflowBundleWithSourceMap;
  // Next Monday 08:00 in Chicago; appointments on the 2 days after it.
  const start = DateTime.now().setZone('America/Chicago').startOf('week').plus({ weeks: 1, hours: 8 });
  const csv = makeScheduleText({ rows: 40, seed: 3, days: 2, now: start.toJSDate() });
  const settings = { practiceId: 'forecast-test', practiceName: 'Bright Smiles Dental', practiceCallbackNumber: '+13125550100' };
  const reports: ForecastReport[] = [];

  beforeAll(async () => {
    bundle = await bundleWorkflows();
  }, 120_000);
  afterAll(() => {
    for (const r of reports) process.stdout.write(`forecast of 40 contacts: ${r.wallSeconds} s wall\n`);
  });

  const forecast = () =>
    runForecast({ ...settings, csv, limits: { channels: 3, callsPerSecond: 1 }, seed: 11, start: start.toJSDate(), workflowBundle: bundle }).then((r) => {
      reports.push(r);
      return r;
    });

  it('is the same for the same seed, never has more calls up than channels, and holds no health data', async () => {
    const first = await forecast();
    expect(first.contacts).toBe(40);
    expect(first.import).toMatchObject({ rowsRead: 40, added: 40, invalid: 0 });
    // Every appointment was decided, and the counts add up.
    expect(first.outcomes.NOT_DECIDED).toBeUndefined();
    expect(Object.values(first.outcomes).reduce((a, b) => a + b, 0)).toBe(40);
    expect(Object.values(first.attemptsPerPatient.distribution).reduce((a, b) => a + b, 0)).toBe(40);
    expect(first.calls.placed).toBeGreaterThanOrEqual(40);
    expect(first.reached.count).toBeGreaterThan(0);
    expect(first.reached.share).toBeLessThanOrEqual(1);
    // The channel gate held: at most 3 calls up at once on the test server's clock — and the burst at
    // 09:00 filled them.
    expect(first.channels.peakConcurrent).toBeLessThanOrEqual(3);
    expect(first.channels.peakConcurrent).toBeGreaterThanOrEqual(2);
    // Calls only in the calling window (patient-local 09:00–19:00).
    for (const hour of Object.keys(first.calls.byLocalHour)) expect(hour >= '09:00' && hour < '19:00').toBe(true);
    expect(first.finishedAt).toBeDefined();
    expect(first.assumptions.consent).toMatch(/consent .* every row/);

    // No health data in the report or its text: names, phone numbers, appointment or patient ids.
    const text = `${JSON.stringify(first)}\n${formatForecast(first)}`;
    for (const line of csv.split('\r\n').slice(1, 41)) {
      const [appointmentId, patientId, name, phone] = line.split(',');
      for (const value of [appointmentId!, patientId!, name!, phone!]) expect(text).not.toContain(value);
    }

    const second = await forecast();
    const stable = (r: ForecastReport) => ({ reached: r.reached, outcomes: r.outcomes, attempts: r.attemptsPerPatient, calls: r.calls.byAttemptOutcome, byLocalHour: r.calls.byLocalHour });
    expect(stable(second)).toEqual(stable(first));
    expect(second.channels.peakConcurrent).toBeLessThanOrEqual(3);
  }, 600_000);

  it('refuses bad limits by field before starting anything', async () => {
    await expect(runForecast({ ...settings, csv, limits: { channels: 0, callsPerSecond: 1 } })).rejects.toThrow(/channels: must be at least 1/);
    await expect(runForecast({ ...settings, csv, limits: { channels: 2, callsPerSecond: 1 }, speed: 0 })).rejects.toThrow(/speed: must be a number from 1/);
  });
});

describe('campaign forecast (CLI)', () => {
  it('a bad model file: exit 2, the field named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forecast-cli-'));
    try {
      writeFileSync(join(dir, 'model.json'), JSON.stringify({ talkSeconds: { min: 5, mode: 1, max: 2 } }));
      writeFileSync(join(dir, 'schedule.csv'), makeScheduleText({ rows: 2 }));
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'src/cli.ts', 'campaign', 'forecast', join(dir, 'schedule.csv'), '--practice', 'p1', '--practice-name', 'Bright Smiles', '--callback', '+13125550100', '--channels', '2', '--cps', '1', '--model', join(dir, 'model.json')],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(2);
      expect(stderr).toContain('--model talkSeconds: must have min <= mode <= max');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
