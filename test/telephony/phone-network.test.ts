/**
 * The dial path through the real livekit-server, with the phone-network simulator registered as
 * its SIP service: our adapter → livekit-server-sdk → livekit-server → psrpc over Redis → phone-sim.
 */
import { SIPTransport } from '@livekit/protocol';
import { ServerError, SipClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallCheckState, DialFailureType, type DialInput } from '../../src/contracts';
import { readCallLog, startLiveKitStack, type LiveKitStack } from '../../src/dev/livekit-stack';
import { DialError } from '../../src/ports';
import { createLiveKitTelephony } from '../../src/telephony/livekit';

let stack: LiveKitStack;
let telephony: ReturnType<typeof createLiveKitTelephony>;
let trunkId: string;
let sip: SipClient;
const CALLER_ID = '+13125550100';

beforeAll(async () => {
  stack = await startLiveKitStack({ phones: true });
  sip = new SipClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  const trunk = await sip.createSipOutboundTrunk('simulated carrier', 'sip.carrier.test', [CALLER_ID], {
    transport: SIPTransport.SIP_TRANSPORT_AUTO,
    authUsername: 'clinic',
    authPassword: 'never-printed',
  });
  trunkId = trunk.sipTrunkId;
  telephony = createLiveKitTelephony({ url: stack.url, apiKey: stack.apiKey, apiSecret: stack.apiSecret, sipTrunkId: trunkId, agentName: 'appointment-confirmer' });
});
afterAll(async () => {
  await stack?.stop();
});

let n = 0;
const input = (phone: string, ringingTimeoutSeconds = 15): DialInput => {
  n += 1;
  return {
    workflowId: `confirm-p1-A${n}`,
    attempt: 1,
    roomName: `confirm-p1-A${n}-a1`,
    phone,
    ringingTimeoutSeconds,
    maxCallDurationSeconds: 120,
    outcomeMarginSeconds: 30,
    hangupGraceSeconds: 10,
    agentMetadata: {
      workflowId: `confirm-p1-A${n}`,
      attempt: 1,
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: CALLER_ID,
      provider: 'Dr. Rivera',
      appointmentStartLocal: '2026-12-01T10:30:00-06:00',
      patientTimeZone: 'America/Chicago',
      reason: 'cleaning',
      patientFirstName: 'Jordan',
      voicemailAllowed: true,
    },
  };
};

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
    expect(await telephony.checkCall(call.roomName)).toEqual({ state: CallCheckState.ANSWERED, callStatus: 'active' });
    const invite = readCallLog(stack.callLogFile!).find((l) => l.room === call.roomName)!;
    expect(invite).toMatchObject({ trunk: trunkId, from: CALLER_ID, to: '+12125550101', ringingTimeoutSeconds: 15, maxCallDurationSeconds: 120, outcome: 'answered' });
    await telephony.hangUp(call.roomName);
    expect(await telephony.checkCall(call.roomName)).toEqual({ state: CallCheckState.NOT_CONNECTED });
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

  it('the raw error reaching the SDK carries status, code and SIP metadata like livekit-sip\'s (486 row)', async () => {
    const raw = await sip
      .createSipParticipant(trunkId, '+12125550102', 'raw-busy', { waitUntilAnswered: true, ringingTimeout: 15 })
      .then(() => undefined, (e: unknown) => e);
    expect(raw).toBeInstanceOf(ServerError);
    expect(raw).toMatchObject({ status: 429, code: 'resource_exhausted', metadata: { sip_status_code: '486', sip_status: 'Busy Here' } });
  });

  it('rings until the ringing timeout: NO_ANSWER after it, not before', async () => {
    const { err, ms } = await failure('+12125550107', 15);
    expect(err.type).toBe(DialFailureType.NO_ANSWER);
    expect(ms).toBeGreaterThanOrEqual(14_500);
  }, 40_000);
});
