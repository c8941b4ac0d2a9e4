/**
 * No echo, as a property of the code: marked values — a patient name, phone numbers, appointment
 * times, a password, a wrong API secret, a signed token, a database password, a 10 MB value — are
 * fed through every entry point, and no mark may come back in any output stream: the CLI's, the
 * worker's and the agent's stdout and stderr (at the default level and at debug), the messages the
 * client APIs throw, the reports they return, the log lines the loggers write and the messages of
 * dial failures (which end up in failure histories and logs). Real servers throughout: the Temporal
 * dev server, livekit-server (a wrong secret gets its real refusal), PostgreSQL.
 *
 * Output streams checked: CLI stdout + stderr (start, move, status, unknown command, opt-out,
 * consent, campaign validate / start, trunk create / list), worker stdout + stderr, agent stdout +
 * stderr, ConfirmationClient and CampaignClient thrown messages and import reports, pino log lines
 * (process logger and the Temporal SDK's lines routed through it), DialError messages, safeMessage.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Client } from '@temporalio/client';
import { ServerError } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CampaignClient } from '../../src/campaigns/client';
import { REQUIRED_COLUMNS, validateJsonRows } from '../../src/campaigns/import';
import { ConfirmationClient } from '../../src/client';
import { startLiveKitStack, type LiveKitStack } from '../../src/dev/livekit-stack';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { startTemporalDevServer, type DevServer } from '../../src/dev/temporal-dev-server';
import { describeForUser, redact, safeMessage } from '../../src/errors';
import { createLogger, temporalLogger } from '../../src/logger';
import { createStore } from '../../src/store';
import { classifyDialError } from '../../src/telephony/livekit';

const ROOT = join(import.meta.dirname, '../..');
const TSX = createRequire(import.meta.url).resolve('tsx');
const SCRIPTS = { cli: join(ROOT, 'src/cli.ts'), worker: join(ROOT, 'src/worker.ts'), agent: join(ROOT, 'agent/main.ts'), codec: join(ROOT, 'src/codec-server-main.ts') };
const KEY = 'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';

// ------------------------------------------------------------------------------- the marks
/** Every text mark holds "zzmark" (any case); numbers and times are marked by their digits. */
const NAME = 'Zzmarka Quillfeather';
/** A valid fictional number with a marker area (907) and line (0142), and an invalid one of the same digits. */
const PHONE = '+19075550142';
const BAD_PHONE = '+1907555014';
/** Appointment times with a marker second (:17, :53): one ahead, one past. */
const FUTURE = '2031-04-05T09:30:17-05:00';
const PAST = '2025-11-29T02:21:53-05:00';
const PASSWORD = 'Zzmarkpw-7f3a9c1e';
const WRONG_SECRET = 'Zzmarksecret-0123456789abcdef0123456789';
const DB_PASSWORD = 'Zzmarkdbpw';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ6em1hcmsiLCJ2aWRlbyI6e319.Zzmarksig0123456789abcdef';
const HUGE = `Zzmarkhuge${'x'.repeat(10 * 1024 * 1024)}`;

/** What must never appear: every mark, in every form a number or a time may be printed. */
const NEVER: (string | RegExp)[] = [
  /zzmark/i,
  'Quillfeather',
  '19075550142',
  '9075550142',
  '907-555-0142',
  '907555014',
  '2031-04-05',
  '09:30:17',
  '2025-11-29',
  '02:21:53',
  /eyJ[\w-]{8,}\./, // any signed token, not only the marked one (a refused request's own token)
];

/** Fails naming the stream and the mark, with the text around it. */
function expectNoMarks(stream: string, text: string): void {
  for (const mark of NEVER) {
    const at = typeof mark === 'string' ? text.indexOf(mark) : text.search(mark);
    expect(at, `${stream} echoed ${String(mark)}: …${text.slice(Math.max(0, at - 160), at + 80)}…`).toBe(-1);
  }
}

