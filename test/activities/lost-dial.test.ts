/**
 * The dial path's fault handling against the real livekit-server with the phone-network simulator
 * as its SIP service: a dial whose worker died is resolved from the room and the dial's heartbeat
 * (never as a trunk failure), an orphaned answered call is watched until its line is down, and a
 * dial refused before any INVITE ("cpu exhausted") is tried again within the attempt.
 */
import { SIPTransport } from '@livekit/protocol';
import { MockActivityEnvironment } from '@temporalio/testing';
import { SipClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { CallCheckState, CallEnd, type CallCheckResult, type DialInput, type DialProgress } from '../../src/contracts';
import { readCallLog, startLiveKitStack, waitForCall, type LiveKitStack } from '../../src/dev/livekit-stack';
import { createLogger } from '../../src/logger';
import type { ConfirmationStore } from '../../src/ports';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore } from '../../src/store';
import { createLiveKitTelephony } from '../../src/telephony/livekit';
import { sampleDialInput } from '../helpers/fixtures';

let stack: LiveKitStack;
let store: ConfirmationStore;
let telephony: ReturnType<typeof createLiveKitTelephony>;
let acts: ReturnType<typeof createActivities>;

beforeAll(async () => {
  [stack, store] = await Promise.all([startLiveKitStack({ phones: true }), createStore({})]);
  const sip = new SipClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  const trunk = await sip.createSipOutboundTrunk('simulated carrier', 'sip.carrier.test', ['+13125550100'], { transport: SIPTransport.SIP_TRANSPORT_AUTO });
  telephony = createLiveKitTelephony({ url: stack.url, apiKey: stack.apiKey, apiSecret: stack.apiSecret, sipTrunkId: trunk.sipTrunkId, agentName: 'appointment-confirmer', agentReadyMs: 0 }); // the test plays the agent: no agent to wait for
  acts = createActivities({ store, telephony, rules: DEFAULT_CALLING_RULES, logger: createLogger('silent'), pollIntervalMs: 200, notPlacedRetryDelaysMs: [300, 600, 1_200] });
});
afterAll(async () => {
  await store?.close();
  await stack?.stop();
});

let n = 0;
const input = (phone: string, ringingTimeoutSeconds = 10): DialInput => {
  n += 1;
  return sampleDialInput(`confirm-p1-L${n}-a1`, { workflowId: `confirm-p1-L${n}`, phone, ringingTimeoutSeconds, maxCallDurationSeconds: 120, hangupGraceSeconds: 1 });
};
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A dial whose worker dies while `CreateSIPParticipant` is in flight: the request goes on in
 * livekit-server and the phone network, but nobody hears its answer.
 */
function lostDial(call: DialInput): DialProgress {
  const progress: DialProgress = { dialStartedAt: new Date().toISOString() };
  void telephony.dial(call).catch(() => undefined);
  return progress;
}

describe('a lost dial is resolved from the room and the dial heartbeat, never as a trunk failure', () => {
  it('a phone that rings out: NO_ANSWER', async () => {
    const call = input('+12125550107');
    const progress = lostDial(call);
    await pause(3_000); // the workflow notices the lost worker later; the phone still rings
    const check = (await new MockActivityEnvironment().run(acts.checkCall, { roomName: call.roomName, ringingTimeoutSeconds: 10, progress })) as CallCheckResult;
    expect(check.state).toBe(CallCheckState.NO_ANSWER);
    expect((await waitForCall(stack.callLogFile!, (l) => l.room === call.roomName)).ended).toBe('ringing timeout');
  });

  it('a phone that rings out, with no heartbeat at all: the leg\'s join time stands in for the dial time', async () => {
    const call = input('+12125550107');
    lostDial(call);
    await pause(3_000);
    const check = (await new MockActivityEnvironment().run(acts.checkCall, { roomName: call.roomName, ringingTimeoutSeconds: 10 })) as CallCheckResult;
    expect(check.state).toBe(CallCheckState.NO_ANSWER);
  });

  it('a busy phone, gone before anyone looked: UNKNOWN (busy, declined, unavailable look alike), not a failed call', async () => {
    const call = input('+12125550102');
    const progress = lostDial(call);
    await pause(4_000);
    const check = (await new MockActivityEnvironment().run(acts.checkCall, { roomName: call.roomName, ringingTimeoutSeconds: 10, progress })) as CallCheckResult;
    expect(check.state).toBe(CallCheckState.UNKNOWN);
  });

  it('the dial activity heartbeats what it sees of the leg while CreateSIPParticipant is in flight', async () => {
    const call = input('+12125550107', 5);
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await env.run(acts.dial, call).catch(() => undefined);
    const first = beats[0] as DialProgress;
    expect(Date.parse(first.dialStartedAt)).toBeGreaterThan(0);
    expect(beats.some((b) => (b as DialProgress | undefined)?.lastStatus === 'ringing')).toBe(true);
  });
});

describe('an orphaned answered call', () => {
  it('is watched like the dial watches it: watchCall ends as soon as the line is down', async () => {
    const call = input('+12125550109'); // answers, hangs up 0.3 s later
    expect((await telephony.dial(call)).answered).toBe(true);
    const t0 = Date.now();
    expect(await new MockActivityEnvironment().run(acts.watchCall, call)).toBe(CallEnd.HUNG_UP);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});

describe('a dial refused before any INVITE ("cpu exhausted")', () => {
  it('is tried again within the attempt, with backoff, and reaches the phone with exactly one INVITE', async () => {
    const call = input('+12125550122'); // refused twice, then answers
    const env = new MockActivityEnvironment();
    const dialing = env.run(acts.dial, call);
    for (let i = 0; i < 100 && (await telephony.checkCall(call.roomName)).state !== CallCheckState.ANSWERED; i += 1) await pause(100);
    await telephony.hangUp(call.roomName);
    expect(await dialing).toMatchObject({ answered: true, end: CallEnd.HUNG_UP });
    await waitForCall(stack.callLogFile!, (l) => l.room === call.roomName);
    expect(readCallLog(stack.callLogFile!).filter((l) => l.room === call.roomName)).toHaveLength(1);
  });

  it('gives up after its bounded retries: NOT_PLACED, and no INVITE ever', async () => {
    const call = input('+12125550121'); // always refused
    const t0 = Date.now();
    const err = await new MockActivityEnvironment().run(acts.dial, call).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'NOT_PLACED', nonRetryable: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000); // 0.3 + 0.6 + 1.2 s of backoff
    expect(readCallLog(stack.callLogFile!).filter((l) => l.room === call.roomName)).toEqual([]);
  });
});
