/**
 * At most one call per attempt, even when the worker dies mid-call: the real worker process
 * (`src/worker.ts`) is SIGKILLed while the phone rings; a new worker resolves the attempt by
 * looking at the room, and the phone network saw exactly one INVITE for it.
 */
import { cpus, loadavg } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { Client } from '@temporalio/client';
import { RoomServiceClient } from 'livekit-server-sdk';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationClient } from '../../src/client';
import { CallOutcome, outcomeUpdate } from '../../src/contracts';
import { readCallLog, createSimulatedTrunk, startLiveKitStack, stopProcess, waitForCall, type LiveKitStack } from '../../src/dev/livekit-stack';
import { simulatedPatientZone, zoneInOfficeHours } from '../../src/dev/office-hours';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { startTemporalDevServer } from '../../src/dev/temporal-dev-server';
import type { ConfirmationStore } from '../../src/ports';
import { createStore } from '../../src/store';
import { connectTestClient, startWorkerProcess, workerEnv } from '../helpers/worker-process';

let temporal: Awaited<ReturnType<typeof startTemporalDevServer>>;
let stack: LiveKitStack;
let postgres: PostgresServer;
let store: ConfirmationStore;
let env: Record<string, string>;
const workers: ChildProcess[] = [];

/** Starts `npm run worker`'s entry as its own process, configured from the environment like production. */
async function startWorker(): Promise<ChildProcess> {
  const child = await startWorkerProcess(env);
  workers.push(child);
  return child;
}

beforeAll(async () => {
  [temporal, stack, postgres] = await Promise.all([startTemporalDevServer(), startLiveKitStack({ phones: true }), startPostgres()]);
  store = await createStore({ databaseUrl: postgres.url });
  const trunkId = await createSimulatedTrunk(stack);
  // No agent worker here (the test plays the agent): dispatched at the answer, the INVITE does not
  // wait for an agent to be ready in the room, so the phone rings when the test expects it to.
  env = workerEnv({ temporalAddress: temporal.address, taskQueue: 'crash-test', stack, trunkId, databaseUrl: postgres.url }, { LOG_LEVEL: 'info', LIVEKIT_AGENT_DISPATCH: 'answer' });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => stopProcess(w)));
  await store?.close();
  await Promise.all([temporal?.stop(), stack?.stop(), postgres?.stop()]);
});

/** Stops the workers earlier tests left running, so the one started next is the only one. */
async function stopAllWorkers(): Promise<void> {
  await Promise.all(workers.splice(0).map((w) => stopProcess(w)));
}

/** Activity types the workflow scheduled, in order (from its history). */
async function scheduledActivities(client: Client, workflowId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityType?.name ? [e.activityTaskScheduledEventAttributes.activityType.name] : []));
}

/** Starts a confirmation of `phone` with one attempt; resolves with its client, handle and first room. */
async function startOne(phone: string, policy: Record<string, number>) {
  const client = await connectTestClient(temporal.address);
  const api = new ConfirmationClient({ client, store, taskQueue: 'crash-test' });
  const zone = zoneInOfficeHours();
  await api.recordConsent({ practiceId: 'bright-smiles', phone, granted: true, source: 'e2e' });
  await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zone));
  const { workflowId } = await api.startConfirmation({
    appointmentId: `crash-${Date.now().toString(36)}`,
    patientId: 'pat-crash',
    patientName: 'Jordan Sample',
    phone,
    patientTimeZone: zone,
    appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 11 }).toISO()!,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    policy: { maxAttempts: 1, ...policy },
  });
  return { api, client, workflowId, room: `${workflowId}-a1` };
}

