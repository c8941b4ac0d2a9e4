/**
 * Errors a person can act on, at every entry point: the CLI (confirmations and trunks), the worker
 * and the agent run as child processes — as a user would run them — against real servers (Temporal
 * dev server, livekit-server, PostgreSQL) with one bad input each. Every run must exit non-zero
 * with one or two sentences on stderr that name the variable or field to fix, no stack trace
 * (unless LOG_LEVEL=debug), and no secret, token or health value anywhere in its output.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedTrunk, startLiveKitStack, type LiveKitStack } from '../../src/dev/livekit-stack';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { startTemporalDevServer, type DevServer } from '../../src/dev/temporal-dev-server';

const ROOT = join(import.meta.dirname, '../..');
const TSX = createRequire(import.meta.url).resolve('tsx');
const SCRIPTS = { cli: join(ROOT, 'src/cli.ts'), worker: join(ROOT, 'src/worker.ts'), agent: join(ROOT, 'agent/main.ts') };

const KEY = 'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const KEY_BYTES = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
const WRONG_SECRET = 'wrong-secret-that-must-never-be-printed-0123456789';
const DB_PASSWORD = 'db-password-never-printed';
const TRUNK_PASSWORD = 'trunk-password-never-printed';
const PATIENT = 'Alexandra Quill';
const PHONE = '+12125550147';
const APPOINTMENT_START = '2031-04-05T09:30:00-05:00';

let temporal: DevServer;
let stack: LiveKitStack;
let postgres: PostgresServer;
let trunkId: string;
let work: string;
let databaseUrl: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'entry-points-'));
  [temporal, stack, postgres] = await Promise.all([startTemporalDevServer({ headless: true }), startLiveKitStack(), startPostgres()]);
  trunkId = await createSimulatedTrunk(stack, 'carrier');
  // A database of its own, so the runs below skip PGlite's start-up (PGlite cases set PGLITE_DATA_DIR instead).
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query('CREATE DATABASE entry_points');
  await admin.end();
  databaseUrl = postgres.url.replace(/\/postgres$/, '/entry_points');
  // A confirmation no worker serves (its task queue has no poller): a status query cannot be answered.
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  await client.workflow.start('confirmAppointmentWorkflow', { taskQueue: 'nobody-polls-this', workflowId: 'confirm-no-worker', args: [] });
  await client.connection.close();
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

/** Runs an entry point the way a user would (its own process, its own environment, a scratch directory). */
function run(entry: keyof typeof SCRIPTS, args: string[], env: Record<string, string | undefined>, stdin = ''): Promise<Run> {
  const cwd = mkdtempSync(join(work, 'run-'));
  const clean = Object.fromEntries(Object.entries({ PATH: process.env.PATH, HOME: process.env.HOME, ...env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const child = spawn(process.execPath, ['--import', TSX, SCRIPTS[entry], ...args], { cwd, env: clean, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(stdin);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** In a scratch file under the work directory. */
function file(name: string, text: string): string {
  const dir = mkdtempSync(join(work, 'file-'));
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

const NEVER_PRINTED = [WRONG_SECRET, KEY_BYTES, DB_PASSWORD, TRUNK_PASSWORD, PATIENT, 'Quill', PHONE, '2125550147', APPOINTMENT_START, '2031-04-05'];

/** The rules every failure must follow. */
function expectActionable(result: Run, names: RegExp, options: { debug?: boolean } = {}): void {
  const text = result.stderr.trim();
  const context = `stderr was:\n${result.stderr}\nstdout was:\n${result.stdout}`;
  expect(result.code, context).not.toBe(0);
  expect(result.code, context).not.toBeNull();
  expect(text, context).toMatch(names);
  for (const value of [...NEVER_PRINTED, stack.apiSecret]) {
    expect(result.stderr + result.stdout, `${value} printed; ${context}`).not.toContain(value);
  }
  expect(result.stderr + result.stdout, context).not.toMatch(/eyJ[\w-]{8,}\./); // a signed token
  if (options.debug) return;
  expect(text, `stack trace; ${context}`).not.toMatch(/\n\s+at /);
  expect(text.split('\n').length, `more than two lines; ${context}`).toBeLessThanOrEqual(2);
  // One or two sentences (abbreviations and URLs do not end one).
  const sentences = text.replace(/\b(e\.g|i\.e|etc)\./g, '$1').match(/[.!?](?=\s|$)/g)?.length ?? 0;
  expect(sentences, `more than two sentences; ${context}`).toBeLessThanOrEqual(2);
}

interface Case {
  name: string;
  entry: keyof typeof SCRIPTS;
  args?: string[];
  env: () => Record<string, string | undefined>;
  stdin?: () => string;
  names: RegExp;
  debug?: boolean;
}

const cliEnv = () => ({ TEMPORAL_ADDRESS: temporal.address, PAYLOAD_ENCRYPTION_KEY: KEY, DATABASE_URL: databaseUrl });
const workerEnv = () => ({
  ...cliEnv(),
  LIVEKIT_URL: stack.url,
  LIVEKIT_API_KEY: stack.apiKey,
  LIVEKIT_API_SECRET: stack.apiSecret,
  LIVEKIT_SIP_TRUNK_ID: trunkId,
});
const livekitEnv = () => ({ LIVEKIT_URL: stack.url, LIVEKIT_API_KEY: stack.apiKey, LIVEKIT_API_SECRET: stack.apiSecret });
const request = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    appointmentId: 'A-100',
    patientId: 'P-100',
    patientName: PATIENT,
    phone: PHONE,
    patientTimeZone: 'America/Chicago',
    appointmentStart: APPOINTMENT_START,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    ...overrides,
  });

const CASES: Case[] = [
  // The worker: every setting, and every server it needs.
  { name: 'worker: PAYLOAD_ENCRYPTION_KEY missing', entry: 'worker', env: () => ({ ...workerEnv(), PAYLOAD_ENCRYPTION_KEY: undefined }), names: /PAYLOAD_ENCRYPTION_KEY: required/ },
  { name: 'worker: PAYLOAD_ENCRYPTION_KEY too short', entry: 'worker', env: () => ({ ...workerEnv(), PAYLOAD_ENCRYPTION_KEY: 'k1:c2hvcnQ=' }), names: /PAYLOAD_ENCRYPTION_KEY: must be base64 of 32 bytes/ },
  { name: 'worker: LIVEKIT_URL missing', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_URL: undefined }), names: /LIVEKIT_URL: required/ },
  { name: 'worker: LIVEKIT_URL not a URL', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_URL: 'ftp://x' }), names: /LIVEKIT_URL: must be a ws/ },
  { name: 'worker: LIVEKIT_API_KEY missing', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_API_KEY: undefined }), names: /LIVEKIT_API_KEY: required/ },
  { name: 'worker: LIVEKIT_API_SECRET missing', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_API_SECRET: undefined }), names: /LIVEKIT_API_SECRET: required/ },
  { name: 'worker: LIVEKIT_SIP_TRUNK_ID missing', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_SIP_TRUNK_ID: undefined }), names: /LIVEKIT_SIP_TRUNK_ID: required/ },
  { name: 'worker: TEMPORAL_ADDRESS without a port', entry: 'worker', env: () => ({ ...workerEnv(), TEMPORAL_ADDRESS: 'nohost' }), names: /TEMPORAL_ADDRESS: must be host:port/ },
  { name: 'worker: CALLING_END past 21:00', entry: 'worker', env: () => ({ ...workerEnv(), CALLING_END: '22:00' }), names: /CALLING_END/ },
  { name: 'worker: MAX_CALLS_PER_DAY not a number', entry: 'worker', env: () => ({ ...workerEnv(), MAX_CALLS_PER_DAY: 'x' }), names: /MAX_CALLS_PER_DAY/ },
  { name: 'worker: LOG_LEVEL unknown', entry: 'worker', env: () => ({ ...workerEnv(), LOG_LEVEL: 'loud' }), names: /LOG_LEVEL/ },
  { name: 'worker: DATABASE_URL not postgres', entry: 'worker', env: () => ({ ...workerEnv(), DATABASE_URL: 'mysql://x' }), names: /DATABASE_URL: must be a postgres/ },
  {
    name: 'worker: DATABASE_URL unreachable (with a password)',
    entry: 'worker',
    env: () => ({ ...workerEnv(), DATABASE_URL: `postgres://app:${DB_PASSWORD}@127.0.0.1:1/postgres` }),
    names: /DATABASE_URL: cannot reach a PostgreSQL server at 127\.0\.0\.1:1/,
  },
  {
    name: 'worker: DATABASE_URL names a database that does not exist',
    entry: 'worker',
    env: () => ({ ...workerEnv(), DATABASE_URL: postgres.url.replace(/\/postgres$/, '/no_such_db') }),
    names: /DATABASE_URL: the database named in it does not exist/,
  },
  {
    name: 'worker: PGLITE_DATA_DIR cannot be created',
    entry: 'worker',
    env: () => ({ ...workerEnv(), DATABASE_URL: undefined, PGLITE_DATA_DIR: join(file('plain-file', 'x'), 'pglite') }),
    names: /PGLITE_DATA_DIR: cannot open the embedded database/,
  },
  {
    name: 'worker: PGLITE_DATA_DIR held by a live process that does not share it',
    entry: 'worker',
    env: () => {
      const dir = join(mkdtempSync(join(work, 'held-')), 'pglite');
      writeFileSync(`${dir}.lock`, String(process.pid)); // an older version's lock, held by a live process
      return { ...workerEnv(), DATABASE_URL: undefined, PGLITE_DATA_DIR: dir };
    },
    names: new RegExp(`^call-campaigns worker: PGLITE_DATA_DIR: the database in .* is in use by process ${process.pid}, which does not share it \\(an older version\\); stop that process, or set DATABASE_URL`),
  },
  { name: 'worker: wrong LIVEKIT_API_SECRET', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_API_SECRET: WRONG_SECRET }), names: /^(?!.*LIVEKIT_URL:).*LIVEKIT_API_KEY \/ LIVEKIT_API_SECRET: .*refused/ },
  { name: 'worker: wrong LIVEKIT_API_KEY', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_API_KEY: 'nokey' }), names: /LIVEKIT_API_KEY \/ LIVEKIT_API_SECRET: .*refused/ },
  { name: 'worker: LIVEKIT_URL unreachable', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_URL: 'ws://127.0.0.1:1' }), names: /LIVEKIT_URL: cannot reach a LiveKit server/ },
  { name: 'worker: LIVEKIT_SIP_TRUNK_ID unknown', entry: 'worker', env: () => ({ ...workerEnv(), LIVEKIT_SIP_TRUNK_ID: 'ST_nope' }), names: /LIVEKIT_SIP_TRUNK_ID: outbound trunk "ST_nope" does not exist/ },
  { name: 'worker: Temporal unreachable', entry: 'worker', env: () => ({ ...workerEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1' }), names: /TEMPORAL_ADDRESS: cannot reach a Temporal server at 127\.0\.0\.1:1/ },
  { name: 'worker: TEMPORAL_NAMESPACE unknown', entry: 'worker', env: () => ({ ...workerEnv(), TEMPORAL_NAMESPACE: 'nope' }), names: /TEMPORAL_NAMESPACE: namespace "nope" does not exist/ },
  {
    name: 'worker: LOG_LEVEL=debug shows the detail (still no secret)',
    entry: 'worker',
    env: () => ({ ...workerEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1', LOG_LEVEL: 'debug' }),
    names: /TEMPORAL_ADDRESS[^]*\n\s+at /,
    debug: true,
  },
  // The CLI: settings, files, requests, ids, servers, flags.
  { name: 'cli start: PAYLOAD_ENCRYPTION_KEY missing', entry: 'cli', args: ['start'], env: () => ({ ...cliEnv(), PAYLOAD_ENCRYPTION_KEY: undefined }), stdin: () => request(), names: /PAYLOAD_ENCRYPTION_KEY: required/ },
  { name: 'cli start: PAYLOAD_ENCRYPTION_KEY bad', entry: 'cli', args: ['start'], env: () => ({ ...cliEnv(), PAYLOAD_ENCRYPTION_KEY: 'not-a-key' }), stdin: () => request(), names: /PAYLOAD_ENCRYPTION_KEY: must be base64/ },
  { name: 'cli start: --file does not exist', entry: 'cli', args: ['start', '--file', '/nonexistent/request.json'], env: cliEnv, names: /--file: cannot read \/nonexistent\/request\.json \(ENOENT\)/ },
  { name: 'cli start: request is not JSON (holds a name)', entry: 'cli', args: ['start'], env: cliEnv, stdin: () => `{ patientName: ${PATIENT}, phone: ${PHONE} }`, names: /the request is not valid JSON/ },
  { name: 'cli start: request is empty', entry: 'cli', args: ['start'], env: cliEnv, stdin: () => '', names: /the request is not valid JSON \(it is empty\)/ },
  {
    name: 'cli start: bad phone, zone and appointment time',
    entry: 'cli',
    args: ['start'],
    env: cliEnv,
    stdin: () => request({ phone: '+1212555014', patientTimeZone: 'Mars/Olympus', appointmentStart: '2031-04-05 09:30' }),
    names: /phone: .*patientTimeZone: .*appointmentStart: /,
  },
  { name: 'cli start: Temporal unreachable', entry: 'cli', args: ['start'], env: () => ({ ...cliEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1' }), stdin: () => request(), names: /TEMPORAL_ADDRESS: cannot reach a Temporal server/ },
  { name: 'cli status: unknown workflow id', entry: 'cli', args: ['status', 'confirm-nope-nope'], env: cliEnv, names: /no confirmation with workflow id confirm-nope-nope/ },
  { name: 'cli status: no worker running', entry: 'cli', args: ['status', 'confirm-no-worker'], env: cliEnv, names: /no worker answered the status query: start the worker/ },
  { name: 'cli status: TEMPORAL_NAMESPACE unknown', entry: 'cli', args: ['status', 'x'], env: () => ({ ...cliEnv(), TEMPORAL_NAMESPACE: 'nope' }), names: /TEMPORAL_NAMESPACE: namespace "nope" does not exist/ },
  { name: 'cli cancel: unknown appointment', entry: 'cli', args: ['cancel', 'bright-smiles', 'A-404'], env: cliEnv, names: /no confirmation with workflow id/ },
  { name: 'cli cancel: bad practice id', entry: 'cli', args: ['cancel', 'bright smiles!', 'A-1'], env: cliEnv, names: /practiceId: must be/ },
  { name: 'cli move: appointment time not ISO', entry: 'cli', args: ['move', 'bright-smiles', 'A-1', '2031-04-05 09:30'], env: cliEnv, names: /appointmentStart: not an ISO 8601/ },
  { name: 'cli move: appointment time in the past', entry: 'cli', args: ['move', 'bright-smiles', 'A-1', '2020-04-05T09:30:00-05:00'], env: cliEnv, names: /appointmentStart: must be in the future/ },
  { name: 'cli opt-out: not a phone number', entry: 'cli', args: ['opt-out'], env: cliEnv, stdin: () => '+1212555014', names: /phone: not a valid phone number/ },
  {
    name: 'cli opt-out: Temporal unreachable (the do-not-call entry still holds)',
    entry: 'cli',
    args: ['opt-out'],
    env: () => ({ ...cliEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1' }),
    stdin: () => PHONE,
    names: /on the do-not-call list, but .*TEMPORAL_ADDRESS: cannot reach/,
  },
  { name: 'cli consent: DATABASE_URL unreachable', entry: 'cli', args: ['consent', 'bright-smiles'], env: () => ({ ...cliEnv(), DATABASE_URL: `postgresql://app:${DB_PASSWORD}@127.0.0.1:1/db` }), stdin: () => PHONE, names: /DATABASE_URL: cannot reach/ },
  { name: 'cli: unknown command', entry: 'cli', args: ['launch'], env: cliEnv, names: /unknown command 'launch'/ },
  { name: 'cli: unknown option', entry: 'cli', args: ['status', 'x', '--bogus'], env: cliEnv, names: /unknown option '--bogus'/ },
  { name: 'cli: missing argument', entry: 'cli', args: ['status'], env: cliEnv, names: /missing required argument 'workflowId'/ },
  // Trunk administration against the real livekit-server.
  { name: 'trunk list: LIVEKIT_URL missing', entry: 'cli', args: ['trunk', 'list'], env: () => ({ ...livekitEnv(), LIVEKIT_URL: undefined }), names: /LIVEKIT_URL: required/ },
  { name: 'trunk list: LIVEKIT_URL not a URL', entry: 'cli', args: ['trunk', 'list'], env: () => ({ ...livekitEnv(), LIVEKIT_URL: 'localhost' }), names: /LIVEKIT_URL: must be a ws/ },
  { name: 'trunk list: wrong LIVEKIT_API_SECRET', entry: 'cli', args: ['trunk', 'list'], env: () => ({ ...livekitEnv(), LIVEKIT_API_SECRET: WRONG_SECRET }), names: /^(?!.*LIVEKIT_URL:).*LIVEKIT_API_KEY \/ LIVEKIT_API_SECRET: .*refused/ },
  { name: 'trunk list: LiveKit unreachable', entry: 'cli', args: ['trunk', 'list'], env: () => ({ ...livekitEnv(), LIVEKIT_URL: 'http://127.0.0.1:1' }), names: /LIVEKIT_URL: cannot reach a LiveKit server/ },
  { name: 'trunk delete: unknown id', entry: 'cli', args: ['trunk', 'delete', 'ST_doesnotexist'], env: livekitEnv, names: /id: no outbound trunk with id ST_doesnotexist/ },
  { name: 'trunk create: bad address and number', entry: 'cli', args: ['trunk', 'create', 'c', 'sip://x', '555'], env: livekitEnv, names: /address: .*numbers\.0: / },
  {
    name: 'trunk create: credentials file holding a bare password',
    entry: 'cli',
    args: ['trunk', 'create', 'c', 'sip.carrier.test', '+13125550100', '--credentials-file', '@FILE'],
    env: livekitEnv,
    names: /--credentials-file: is not JSON/,
  },
  {
    name: 'trunk create: credentials file of the wrong shape',
    entry: 'cli',
    args: ['trunk', 'create', 'c', 'sip.carrier.test', '+13125550100', '--credentials-file', '@JSONFILE'],
    env: livekitEnv,
    names: /--credentials-file: must be JSON/,
  },
  { name: 'trunk create: credentials file missing', entry: 'cli', args: ['trunk', 'create', 'c', 'sip.carrier.test', '+13125550100', '--credentials-file', '/nonexistent/creds.json'], env: livekitEnv, names: /--credentials-file: cannot read/ },
  // Metrics endpoints: a bad or taken port stops the start at once, naming the variable (the Temporal dev server's port is taken).
  { name: 'worker: METRICS_PORT not a port', entry: 'worker', env: () => ({ ...workerEnv(), METRICS_PORT: '99999' }), names: /METRICS_PORT: must be a port number \(1-65535\)/ },
  { name: 'worker: METRICS_PORT in use', entry: 'worker', env: () => ({ ...workerEnv(), METRICS_PORT: temporal.address.split(':')[1] }), names: /^call-campaigns worker: METRICS_PORT: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\); choose a free port/ },
  {
    name: 'worker: TEMPORAL_METRICS_PORT in use',
    entry: 'worker',
    env: () => ({ ...workerEnv(), TEMPORAL_METRICS_PORT: temporal.address.split(':')[1] }),
    names: /^call-campaigns worker: TEMPORAL_METRICS_PORT: the Temporal SDK cannot serve its metrics on 127\.0\.0\.1:\d+ \(the port is in use\)/,
  },
  { name: 'agent: METRICS_PORT in use', entry: 'agent', args: ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, AGENT_IDLE_PROCESSES: '0', METRICS_PORT: temporal.address.split(':')[1] }), names: /METRICS_PORT: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/ },
  // The agent worker's configuration.
  { name: 'agent: nothing set', entry: 'agent', args: ['start'], env: () => ({}), names: /LIVEKIT_URL: required.*PAYLOAD_ENCRYPTION_KEY: required/ },
  { name: 'agent: PAYLOAD_ENCRYPTION_KEY not a key', entry: 'agent', args: ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: 'k1:c2hvcnQ=', AGENT_IDLE_PROCESSES: '0' }), names: /PAYLOAD_ENCRYPTION_KEY: must be base64 of 32 bytes/ },
  { name: 'agent: AGENT_MAX_CALLS zero', entry: 'agent', args: ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, AGENT_MAX_CALLS: '0' }), names: /AGENT_MAX_CALLS: must be at least 1/ },
  { name: 'agent: STAFF_TRANSFER_NUMBER not E.164', entry: 'agent', args: ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, STAFF_TRANSFER_NUMBER: '212555014' }), names: /STAFF_TRANSFER_NUMBER: must be an E\.164/ },
  {
    name: 'agent: self-hosted LLM without its base URL',
    entry: 'agent',
    args: ['start'],
    env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, AGENT_STT: 'deepgram/nova-3', AGENT_TTS: 'cartesia/sonic-2', AGENT_LLM: 'openai-compatible:llama3.1', AGENT_LLM_API_KEY: WRONG_SECRET }),
    names: /AGENT_LLM_BASE_URL: required with AGENT_LLM=openai-compatible/,
  },
  {
    name: 'agent: self-hosted STT base URL carrying a key',
    entry: 'agent',
    args: ['start'],
    env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, AGENT_STT: 'openai-compatible:whisper', AGENT_STT_BASE_URL: `http://clinic:${WRONG_SECRET}@whisper:8000/v1`, AGENT_LLM: 'openai/gpt-4.1-mini', AGENT_TTS: 'cartesia/sonic-2' }),
    names: /AGENT_STT_BASE_URL: must not carry credentials/,
  },
  { name: 'agent: one cloud model of three', entry: 'agent', args: ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, AGENT_STT: 'deepgram/nova-3' }), names: /AGENT_STT, AGENT_LLM, AGENT_TTS: set all three/ },
  {
    name: 'agent: wrong LIVEKIT_API_SECRET',
    entry: 'agent',
    args: ['start'],
    env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, LIVEKIT_API_SECRET: WRONG_SECRET, AGENT_IDLE_PROCESSES: '0' }),
    names: /^agent: LIVEKIT_API_KEY \/ LIVEKIT_API_SECRET: .*refused/,
  },
  { name: 'agent: LIVEKIT_URL not a URL', entry: 'agent', args: ['start'], env: () => ({ ...livekitEnv(), PAYLOAD_ENCRYPTION_KEY: KEY, LIVEKIT_URL: 'livekit' }), names: /LIVEKIT_URL: must be a ws/ },
];

