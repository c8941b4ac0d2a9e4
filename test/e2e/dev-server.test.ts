/**
 * End to end on the real Temporal dev server (not time-skipping): the happy path through the client
 * API, a worker over PostgreSQL-compatible PGlite, scripted phones; then found by an operator with
 * the `temporal` CLI by its AppointmentId search attribute.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationClient } from '../../src/client';
import { createDataConverter } from '../../src/codec';
import { temporalReporter } from '../../agent/reporter';
import { CallOutcome, outcomeUpdate, Phase } from '../../src/contracts';
import { ScriptedTelephony } from '../../src/dev/scripted-telephony';
import { simulatedPatientZone, zoneInOfficeHours } from '../../src/dev/office-hours';
import { startTemporalDevServer } from '../../src/dev/temporal-dev-server';
import { INVALID_REPORT_FAILURE } from '../../src/validation';
import { resolveTool } from '../../src/dev/tools';
import { createLogger } from '../../src/logger';
import type { ConfirmationStore } from '../../src/ports';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore } from '../../src/store';
import { createConfirmationWorker } from '../../src/worker-factory';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

const run = promisify(execFile);
let server: Awaited<ReturnType<typeof startTemporalDevServer>>;
let store: ConfirmationStore;
let worker: Worker;
let running: Promise<void>;
let api: ConfirmationClient;
let client: Client;
let phones: ScriptedTelephony;


beforeAll(async () => {
  server = await startTemporalDevServer();
  store = await createStore({});
  client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter: createDataConverter(TEST_ENCRYPTION_KEY) });
  api = new ConfirmationClient({ client, store, taskQueue: 'e2e' });
  phones = new ScriptedTelephony(client);
  worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: server.address }),
    taskQueue: 'e2e',
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    store,
    telephony: phones,
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7] },
    logger: createLogger('silent'),
    onOptOut: async (phone, except) => void (await api.stopConfirmationsOf(phone, except)),
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running?.catch(() => undefined);
  await store?.close();
  await server?.stop();
});

describe('happy path on the real dev server', () => {
  it('confirms, writes back, and is visible to operators through the temporal CLI', async () => {
    const zone = zoneInOfficeHours();
    const appointmentId = `e2e-${Date.now().toString(36)}`;
    const request = {
      appointmentId,
      patientId: 'pat-e2e',
      patientName: 'Jordan Sample',
      phone: '+12125550142',
      patientTimeZone: zone,
      appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 11, minute: 0 }).toISO()!,
      practiceId: 'bright-smiles',
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Rivera',
      reason: 'cleaning',
    };
    await api.recordConsent({ practiceId: 'bright-smiles', phone: request.phone, granted: true, source: 'e2e' });
    await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', request.phone, zone));
    phones.script(request.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });

    const started = await api.startConfirmation(request);
    const result = await api.result(started.workflowId);
    expect(result.outcome).toBe(CallOutcome.CONFIRMED);
    expect(await store.getAppointment('bright-smiles', appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });

    const history = await client.workflow.getHandle(started.workflowId).fetchHistory();
    process.stdout.write(`happy-path history: ${history.events?.length} events\n`);
    expect(history.events?.length).toBeLessThanOrEqual(20);

    // Search attributes are indexed asynchronously by the dev server's visibility store.
    let listed = '';
    for (let i = 0; i < 50 && !listed.includes(started.workflowId); i += 1) {
      const { stdout } = await run(resolveTool('temporal'), [
        'workflow', 'list', '--address', server.address, '--query', `AppointmentId="${appointmentId}"`, '--output', 'json',
      ]);
      listed = stdout;
      if (!listed.includes(started.workflowId)) await new Promise((r) => setTimeout(r, 200));
    }
    expect(listed).toContain(started.workflowId);
    const { stdout: described } = await run(resolveTool('temporal'), [
      'workflow', 'list', '--address', server.address, '--query', `AppointmentId="${appointmentId}" AND Outcome="CONFIRMED" AND Phase="DONE"`, '--output', 'json',
    ]);
    expect(described).toContain(started.workflowId);
    // Health data never in plaintext where operators look: ids and search attributes only.
    expect(`${listed}${described}`).not.toMatch(/Jordan|5550142/);
  });

  it('an opt-out reported by the agent puts the number on the do-not-call list and stops its other confirmations', async () => {
    const zone = zoneInOfficeHours();
    const phone = '+12125550143';
    const request = (appointmentId: string, days: number) => ({
      appointmentId,
      patientId: 'pat-e2e-2',
      patientName: 'Jordan Sample',
      phone,
      patientTimeZone: zone,
      appointmentStart: DateTime.now().setZone(zone).plus({ days }).set({ hour: 11, minute: 0 }).toISO()!,
      practiceId: 'bright-smiles',
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Rivera',
      reason: 'cleaning',
    });
    await api.recordConsent({ practiceId: 'bright-smiles', phone, granted: true, source: 'e2e' });
    await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zone));
    phones.script(phone, { kind: 'answer', agentReports: CallOutcome.OPTED_OUT });
    const suffix = Date.now().toString(36);
    // One gets today's call (1 a day per number); the other waits for tomorrow's slot.
    const started = await Promise.all([api.startConfirmation(request(`e2e-a-${suffix}`, 3)), api.startConfirmation(request(`e2e-b-${suffix}`, 4))]);
    const results = await Promise.all(started.map((s) => api.result(s.workflowId)));
    expect(results.map((r) => r.outcome)).toEqual([CallOutcome.OPTED_OUT, CallOutcome.OPTED_OUT]);
    expect(phones.dialsTo(phone)).toHaveLength(1);
    expect(await store.consentState('bright-smiles', phone)).toBe('DO_NOT_CALL');
  });
});

describe('a hostile or careless agent on the real dev server', () => {
  it('a 1 MB or 3 MB outcome detail is refused before anything is recorded; the workflow is not terminated and takes the real verdict', async () => {
    const zone = zoneInOfficeHours();
    const phone = '+12125550144';
    const request = {
      appointmentId: `e2e-big-${Date.now().toString(36)}`,
      patientId: 'pat-e2e-3',
      patientName: 'Jordan Sample',
      phone,
      patientTimeZone: zone,
      appointmentStart: DateTime.now().setZone(zone).plus({ days: 3 }).set({ hour: 11, minute: 0 }).toISO()!,
      practiceId: 'bright-smiles',
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Rivera',
      reason: 'cleaning',
    };
    await api.recordConsent({ practiceId: 'bright-smiles', phone, granted: true, source: 'e2e' });
    await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zone));
    phones.script(phone, { kind: 'answer', hangsUpAfterMs: 60_000 }); // the test plays the agent
    const { workflowId } = await api.startConfirmation(request);
    for (let i = 0; i < 200 && !((await api.getStatus(workflowId)).phase === Phase.CALLING && phones.dialsTo(phone).length === 1); i += 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const handle = client.workflow.getHandle(workflowId);
    // Under the server's 2 MB blob limit, the workflow's validator refuses a malformed report cleanly:
    // a rejection typed INVALID_OUTCOME_REPORT, which resending cannot change.
    const large = { attempt: 1, outcome: CallOutcome.CONFIRMED, detail: { note: 'n'.repeat(1024 * 1024) } };
    const refused = await handle.executeUpdate(outcomeUpdate, { args: [large] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((refused as WorkflowUpdateFailedError).cause).toMatchObject({ type: INVALID_REPORT_FAILURE, message: 'detail.note: must be at most 1000 characters' });
    // Over it, no validator can answer: the SDK's rejection carries the request back, the server fails
    // that workflow task and answers FAILED_PRECONDITION. The workflow is neither terminated nor changed.
    const big = { attempt: 1, outcome: CallOutcome.CONFIRMED, detail: { note: 'n'.repeat(3 * 1024 * 1024) } };
    await expect(handle.executeUpdate(outcomeUpdate, { args: [big] })).rejects.toThrow();
    // …and the agent's reporter never sends it, nor retries it.
    const reporter = temporalReporter({ client, workflowId, taskQueue: 'e2e', retryForMs: 60_000 });
    const t0 = Date.now();
    expect(await reporter.report(big)).toEqual({ accepted: false, reason: 'invalid report: detail.note: must be at most 1000 characters' });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect((await store.listAudit({ workflowId })).map((a) => a.decision)).toEqual(['DIAL']);
    expect((await store.getAppointment('bright-smiles', request.appointmentId))?.outcome).toBeNull();

    expect(await reporter.report({ attempt: 1, outcome: CallOutcome.CONFIRMED })).toMatchObject({ accepted: true });
    phones.endCall(phones.dialsTo(phone)[0]!.roomName);
    expect((await api.result(workflowId)).outcome).toBe(CallOutcome.CONFIRMED);
  });
});
