/**
 * Warm transfer to the practice's front desk: the patient who asks for staff is put on hold (the
 * library's hold music), the front desk is dialed into a consultation room of its own, a second
 * agent session tells staff who is calling and why, and once staff press 1 the two calls are joined
 * (the agent relays audio both ways) until either side hangs up; TRANSFERRED is reported then.
 * Staff who do not answer, press 2 or decide nothing: the cold transfer (REFER) to
 * `STAFF_TRANSFER_NUMBER` if set, else a call back (RESCHEDULE_REQUESTED with a note).
 *
 * This follows the library's `workflows.WarmTransferTask` (hold music, dial into a consultation
 * room, brief, merge), with two differences: staff accept with the keypad (offline there is no
 * language model to hear "put them through"), and the merge is a relay, because the task's merge
 * (MoveParticipant) is implemented by LiveKit Cloud only, not by a self-hosted livekit-server.
 *
 * The briefing is health data spoken to the practice's own staff: it is never logged.
 */
import { voice, type VAD } from '@livekit/agents';
import {
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
  type AudioFrame,
  type RemoteParticipant,
  type RemoteTrack,
  type RemoteTrackPublication,
} from '@livekit/rtc-node';
import { AccessToken, RoomServiceClient, SipClient } from 'livekit-server-sdk';
import { CallOutcome, SIP_PARTICIPANT_IDENTITY, type AgentJobMetadata } from '../src/contracts';
import { safeMessage } from '../src/errors';
import { ChannelBroker, takeExtraLeg } from '../src/pacing';
import { createStore } from '../src/store';
import type { WarmTransferConfig } from './config';
import type { ConfirmationAgent } from './confirmation-agent';
import { replyFor, sayWhen } from './script';

/** Identity of the front desk's SIP leg in the consultation room. */
export const STAFF_IDENTITY = 'front-desk';

/** What the patient hears while the front desk is dialed. */
export const holdingForStaff = "One moment, I'll get someone from our front desk. Please stay on the line.";
/** What the patient hears when staff could not take the call and no cold transfer is configured. */
export const staffCallBack = "I'm sorry, no one at the front desk can take your call right now. They will call you back. Goodbye.";
/** What the patient hears before the cold transfer, when staff did not take the warm one. */
export const coldTransferNotice = "The front desk didn't pick up, so I'll put you through to their line now.";

/** What staff hear once they answer: who is calling and why, then the keys. */
export function briefing(meta: AgentJobMetadata): string {
  const who = meta.patientFirstName ? `Your patient ${meta.patientFirstName}` : 'A patient';
  const reason = meta.reason ? `, for ${meta.reason}` : '';
  return (
    `This is the appointment line of ${meta.practiceName}. ${who} is on hold and asked to speak with someone ` +
    `about their appointment with ${meta.provider} on ${sayWhen(meta)}${reason}. ` +
    'Press 1 to take the call, or 2 if you cannot take it now.'
  );
}

/**
 * Staff's leg through the confirmations' channel gate (the agent's `database`: the one its capacity
 * is reported to), on trunk `trunkId`: the database is opened for the transfer and closed with the leg.
 */
export function trunkLineThrough(database: { url?: string; dataDir?: string }, trunkId: string, meta: AgentJobMetadata): NonNullable<StaffTransferDeps['trunkLine']> {
  return async (waitMs, signal) => {
    const store = await createStore({ databaseUrl: database.url, dataDir: database.dataDir, processName: 'agent' });
    let broker: ChannelBroker | undefined;
    const close = async () => {
      broker?.close();
      await store.close().catch(() => undefined);
    };
    try {
      broker = await ChannelBroker.start(store.sql, trunkId);
      const leg = await takeExtraLeg(broker, { workflowId: meta.workflowId, attempt: meta.attempt, waitMs, signal });
      if (!leg) {
        await close();
        return undefined;
      }
      return {
        release: async () => {
          try {
            await leg.release();
          } finally {
            await close();
          }
        },
      };
    } catch (err) {
      await close();
      throw err;
    }
  };
}

