/**
 * The dial path through the real livekit-server, with the phone-network simulator registered as
 * its SIP service: our adapter → livekit-server-sdk → livekit-server → psrpc over Redis → phone-sim.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIPTransport } from '@livekit/protocol';
import { AgentDispatchClient, RoomServiceClient, ServerError, SipClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForAnswer } from '../../agent/call';
import { CallCheckState, DialFailureType, type DialInput } from '../../src/contracts';
import { readCallLog, startLiveKitStack, waitForCall, type LiveKitStack } from '../../src/dev/livekit-stack';
import { DialError } from '../../src/ports';
import { createLiveKitTelephony } from '../../src/telephony/livekit';
import { sampleDialInput } from '../helpers/fixtures';
import { listenInRoom } from '../helpers/room-listener';

let stack: LiveKitStack;
let telephony: ReturnType<typeof createLiveKitTelephony>;
let trunkId: string;
let sip: SipClient;
let rooms: RoomServiceClient;
const CALLER_ID = '+13125550100';
/** The simulated livekit-sip host's CPU utilization, read at each request (its CPU guard). */
const cpuLoadFile = join(mkdtempSync(join(tmpdir(), 'phone-sim-cpu-')), 'cpu');

beforeAll(async () => {
  writeFileSync(cpuLoadFile, '0.2');
  stack = await startLiveKitStack({ phones: true, simEnv: { PHONE_SIM_CPU_LOAD_FILE: cpuLoadFile } });
  rooms = new RoomServiceClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  sip = new SipClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  const trunk = await sip.createSipOutboundTrunk('simulated carrier', 'sip.carrier.test', [CALLER_ID], {
    transport: SIPTransport.SIP_TRANSPORT_AUTO,
    authUsername: 'clinic',
    authPassword: 'never-printed',
  });
  trunkId = trunk.sipTrunkId;
  // No agent worker in this suite: dispatched at the answer, a dial does not wait for an agent to be
  // ready (dispatch at the dial, the default, is covered in livekit.test.ts and the e2e tests).
  telephony = createLiveKitTelephony({ url: stack.url, apiKey: stack.apiKey, apiSecret: stack.apiSecret, sipTrunkId: trunkId, agentName: 'appointment-confirmer', agentDispatch: 'answer' });
});
afterAll(async () => {
  await stack?.stop();
});

let n = 0;
const input = (phone: string, ringingTimeoutSeconds = 15, maxCallDurationSeconds = 120): DialInput => {
  n += 1;
  return sampleDialInput(`confirm-p1-A${n}-a1`, { workflowId: `confirm-p1-A${n}`, phone, ringingTimeoutSeconds, maxCallDurationSeconds });
};
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function failure(phone: string, ringingTimeoutSeconds?: number): Promise<{ err: DialError; ms: number }> {
  const t0 = Date.now();
  const err = await telephony.dial(input(phone, ringingTimeoutSeconds)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DialError);
  return { err: err as DialError, ms: Date.now() - t0 };
}

