/**
 * `campaign forecast`: runs the real campaign and confirmation workflows and activities — the
 * production worker (`createConfirmationWorker` with campaign deps), the production channel gate
 * (`ChannelBroker`), the `CampaignClient` import and start — on Temporal's time-skipping test
 * server, over a throwaway in-memory PGlite database, against the seeded phone model
 * (./phone-model.ts). Then it reads what happened from the database, as `campaign results` does,
 * and reports counts only (no health data).
 *
 * Time (see the README, "Forecast before launch"): the test server skips time only while nothing
 * is in flight (an activity in flight locks time skipping; its clock then runs with the wall clock).
 * Waits between calls — backoffs, calling windows, caps — are workflow timers and are skipped. A
 * call is an activity in flight for as long as its line is held, so the model plays calls `speed`
 * times faster than modelled, and the calls-per-second limit is raised by the same factor: while
 * calls are up, the forecast runs like the real campaign on a clock `speed` times faster.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { cachedWorkflowBundle } from '../../bundle';
import { ConfirmationClient } from '../../client';
import { EncryptionCodec, createDataConverter } from '../../codec';
import { CallOutcome, DEFAULT_CALL_POLICY, type CallLimits, type CampaignSummary } from '../../contracts';
import { createTimeSkippingEnv, QUICK_JVM_OPTIONS } from '../../dev/time-skipping';
import { safeMessage, UserError } from '../../errors';
import { createLogger } from '../../logger';
import { ChannelBroker, setTrunkLimits } from '../../pacing';
import type { CallingRules } from '../../ports';
import { DEFAULT_CALLING_RULES } from '../../rules/calling-window';
import { createStore } from '../../store';
import { callLimitProblems, ValidationError } from '../../validation';
import { createConfirmationWorker } from '../../worker-factory';
import { CampaignClient } from '../client';
import type { CsvInput, ImportReport } from '../import';
import { DEFAULT_PHONE_MODEL, ModelTelephony, type ModelCall, type PhoneModel } from './phone-model';

/** Calls are played this many times faster than modelled, by default. */
export const DEFAULT_FORECAST_SPEED = 1000;
const TRUNK_ID = 'forecast';
const CAMPAIGN_ID = 'forecast';

export interface ForecastOptions {
  practiceId: string;
  practiceName: string;
  practiceCallbackNumber: string;
  /** The schedule (CSV). */
  csv: CsvInput;
  /** The campaign's (and the trunk's) channels and calls per second. */
  limits: CallLimits;
  /** Same seed, same calls. Default 1. */
  seed?: number;
  model?: PhoneModel;
  /** Calls are played this many times faster than modelled. Default {@link DEFAULT_FORECAST_SPEED}. */
  speed?: number;
  /** The forecast starts at this instant (default: now); never in the past. */
  start?: Date;
  /** Calling rules of the worker. Default {@link DEFAULT_CALLING_RULES}. */
  rules?: CallingRules;
  /** Fail when no call is placed and no appointment decided for this many wall-clock seconds. Default 180. */
  stallSeconds?: number;
  /** A prebuilt workflow bundle (tests bundle once); bundled here when omitted. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  /** Progress on the terminal (counts only). */
  onProgress?: (p: { decided: number; total: number; callsPlaced: number; at: Date }) => void;
}

/** Outcomes that mean a person was reached by a call and answered the question. */
export const REACHED_OUTCOMES: ReadonlySet<string> = new Set([
  CallOutcome.CONFIRMED,
  CallOutcome.CANCELLED,
  CallOutcome.RESCHEDULE_REQUESTED,
  CallOutcome.OPTED_OUT,
  CallOutcome.WRONG_NUMBER,
  CallOutcome.TRANSFERRED,
]);