/** How a warm transfer ended. */
export type StaffDecision = 'accepted' | 'no-answer' | 'declined' | 'no-decision' | 'staff-hung-up' | 'patient-hung-up' | 'failed';

export interface StaffTransferDeps {
  settings: WarmTransferConfig;
  livekit: { url: string; apiKey: string; apiSecret: string };
  meta: AgentJobMetadata;
  /** The patient's call: its room (the agent is connected to it) and session. */
  callerRoom: Room;
  session: voice.AgentSession;
  agent: ConfirmationAgent;
  vad: VAD;
  /** A text-to-speech model for the briefing (the call's own kind: espeak-ng offline, or the configured model). */
  tts: () => voice.AgentSessionOptions['tts'];
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Takes a channel and a call slot of the trunk for the front desk's leg (src/pacing/extra-leg.ts),
   * resolving undefined when no channel is free within `waitMs`. Absent (the agent has no database):
   * the leg is placed without the trunk's limits.
   */
  trunkLine?: (waitMs: number, signal: AbortSignal) => Promise<{ release(): Promise<void> } | undefined>;
}

/**
 * Takes the patient to the front desk, warm, with the fallbacks; reports the outcome (TRANSFERRED
 * once staff accept or the cold transfer goes out; RESCHEDULE_REQUESTED with a note for a call back).
 * Resolves when the agent's part is over: after a merge, once the patient's call with staff ends.
 */
export async function transferToStaff(deps: StaffTransferDeps, opts: { announce: boolean }): Promise<StaffDecision> {
  const { session, agent, log, meta } = deps;
  const ids = { workflowId: meta.workflowId, attempt: meta.attempt };
  session.interrupt();
  if (opts.announce) await session.say(holdingForStaff, { allowInterruptions: false }).waitForPlayout().catch(() => undefined);
  const hold = new voice.BackgroundAudioPlayer();
  let holdHandle: voice.PlayHandle | undefined;
  try {
    await hold.start({ room: deps.callerRoom });
    holdHandle = hold.play({ source: voice.BuiltinAudioClip.HOLD_MUSIC, volume: 0.6 }, true);
  } catch (err) {
    log('hold music failed; the patient holds in silence', { ...ids, error: safeMessage(err) });
  }
  const stopHold = async () => {
    holdHandle?.stop();
    await hold.close().catch(() => undefined);
  };
  const consult = await consultStaff(deps, async () => {
    // Staff took the call: the patient hears so, then the agent only relays (its own ears off, so
    // a language model does not answer what the patient says to staff).
    await stopHold();
    await session.say(replyFor(CallOutcome.TRANSFERRED, meta), { allowInterruptions: false }).waitForPlayout().catch(() => undefined);
    session.input.setAudioEnabled(false);
  });
  await stopHold();
  log('warm transfer', { ...ids, decision: consult.decision });
  if (consult.decision === 'accepted') {
    // Reported once the patient's call with staff is over: the workflow hangs up a call a few
    // seconds after its outcome is recorded.
    await consult.callEnded;
    await agent.settle(CallOutcome.TRANSFERRED, { note: 'warm transfer: front desk took the call' });
    return consult.decision;
  }
  if (consult.decision === 'patient-hung-up') {
    // Asked for staff and left while on hold: the front desk calls back.
    await agent.settle(CallOutcome.RESCHEDULE_REQUESTED, { note: 'asked for staff; hung up on hold; call back' });
    return consult.decision;
  }
  if (agent.settled === undefined && deps.agent.canColdTransfer) {
    await session.say(coldTransferNotice, { allowInterruptions: false }).waitForPlayout().catch(() => undefined);
    const settled = await agent.settle(CallOutcome.TRANSFERRED, { note: `warm transfer: ${consult.decision}; cold transfer` });
    if (settled.accepted) await agent.transfer();
    else await session.say(settled.reply, { allowInterruptions: false }).waitForPlayout().catch(() => undefined);
    return consult.decision;
  }
  if (agent.settled === undefined) {
    const settled = await agent.settle(CallOutcome.RESCHEDULE_REQUESTED, { note: `asked for staff; warm transfer: ${consult.decision}; call back` });
    await session.say(settled.accepted ? staffCallBack : settled.reply, { allowInterruptions: false }).waitForPlayout().catch(() => undefined);
  }
  return consult.decision;
}

