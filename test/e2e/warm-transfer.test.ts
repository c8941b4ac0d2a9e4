/**
 * Warm transfer to the front desk, end to end: the Temporal dev server, the worker, the voice agent
 * in its own process (offline: keypad, espeak-ng), livekit-server with Redis, and the phone-network
 * simulator playing both the patient's phone and the front desk's (scenario +13125550198: answers
 * the first call, presses 1 during the briefing and greets the patient; rings out after that).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallOutcome, type ConfirmationRequest } from '../../src/contracts';
import { waitForCall } from '../../src/dev/livekit-stack';
import { startLocalSystem, type LocalSystem } from '../../src/dev/local-system';
import { simulatedPatientZone } from '../../src/dev/office-hours';
import { liveLeaseCount } from '../../src/pacing';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { e2eRequest } from '../helpers/fixtures';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

const STAFF_PHONE = '+13125550198';
const FRONT_DESK_LINE = '+13125550199';
const PATIENT_PRESSES_0 = '+12125550117';
let system: LocalSystem;

let dataDir: string | undefined;

/**
 * `throughGate`: the agent reaches the database (production's setting, as with DATABASE_URL), so
 * the front desk's leg takes a channel and a call slot of the trunk; one warm agent process, so the
 * agents' capacity holds new calls back while the patient's call is up (the leg needs no agent).
 */
async function start(agentEnv: Record<string, string>, throughGate = false): Promise<void> {
  if (throughGate) dataDir = mkdtempSync(join(tmpdir(), 'warm-transfer-'));
  system = await startLocalSystem({
    temporalServer: 'dev',
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    taskQueue: 'warm-transfer',
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 5 },
    agentEnv: { AGENT_ANSWER_TIMEOUT_SECONDS: '4', STAFF_RING_SECONDS: '5', ...agentEnv },
    // A slot every 2.15 s: the slot the front desk's INVITE took is seen in the trunk's next slot.
    ...(throughGate ? { dataDir: join(dataDir!, 'pglite'), agentCapacity: true, trunkLimits: { channels: 3, callsPerSecond: 0.5 } } : {}),
  });
}

async function stop(): Promise<void> {
  await system?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
}

const trunkOf = async () => (await system.store.sql.query<{ trunk_id: string }>('SELECT trunk_id FROM trunk_limits')).rows[0]!.trunk_id;

let n = 0;
async function confirm(phone: string): Promise<{ workflowId: string; request: ConfirmationRequest }> {
  n += 1;
  const request = e2eRequest(`wt-${n}`, phone);
  await system.api.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'warm transfer test' });
  await system.api.recordTimeZoneOverride(simulatedPatientZone(request.practiceId, phone, request.patientTimeZone));
  const { workflowId } = await system.api.startConfirmation(request);
  return { workflowId, request };
}

