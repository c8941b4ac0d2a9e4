/**
 * confirmAppointmentWorkflow on the real Temporal dev server, dialing through the real
 * livekit-server with the phone-network simulator as its SIP service. The test plays the agent
 * (sends the `outcome` Update); the voice agent itself is the next issue.
 */
import { Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { RoomServiceClient } from 'livekit-server-sdk';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationClient } from '../../src/client';
import { connectTestClient } from '../helpers/worker-process';
import { CallOutcome, outcomeUpdate, Phase } from '../../src/contracts';
import { readCallLog, createSimulatedTrunk, startLiveKitStack, waitForCall, type LiveKitStack } from '../../src/dev/livekit-stack';
import { simulatedPatientZone, zoneInOfficeHours } from '../../src/dev/office-hours';
import { startTemporalDevServer } from '../../src/dev/temporal-dev-server';
import { createLogger } from '../../src/logger';
import type { ConfirmationStore } from '../../src/ports';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore } from '../../src/store';
import { createLiveKitTelephony } from '../../src/telephony/livekit';
import { createConfirmationWorker } from '../../src/worker-factory';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

let temporal: Awaited<ReturnType<typeof startTemporalDevServer>>;
let stack: LiveKitStack;
let store: ConfirmationStore;
let worker: Worker;
let running: Promise<void>;
let api: ConfirmationClient;
let client: Client;
let rooms: RoomServiceClient;


beforeAll(async () => {
  [temporal, stack] = await Promise.all([startTemporalDevServer(), startLiveKitStack({ phones: true })]);
  store = await createStore({});
  const sipTrunkId = await createSimulatedTrunk(stack);
  // The test plays the agent: no agent to wait for before the INVITE.
  const telephony = createLiveKitTelephony({ url: stack.url, apiKey: stack.apiKey, apiSecret: stack.apiSecret, sipTrunkId, agentName: 'appointment-confirmer', agentReadyMs: 0 });
  await telephony.verifyTrunk();
  rooms = new RoomServiceClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  client = await connectTestClient(temporal.address);
  api = new ConfirmationClient({ client, store, taskQueue: 'e2e-livekit' });
  worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: temporal.address }),
    taskQueue: 'e2e-livekit',
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    store,
    telephony,
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 3 },
    logger: createLogger('silent'),
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running?.catch(() => undefined);
  await store?.close();
  await Promise.all([temporal?.stop(), stack?.stop()]);
});

const request = (appointmentId: string, phone: string, policy: Record<string, number>) => {
  const zone = zoneInOfficeHours();
  return {
    appointmentId,
    patientId: 'pat-lk',
    patientName: 'Jordan Sample',
    phone,
    patientTimeZone: zone,
    appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 11, minute: 0 }).toISO()!,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    policy,
  };
};

describe('confirmation dialing through livekit-server', () => {
  it('busy, then the retry answers; the agent confirms; written back; the room is gone', async () => {
    const phone = '+12125550110';
    await api.recordConsent({ practiceId: 'bright-smiles', phone, granted: true, source: 'e2e' });
    // The override's zone alone counts: any zone in office hours now will do.
    await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zoneInOfficeHours()));
    const { workflowId } = await api.startConfirmation(request(`lk-${Date.now().toString(36)}`, phone, { initialBackoffSeconds: 1, ringingTimeoutSeconds: 15 }));
    const handle = client.workflow.getHandle(workflowId);
    const room = `${workflowId}-a2`;
    // Wait until attempt 2 is answered (the SIP participant is active in its room), then report as the agent would.
    for (let i = 0; i < 200; i += 1) {
      const participants = await rooms.listParticipants(room).catch(() => []);
      if (participants.some((p) => p.attributes['sip.callStatus'] === 'active')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const t0 = Date.now();
    const ack = await handle.executeUpdate(outcomeUpdate, { args: [{ attempt: 2, outcome: CallOutcome.CONFIRMED }] });
    const ackMs = Date.now() - t0;
    expect(ack).toEqual({ accepted: true, attempt: 2, outcome: CallOutcome.CONFIRMED, final: true });
    const result = await api.result(workflowId);
    const hangupMs = Date.now() - t0;
    expect(result.attempts.map((a) => [a.outcome, a.sipStatusCode])).toEqual([
      [CallOutcome.BUSY, 486],
      [CallOutcome.CONFIRMED, 200],
    ]);
    expect(await store.getAppointment('bright-smiles', result.appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });
    expect(await rooms.listRooms([room])).toHaveLength(0);
    const answered = await waitForCall(stack.callLogFile!, (l) => l.room === room);
    expect(answered.ended).toBe('room deleted');
    const invites = readCallLog(stack.callLogFile!).filter((l) => l.to === phone);
    expect(invites.map((l) => l.outcome)).toEqual(['busy', 'answered']);
    // The test does not hang up as the agent would, so the room goes at the goodbye grace (10 s).
    process.stdout.write(`outcome → ack ${ackMs} ms; outcome → room deleted and workflow closed ${hangupMs} ms\n`);
    expect((await api.getStatus(workflowId)).phase).toBe(Phase.DONE);
  });

  it('a number that never answers ends NO_ANSWER after the configured attempts', async () => {
    const phone = '+12125550107';
    await api.recordConsent({ practiceId: 'bright-smiles', phone, granted: true, source: 'e2e' });
    // The override's zone alone counts: any zone in office hours now will do.
    await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zoneInOfficeHours()));
    const { workflowId } = await api.startConfirmation(request(`lk-ring-${Date.now().toString(36)}`, phone, { maxAttempts: 2, initialBackoffSeconds: 1, ringingTimeoutSeconds: 15 }));
    const result = await api.result(workflowId);
    expect(result.outcome).toBe(CallOutcome.NO_ANSWER);
    expect(result.attempts).toHaveLength(2);
    const invites = readCallLog(stack.callLogFile!).filter((l) => l.to === phone && l.room.startsWith(workflowId));
    expect(invites).toHaveLength(2);
    expect(invites.every((l) => l.ringingTimeoutSeconds === 15 && l.from === '+13125550100')).toBe(true);
  });
});