type Consultation = { decision: Exclude<StaffDecision, 'accepted'> } | { decision: 'accepted'; callEnded: Promise<void> };

interface Bridge {
  stop: () => Promise<void>;
}

/**
 * Relays `identity`'s audio from room `from` into room `to` (published there as `name`); returns
 * how to stop. The agent is connected to both rooms and subscribes to the participant's track.
 */
async function relay(from: Room, identity: string, to: Room, name: string): Promise<() => Promise<void>> {
  const source = new AudioSource(48_000, 1);
  const track = LocalAudioTrack.createAudioTrack(name, source);
  const options = new TrackPublishOptions();
  options.source = TrackSource.SOURCE_MICROPHONE;
  const publication = await to.localParticipant!.publishTrack(track, options);
  let stopped = false;
  let reader: ReadableStreamDefaultReader<AudioFrame> | undefined;
  const pump = async (remote: RemoteTrack) => {
    reader = new AudioStream(remote, { sampleRate: 48_000, numChannels: 1 }).getReader();
    while (!stopped) {
      const { value, done } = await reader.read();
      if (done) break;
      await source.captureFrame(value);
    }
  };
  const existing = [...(from.remoteParticipants.get(identity)?.trackPublications.values() ?? [])].find((p) => p.kind === TrackKind.KIND_AUDIO && p.track);
  const onSubscribed = (remote: RemoteTrack, _pub: RemoteTrackPublication, p: RemoteParticipant) => {
    if (p.identity !== identity || remote.kind !== TrackKind.KIND_AUDIO || reader) return;
    void pump(remote).catch(() => undefined);
  };
  if (existing?.track) void pump(existing.track as RemoteTrack).catch(() => undefined);
  else from.on(RoomEvent.TrackSubscribed, onSubscribed);
  return async () => {
    stopped = true;
    from.off(RoomEvent.TrackSubscribed, onSubscribed);
    await reader?.cancel().catch(() => undefined);
    if (publication.sid) await to.localParticipant?.unpublishTrack(publication.sid).catch(() => undefined);
    await source.close().catch(() => undefined);
  };
}