/** Waits until the attempt's room shows the callee's leg with `status`. */
async function legStatus(room: string, status: string): Promise<void> {
  const rooms = new RoomServiceClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  for (let i = 0; i < 300; i += 1) {
    const leg = (await rooms.listParticipants(room).catch(() => [])).find((p) => p.identity === 'callee');
    if (leg?.attributes['sip.callStatus'] === status) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the leg never showed ${status}`);
}

describe('worker killed while the dial is in flight: the result is recovered, never recorded as a trunk failure', () => {
  it('a phone that rings out is recorded NO_ANSWER (was CALL_FAILED), with one INVITE', async () => {
    await stopAllWorkers();
    const first = await startWorker();
    // Rings long enough that the check on the new worker still sees it ringing on a busy machine
    // (worker start-up and the heartbeat timeout come first); under livekit-server's 80 s limit.
    const { api, client, workflowId, room } = await startOne('+12125550107', { ringingTimeoutSeconds: 60 });
    await legStatus(room, 'ringing');
    first.kill('SIGKILL');
    await startWorker();
    const result = await api.result(workflowId);
    expect(result.attempts).toHaveLength(1);
    // Never a trunk failure. NO_ANSWER needs the check to have seen the leg still ringing within
    // 3 s of its ringing timeout; on a starved machine (load far above the cores) its polls can be
    // further apart than that, and then the honest answer is CALL_RESULT_UNKNOWN.
    const starved = loadavg()[0]! > 2 * cpus().length;
    expect(starved ? [CallOutcome.NO_ANSWER, CallOutcome.CALL_RESULT_UNKNOWN] : [CallOutcome.NO_ANSWER]).toContain(result.attempts[0]!.outcome);
    expect(result.outcome).toBe(result.attempts[0]!.outcome);
    expect(await scheduledActivities(client, workflowId)).toEqual(['dial', 'checkCall']); // the dial was lost
    expect(readCallLog(stack.callLogFile!).filter((l) => l.room.startsWith(workflowId))).toHaveLength(1);
  });

  it('an orphaned answered call is watched: the attempt ends promptly once the line is down (not after the longest call)', async () => {
    await stopAllWorkers();
    const first = await startWorker();
    // Rings 2 s, answers, hangs up 25 s later; no agent speaks (none runs in this test).
    const { api, client, workflowId, room } = await startOne('+12125550124', {});
    await legStatus(room, 'ringing');
    first.kill('SIGKILL');
    await startWorker();
    const t0 = Date.now();
    const result = await api.result(workflowId);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === room);
    expect(line.ended).toBe('phone hung up');
    // Before: the workflow waited maxCallDuration + margin (330 s) for a verdict that never came.
    expect(Date.now() - Date.parse(line.endedAt)).toBeLessThan(10_000);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(result.attempts[0]!.outcome).toBe(CallOutcome.NO_OUTCOME);
    expect(await scheduledActivities(client, workflowId)).toEqual(['dial', 'checkCall', 'watchCall']);
    expect(readCallLog(stack.callLogFile!).filter((l) => l.room.startsWith(workflowId))).toHaveLength(1);
  });
});

describe('worker killed while the phone rings', () => {
  it('resolves the attempt by inspecting the room: one INVITE, never two', async () => {
    const client = await connectTestClient(temporal.address);
    const api = new ConfirmationClient({ client, store, taskQueue: 'crash-test' });
    const phone = '+12125550108'; // answers after 2 s of ringing
    const zone = zoneInOfficeHours();
    await api.recordConsent({ practiceId: 'bright-smiles', phone, granted: true, source: 'e2e' });
  await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zone));
    await api.recordTimeZoneOverride(simulatedPatientZone('bright-smiles', phone, zone));
    await stopAllWorkers(); // the only worker: the one killed below
    const first = await startWorker();
    const { workflowId } = await api.startConfirmation({
      appointmentId: `crash-${Date.now().toString(36)}`,
      patientId: 'pat-crash',
      patientName: 'Jordan Sample',
      phone,
      patientTimeZone: zone,
      appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 11 }).toISO()!,
      practiceId: 'bright-smiles',
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Rivera',
      reason: 'cleaning',
    });
    const room = `${workflowId}-a1`;
    // Kill the worker while the phone is ringing: the room exists (it is created just before the
    // INVITE) and the phone answers only 2 s later.
    const rooms = new RoomServiceClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
    for (let i = 0; i < 200 && (await rooms.listRooms([room])).length === 0; i += 1) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    // Not answered yet: the phone's leg is in the room, ringing.
    const ringing = (await rooms.listParticipants(room)).find((p) => p.identity === 'callee');
    expect(ringing?.attributes['sip.callStatus']).toBe('ringing');
    first.kill('SIGKILL');
    await startWorker();

    // The new worker sees the dial activity time out (heartbeat), checks the room: answered.
    const handle = client.workflow.getHandle(workflowId);
    let ack;
    for (let i = 0; i < 120 && !ack; i += 1) {
      ack = await handle.executeUpdate(outcomeUpdate, { args: [{ attempt: 1, outcome: CallOutcome.CONFIRMED }] }).catch(() => undefined);
      if (!ack) await new Promise((r) => setTimeout(r, 500));
    }
    expect(ack).toMatchObject({ accepted: true, outcome: CallOutcome.CONFIRMED });
    const result = await api.result(workflowId);
    expect(result.outcome).toBe(CallOutcome.CONFIRMED);
    expect(result.attempts).toHaveLength(1);
    await waitForCall(stack.callLogFile!, (l) => l.room === room); // written when the call is over
    expect(readCallLog(stack.callLogFile!).filter((l) => l.room.startsWith(workflowId))).toHaveLength(1);
  });
});