// ------------------------------------------------------------------------------- servers
let temporal: DevServer;
let stack: LiveKitStack;
let postgres: PostgresServer;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'no-echo-'));
  [temporal, stack, postgres] = await Promise.all([startTemporalDevServer({ headless: true }), startLiveKitStack(), startPostgres()]);
});

afterAll(async () => {
  await Promise.all([temporal?.stop(), stack?.stop(), postgres?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs an entry point the way a user would: its own process, its own environment, a scratch directory. */
function run(entry: keyof typeof SCRIPTS, args: string[], env: Record<string, string | undefined>, stdin = ''): Promise<Run> {
  const cwd = mkdtempSync(join(work, 'run-'));
  const clean = Object.fromEntries(Object.entries({ PATH: process.env.PATH, HOME: process.env.HOME, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const child = spawn(process.execPath, ['--import', TSX, SCRIPTS[entry], ...args], { cwd, env: clean, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => undefined); // a process that exits before reading all of a 10 MB input
  child.stdin.end(stdin);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function file(name: string, text: string): string {
  const path = join(mkdtempSync(join(work, 'file-')), name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

const request = (overrides: Record<string, unknown> = {}) => ({
  appointmentId: 'A-100',
  patientId: 'P-100',
  patientName: NAME,
  phone: PHONE,
  patientTimeZone: 'America/Chicago',
  appointmentStart: FUTURE,
  practiceId: 'bright-smiles',
  practiceName: 'Bright Smiles Dental',
  practiceCallbackNumber: '+13125550100',
  provider: 'Dr. Rivera',
  reason: 'cleaning',
  ...overrides,
});

/** A schedule whose rows break every rule with marked values (and one valid, marked row). */
const scheduleCsv = () =>
  [
    REQUIRED_COLUMNS.join(','),
    ['A-1', 'P-1', NAME, BAD_PHONE, 'America/Chicago', FUTURE, 'Dr. Rivera', 'cleaning'].join(','),
    ['A-2', 'P-2', `"${NAME}\u0007"`, PHONE, 'Zzmark/Zone', PAST, 'Dr. Rivera', 'cleaning'].join(','),
    ['A-3', 'P-3', NAME, PHONE, 'America/Chicago', `${FUTURE.slice(0, 19)}`, 'Dr. Rivera', 'cleaning'].join(','),
    ['A-4', 'P-4', NAME, PHONE, 'America/Chicago', FUTURE, 'Dr. Rivera'].join(','),
    ['A-5', 'P-5', NAME, PHONE, 'America/Chicago', FUTURE, 'Dr. Rivera', 'cleaning'].join(','),
  ].join('\n');

/** A file without a header: its first line is a patient's row. */
const headerlessCsv = () => [['A-1', 'P-1', NAME, PHONE, 'America/Chicago', FUTURE, 'Dr. Rivera', 'cleaning'].join(',')].join('\n');

interface Case {
  name: string;
  entry: keyof typeof SCRIPTS;
  args?: () => string[];
  env: () => Record<string, string | undefined>;
  stdin?: () => string;
  /** Expected to succeed (a report on stdout) rather than fail. */
  mayExitZero?: boolean;
}

const cliEnv = () => ({ TEMPORAL_ADDRESS: temporal.address, PAYLOAD_ENCRYPTION_KEY: KEY, DATABASE_URL: postgres.url });
const livekitEnv = () => ({ LIVEKIT_URL: stack.url, LIVEKIT_API_KEY: stack.apiKey, LIVEKIT_API_SECRET: stack.apiSecret });
const workerEnv = () => ({ ...cliEnv(), ...livekitEnv(), LIVEKIT_SIP_TRUNK_ID: 'ST_none' });
const debug = (env: () => Record<string, string | undefined>) => () => ({ ...env(), LOG_LEVEL: 'debug' });
const practice = ['--practice', 'bright-smiles', '--practice-name', 'Bright Smiles Dental', '--callback', '+13125550100'];

const CASES: Case[] = [
  // The CLI: requests, files and arguments holding health data.
  { name: 'cli start: not JSON, starting with the patient’s name', entry: 'cli', args: () => ['start'], env: cliEnv, stdin: () => `${NAME}, ${PHONE}, ${FUTURE}` },
  { name: 'cli start: not JSON, at debug level', entry: 'cli', args: () => ['start'], env: debug(cliEnv), stdin: () => `{"patientName": "${NAME}", ${PHONE}` },
  { name: 'cli start: every field bad and marked', entry: 'cli', args: () => ['start'], env: cliEnv, stdin: () => JSON.stringify(request({ patientName: `${NAME}\u0007`, phone: BAD_PHONE, patientTimeZone: 'Zzmark/Zone', appointmentStart: `${FUTURE.slice(0, 19)}`, reason: 7 })) },
  { name: 'cli start: appointment in the past', entry: 'cli', args: () => ['start'], env: cliEnv, stdin: () => JSON.stringify(request({ appointmentStart: PAST })) },
  { name: 'cli start: a 10 MB name', entry: 'cli', args: () => ['start'], env: cliEnv, stdin: () => JSON.stringify(request({ patientName: HUGE })) },
  { name: 'cli start: request in a file that is not JSON', entry: 'cli', args: () => ['start', '--file', file('request.json', `patientName=${NAME}\nphone=${PHONE}\n`)], env: cliEnv },
  { name: 'cli move: appointment time in the past', entry: 'cli', args: () => ['move', 'bright-smiles', 'A-1', PAST], env: cliEnv },
  { name: 'cli move: time not ISO (at debug level)', entry: 'cli', args: () => ['move', 'bright-smiles', 'A-1', `Zzmark ${FUTURE}`], env: debug(cliEnv) },
  { name: 'cli status: a phone number pasted as the workflow id', entry: 'cli', args: () => ['status', PHONE], env: cliEnv },
  { name: 'cli: a phone number pasted as the command', entry: 'cli', args: () => [PHONE], env: cliEnv },
  { name: 'cli: an appointment time pasted as an extra argument', entry: 'cli', args: () => ['status', 'confirm-x', FUTURE], env: cliEnv },
  { name: 'cli opt-out: a number that is not E.164', entry: 'cli', args: () => ['opt-out'], env: cliEnv, stdin: () => `Zzmark ${BAD_PHONE}` },
  { name: 'cli consent: a number that is not valid', entry: 'cli', args: () => ['consent', 'bright-smiles'], env: cliEnv, stdin: () => BAD_PHONE },
  { name: 'cli campaign validate: bad rows', entry: 'cli', args: () => ['campaign', 'validate', file('schedule.csv', scheduleCsv()), ...practice], env: cliEnv, mayExitZero: true },
  { name: 'cli campaign validate: bad rows, report as JSON', entry: 'cli', args: () => ['campaign', 'validate', file('schedule.csv', scheduleCsv()), ...practice, '--json'], env: cliEnv, mayExitZero: true },
  { name: 'cli campaign validate: no header (a patient row first)', entry: 'cli', args: () => ['campaign', 'validate', file('schedule.csv', headerlessCsv()), ...practice], env: cliEnv },
  { name: 'cli campaign start: bad rows', entry: 'cli', args: () => ['campaign', 'start', file('schedule.csv', scheduleCsv()), ...practice, '--json'], env: cliEnv, mayExitZero: true },
  { name: 'cli tz-override: a bad number and a marked zone', entry: 'cli', args: () => ['tz-override', 'bright-smiles', '--zone', `Zzmark/${PHONE}`, '--reason', 'moved', '--actor', 'op-1'], env: cliEnv, stdin: () => BAD_PHONE },
  { name: 'cli tz-override: a valid number and a marked zone', entry: 'cli', args: () => ['tz-override', 'bright-smiles', '--zone', `Zzmark/${PHONE}`, '--reason', 'moved', '--actor', 'op-1'], env: cliEnv, stdin: () => PHONE },
  // Credentials.
  { name: 'cli trunk create: credentials file holding a bare password', entry: 'cli', args: () => ['trunk', 'create', 'c', 'sip.carrier.test', '+13125550100', '--credentials-file', file('creds.txt', `${PASSWORD}\n`)], env: livekitEnv },
  { name: 'cli trunk create: credentials file of the wrong shape', entry: 'cli', args: () => ['trunk', 'create', 'c', 'sip.carrier.test', '+13125550100', '--credentials-file', file('creds.json', JSON.stringify({ user: 'clinic', password: PASSWORD, authPassword: 1 }))], env: debug(livekitEnv) },
  { name: 'cli trunk list: wrong LIVEKIT_API_SECRET', entry: 'cli', args: () => ['trunk', 'list'], env: () => ({ ...livekitEnv(), LIVEKIT_API_SECRET: WRONG_SECRET }) },
  { name: 'cli trunk list: wrong LIVEKIT_API_SECRET, at debug level', entry: 'cli', args: () => ['trunk', 'list'], env: () => ({ ...livekitEnv(), LIVEKIT_API_SECRET: WRONG_SECRET, LOG_LEVEL: 'debug' }) },
  { name: 'cli start: DATABASE_URL with a password, unreachable, at debug level', entry: 'cli', args: () => ['consent', 'bright-smiles'], env: () => ({ ...cliEnv(), DATABASE_URL: `postgres://app:${DB_PASSWORD}@127.0.0.1:1/db`, LOG_LEVEL: 'debug' }), stdin: () => PHONE },
  { name: 'cli start: a token as the payload key', entry: 'cli', args: () => ['start'], env: () => ({ ...cliEnv(), PAYLOAD_ENCRYPTION_KEY: TOKEN }), stdin: () => JSON.stringify(request()) },
  // The worker's configuration.
  { name: 'worker: wrong LIVEKIT_API_SECRET', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_API_SECRET: WRONG_SECRET }) },
  { name: 'worker: wrong LIVEKIT_API_SECRET, at debug level', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_API_SECRET: WRONG_SECRET, LOG_LEVEL: 'debug' }) },
  { name: 'worker: a password as PAYLOAD_ENCRYPTION_KEY', entry: 'worker', env: () => ({ ...workerEnv(), PAYLOAD_ENCRYPTION_KEY: PASSWORD }) },
  { name: 'worker: DATABASE_URL with a password, unreachable, at debug level', entry: 'worker', env: () => ({ ...workerEnv(), DATABASE_URL: `postgres://app:${DB_PASSWORD}@127.0.0.1:1/db`, LOG_LEVEL: 'debug' }) },
  { name: 'worker: marked numbers in the calling rules', entry: 'worker', env: () => ({ ...workerEnv(), CALLING_START: FUTURE, MAX_CALLS_PER_DAY: PHONE, TRUNK_MAX_CHANNELS: 'Zzmark' }) },
  // The agent's configuration.
  { name: 'agent: wrong LIVEKIT_API_SECRET', entry: 'agent', args: () => ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, LIVEKIT_API_SECRET: WRONG_SECRET, AGENT_IDLE_PROCESSES: '0' }) },
  { name: 'agent: a marked STAFF_TRANSFER_NUMBER and payload key', entry: 'agent', args: () => ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: PASSWORD, STAFF_TRANSFER_NUMBER: `Zzmark${BAD_PHONE}` }) },
  // The codec server's configuration (its requests are covered by test/src/codec-server.test.ts).
  { name: 'codec server: a password as PAYLOAD_ENCRYPTION_KEY', entry: 'codec', env: () => ({ PAYLOAD_ENCRYPTION_KEY: PASSWORD, CODEC_AUTH_HS256_SECRET: `${WRONG_SECRET}${WRONG_SECRET}`, CODEC_ALLOWED_ORIGINS: 'http://127.0.0.1:8233' }) },
  { name: 'codec server: a token as the shared secret, a marked origin and issuer', entry: 'codec', env: () => ({ PAYLOAD_ENCRYPTION_KEY: KEY, CODEC_AUTH_HS256_SECRET: TOKEN.slice(0, 12), CODEC_ALLOWED_ORIGINS: `Zzmark ${PHONE}`, CODEC_AUTH_ISSUER: `Zzmark${PASSWORD}` }) },
];

describe('no entry point echoes a health value, a credential or a token', () => {
  // Three at a time: each run is a Node process with TypeScript to load.
  const results = new Map<string, Promise<Run>>();
  let running = 0;
  const queue: (() => void)[] = [];
  const schedule = (c: Case) =>
    new Promise<Run>((resolve) => {
      const start = () => {
        running += 1;
        void run(c.entry, c.args?.() ?? [], c.env(), c.stdin?.() ?? '').then((r) => {
          running -= 1;
          queue.shift()?.();
          resolve(r);
        });
      };
      if (running < 3) start();
      else queue.push(start);
    });
  const resultOf = (c: Case) => {
    if (results.size === 0) for (const each of CASES) results.set(each.name, schedule(each));
    return results.get(c.name)!;
  };

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const result = await resultOf(c);
    const context = `exit ${result.code}; stderr: ${result.stderr.slice(0, 2_000)}`;
    if (!c.mayExitZero) expect(result.code, context).not.toBe(0);
    expect(result.code, context).not.toBeNull();
    expectNoMarks(`${c.name}: stdout`, result.stdout);
    expectNoMarks(`${c.name}: stderr`, result.stderr);
    // Bounded: a 10 MB value never comes back whole (debug output has stacks; a report has lines).
    expect(result.stderr.length + result.stdout.length, context).toBeLessThan(20_000);
  });
});

describe('the client APIs: thrown messages and reports', () => {
  it('ConfirmationClient: every refusal names the field without the value', async () => {
    const store = await createStore({});
    try {
      // No Temporal call is reached by a refused request.
      const api = new ConfirmationClient({ client: {} as Client, store });
      const refusals = [
        api.startConfirmation(request({ appointmentStart: PAST })),
        api.startConfirmation(request({ patientName: HUGE, phone: BAD_PHONE, patientTimeZone: 'Zzmark/Zone', provider: `${NAME}\u202e` })),
        api.startConfirmation(request({ appointmentStart: FUTURE.replace('2031', '2099') })),
        api.startConfirmation({ ...request(), [NAME]: PHONE }),
        api.startConfirmation(`${NAME} ${PHONE}`),
        api.moveAppointment('bright-smiles', 'A-1', PAST),
        api.moveAppointment('bright-smiles', 'A-1', `Zzmark ${FUTURE}`),
        api.recordConsent({ practiceId: 'bright-smiles', phone: BAD_PHONE, granted: true, source: `${NAME} said so ${HUGE}` }),
        api.getStatus(`${PHONE} ${NAME}`),
        api.stopConfirmationsOf(`Zzmark${BAD_PHONE}`),
      ];
      for (const [i, call] of refusals.entries()) {
        const err = await call.then(
          () => new Error('accepted'),
          (e: unknown) => e as Error,
        );
        expect(err.message, `call ${i}`).not.toBe('accepted');
        expectNoMarks(`ConfirmationClient call ${i}`, err.message);
        expectNoMarks(`ConfirmationClient call ${i}, as printed`, describeForUser(err).message);
        expect(err.message.length, `call ${i}`).toBeLessThan(1_000);
      }
    } finally {
      await store.close();
    }
  });

  it('CampaignClient and the import: reports and refusals hold no value of a row', async () => {
    const store = await createStore({});
    try {
      const rows = [
        { appointmentId: 'A-1', patientId: 'P-1', patientName: NAME, phone: BAD_PHONE, patientTimeZone: 'America/Chicago', appointmentStart: PAST, provider: 'Dr. Rivera', reason: 'cleaning' },
        { appointmentId: `Zzmark${PHONE}`, patientId: 'P-2', patientName: HUGE, phone: PHONE, patientTimeZone: 'Zzmark/Zone', appointmentStart: FUTURE.slice(0, 19), provider: 7, reason: 'cleaning', [NAME]: 1 },
      ];
      const report = await validateJsonRows(rows, { practiceId: 'bright-smiles', practiceName: 'Bright Smiles Dental', practiceCallbackNumber: '+13125550100' });
      expect(report.invalid.length).toBeGreaterThanOrEqual(2);
      expectNoMarks('validateJsonRows report', JSON.stringify(report));
      const api = new CampaignClient({ client: {} as Client, sql: store.sql });
      const refused = await api
        .start({ practiceId: 'bright-smiles', practiceName: NAME, practiceCallbackNumber: BAD_PHONE, campaignId: 'c-1' }, { rows }, { actor: 'test' })
        .then(
          () => new Error('accepted'),
          (e: unknown) => e as Error,
        );
      expect(refused.message).not.toBe('accepted');
      expectNoMarks('CampaignClient.start refusal', `${refused.message} ${describeForUser(refused).message}`);
    } finally {
      await store.close();
    }
  });
});

describe('logs and failure messages', () => {
  const TEXT = `call to sip:${PHONE}@carrier.example for ${FUTURE} failed: token ${TOKEN}, secret ${WRONG_SECRET}`;
  const parseError = (() => {
    try {
      JSON.parse(`${NAME} ${PHONE}`);
    } catch (err) {
      return err as Error;
    }
    return new Error('parsed');
  })();

  // The process's secrets are in its environment (that is where the entry points read them).
  const env = { ...process.env };
  beforeAll(() => void (process.env.LIVEKIT_API_SECRET = WRONG_SECRET));
  afterAll(() => void (process.env = env));

  it('the process logger: no mark in any line, whatever the fields, messages and errors hold', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('trace', sink);
    {
      logger.warn({ error: TEXT, patientName: NAME, detail: { patientName: NAME, note: `moved to ${PAST}`, numbers: [PHONE, BAD_PHONE] }, err: parseError }, 'dial failed');
      logger.error(`dialing ${PHONE} for the appointment at ${FUTURE} failed`);
      logger.info({ err: Object.assign(new Error(`invalid input syntax for type timestamp: "${NAME}"`), { code: '22007' }) }, 'query failed');
      logger.info({ value: HUGE }, 'a huge value');
      // The Temporal SDK's own lines ("Activity failed" with the error) take the same path in the worker.
      temporalLogger(logger).warn('Activity failed', { error: new Error(TEXT), activityType: 'dial' });
    }
    expect(lines.length).toBe(5);
    for (const line of lines) {
      expectNoMarks('log line', line);
      expect(line.length).toBeLessThan(4_000);
    }
  });

  it('dial failures carry no number, time or token from the server’s text (their message goes to the failure and the logs)', () => {
    const server = new ServerError('unknown', `twirp error unknown: cannot dial "${PHONE}" (sip:${PHONE}@carrier) for "${NAME}", token ${TOKEN}`, 500, 'unknown');
    const sip = new ServerError('resource_exhausted', `SIP call failed: 486 Busy Here ${PHONE}`, 429, 'resource_exhausted', { sip_status_code: '486', sip_status: 'Busy Here' });
    for (const err of [server, sip, new Error(`fetch failed: ${PHONE} ${FUTURE}`), new Error(TEXT)]) {
      const dial = classifyDialError(err);
      expectNoMarks('DialError', dial.message);
    }
    expect(classifyDialError(sip).message).toContain('486 Busy Here');
  });

  it('safeMessage and redact: library messages lose what they quote; what remains says what kind of problem it was', () => {
    expectNoMarks('safeMessage of a JSON parse error', safeMessage(parseError));
    expect(safeMessage(parseError)).toMatch(/is not valid JSON|Unexpected token/);
    expectNoMarks('redact', redact(`${TEXT} ${HUGE}`, { env: { LIVEKIT_API_SECRET: WRONG_SECRET } }));
    expect(redact(HUGE).length).toBeLessThan(1_000);
  });
});