/** What a forecast reports: counts and times only. */
export interface ForecastReport {
  assumptions: {
    consent: string;
    seed: number;
    speed: number;
    limits: CallLimits;
    /** Calls per second the gate allows on the wall clock while calls are up (the limit × speed: the test server's clock runs that much faster). */
    gateCallsPerSecond: number;
    rules: Pick<CallingRules, 'days' | 'start' | 'end' | 'maxCallsPerDay' | 'maxCallsPerWeek'>;
    maxAttempts: number;
    model: PhoneModel;
    time: string;
  };
  import: { rowsRead: number; valid: number; added: number; invalid: number; duplicates: number };
  /** When the forecast's campaign started and when its last confirmation was decided (test-server time, UTC). */
  startedAt: string;
  finishedAt?: string;
  /** Hours from the start to the last decision. */
  hoursToFinish?: number;
  contacts: number;
  /** Appointments whose confirmation reached a person who answered (confirmed, cancelled, …) before the deadline. */
  reached: { count: number; share: number };
  outcomes: Record<string, number>;
  attemptsPerPatient: { mean: number; distribution: Record<string, number> };
  calls: {
    placed: number;
    byAttemptOutcome: Record<string, number>;
    /** By the patient's local hour of the dial ("09:00" …). */
    byLocalHour: Record<string, number>;
    /** By clock hour (UTC, test-server time) of the dial. */
    byClockHour: Record<string, number>;
  };
  channels: {
    limit: number;
    /** Most calls up at once, on the test server's clock (calls compressed; never above the limit). */
    peakConcurrent: number;
    /** Modelled channel time (ringing and talking, uncompressed), in hours. */
    modelledChannelHours: number;
    /** Modelled channel time / (channels × the clock hours in which calls were placed). */
    utilisation: number;
    /** The busiest clock hour's modelled channel time / (channels × 1 h); above 1: calls queue for channels. */
    peakHourUtilisation: number;
    peakHour?: string;
    /** Minutes the busiest hour's modelled calls need at the channel limit (at least; above 60 they spill into the next hour). */
    peakHourMinutesAtLimit: number;
  };
  /** Wall-clock seconds the forecast took. */
  wallSeconds: number;
}

const ignore = () => undefined;

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    // The SDK's own warnings (e.g. a local activity's heartbeat) are noise in a forecast's output.
    Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } } });
  } catch {
    // Installed already (a test process).
  }
}

