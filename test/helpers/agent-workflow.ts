/**
 * The confirmation side of the agent suites: a Temporal dev server, a database, the production
 * worker with scripted phones, and a confirmation whose phone answers and holds the line — so an
 * agent session (FakeLLM, a self-hosted model, the offline intent matcher) reports to a real workflow.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { ConfirmationClient } from '../../src/client';
import { createDataConverter } from '../../src/codec';
import { Phase, type AgentJobMetadata, type ConfirmationRequest } from '../../src/contracts';
import { simulatedPatientZone, zoneInOfficeHours } from '../../src/dev/office-hours';
import { ScriptedTelephony } from '../../src/dev/scripted-telephony';
import { startTemporalDevServer } from '../../src/dev/temporal-dev-server';
import { createLogger } from '../../src/logger';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore, type SqlStore } from '../../src/store';
import { createConfirmationWorker } from '../../src/worker-factory';
import { TEST_ENCRYPTION_KEY } from './workflow-harness';

export interface AgentWorkflowSystem {
  client: Client;
  api: ConfirmationClient;
  store: SqlStore;
  phones: ScriptedTelephony;
  taskQueue: string;
  stop(): Promise<void>;
}

/** Starts the dev server, a database and a worker on `taskQueue` (calls allowed every day, 5 a day). */
export async function startAgentWorkflowSystem(taskQueue: string): Promise<AgentWorkflowSystem> {
  const temporal = await startTemporalDevServer();
  const store = await createStore({});
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }), dataConverter: createDataConverter(TEST_ENCRYPTION_KEY) });
  const api = new ConfirmationClient({ client, store, taskQueue });
  const phones = new ScriptedTelephony();
  const worker: Worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: temporal.address }),
    taskQueue,
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    store,
    telephony: phones,
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 5 },
    logger: createLogger('silent'),
    pollIntervalMs: 100,
    onOptOut: async (phone, except) => void (await api.stopConfirmationsOf(phone, except)),
  });
  const running = worker.run();
  return {
    client,
    api,
    store,
    phones,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running.catch(() => undefined);
      await client.connection.close();
      await store.close();
      await temporal.stop();
    },
  };
}

/**
 * Starts a confirmation to `phone` (a fictional 555-01xx number) whose phone answers and holds the
 * line; resolves once the call is up, with the metadata the agent would be dispatched with.
 */
export async function answeredCall(
  system: AgentWorkflowSystem,
  phone: string,
  appointmentId: string,
): Promise<{ workflowId: string; request: ConfirmationRequest; meta: AgentJobMetadata; hangUp: () => void }> {
  const { api, phones } = system;
  const zone = zoneInOfficeHours();
  const request: ConfirmationRequest = {
    appointmentId,
    patientId: `pat-${appointmentId}`.slice(0, 60),
    patientName: 'Jordan Sample',
    phone,
    patientTimeZone: zone,
    appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 9, minute: 30, second: 0, millisecond: 0 }).toISO()!,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
  };
  await api.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'test' });
  // A New York number whose patient lives where it is office hours now (audited override): without
  // it the number's own zone is often outside the calling window and the call never happens.
  await api.recordTimeZoneOverride(simulatedPatientZone(request.practiceId, phone, zone));
  phones.script(phone, { kind: 'answer', hangsUpAfterMs: 60_000 });
  const { workflowId } = await api.startConfirmation(request);
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    if ((await api.getStatus(workflowId)).phase === Phase.CALLING && phones.dialsTo(phone).length === 1) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (phones.dialsTo(phone).length !== 1) throw new Error(`never dialled (phase ${(await api.getStatus(workflowId)).phase})`);
  await new Promise((r) => setTimeout(r, 200)); // the dial activity has returned: the call is answered
  const meta = phones.dialsTo(phone)[0]!.agentMetadata;
  return { workflowId, request, meta, hangUp: () => phones.endCall(phones.dialsTo(phone)[0]!.roomName) };
}
