/**
 * Workflow test harness: one time-skipping Temporal test server per suite, the workflows bundled
 * once, and a fresh worker per test (own task queue) with the real activities over a real database
 * (embedded PGlite) and scripted phones behind the production `Telephony` port.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { afterEach, beforeAll, beforeEach } from 'vitest';
import type { Logger } from 'pino';
import { bundleWorkflows } from '../../src/bundle';
import { ConfirmationClient } from '../../src/client';
import { CampaignClient } from '../../src/campaigns/client';
import { createDataConverter } from '../../src/codec';
import type { CallLimits, ConfirmationRequest } from '../../src/contracts';
import { ChannelBroker } from '../../src/pacing';
import { nextLocal } from './clock';
import { createTimeSkippingEnv } from '../../src/dev/time-skipping';
import { ScriptedTelephony } from '../../src/dev/scripted-telephony';
import { createLogger } from '../../src/logger';
import type { CallingRules, ConfirmationStore } from '../../src/ports';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore, type SqlStore } from '../../src/store';
import { createConfirmationWorker } from '../../src/worker-factory';

/** Fixed key for tests and committed histories (fictional data only; never a production key). */
export const TEST_ENCRYPTION_KEY = 'test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Already installed by another suite in this process.
  }
}

export interface Harness {
  env: TestWorkflowEnvironment;
  bundle: WorkflowBundleWithSourceMap;
  /** Runs `fn` with a fresh worker, database and phone network. */
  withWorker<T>(fn: (ctx: TestContext) => Promise<T>, options?: WorkerOptions): Promise<T>;
  /** Moves the test server's clock forward to `at` (never backwards). */
  advanceTo(at: DateTime): Promise<void>;
  /** The test server's clock. */
  now(): Promise<DateTime>;
  teardown(): Promise<void>;
}

export interface WorkerOptions {
  rules?: Partial<CallingRules>;
  store?: ConfirmationStore;
  /** Where the activities' log lines go (default: nowhere). */
  logger?: Logger;
  /** Run the channel gate (the production ChannelBroker on the test's database) with these trunk limits. */
  pacing?: { trunkLimits: CallLimits };
}

export interface TestContext {
  client: Client;
  api: ConfirmationClient;
  store: ConfirmationStore;
  phones: ScriptedTelephony;
  taskQueue: string;
  /** The campaigns API on the same database and task queue. */
  campaigns: CampaignClient;
  /** The raw database (campaign tables), for fixtures and checks. */
  sql: SqlStore['sql'];
}

/** Creates the suite's environment (call in `beforeAll`). */
export async function createHarness(options: { bundle?: WorkflowBundleWithSourceMap } = {}): Promise<Harness> {
  quietRuntime();
  const dataConverter = createDataConverter(TEST_ENCRYPTION_KEY);
  const [env, bundle] = await Promise.all([createTimeSkippingEnv({ dataConverter }), options.bundle ?? bundleWorkflows()]);
  // The environment's client: its workflow client skips time while a test awaits a result.
  const client = env.client;
  const silent = createLogger('silent');

  return {
    env,
    bundle,
    now: async () => DateTime.fromMillis(await currentTime(env)),
    async advanceTo(at) {
      const current = await currentTime(env);
      if (at.toMillis() < current) throw new Error(`cannot move the test clock back to ${at.toISO()} (it is ${new Date(current).toISOString()})`);
      // Bounded: a test server whose clock cannot move (work pending that no worker will take)
      // fails the test in a minute instead of blocking it until its limit.
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the test server's clock did not reach ${at.toISO()} within 60 s`)), 60_000);
      });
      try {
        await Promise.race([env.sleep(at.toMillis() - current), stuck]);
      } finally {
        clearTimeout(timer);
      }
    },
    async withWorker(fn, options) {
      const store = (options?.store ?? (await createStore({}))) as SqlStore;
      const phones = new ScriptedTelephony(client);
      const taskQueue = `test-${randomUUID()}`;
      // The test server's clock: the workflow checks the request against it, and so must the client.
      const now = async () => new Date(await currentTime(env));
      const api = new ConfirmationClient({ client, store, taskQueue, now });
      const campaigns = new CampaignClient({ client, sql: store.sql, taskQueue, now });
      const pacing = options?.pacing ? await ChannelBroker.start(store.sql, 'test-trunk', { limits: options.pacing.trunkLimits }) : undefined;
      const worker = await createConfirmationWorker({
        connection: env.nativeConnection,
        namespace: env.namespace ?? 'default',
        taskQueue,
        payloadEncryptionKey: TEST_ENCRYPTION_KEY,
        workflowBundle: bundle,
        store,
        telephony: phones,
        rules: { ...DEFAULT_CALLING_RULES, ...options?.rules },
        logger: options?.logger ?? silent,
        pollIntervalMs: 10,
        onOptOut: async (phone, except) => void (await api.stopConfirmationsOf(phone, except)),
        campaigns: { sql: store.sql, client, confirmations: api },
        ...(pacing ? { pacing } : {}),
      });
      try {
        return await worker.runUntil(fn({ client, api, store, phones, taskQueue, campaigns, sql: store.sql }));
      } finally {
        pacing?.close();
        if (!options?.store) await store.close();
      }
    },
    async teardown() {
      await env.teardown();
    },
  };
}