// In this order: the front desk's phone answers its first call and rings out on the next.
describe('warm transfer to the front desk (keypad 0), with a cold-transfer fallback', () => {
  // STAFF_TRANSFER_NUMBER is the cold fallback when the front desk does not take the warm transfer.
  beforeAll(() => start({ STAFF_WARM_TRANSFER_NUMBER: STAFF_PHONE, STAFF_TRANSFER_NUMBER: FRONT_DESK_LINE }, true));
  afterAll(stop);

  it('staff answer, hear the briefing and press 1: the calls are joined until staff hang up, then TRANSFERRED', async () => {
    const { workflowId } = await confirm(PATIENT_PRESSES_0);
    const result = await system.api.result(workflowId);
    expect(result.outcome).toBe(CallOutcome.TRANSFERRED);
    const room = `${workflowId}-a1`;
    const staff = await waitForCall(system.stack!.callLogFile!, (l) => l.to === STAFF_PHONE && l.room === `${room}-staff`, 90_000);
    const patient = await waitForCall(system.stack!.callLogFile!, (l) => l.room === room, 30_000);
    // Staff heard the briefing (the agent's voice) before pressing 1, and hung up at the end.
    expect(staff.outcome).toBe('answered');
    expect(staff.heard!.voicedMs).toBeGreaterThan(2_000);
    const pressed = staff.events!.find((e) => e.what === 'press');
    expect(pressed).toMatchObject({ arg: '1' });
    expect(Date.parse(staff.heard!.firstVoicedAt!)).toBeLessThan(Date.parse(pressed!.at));
    expect(staff.ended).toBe('phone hung up');
    // The calls were joined: the patient heard staff greet them (after the agent's last words), and
    // was hung up when staff hung up (not left alone on the line).
    const greeted = staff.events!.find((e) => e.what === 'play');
    expect(greeted).toMatchObject({ arg: 'hello' });
    expect(Date.parse(patient.heard!.lastVoicedAt!)).toBeGreaterThan(Date.parse(greeted!.at));
    expect(patient.ended).toBe('hung up by the agent');
    expect(Math.abs(Date.parse(patient.endedAt) - Date.parse(staff.endedAt))).toBeLessThan(5_000);
    expect(patient.events!.some((e) => e.what === 'transfer')).toBe(false); // no REFER
    // The front desk's INVITE took a call slot of the trunk (the trunk's next slot is after it; the
    // patient's, long before, left it seconds earlier), and its channel was released with the leg.
    const { rows } = await system.store.sql.query<{ next: Date }>('SELECT next_call_at AS next FROM trunk_limits');
    expect(new Date(rows[0]!.next).getTime()).toBeGreaterThan(Date.parse(staff.time));
    expect(Date.parse(staff.time) - Date.parse(patient.time)).toBeGreaterThan(5_000);
    expect(await liveLeaseCount(system.store.sql, await trunkOf())).toBe(0);
  });

  it('staff do not answer: the patient is put through to the front desk line cold (REFER), TRANSFERRED', async () => {
    const { workflowId } = await confirm(PATIENT_PRESSES_0);
    const result = await system.api.result(workflowId);
    expect(result.outcome).toBe(CallOutcome.TRANSFERRED);
    const room = `${workflowId}-a1`;
    const staff = await waitForCall(system.stack!.callLogFile!, (l) => l.to === STAFF_PHONE && l.room === `${room}-staff`, 60_000);
    expect(staff.outcome).toBe('no-answer');
    const patient = await waitForCall(system.stack!.callLogFile!, (l) => l.room === room, 30_000);
    expect(patient.ended).toBe(`transferred to tel:${FRONT_DESK_LINE}`);
    expect(Date.parse(patient.endedAt)).toBeGreaterThan(Date.parse(staff.endedAt));
  });
});

describe('warm transfer with no cold-transfer number', () => {
  // The front desk's phone here rings until the ringing timeout (+12125550107).
  beforeAll(() => start({ STAFF_WARM_TRANSFER_NUMBER: '+12125550107' }));
  afterAll(stop);

  it('staff do not answer: the patient is told the front desk will call back, RESCHEDULE_REQUESTED with a note, and the agent hangs up', async () => {
    const { workflowId, request } = await confirm(PATIENT_PRESSES_0);
    const result = await system.api.result(workflowId);
    expect(result.outcome).toBe(CallOutcome.RESCHEDULE_REQUESTED);
    expect((await system.store.getAppointment(request.practiceId, request.appointmentId))?.outcomeDetail).toMatchObject({
      note: 'asked for staff; warm transfer: no-answer; call back',
    });
    const room = `${workflowId}-a1`;
    const staff = await waitForCall(system.stack!.callLogFile!, (l) => l.room === `${room}-staff`, 60_000);
    expect(staff.outcome).toBe('no-answer');
    const patient = await waitForCall(system.stack!.callLogFile!, (l) => l.room === room, 30_000);
    expect(patient.ended).toBe('hung up by the agent');
    expect(Date.parse(patient.heard!.lastVoicedAt!)).toBeGreaterThan(Date.parse(staff.endedAt)); // the call-back words
  });
});
