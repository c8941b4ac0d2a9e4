/**
 * What the servers we configure write about a real call. Confirmations run end to end — the Temporal
 * dev server, the worker as its own process (LOG_LEVEL=debug: its most verbose), livekit-server and
 * Redis with the settings we ship, the phone-network simulator as the carrier — through a busy
 * signal, an answer, an unavailable number and a number that rings out. Then every server's output
 * is read: the dialed numbers (E.164, digits only, national digits, SIP URI), the patient's name and
 * the appointment time appear in none of them. The simulator plays the phone network: its call log
 * holds the numbers it was called on, as a carrier's would (checked, so the test sees them at all).
 */
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Client } from '@temporalio/client';
import { RoomServiceClient } from 'livekit-server-sdk';
import { DateTime } from 'luxon';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationClient } from '../../src/client';
import { CallOutcome, outcomeUpdate } from '../../src/contracts';
import { LIVEKIT_LOGGING, readCallLog, createSimulatedTrunk, startLiveKitStack, stopProcess, type LiveKitStack } from '../../src/dev/livekit-stack';
import { simulatedPatientZone, zoneInOfficeHours } from '../../src/dev/office-hours';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { startTemporalDevServer, type DevServer } from '../../src/dev/temporal-dev-server';
import { createStore } from '../../src/store';
import { connectTestClient, startWorkerProcess, workerEnv } from '../helpers/worker-process';

const ROOT = join(import.meta.dirname, '../..');
const TASK_QUEUE = 'server-logs';
/** Busy, then answers; unavailable; rings until the ringing timeout (tools/phone-sim/scenarios.json). */
const NUMBERS = { busyThenAnswer: '+12125550110', unavailable: '+12125550103', ringsOut: '+12125550107' };
const PATIENT = 'Quintessa Marchbanks';

let logDir: string;
let temporal: DevServer;
let stack: LiveKitStack;
let postgres: PostgresServer;
let worker: ChildProcess;
let workerLog: string;
let api: ConfirmationClient;
let client: Client;
let store: Awaited<ReturnType<typeof createStore>>;
const starts: string[] = [];

beforeAll(async () => {
  logDir = mkdtempSync(join(tmpdir(), 'server-logs-'));
  workerLog = join(logDir, 'worker.log');
  // The servers' whole output goes to <logDir>/<server>.log (read after the calls).
  process.env.CALL_CAMPAIGNS_LOG_DIR = logDir;
  delete process.env.LIVEKIT_LOG_LEVEL;
  [temporal, stack, postgres] = await Promise.all([startTemporalDevServer(), startLiveKitStack({ phones: true }), startPostgres()]);
  const trunkId = await createSimulatedTrunk(stack);
  store = await createStore({ databaseUrl: postgres.url });
  worker = await startWorkerProcess(
    workerEnv({ temporalAddress: temporal.address, taskQueue: TASK_QUEUE, stack, trunkId, databaseUrl: postgres.url }, { MAX_CALLS_PER_DAY: '3', LOG_LEVEL: 'debug' }),
    { logFile: workerLog },
  );
  client = await connectTestClient(temporal.address);
  api = new ConfirmationClient({ client, store, taskQueue: TASK_QUEUE });
}, 240_000);

afterAll(async () => {
  await client?.connection.close();
  await store?.close();
  if (worker) await stopProcess(worker);
  await Promise.all([temporal?.stop(), stack?.stop(), postgres?.stop()]);
  delete process.env.CALL_CAMPAIGNS_LOG_DIR;
  if (logDir && !process.env.KEEP_SERVER_LOGS) rmSync(logDir, { recursive: true, force: true });
});

async function confirm(phone: string, policy: Record<string, number>) {
  const zone = zoneInOfficeHours();
  const appointmentStart = DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 11, minute: 7, second: 43, millisecond: 0 }).toISO({ suppressMilliseconds: true })!;
  starts.push(appointmentStart);
  await api.recordConsent({ practiceId: 'bright-smiles', phone, granted: true, source: 'server-logs' });
  // The simulated patient lives where it is office hours now (audited override): the 212 number's own zone may be outside the window.
  await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zone));
  return api.startConfirmation({
    appointmentId: `logs-${phone.slice(-3)}-${Date.now().toString(36)}`,
    patientId: 'pat-logs',
    patientName: PATIENT,
    phone,
    patientTimeZone: zone,
    appointmentStart,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    policy,
  });
}

/** Every form a number may take in a log line: +12125550110, 12125550110, 2125550110 (also inside sip:…@ URIs). */
const forms = (e164: string) => [e164, e164.slice(1), e164.slice(2)];

describe('server logs of a real call', () => {
  it('livekit-server runs with the logging settings deploy/livekit/livekit.yaml ships', () => {
    const shipped = parse(readFileSync(join(ROOT, 'deploy/livekit/livekit.yaml'), 'utf8')) as { logging: unknown };
    expect(shipped.logging).toEqual(LIVEKIT_LOGGING);
  });

  it('no dialed number, name or appointment time in the output of livekit-server, Redis, the Temporal dev server or the worker', async () => {
    const rooms = new RoomServiceClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
    const answered = await confirm(NUMBERS.busyThenAnswer, { initialBackoffSeconds: 1, ringingTimeoutSeconds: 15 });
    const unavailable = await confirm(NUMBERS.unavailable, { maxAttempts: 1, ringingTimeoutSeconds: 15 });
    const ringsOut = await confirm(NUMBERS.ringsOut, { maxAttempts: 1, ringingTimeoutSeconds: 15 });
    // The retry answers: report as the agent would.
    const room = `${answered.workflowId}-a2`;
    await expect
      .poll(async () => (await rooms.listParticipants(room).catch(() => [])).some((p) => p.attributes['sip.callStatus'] === 'active'), { timeout: 90_000, interval: 200 })
      .toBe(true);
    await client.workflow.getHandle(answered.workflowId).executeUpdate(outcomeUpdate, { args: [{ attempt: 2, outcome: CallOutcome.CONFIRMED }] });
    const results = await Promise.all([answered, unavailable, ringsOut].map((s) => api.result(s.workflowId)));
    expect(results.map((r) => r.outcome)).toEqual([CallOutcome.CONFIRMED, CallOutcome.NO_ANSWER, CallOutcome.NO_ANSWER]);
    // The phone network saw each number (so the numbers are really dialed, and the test would see them).
    const calls = readCallLog(stack.callLogFile!);
    for (const phone of Object.values(NUMBERS)) expect(calls.some((c) => c.to === phone), phone).toBe(true);

    // Everything flushed: the worker and the servers stopped.
    await stopProcess(worker);
    await Promise.all([temporal.stop(), stack.stop()]);
    const outputs = { 'livekit-server': 'livekit-server.log', redis: 'redis-server.log', 'Temporal dev server': 'temporal.log', worker: 'worker.log' };
    const never = [...Object.values(NUMBERS).flatMap(forms), PATIENT, 'Marchbanks', ...starts, ...starts.map((s) => s.slice(0, 16))];
    for (const [server, name] of Object.entries(outputs)) {
      const file = join(logDir, name);
      expect(existsSync(file), `${server}: no output file`).toBe(true);
      const text = readFileSync(file, 'utf8');
      for (const value of never) {
        const at = text.indexOf(value);
        expect(at, `${server} logged a health value: …${text.slice(Math.max(0, at - 200), at + 60)}…`).toBe(-1);
      }
    }
    // The worker did log the calls (by workflow id and room), so the check above read real lines.
    expect(readFileSync(workerLog, 'utf8')).toContain(answered.workflowId);
  }, 240_000);
});