describe('dialing through livekit-server and the phone-network simulator', () => {
  it('answers: the SIP participant is in the room, active, with caller ID, ringing timeout and max duration reaching the phone', async () => {
    const call = input('+12125550101');
    const answered = await telephony.dial(call);
    expect(answered.answered).toBe(true);
    expect(await telephony.checkCall(call.roomName)).toMatchObject({ state: CallCheckState.ANSWERED, callStatus: 'active' });
    await telephony.hangUp(call.roomName);
    expect(await telephony.checkCall(call.roomName)).toEqual({ state: CallCheckState.NOT_CONNECTED });
    // The phone saw the hang-up; its call-log line is written when the call is over.
    const invite = await waitForCall(stack.callLogFile!, (l) => l.room === call.roomName);
    expect(invite).toMatchObject({
      trunk: trunkId, from: CALLER_ID, to: '+12125550101', ringingTimeoutSeconds: 15, maxCallDurationSeconds: 120, outcome: 'answered', ended: 'room deleted',
    });
  });

  it.each([
    ['+12125550102', DialFailureType.BUSY, 486],
    ['+12125550103', DialFailureType.NO_ANSWER, 480],
    ['+12125550104', DialFailureType.DECLINED, 603],
    ['+12125550105', DialFailureType.INVALID_NUMBER, 404],
    ['+12125550106', DialFailureType.TRUNK_ERROR, 503],
  ])('%s fails as %s (SIP %d), as livekit-sip reports it', async (phone, type, code) => {
    const { err } = await failure(phone);
    expect(err.type).toBe(type);
    expect(err.sipStatusCode).toBe(code);
  });

  // ../shared/REFERENCE.md, "Observed with the real livekit-sip": what the SDK's error shows per row.
  it.each([
    ['+12125550102', 429, 'resource_exhausted', 'SIP call failed: 486 Busy Here (resource_exhausted)', '486', 'Busy Here'],
    ['+12125550103', 429, 'resource_exhausted', 'SIP call failed: 480 Temporarily Unavailable (resource_exhausted)', '480', 'Temporarily Unavailable'],
    ['+12125550104', 403, 'permission_denied', 'SIP call failed: 603 Decline (permission_denied)', '603', 'Decline'],
    ['+12125550105', 404, 'not_found', 'SIP call failed: 404 Not Found (not_found)', '404', 'Not Found'],
    ['+12125550106', 412, 'failed_precondition', 'SIP call failed: 503 Service Unavailable (failed_precondition)', '503', 'Service Unavailable'],
  ])('parity with livekit-sip: %s → HTTP %d %s', async (phone, status, code, message, sipCode, sipStatus) => {
    const t0 = Date.now();
    const raw = await sip
      .createSipParticipant(trunkId, phone, `raw-${phone}`, { waitUntilAnswered: true, ringingTimeout: 10 })
      .then(() => undefined, (e: unknown) => e);
    const ms = Date.now() - t0;
    expect(raw).toBeInstanceOf(ServerError);
    expect(raw).toMatchObject({ status, code, message, metadata: { sip_status_code: sipCode, sip_status: sipStatus } });
    expect((raw as ServerError).metadata?.error_details).toBeTruthy();
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1_500);
  });

  it('parity with livekit-sip: no answer → HTTP 408 canceled "twirp error unknown: sip request timed out" at the ringing timeout', async () => {
    const t0 = Date.now();
    const raw = await sip
      .createSipParticipant(trunkId, '+12125550107', 'raw-ring', { waitUntilAnswered: true, ringingTimeout: 10 })
      .then(() => undefined, (e: unknown) => e);
    expect(raw).toMatchObject({ status: 408, code: 'canceled', message: 'twirp error unknown: sip request timed out' });
    expect((raw as ServerError).metadata?.sip_status_code).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(9_900);
  });

  // livekit-server gives every room an automatic dispatch (agent name ""), which named agents never take.
  const named = async (roomName: string) =>
    (await new AgentDispatchClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret).listDispatch(roomName).catch(() => [])).filter((d) => d.agentName !== '');

  it('the agent is dispatched at the answer, once; a dispatch no worker took is replaced, never doubled (AgentDispatch API)', async () => {
    const quick = createLiveKitTelephony({ url: stack.url, apiKey: stack.apiKey, apiSecret: stack.apiSecret, sipTrunkId: trunkId, agentName: 'appointment-confirmer', agentDispatch: 'answer', dispatchOfferMs: 300 });
    const call = input('+12125550101');
    expect((await quick.dial(call)).answered).toBe(true);
    const first = await named(call.roomName);
    expect(first.map((d) => [d.agentName, JSON.parse(d.metadata).workflowId])).toEqual([['appointment-confirmer', call.workflowId]]);
    // Still being offered to the workers: no second dispatch.
    expect(await quick.ensureAgent({ roomName: call.roomName, agentMetadata: call.agentMetadata })).toBe('on-its-way');
    expect(await named(call.roomName)).toHaveLength(1);
    // No worker took it (there is none here): replaced by one new dispatch, not added to.
    await pause(400);
    expect(await quick.ensureAgent({ roomName: call.roomName, agentMetadata: call.agentMetadata })).toBe('dispatched');
    const after = await named(call.roomName);
    expect(after).toHaveLength(1);
    expect(after[0]!.id).not.toBe(first[0]!.id);
    expect(JSON.parse(after[0]!.metadata).workflowId).toBe(call.workflowId);
    await quick.hangUp(call.roomName);
  });

  it('a busy call dispatches no agent', async () => {
    const call = input('+12125550102');
    await expect(telephony.dial(call)).rejects.toMatchObject({ type: DialFailureType.BUSY });
    expect(await named(call.roomName)).toEqual([]);
    await telephony.hangUp(call.roomName);
  });

  it('answer then hang up at once: answered, and the participant is gone within a second', async () => {
    const call = input('+12125550109');
    expect((await telephony.dial(call)).answered).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await telephony.checkCall(call.roomName)).state).toBe(CallCheckState.NOT_CONNECTED);
    await telephony.hangUp(call.roomName);
  });

  it('rings until the ringing timeout: NO_ANSWER after it, not before', async () => {
    const { err, ms } = await failure('+12125550107', 15);
    expect(err.type).toBe(DialFailureType.NO_ANSWER);
    expect(ms).toBeGreaterThanOrEqual(14_500);
  });
});

