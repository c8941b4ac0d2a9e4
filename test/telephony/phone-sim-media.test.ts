/**
 * The simulator's phones in the room, seen from the agent's side with @livekit/rtc-node: the leg
 * rings before it is active, a voicemail plays its greeting and beep, a person speaks once the agent
 * does, keys arrive as SIP DTMF at the scripted times, and the phone records what it heard.
 */
import { SIPTransport } from '@livekit/protocol';
import { existsSync, statSync } from 'node:fs';
import { RoomServiceClient, SipClient } from 'livekit-server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveKitStack, waitForCall, type LiveKitStack } from '../../src/dev/livekit-stack';
import { listenInRoom, type HeardFrame, type RoomListener } from '../helpers/room-listener';

let stack: LiveKitStack;
let sip: SipClient;
let rooms: RoomServiceClient;
let trunkId: string;
const open: RoomListener[] = [];

beforeAll(async () => {
  stack = await startLiveKitStack({ phones: true });
  sip = new SipClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  rooms = new RoomServiceClient(stack.url.replace('ws', 'http'), stack.apiKey, stack.apiSecret);
  trunkId = (await sip.createSipOutboundTrunk('simulated carrier', 'sip.carrier.test', ['+13125550100'], { transport: SIPTransport.SIP_TRANSPORT_AUTO })).sipTrunkId;
});
afterAll(async () => {
  await Promise.all(open.map((l) => l.close()));
  await stack?.stop();
});

let n = 0;
/** Creates the room, puts a listener in it, then dials `phone` into it (as the dial activity does). */
async function call(phone: string): Promise<{ roomName: string; listener: RoomListener; answeredAt: number }> {
  n += 1;
  const roomName = `media-${n}-${Date.now().toString(36)}`;
  await rooms.createRoom({ name: roomName, emptyTimeout: 60 });
  const listener = await listenInRoom(stack, roomName);
  open.push(listener);
  const t0 = Date.now();
  await sip.createSipParticipant(trunkId, phone, roomName, { participantIdentity: 'callee', waitUntilAnswered: true, ringingTimeout: 15 });
  return { roomName, listener, answeredAt: Date.now() - t0 };
}

const voiced = (frames: HeardFrame[]) => frames.filter((f) => f.rms > 0.02);
/**
 * The frames of the first run of at least 30 (0.3 s) that are a loud pure 1 kHz tone (2000 zero
 * crossings/s, counted per 10 ms frame: 19–21 a frame); a run survives a couple of odd frames.
 */