describe('entry points: every error a user can cause is actionable', () => {
  // Four at a time: each run is a Node process with TypeScript to load.
  const results = new Map<string, Promise<Run>>();
  const queue: (() => void)[] = [];
  let running = 0;
  const schedule = (c: Case): Promise<Run> => {
    const args = (c.args ?? []).map((a) =>
      a === '@FILE' ? file('creds.txt', `${TRUNK_PASSWORD}\n`) : a === '@JSONFILE' ? file('creds.json', JSON.stringify({ user: 'clinic', password: TRUNK_PASSWORD })) : a,
    );
    return new Promise<Run>((resolve) => {
      const start = () => {
        running += 1;
        void run(c.entry, args, c.env(), c.stdin?.() ?? '').then((r) => {
          running -= 1;
          queue.shift()?.();
          resolve(r);
        });
      };
      if (running < 4) start();
      else queue.push(start);
    });
  };
  const resultOf = (c: Case) => {
    if (results.size === 0) for (const each of CASES) results.set(each.name, schedule(each));
    return results.get(c.name)!;
  };

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const result = await resultOf(c);
    // ENTRY_POINTS_REPORT=<file>: what each input gets now, for a person to read.
    if (process.env.ENTRY_POINTS_REPORT) appendFileSync(process.env.ENTRY_POINTS_REPORT, `${c.name} → exit ${result.code}: ${result.stderr.trim().split('\n')[0]}\n`);
    expectActionable(result, c.names, { debug: c.debug });
  });
});

describe('the CLI against a running owner of the embedded database', () => {
  it('an opt-out typed while another process owns .data/pglite reaches that process’s database', async () => {
    const dir = join(mkdtempSync(join(work, 'owned-')), 'pglite');
    mkdirSync(dir, { recursive: true });
    const holder = spawn(process.execPath, ['--import', TSX, join(ROOT, 'test/helpers/db-process.ts'), dir], { stdio: 'pipe' });
    try {
      const lines: string[] = [];
      holder.stdout.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
      await expect.poll(() => lines.length, { timeout: 60_000 }).toBeGreaterThan(0);
      const result = await run('cli', ['opt-out'], { TEMPORAL_ADDRESS: temporal.address, PAYLOAD_ENCRYPTION_KEY: KEY, PGLITE_DATA_DIR: dir }, PHONE);
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual({ signalled: 0 });
      holder.stdin.write(`state ${PHONE}\n`);
      await expect.poll(() => lines.length, { timeout: 30_000 }).toBeGreaterThan(1);
      expect(JSON.parse(lines[1]!)).toEqual({ state: 'DO_NOT_CALL' });
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
