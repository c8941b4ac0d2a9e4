/**
 * The patient answered while no worker could take the workflow's Update (a worker outage, a
 * deploy): the answer is kept once heard. The agent stops asking, tells the patient the answer was
 * taken, ends the call politely, and keeps reporting until the workflow acknowledges it — never the
 * no-answer goodbye, never a re-prompt of a patient who has answered.
 */
import { NativeConnection, type Worker } from '@temporalio/worker';
import { RoomServiceClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CallOutcome } from '../../src/contracts';
import { waitForCall } from '../../src/dev/livekit-stack';
import { startLocalSystem, type LocalSystem } from '../../src/dev/local-system';
import { simulatedPatientZone } from '../../src/dev/office-hours';
import { createLogger } from '../../src/logger';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createLiveKitTelephony } from '../../src/telephony/livekit';
import { createConfirmationWorker } from '../../src/worker-factory';
import { e2eRequest } from '../helpers/fixtures';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

const QUEUE = 'pending-ack';
const RULES = { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 5 };
let system: LocalSystem;
const agentLines: string[] = [];
let replacement: { worker: Worker; running: Promise<void> } | undefined;

beforeAll(async () => {
  system = await startLocalSystem({
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    taskQueue: QUEUE,
    rules: RULES,
    // Short re-prompt timeout: the old behaviour (re-prompts, then the no-answer goodbye) shows within seconds.
    agentEnv: { AGENT_ANSWER_TIMEOUT_SECONDS: '2' },
    agentEcho: (line) => agentLines.push(line),
  });
});

afterAll(async () => {
  if (replacement) {
    replacement.worker.shutdown();
    await replacement.running.catch(() => undefined);
  }
  await system?.stop();
});

it('an answer given while no worker runs is kept, the patient hears it was taken, and the workflow records it when a worker returns', async () => {
  const request = e2eRequest('pa', '+12125550113'); // presses 1, 1.5 s after the agent's greeting starts
  await system.api.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'pending-ack test' });
  await system.api.recordTimeZoneOverride(simulatedPatientZone(request.practiceId, request.phone, request.patientTimeZone));
  const { workflowId } = await system.api.startConfirmation(request);
  const room = `${workflowId}-a1`;

  // The moment the patient's line is answered, the only worker goes away (before the key press).
  const rooms = new RoomServiceClient(system.livekit.url.replace('ws', 'http'), system.livekit.apiKey, system.livekit.apiSecret);
  for (let i = 0; ; i += 1) {
    const callee = (await rooms.listParticipants(room).catch(() => [])).find((p) => p.identity === 'callee');
    if (callee?.attributes['sip.callStatus'] === 'active') break;
    if (i > 600) throw new Error('the call was never answered');
    await new Promise((r) => setTimeout(r, 50));
  }
  await system.worker.shutdown();

  // The call plays out with no worker: the key press, the agent's hold-on, its closing words.
  const call = await waitForCall(system.stack!.callLogFile!, (l) => l.room === room, 60_000).catch((err: unknown) => {
    // What the agent worker saw (ids only), for whoever reads a failure.
    process.stderr.write(`agent output:\n${agentLines.slice(-60).join('\n')}\n`);
    throw err;
  });
  expect(call.events?.map((e) => [e.what, e.arg])).toEqual([['press', '1']]);
  expect(call.ended).toBe('hung up by the agent');
  const said = agentLines.join('\n');
  expect(said).toContain('answer heard; waiting for the acknowledgement');
  expect(said).not.toContain('no answer from the patient');

  // A worker comes back: the workflow takes the answer the agent kept reporting.
  const telephony = createLiveKitTelephony({ ...system.livekit, sipTrunkId: system.trunkId, agentName: 'appointment-confirmer' });
  const worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: system.temporal.address }),
    taskQueue: QUEUE,
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    store: system.store,
    telephony,
    rules: RULES,
    logger: createLogger('silent'),
  });
  replacement = { worker, running: worker.run() };
  const result = await system.api.result(workflowId);
  expect(result.outcome).toBe(CallOutcome.CONFIRMED);
  expect(await system.store.getAppointment(request.practiceId, request.appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });
  for (let i = 0; i < 200 && !agentLines.join('\n').includes('outcome acknowledged'); i += 1) await new Promise((r) => setTimeout(r, 100));
  expect(agentLines.join('\n')).toContain('outcome acknowledged');
});