const beepOf = (frames: HeardFrame[]): HeardFrame[] => {
  let run: HeardFrame[] = [];
  let misses = 0;
  for (const f of frames) {
    if (f.rms > 0.2 && Math.abs(f.crossingsPerSecond - 2_000) <= 150) {
      run.push(f);
      misses = 0;
    } else if (run.length > 0 && ++misses <= 2) continue;
    else if (run.length >= 30) return run;
    else {
      run = [];
      misses = 0;
    }
  }
  return run.length >= 30 ? run : [];
};
const until = async (what: string, ok: () => boolean, ms = 15_000, listener?: RoomListener) => {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) {
      const loud = listener?.frames.filter((f) => f.rms > 0.2).map((f) => `${f.t}:${Math.round(f.crossingsPerSecond)}`).slice(-80).join(' ');
      const heard = listener ? `; the listener heard ${listener.frames.length} frames (${voiced(listener.frames).length} voiced), callee ${JSON.stringify(listener.statuses)}; loud frames ${loud}` : '';
      throw new Error(`timed out waiting for ${what}${heard}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('the phone-network simulator in the room', () => {
  it('the leg rings in the room before it is answered, then turns active; after a hang-up it is gone', async () => {
    const roomName = `ringing-${Date.now().toString(36)}`;
    await rooms.createRoom({ name: roomName, emptyTimeout: 60 });
    const t0 = Date.now();
    const dialing = sip.createSipParticipant(trunkId, '+12125550108', roomName, { participantIdentity: 'callee', waitUntilAnswered: true, ringingTimeout: 15 });
    // livekit-server's view, as checkCall and the agent's dispatch see it.
    const seen: { status?: string; t: number }[] = [];
    let answeredAt: number | undefined;
    void dialing.then(() => (answeredAt = Date.now() - t0));
    while (answeredAt === undefined) {
      const callee = (await rooms.listParticipants(roomName)).find((p) => p.identity === 'callee');
      seen.push({ status: callee?.attributes['sip.callStatus'], t: Date.now() - t0 });
      await new Promise((r) => setTimeout(r, 100));
    }
    const ringing = seen.filter((s) => s.status === 'ringing');
    expect(ringing.length).toBeGreaterThan(5);
    expect(ringing.at(-1)!.t - ringing[0]!.t).toBeGreaterThanOrEqual(1_500);
    // Never active before the answer (the leg turns active just before the SIP response is sent, so a
    // look at the room while that response is on its way may already see it).
    expect(seen.some((s) => s.status === 'active' && s.t < answeredAt! - 300)).toBe(false);
    const callee = (await rooms.listParticipants(roomName)).find((p) => p.identity === 'callee')!;
    expect(callee.attributes['sip.callStatus']).toBe('active');
    await rooms.deleteRoom(roomName);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === roomName);
    expect(line).toMatchObject({ outcome: 'answered', ended: 'room deleted' });
    expect(Date.parse(line.endedAt) - Date.parse(line.answeredAt!)).toBeGreaterThan(0);
  });

  it('voicemail: answers, plays the greeting then a 1 kHz beep, and records what follows', async () => {
    const { roomName, listener } = await call('+12125550111');
    await until('the greeting and the beep', () => beepOf(listener.frames).length >= 40, 20_000, listener);
    const beep = beepOf(listener.frames);
    const speech = voiced(listener.frames).filter((f) => f.t < beep[0]!.t - 200);
    // The greeting (espeak-ng, ~7 s of speech with pauses) comes first, the beep (0.6 s) last.
    expect(speech.at(-1)!.t - speech[0]!.t).toBeGreaterThan(5_000);
    expect(beep.length * 10).toBeGreaterThanOrEqual(300);
    expect(beep[0]!.t).toBeGreaterThan(speech.at(-1)!.t);
    // The machine records the message: the agent's side speaks 2 s of tone.
    await listener.speak(2_000);
    await new Promise((r) => setTimeout(r, 500));
    await rooms.deleteRoom(roomName);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === roomName);
    expect(line.events?.map((e) => [e.what, e.arg])).toEqual([['play', 'voicemail-greeting']]);
    expect(line.heard!.voicedMs).toBeGreaterThanOrEqual(1_500);
    expect(line.heard!.voicedMs).toBeLessThanOrEqual(2_600);
    expect(line.heard!.voicedBeforeAnswerMs).toBe(0);
    expect(Date.parse(line.heard!.firstVoicedAt!)).toBeGreaterThan(Date.parse(line.events![0]!.at));
    expect(existsSync(line.heard!.recording!) && statSync(line.heard!.recording!).size).toBeGreaterThan(1_000);
  });

  it('a person says hello, and answers with a phrase once the agent has spoken', async () => {
    const { roomName, listener } = await call('+12125550112');
    await until('hello', () => voiced(listener.frames).length > 10, 15_000, listener);
    await new Promise((r) => setTimeout(r, 1_500));
    const helloEnd = voiced(listener.frames).at(-1)!.t;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(voiced(listener.frames).at(-1)!.t).toBe(helloEnd); // quiet until the agent speaks
    const spokeAt = Date.now();
    await listener.speak(1_000);
    await until('the phrase', () => voiced(listener.frames).some((f) => f.t > helloEnd + 1_000));
    await new Promise((r) => setTimeout(r, 2_500));
    const phrase = voiced(listener.frames).filter((f) => f.t > helloEnd + 1_000);
    expect(phrase.at(-1)!.t - phrase[0]!.t).toBeGreaterThan(800); // "Yes, I will be there."
    await rooms.deleteRoom(roomName);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === roomName);
    expect(line.events?.map((e) => e.arg)).toEqual(['hello', 'phrase-yes']);
    // The phrase started 2.5 s after the first voiced audio the phone heard.
    expect(Date.parse(line.events![1]!.at) - Date.parse(line.heard!.firstVoicedAt!)).toBeGreaterThanOrEqual(2_400);
    expect(Date.parse(line.heard!.firstVoicedAt!)).toBeGreaterThanOrEqual(spokeAt - 50);
  });

  it('presses keys as SIP DTMF data packets at the scripted times, then hangs up', async () => {
    const { roomName, listener } = await call('+12125550118');
    await until('the hang-up', () => listener.calleeLeftAt !== undefined);
    expect(listener.dtmf.map((d) => [d.digit, d.code])).toEqual([
      ['1', 1],
      ['#', 11],
      ['9', 9],
    ]);
    const active = listener.statuses.find((s) => s.status === 'active')!.t; // the callee appears to the room's others when active
    expect(listener.dtmf[0]!.t - active).toBeGreaterThanOrEqual(400);
    expect(listener.dtmf[0]!.t - active).toBeLessThan(1_100);
    expect(listener.dtmf[1]!.t - active).toBeGreaterThanOrEqual(1_100);
    expect(listener.dtmf[2]!.t - listener.dtmf[1]!.t).toBeGreaterThanOrEqual(150);
    expect(listener.calleeLeftAt! - active).toBeGreaterThanOrEqual(2_900);
    const line = await waitForCall(stack.callLogFile!, (l) => l.room === roomName);
    expect(line.ended).toBe('phone hung up');
    expect(line.events?.map((e) => e.what)).toEqual(['press', 'press', 'press', 'hangup']);
    await rooms.deleteRoom(roomName);
  });
});