/** Runs a forecast (see the module comment). */
export async function runForecast(options: ForecastOptions): Promise<ForecastReport> {
  const wallStart = performance.now();
  const problems = callLimitProblems(options.limits);
  if (problems.length > 0) throw new ValidationError(problems);
  const speed = options.speed ?? DEFAULT_FORECAST_SPEED;
  if (!(Number.isFinite(speed) && speed >= 1 && speed <= 10_000)) throw new ValidationError([{ field: 'speed', problem: 'must be a number from 1 to 10000' }]);
  const seed = options.seed ?? 1;
  const model = options.model ?? structuredClone(DEFAULT_PHONE_MODEL);
  const rules: CallingRules = { ...DEFAULT_CALLING_RULES, ...options.rules };
  // The gate holds the limits on the test server's clock, which runs `speed` times faster than
  // modelled while calls are up: its call slots are spaced `speed` times closer (the stored limits
  // stay the practice's own).
  const gateCps = options.limits.callsPerSecond * speed;

  quietRuntime();
  // A throwaway key: the test server keeps nothing after the forecast.
  const key = EncryptionCodec.generateSetting('forecast');
  const phase = (name: string) => process.env.FORECAST_DEBUG && process.stderr.write(`[forecast] ${name} at ${((performance.now() - wallStart) / 1000).toFixed(1)} s\n`);
  // The test server (a JVM), the database and the workflow bundle start at once: each takes seconds.
  // The throwaway database runs on its own thread: its CPU (a third of the forecast's) then runs
  // beside the worker's, not in turns with it on the main thread.
  const ready = await Promise.allSettled([
    createTimeSkippingEnv({ dataConverter: createDataConverter(key) }, { jvmOptions: [...QUICK_JVM_OPTIONS] }),
    createStore({ embedded: 'thread' }),
    options.workflowBundle ?? cachedWorkflowBundle(),
  ] as const);
  if (ready.some((r) => r.status === 'rejected')) {
    if (ready[0].status === 'fulfilled') await ready[0].value.teardown().catch(ignore);
    if (ready[1].status === 'fulfilled') await ready[1].value.close().catch(ignore);
    throw ready.find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason;
  }
  const env: TestWorkflowEnvironment = (ready[0] as PromiseFulfilledResult<TestWorkflowEnvironment>).value;
  const store = (ready[1] as PromiseFulfilledResult<Awaited<ReturnType<typeof createStore>>>).value;
  const workflowBundle = (ready[2] as PromiseFulfilledResult<WorkflowBundleWithSourceMap>).value;
  let broker: ChannelBroker | undefined;
  try {
    const client = env.client;
    const testNow = async () => new Date(await env.currentTimeMs());
    if (options.start) {
      const ahead = options.start.getTime() - (await env.currentTimeMs());
      if (ahead < 0) throw new ValidationError([{ field: 'start', problem: 'must not be in the past' }]);
      await env.sleep(ahead);
    }
    phase('test server up');
    const taskQueue = `forecast-${randomUUID()}`;
    const confirmations = new ConfirmationClient({ client, store, taskQueue, now: testNow });
    const campaigns = new CampaignClient({ client, sql: store.sql, taskQueue, now: testNow });
    broker = await ChannelBroker.start(store.sql, TRUNK_ID, { limits: options.limits, clockScale: speed });
    await setTrunkLimits(store.sql, TRUNK_ID, options.limits);

    // Import and start through the production client. No worker polls yet: nothing runs until the
    // consent below is on file.
    const started = await campaigns.start(
      { practiceId: options.practiceId, practiceName: options.practiceName, practiceCallbackNumber: options.practiceCallbackNumber, campaignId: CAMPAIGN_ID, limits: options.limits },
      { csv: options.csv },
      { actor: 'forecast' },
    );
    const report: ImportReport = started.report;
    phase('imported');
    const startedAt = await testNow();

    // The forecast assumes consent on file for every row.
    const { rows: contacts } = await store.sql.query<{ workflow_id: string; phone: string; patient_time_zone: string }>(
      `SELECT workflow_id, phone, patient_time_zone FROM campaign_contacts WHERE practice_id = $1 AND campaign_id = $2`,
      [options.practiceId, CAMPAIGN_ID],
    );
    const zones = new Map(contacts.map((c) => [c.workflow_id, c.patient_time_zone]));
    for (const phone of new Set(contacts.map((c) => c.phone))) {
      await store.recordConsent({ practiceId: options.practiceId, phone, granted: true, source: 'forecast: consent assumed for every row' });
    }

    phase('consent recorded');
    const telephony = new ModelTelephony({ model, seed, speed, client, now: () => env.currentTimeMs(), zoneOf: (id) => zones.get(id) });
    const worker = await createConfirmationWorker({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue,
      payloadEncryptionKey: key,
      workflowBundle,
      store,
      telephony,
      rules,
      logger: createLogger('silent'),
      pollIntervalMs: 10,
      // Two workflow threads: the confirmations' workflow tasks run on both cores, not in turns on
      // one (1,000 rows: 75-81 s instead of 81-87 s, same results).
      workflowThreads: 2,
      pacing: broker,
      onOptOut: async (phone, except) => void (await confirmations.stopConfirmationsOf(phone, except)),
      campaigns: { sql: store.sql, client, confirmations },
    });

    phase('worker built');
    let progressTimer: NodeJS.Timeout | undefined;
    /** Where the forecast stands (counts only): calls up, the gate's waiters and leases, confirmations by phase. */
    const snapshot = async (): Promise<string> => {
      const q = async (text: string) => Number((await store.sql.query<{ n: string }>(text)).rows[0]!.n);
      const leases = await q(`SELECT count(*) AS n FROM channel_leases WHERE expires_at > now()`);
      const waiters = await q(`SELECT count(*) AS n FROM channel_waiters`);
      const phases = (await store.sql.query<{ phase: string; n: string }>(`SELECT phase, count(*) AS n FROM appointments GROUP BY phase ORDER BY phase`)).rows.map((r) => `${r.phase} ${r.n}`).join(', ');
      return `calls up ${telephony.live}, waiting for a channel here ${broker!.waiting}, grant ticks ${broker!.ticks}, live leases ${leases}, waiter rows ${waiters}; confirmations by phase: ${phases}`;
    };
    const debugTimer = process.env.FORECAST_DEBUG
      ? setInterval(() => void snapshot().then((text) => phase(text), ignore), 5000)
      : undefined;
    debugTimer?.unref();
    if (options.onProgress) {
      const onProgress = options.onProgress;
      progressTimer = setInterval(() => {
        void store.sql
          .query<{ n: string | number }>(`SELECT count(*) AS n FROM appointments WHERE practice_id = $1 AND campaign_id = $2 AND status = 'DONE'`, [options.practiceId, CAMPAIGN_ID])
          .then(async (r) => onProgress({ decided: Number(r.rows[0]!.n), total: contacts.length, callsPlaced: telephony.calls.length, at: await testNow() }))
          .catch(ignore);
      }, 500);
      progressTimer.unref();
    }
    // A stalled forecast fails with a sentence instead of running for ever: no call placed and no
    // appointment decided for `stallSeconds` of wall time (the waits between calls are skipped in
    // seconds, so a healthy forecast never goes that long without either).
    let stallTimer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      let last = '';
      let since = performance.now();
      stallTimer = setInterval(() => {
        void store.sql
          .query<{ n: string | number }>(`SELECT count(*) AS n FROM appointments WHERE practice_id = $1 AND campaign_id = $2 AND status = 'DONE'`, [options.practiceId, CAMPAIGN_ID])
          .then((r) => {
            const now = `${String(r.rows[0]!.n)}/${telephony.calls.length}`;
            if (now !== last) {
              last = now;
              since = performance.now();
            } else if (performance.now() - since > (options.stallSeconds ?? 180) * 1000) {
              // A sentence with where it stood (counts only), not a stack: exit code 1. Said once:
              // the check stops here (the worker's shutdown may take a while).
              clearInterval(stallTimer);
              void snapshot()
                .catch((err: unknown) => `no snapshot (${safeMessage(err)})`)
                .then((where) =>
                  reject(new UserError(`the forecast stalled: no call placed and no appointment decided for ${options.stallSeconds ?? 180} s of wall time (${now} decided/calls placed); ${where}. Rerun with FORECAST_DEBUG=1 to follow the channel gate.`, 1)),
                );
            }
          }, ignore);
      }, 2_000);
      stallTimer.unref();
    });
    let summary: CampaignSummary;
    try {
      summary = await worker.runUntil(Promise.race([campaigns.result(options.practiceId, CAMPAIGN_ID), stalled]));
    } finally {
      if (progressTimer) clearInterval(progressTimer);
      if (debugTimer) clearInterval(debugTimer);
      if (stallTimer) clearInterval(stallTimer);
    }

    phase('campaign done');
    return await buildReport({
      sql: store.sql,
      practiceId: options.practiceId,
      summary,
      calls: telephony.calls,
      peakConcurrent: telephony.peakConcurrentOnTestClock(),
      limits: options.limits,
      gateCallsPerSecond: gateCps,
      startedAt,
      import: report,
      seed,
      speed,
      model,
      rules,
      wallStart,
    });
  } finally {
    broker?.close();
    await store.close().catch(ignore);
    await env.teardown().catch(ignore);
  }
}