/** Dials staff into the consultation room, briefs them, waits for their key, and merges on a 1. */
async function consultStaff(deps: StaffTransferDeps, beforeMerge: () => Promise<void>): Promise<Consultation> {
  const { settings, livekit, meta, callerRoom, log } = deps;
  const ids = { workflowId: meta.workflowId, attempt: meta.attempt };
  const http = livekit.url.replace(/^ws/, 'http');
  const rooms = new RoomServiceClient(http, livekit.apiKey, livekit.apiSecret);
  const callerRoomName = callerRoom.name!;
  const consultRoom = `${callerRoomName}-staff`;
  const deleteConsultRoom = () => rooms.deleteRoom(consultRoom).catch(() => undefined);

  // The patient may hang up while on hold: the dial and the briefing stop (deleting the room ends staff's leg).
  let patientLeft!: () => void;
  const patientGone = new Promise<'patient-hung-up'>((resolve) => (patientLeft = () => resolve('patient-hung-up')));
  const onCallerLeft = (p: RemoteParticipant) => {
    if (p.identity === SIP_PARTICIPANT_IDENTITY) patientLeft();
  };
  callerRoom.on(RoomEvent.ParticipantDisconnected, onCallerLeft);
  if (!callerRoom.remoteParticipants.has(SIP_PARTICIPANT_IDENTITY)) patientLeft();

  const room = new Room();
  let briefingSession: voice.AgentSession | undefined;
  let merged = false;
  /** The trunk's channel held for staff's leg, released once the leg is down. */
  let line: { release(): Promise<void> } | undefined;
  const releaseLine = async () => {
    await line?.release().catch((err: unknown) => log('releasing the front desk\'s channel failed (its lease expires)', { ...ids, error: safeMessage(err) }));
    line = undefined;
  };
  try {
    // A short departure timeout: once the last leg leaves, the consultation room goes too.
    await rooms.createRoom({ name: consultRoom, emptyTimeout: 60, departureTimeout: 5 });
    const token = new AccessToken(livekit.apiKey, livekit.apiSecret, { identity: `agent-${meta.attempt}`, name: 'Appointment line' });
    token.kind = 'agent';
    token.addGrant({ roomJoin: true, room: consultRoom, canPublish: true, canSubscribe: true });
    await room.connect(livekit.url, await token.toJwt(), { autoSubscribe: true, dynacast: false });

    if (deps.trunkLine) {
      // The front desk's leg is a call on the trunk like any other: a channel and a call slot first.
      // The patient is on hold meanwhile; no channel within the ring time: the same fallbacks as no answer.
      const gone = new AbortController();
      void patientGone.then(() => gone.abort(new Error('the patient hung up')));
      const got = await deps.trunkLine(settings.ringSeconds * 1000, gone.signal).catch((err: unknown) => {
        if (gone.signal.aborted) return 'patient-hung-up' as const;
        log('no channel of the trunk could be taken for the front desk', { ...ids, error: safeMessage(err) });
        return undefined;
      });
      if (got === 'patient-hung-up') return { decision: got };
      if (!got) {
        log('no free channel of the trunk for the front desk within the ring time', ids);
        return { decision: 'no-answer' };
      }
      line = got;
    }
    const sip = new SipClient(http, livekit.apiKey, livekit.apiSecret);
    const dial = sip
      .createSipParticipant(settings.sipTrunkId, settings.staffNumber, consultRoom, {
        participantIdentity: STAFF_IDENTITY,
        participantName: 'Front desk',
        waitUntilAnswered: true,
        ringingTimeout: settings.ringSeconds,
        playDialtone: false,
        timeout: settings.ringSeconds + 10,
      })
      .then(
        () => 'answered' as const,
        (err: unknown) => {
          // A SIP failure or the ringing timeout: staff were not reached. Logged without the number.
          log('the front desk did not answer', { ...ids, error: safeMessage(err) });
          return 'no-answer' as const;
        },
      );
    const dialed = await Promise.race([dial, patientGone]);
    if (dialed !== 'answered') return { decision: dialed };

    // Staff answered: brief them, and listen for their key.
    let decide!: (d: 'accepted' | 'declined' | 'staff-hung-up') => void;
    const decided = new Promise<'accepted' | 'declined' | 'staff-hung-up'>((resolve) => (decide = resolve));
    room.on(RoomEvent.DtmfReceived, (_code: number, digit: string, p: RemoteParticipant) => {
      if (p.identity !== STAFF_IDENTITY) return;
      if (digit === '1') decide('accepted');
      else if (digit === '2') decide('declined');
    });
    room.on(RoomEvent.ParticipantDisconnected, (p: RemoteParticipant) => {
      if (p.identity === STAFF_IDENTITY) decide('staff-hung-up');
    });
    briefingSession = new voice.AgentSession({ vad: deps.vad, tts: deps.tts() });
    await briefingSession.start({
      agent: new voice.Agent({ instructions: 'Brief the front desk about the caller on hold.' }),
      room,
      // Staff answer with the keypad; their audio is not listened to.
      inputOptions: { participantIdentity: STAFF_IDENTITY, audioEnabled: false, closeOnDisconnect: false },
    });
    const text = briefing(meta);
    void (async () => {
      // Said twice if staff have not pressed a key by the end of the first.
      for (let i = 0; i < 2 && briefingSession; i += 1) {
        await briefingSession.say(text, { allowInterruptions: true, addToChatCtx: false }).waitForPlayout().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 2_000));
      }
    })();
    const timeout = new Promise<'no-decision'>((resolve) => setTimeout(() => resolve('no-decision'), settings.decideSeconds * 1000).unref());
    const decision = await Promise.race([decided, patientGone, timeout]);
    briefingSession.interrupt();
    if (decision !== 'accepted') {
      if (decision === 'declined' || decision === 'no-decision') {
        await briefingSession.say('Okay, the front desk will call them back. Goodbye.', { allowInterruptions: false, addToChatCtx: false }).waitForPlayout().catch(() => undefined);
      }
      if (decision === 'patient-hung-up') {
        await briefingSession.say('The caller has hung up. Goodbye.', { allowInterruptions: false, addToChatCtx: false }).waitForPlayout().catch(() => undefined);
      }
      return { decision };
    }
    await briefingSession.say('Connecting you now.', { allowInterruptions: false, addToChatCtx: false }).waitForPlayout().catch(() => undefined);
    await briefingSession.close().catch(() => undefined);
    briefingSession = undefined;
    await beforeMerge();
    // The two calls are joined by relaying each side's audio into the other's room (both ways).
    // livekit-server's MoveParticipant would join them without a relay, but only LiveKit Cloud
    // implements it (self-hosted livekit-server answers "not implemented"); so does the library's
    // WarmTransferTask, which relies on it.
    let bridge: Bridge;
    try {
      bridge = await Promise.all([
        relay(callerRoom, SIP_PARTICIPANT_IDENTITY, room, 'patient'),
        relay(room, STAFF_IDENTITY, callerRoom, 'front-desk'),
      ]).then((stops) => ({ stop: () => Promise.all(stops.map((stop) => stop())).then(() => undefined) }));
    } catch (err) {
      log('joining the patient with the front desk failed', { ...ids, error: safeMessage(err) });
      return { decision: 'failed' };
    }
    merged = true;
    // The call goes on until either side hangs up; then the other is hung up too (a lone SIP leg
    // would otherwise stay up until its longest call).
    const callEnded = new Promise<void>((resolve) => {
      const staffLeft = (p: RemoteParticipant) => p.identity === STAFF_IDENTITY && resolve();
      const patientLeftCall = (p: RemoteParticipant) => p.identity === SIP_PARTICIPANT_IDENTITY && resolve();
      room.on(RoomEvent.ParticipantDisconnected, staffLeft);
      room.on(RoomEvent.Disconnected, () => resolve());
      callerRoom.on(RoomEvent.ParticipantDisconnected, patientLeftCall);
      callerRoom.on(RoomEvent.Disconnected, () => resolve());
      if (!room.remoteParticipants.has(STAFF_IDENTITY) || !callerRoom.remoteParticipants.has(SIP_PARTICIPANT_IDENTITY)) resolve();
    }).finally(async () => {
      await bridge.stop().catch(() => undefined);
      await deleteConsultRoom();
      await releaseLine();
      await room.disconnect().catch(() => undefined);
      await rooms.removeParticipant(callerRoomName, SIP_PARTICIPANT_IDENTITY).catch(() => undefined);
    });
    return { decision: 'accepted', callEnded };
  } catch (err) {
    log('warm transfer failed', { ...ids, error: safeMessage(err) });
    return { decision: 'failed' };
  } finally {
    callerRoom.off(RoomEvent.ParticipantDisconnected, onCallerLeft);
    await briefingSession?.close().catch(() => undefined);
    if (!merged) {
      // Ends staff's leg (ringing or answered) with the room.
      await deleteConsultRoom();
      await releaseLine();
      await room.disconnect().catch(() => undefined);
    }
  }
}