// ../shared/REFERENCE.md, "Observed again, 2026-11-30": what a real livekit-sip leg does in the room.
describe('parity with livekit-sip: the leg in the room', () => {
  /**
   * The leg's statuses as a room client saw them: `dialing` lasts tens of ms before the far end's
   * 180, and a busy machine's listener may join the room after it; so `dialing`, when seen, comes
   * first, and the rest is exactly `after` (never `hangup` for a leg that was not answered). A leg
   * that stays `dialing` is checked on its own below.
   */
  function expectStatuses(seen: string[], after: string[]): void {
    expect(seen.indexOf('dialing')).toBeLessThanOrEqual(0);
    expect(seen.filter((s) => s !== 'dialing')).toEqual(after);
  }

  /** Dials `call` with a listener already in its room; resolves when the leg has left (or after `waitMs`). */
  async function dialWatched(call: DialInput, waitMs: number) {
    await rooms.createRoom({ name: call.roomName, emptyTimeout: 60 });
    const listener = await listenInRoom(stack, call.roomName);
    const result = await telephony.dial(call).then((r) => r, (e: unknown) => e);
    for (let i = 0; i < waitMs / 50 && listener.calleeLeftAt === undefined; i += 1) await pause(50);
    await listener.close();
    return { result, listener };
  }

  it.each([
    ['busy (486)', '+12125550102', DialFailureType.BUSY],
    ['declined (603)', '+12125550104', DialFailureType.DECLINED],
  ])('%s: the leg joins dialing, turns ringing, and leaves still ringing — never hangup', async (_what, phone, type) => {
    const { result, listener } = await dialWatched(input(phone), 5_000);
    expect((result as DialError).type).toBe(type);
    expectStatuses(listener.statuses.map((s) => s.status), ['ringing']);
    expect(listener.calleeLeftAt).toBeDefined();
  });

  it('rung out: the leg leaves at the ringing timeout still ringing — never hangup', async () => {
    const { result, listener } = await dialWatched(input('+12125550107', 5), 5_000);
    expect((result as DialError).type).toBe(DialFailureType.NO_ANSWER);
    expectStatuses(listener.statuses.map((s) => s.status), ['ringing']);
    expect(listener.calleeLeftAt).toBeGreaterThanOrEqual(4_900);
  });

  it('a far end that never sends a 1xx: the leg stays dialing until the ringing timeout, then leaves — never hangup', async () => {
    const { result, listener } = await dialWatched(input('+12125550125', 5), 5_000);
    expect((result as DialError).type).toBe(DialFailureType.NO_ANSWER);
    expect(listener.statuses.map((s) => s.status)).toEqual(['dialing']);
    expect(listener.calleeLeftAt).toBeGreaterThanOrEqual(4_900);
  });

  it('the agent\'s wait for the answer ends when the leg leaves still ringing (busy), not at its timeout', async () => {
    const call = input('+12125550102');
    await rooms.createRoom({ name: call.roomName, emptyTimeout: 60 });
    const agent = await listenInRoom(stack, call.roomName, 'agent');
    const t0 = Date.now();
    const waiting = waitForAnswer(agent.room, 30_000);
    await telephony.dial(call).catch(() => undefined);
    expect(await waiting).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(5_000);
    await agent.close();
  });

  it('maxCallDuration counts from the dial, not the answer: 5 s with 2 s of ringing ends 5 s after the INVITE', async () => {
    const call = input('+12125550108', 15, 5);
    expect((await telephony.dial(call)).answered).toBe(true);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === call.roomName, 15_000);
    const lasted = Date.parse(line.endedAt) - Date.parse(line.time);
    expect(line.ended).toBe('max call duration');
    expect(lasted).toBeGreaterThanOrEqual(4_900);
    expect(lasted).toBeLessThan(5_800);
    await telephony.hangUp(call.roomName);
  });

  it('one call id everywhere: the sipCallId returned is the leg\'s sip.callID and the call log\'s', async () => {
    const call = input('+12125550101');
    const answered = await telephony.dial(call);
    const leg = (await rooms.listParticipants(call.roomName)).find((p) => p.identity === 'callee');
    expect(answered.sipCallId).toMatch(/^SCL_/);
    expect(leg?.attributes['sip.callID']).toBe(answered.sipCallId);
    expect(leg?.attributes['sip.callIDFull']).toBeTruthy();
    expect(leg?.attributes['sip.callTag']).toBeTruthy();
    await telephony.hangUp(call.roomName);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === call.roomName);
    expect(line.sipCallId).toBe(answered.sipCallId);
  });

  it('media timeout: a far end that answers and sends no audio is hung up after it (3 s in this scenario), leaving still active', async () => {
    const call = input('+12125550120');
    await rooms.createRoom({ name: call.roomName, emptyTimeout: 60 });
    const listener = await listenInRoom(stack, call.roomName);
    expect((await telephony.dial(call)).answered).toBe(true);
    const answeredAt = Date.now();
    for (let i = 0; i < 200 && listener.calleeLeftAt === undefined; i += 1) await pause(50);
    const leftAfter = Date.now() - answeredAt;
    await listener.close();
    expectStatuses(listener.statuses.map((s) => s.status), ['ringing', 'active']);
    expect(leftAfter).toBeGreaterThanOrEqual(2_500);
    expect(leftAfter).toBeLessThan(5_000);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === call.roomName);
    expect(line).toMatchObject({ outcome: 'answered', ended: 'media timeout' });
    await telephony.hangUp(call.roomName);
  });

  it('CPU guard (per number): HTTP 503 unavailable "twirp error unknown: cpu exhausted" at once; no INVITE, no leg', async () => {
    const room = `raw-cpu-${Date.now()}`;
    const t0 = Date.now();
    const raw = await sip
      .createSipParticipant(trunkId, '+12125550121', room, { waitUntilAnswered: true, ringingTimeout: 10 })
      .then(() => undefined, (e: unknown) => e);
    expect(raw).toBeInstanceOf(ServerError);
    expect(raw).toMatchObject({ status: 503, code: 'unavailable', message: 'twirp error unknown: cpu exhausted' });
    expect((raw as ServerError).metadata?.sip_status_code).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1_000);
    // Our adapter: certainly not placed.
    const { err } = await failure('+12125550121');
    expect(err.type).toBe(DialFailureType.NOT_PLACED);
    await pause(500);
    expect(readCallLog(stack.callLogFile!).filter((l) => l.to === '+12125550121')).toEqual([]);
  });

  it('CPU guard (per run): above max_cpu_utilization every call is refused before any INVITE; below it calls go through', async () => {
    writeFileSync(cpuLoadFile, '0.95');
    const refused = input('+12125550101');
    const err = await telephony.dial(refused).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ type: DialFailureType.NOT_PLACED });
    expect((await rooms.listParticipants(refused.roomName)).filter((p) => p.identity === 'callee')).toEqual([]);
    writeFileSync(cpuLoadFile, '0.2');
    const placed = input('+12125550101');
    expect((await telephony.dial(placed)).answered).toBe(true);
    await telephony.hangUp(placed.roomName);
    await waitForCall(stack.callLogFile!, (l) => l.room === placed.roomName);
    expect(readCallLog(stack.callLogFile!).filter((l) => l.room === refused.roomName)).toEqual([]);
  });
});