interface ReportInput {
  sql: Awaited<ReturnType<typeof createStore>>['sql'];
  practiceId: string;
  summary: CampaignSummary;
  calls: ModelCall[];
  peakConcurrent: number;
  limits: CallLimits;
  gateCallsPerSecond: number;
  startedAt: Date;
  import: ImportReport;
  seed: number;
  speed: number;
  model: PhoneModel;
  rules: CallingRules;
  wallStart: number;
}

const inc = (m: Record<string, number>, k: string, by = 1) => {
  m[k] = (m[k] ?? 0) + by;
};
const sorted = (m: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

async function buildReport(r: ReportInput): Promise<ForecastReport> {
  const { sql } = r;
  const { rows: appts } = await sql.query<{ workflow_id: string; outcome: string | null; starts_at: Date | string }>(
    `SELECT c.workflow_id, a.outcome, c.starts_at FROM campaign_contacts c
     LEFT JOIN appointments a ON a.practice_id = c.practice_id AND a.appointment_id = c.appointment_id
     WHERE c.practice_id = $1 AND c.campaign_id = $2`,
    [r.practiceId, CAMPAIGN_ID],
  );
  const { rows: ledger } = await sql.query<{ workflow_id: string; placed_at: Date | string; outcome: string | null; time_zone: string }>(
    `SELECT l.workflow_id, l.placed_at, l.outcome, c.patient_time_zone AS time_zone FROM attempt_ledger l
     JOIN campaign_contacts c ON c.workflow_id = l.workflow_id AND c.practice_id = $1 AND c.campaign_id = $2`,
    [r.practiceId, CAMPAIGN_ID],
  );
  const { rows: decided } = await sql.query<{ workflow_id: string; decided_at: Date | string }>(
    `SELECT a.workflow_id, max(a.decided_at) AS decided_at FROM audit_log a
     JOIN campaign_contacts c ON c.workflow_id = a.workflow_id AND c.practice_id = $1 AND c.campaign_id = $2
     WHERE a.decision = 'OUTCOME' AND a.detail->>'finalOutcome' IS NOT NULL GROUP BY a.workflow_id`,
    [r.practiceId, CAMPAIGN_ID],
  );
  const decidedAt = new Map(decided.map((d) => [d.workflow_id, new Date(d.decided_at).getTime()]));
  const deadlineMs = DEFAULT_CALL_POLICY.deadlineBeforeAppointmentSeconds * 1000;

  const outcomes: Record<string, number> = {};
  let reached = 0;
  for (const a of appts) {
    const outcome = a.outcome ?? 'NOT_DECIDED';
    inc(outcomes, outcome);
    const at = decidedAt.get(a.workflow_id);
    if (REACHED_OUTCOMES.has(outcome) && at !== undefined && at <= new Date(a.starts_at).getTime() - deadlineMs) reached += 1;
  }
  const perPatient = new Map<string, number>(appts.map((a) => [a.workflow_id, 0]));
  const byAttemptOutcome: Record<string, number> = {};
  const byLocalHour: Record<string, number> = {};
  const byClockHour: Record<string, number> = {};
  for (const l of ledger) {
    perPatient.set(l.workflow_id, (perPatient.get(l.workflow_id) ?? 0) + 1);
    inc(byAttemptOutcome, l.outcome ?? 'NOT_RECORDED');
    const at = new Date(l.placed_at);
    inc(byLocalHour, `${String(DateTime.fromJSDate(at).setZone(l.time_zone).hour).padStart(2, '0')}:00`);
    inc(byClockHour, clockHour(at));
  }
  const distribution: Record<string, number> = {};
  let attemptsTotal = 0;
  for (const n of perPatient.values()) {
    inc(distribution, String(n));
    attemptsTotal += n;
  }

  // Modelled channel time, by the clock hour in which each call was dialed.
  const channelSecondsByHour: Record<string, number> = {};
  let channelSeconds = 0;
  for (const c of r.calls) {
    const s = c.ringSeconds + c.talkSeconds;
    channelSeconds += s;
    inc(channelSecondsByHour, clockHour(new Date(c.dialedAtMs)), s);
  }
  const hours = Object.keys(channelSecondsByHour).length;
  const capacity = (h: number) => r.limits.channels * 3600 * h;
  let peakHour: string | undefined;
  for (const [h, s] of Object.entries(channelSecondsByHour)) if (peakHour === undefined || s > channelSecondsByHour[peakHour]!) peakHour = h;

  const last = decided.length > 0 ? Math.max(...decided.map((d) => new Date(d.decided_at).getTime())) : undefined;
  return {
    assumptions: {
      consent: 'consent on file is assumed for every row (recorded in the forecast\'s throwaway database)',
      seed: r.seed,
      speed: r.speed,
      limits: r.limits,
      gateCallsPerSecond: r.gateCallsPerSecond,
      rules: { days: r.rules.days, start: r.rules.start, end: r.rules.end, maxCallsPerDay: r.rules.maxCallsPerDay, maxCallsPerWeek: r.rules.maxCallsPerWeek },
      maxAttempts: DEFAULT_CALL_POLICY.maxAttempts,
      model: r.model,
      time:
        `waits between calls (backoffs, calling windows, caps) are skipped on the test server; each call is played ${r.speed}x faster than modelled ` +
        `(the calls-per-second limit raised by the same factor) and holds its channel for that long on the test server's clock; channel ` +
        `utilisation is computed from the modelled (uncompressed) call lengths; queueing for channels is therefore ${r.speed}x shorter than it would be`,
    },
    import: { rowsRead: r.import.rowsRead, valid: r.import.valid, added: r.import.added, invalid: r.import.invalid.length, duplicates: r.import.duplicates.length },
    startedAt: r.startedAt.toISOString(),
    ...(last === undefined ? {} : { finishedAt: new Date(last).toISOString(), hoursToFinish: round((last - r.startedAt.getTime()) / 3_600_000, 2) }),
    contacts: appts.length,
    reached: { count: reached, share: appts.length ? round(reached / appts.length) : 0 },
    outcomes: sorted(outcomes),
    attemptsPerPatient: { mean: perPatient.size ? round(attemptsTotal / perPatient.size, 2) : 0, distribution: sorted(distribution) },
    calls: { placed: ledger.length, byAttemptOutcome: sorted(byAttemptOutcome), byLocalHour: sorted(byLocalHour), byClockHour: sorted(byClockHour) },
    channels: {
      limit: r.limits.channels,
      peakConcurrent: r.peakConcurrent,
      modelledChannelHours: round(channelSeconds / 3600, 2),
      utilisation: hours ? round(channelSeconds / capacity(hours)) : 0,
      peakHourUtilisation: peakHour ? round(channelSecondsByHour[peakHour]! / capacity(1)) : 0,
      ...(peakHour ? { peakHour } : {}),
      peakHourMinutesAtLimit: peakHour ? round(channelSecondsByHour[peakHour]! / r.limits.channels / 60, 1) : 0,
    },
    wallSeconds: round((performance.now() - r.wallStart) / 1000, 1),
  };
}

/** `2026-12-01T14` (UTC hour). */
function clockHour(at: Date): string {
  return `${at.toISOString().slice(0, 13)}:00Z`;
}

/** The report as text for a terminal (counts only). */
export function formatForecast(f: ForecastReport): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const out: string[] = [];
  out.push(`Forecast of ${f.contacts} appointments (seed ${f.assumptions.seed}; ${f.assumptions.limits.channels} channels, ${f.assumptions.limits.callsPerSecond} calls/s)`);
  out.push(`  Assumes: ${f.assumptions.consent}.`);
  out.push(`  Import: ${f.import.rowsRead} rows read, ${f.import.added} queued, ${f.import.invalid} invalid, ${f.import.duplicates} duplicates.`);
  out.push('');
  out.push(`Reached before the deadline: ${f.reached.count} of ${f.contacts} (${pct(f.reached.share)})`);
  out.push(`Expected finish: ${f.finishedAt ?? 'n/a'}${f.hoursToFinish === undefined ? '' : ` (${f.hoursToFinish} h after the start, ${f.startedAt})`}`);
  out.push(`Outcomes: ${Object.entries(f.outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(`Attempts per patient: mean ${f.attemptsPerPatient.mean}; ${Object.entries(f.attemptsPerPatient.distribution).map(([k, v]) => `${k} calls: ${v}`).join(', ')}`);
  out.push(`Calls placed: ${f.calls.placed} (${Object.entries(f.calls.byAttemptOutcome).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  out.push('Calls by patient-local hour:');
  const maxCalls = Math.max(1, ...Object.values(f.calls.byLocalHour));
  for (const [h, n] of Object.entries(f.calls.byLocalHour)) out.push(`  ${h}  ${String(n).padStart(6)}  ${'#'.repeat(Math.ceil((n / maxCalls) * 40))}`);
  const clock = Object.values(f.calls.byClockHour);
  out.push(`Calls per clock hour with calls: mean ${clock.length ? (clock.reduce((a, b) => a + b, 0) / clock.length).toFixed(1) : 0}, busiest ${Math.max(0, ...clock)} (${clock.length} hours)`);
  out.push(
    `Channels: ${f.channels.limit}; most calls up at once ${f.channels.peakConcurrent}; modelled channel time ${f.channels.modelledChannelHours} h; ` +
      `utilisation ${pct(f.channels.utilisation)} over the hours with calls, busiest hour ${pct(f.channels.peakHourUtilisation)}${f.channels.peakHour ? ` (${f.channels.peakHour})` : ''}`,
  );
  if (f.channels.peakHour) out.push(`  The busiest hour's calls need at least ${f.channels.peakHourMinutesAtLimit} min at ${f.channels.limit} channels.`);
  if (f.channels.peakHourUtilisation > 0.8) out.push('  Warning: in the busiest hour the modelled calls need most of the channels; calls will queue for channels longer than this forecast shows.');
  out.push('');
  out.push(`Time: ${f.assumptions.time}.`);
  out.push(`Forecast took ${f.wallSeconds} s.`);
  return out.join('\n');
}