/** The test server's current time, in ms. */
export function currentTime(env: TestWorkflowEnvironment): Promise<number> {
  return env.currentTimeMs();
}

/**
 * An area code in the patient's zone: the window is checked in the number's own zones too, so a
 * sample patient's number is where the patient is. Zones outside North America get a toll-free
 * number (the data knows only its country: the request zone alone counts).
 */
const AREA_CODE: Record<string, string> = {
  'America/New_York': '212',
  'America/Chicago': '312',
  'America/Denver': '303',
  'America/Phoenix': '602',
  'America/Los_Angeles': '213',
  'Pacific/Honolulu': '808',
};

let counter = 0;
/** A valid request with fictional data (NPA-555-01xx numbers in the patient's zone), for an appointment at `start`. */
export function sampleRequest(start: DateTime, overrides: Partial<ConfirmationRequest> = {}): ConfirmationRequest {
  counter += 1;
  const zone = overrides.patientTimeZone ?? start.zoneName ?? 'America/Chicago';
  return {
    appointmentId: `appt-${Date.now().toString(36)}-${counter}`,
    patientId: `pat-${counter}`,
    patientName: 'Jordan Sample',
    phone: `+1${AREA_CODE[zone] ?? '800'}555${String(100 + (counter % 100)).padStart(4, '0')}`,
    patientTimeZone: start.zoneName ?? 'America/Chicago',
    appointmentStart: start.toISO({ suppressMilliseconds: true })!,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    ...overrides,
  };
}

/** Moves the test clock to the next Monday `time` (`HH:mm`) in `zone` and returns that instant. */
export async function mondayAt(h: Harness, time: string, zone = 'America/Chicago'): Promise<DateTime> {
  const at = nextLocal(await h.now(), zone, 1, time);
  await h.advanceTo(at);
  return at;
}

/**
 * Polls the status query until `predicate` holds (time does not skip while polling). A deadline,
 * not a count: on a busy machine each poll is slower, and so is the workflow.
 */
export async function untilStatus(
  ctx: TestContext,
  workflowId: string,
  predicate: (s: Awaited<ReturnType<TestContext['api']['getStatus']>>) => boolean,
  timeoutMs = 120_000,
): Promise<Awaited<ReturnType<TestContext['api']['getStatus']>>> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const status = await ctx.api.getStatus(workflowId);
    if (predicate(status)) return status;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not reached');
}

/**
 * Gives each test of the calling suite a test server of its own (workflows bundled once): what one
 * test leaves on the server (a workflow a gone worker never finishes, a clock moved years ahead)
 * cannot hold up the next. Registers the suite's hooks; returns the current test's harness.
 */
export function harnessPerTest(): () => Harness {
  let bundle: WorkflowBundleWithSourceMap | undefined;
  let current: Harness | undefined;
  beforeAll(async () => {
    bundle = await bundleWorkflows();
  });
  beforeEach(async () => {
    current = await createHarness({ bundle });
  });
  afterEach(async () => {
    await current?.teardown();
    current = undefined;
  });
  return () => {
    if (!current) throw new Error('no harness outside a test');
    return current;
  };
}
