/**
 * The production Telephony: LiveKit rooms, agent dispatch and `CreateSIPParticipant` over an
 * outbound SIP trunk. SIP failures are classified here, at the boundary, into the DialFailureTypes
 * the workflow branches on. Never logs a phone number; never places a call twice.
 */
import { liveKitError, safeMessage, UserError } from '../errors';
import { AgentDispatchClient, RoomServiceClient, ServerError, SipCallError, SipClient } from 'livekit-server-sdk';
import type { Logger } from 'pino';
import {
  AGENT_READY_ATTRIBUTE,
  CallCheckState,
  DialFailureType,
  SIP_PARTICIPANT_IDENTITY,
  type CallCheckResult,
  type DialInput,
  type DialResult,
} from '../contracts';
import { DialError, type AgentPresence, type Telephony } from '../ports';

/** `ParticipantInfo.Kind.AGENT` in LiveKit's protocol. */
const PARTICIPANT_KIND_AGENT = 4;
/** `ParticipantInfo.Kind.SIP` in LiveKit's protocol. */
const PARTICIPANT_KIND_SIP = 3;
/** Extra client-side wait beyond the ringing timeout before a dial counts as ambiguous, in seconds. */
const DIAL_TIMEOUT_MARGIN_SECONDS = 20;
/** A room made by prepareCall is used as is for this long (livekit-server deletes an empty room after its 60-s emptyTimeout). */
const PREPARED_ROOM_FRESH_MS = 30_000;

/**
 * Notes that `room` was seen now in a per-process map of rooms; entries older than `maxAgeMs` (dials
 * that never came, calls long over) are dropped once the map holds 1,000, so it stays bounded.
 */
function noteRoom(map: Map<string, number>, room: string, maxAgeMs: number): void {
  const now = Date.now();
  if (map.size > 1_000) for (const [r, at] of map) if (now - at > maxAgeMs) map.delete(r);
  map.set(room, now);
}
/** `JobStatus.JS_RUNNING` in LiveKit's protocol (`JS_PENDING` = 0 below it; ended jobs above). */
const JOB_STATUS_RUNNING = 1;

export interface LiveKitTelephonyConfig {
  /** LiveKit server URL (ws(s):// or http(s)://). */
  url: string;
  apiKey: string;
  apiSecret: string;
  /** Outbound SIP trunk id (`ST_…`). */
  sipTrunkId: string;
  /** Agent dispatched to each call's room. */
  agentName: string;
  /**
   * When the agent is dispatched to a call's room. `dial` (default): just before the INVITE, so the
   * agent is in the room, its opening ready, when the line is answered (first words in about 100 ms
   * after the answer); every dialed call then holds a job process while it rings — the channel gate
   * counts it against the agents' capacity, and the job does no speech work until the answer and
   * leaves when the call fails or rings out. `answer`: once the callee answers, so a busy, declined
   * or unanswered call costs no agent job — but the patient hears nothing until the job has started
   * and joined the room (0.5–1 s here, more on a busy host).
   */
  agentDispatch?: AgentDispatchTime;
  /**
   * A dispatch with no job yet is still being offered to the agent workers for this long, in ms
   * (livekit-server asks them one by one; ours answer at once). Default 3 000.
   */
  dispatchOfferMs?: number;
  /** A dispatch whose job was accepted has this long for the agent to join the room, in ms. Default 15 000. */
  agentJoinMs?: number;
  /**
   * Dispatched at the dial: the INVITE waits at most this long for the agent to be ready in the
   * room (its {@link AGENT_READY_ATTRIBUTE}), in ms — a phone answered at once would otherwise wait
   * for the agent's job to start and join (0.3–1.5 s on a loaded host). The call is placed anyway
   * after it (the call's watcher then sees the agent come, or dispatches it again). Default 3 000; 0: no wait.
   */
  agentReadyMs?: number;
  logger?: Logger;
}

/** When the agent is dispatched to a call's room: see {@link LiveKitTelephonyConfig.agentDispatch}. */
export type AgentDispatchTime = 'answer' | 'dial';

/** Maps a failed `createSipParticipant` to a {@link DialError}, per livekit-sip's observed responses. */
export function classifyDialError(err: unknown): DialError {
  if (err instanceof ServerError) {
    const sip = SipCallError.fromServerError(err);
    const code = sip.sipStatusCode;
    const reason = sip.sipStatus;
    // The server's text may name the number or the trunk's host: only its safe part is kept.
    const message = safeMessage(err);
    const typed = (type: DialFailureType) => new DialError(type, message, code, reason);
    if (code !== undefined) {
      if (code === 486 || code === 600) return typed(DialFailureType.BUSY);
      if (code === 480 || code === 408 || code === 487) return typed(DialFailureType.NO_ANSWER);
      if (code === 603) return typed(DialFailureType.DECLINED);
      if (code === 404 || code === 484 || code === 410 || code === 604) return typed(DialFailureType.INVALID_NUMBER);
      return typed(DialFailureType.TRUNK_ERROR);
    }
    // No SIP status: the ringing timeout (408 "sip request timed out"), or rarely 412 "context deadline exceeded".
    if (err.status === 408 || /sip request timed out|context deadline exceeded/i.test(err.message)) {
      return new DialError(DialFailureType.NO_ANSWER, message, 408, 'Request Timeout');
    }
    // livekit-sip's CPU guard refuses before any INVITE is sent: certainly no call, safe to retry.
    // Only this exact refusal: any other 5xx may come after the request reached the phone network.
    if (err.status === 503 && err.code === 'unavailable' && /\bcpu exhausted\b/i.test(err.message)) {
      return new DialError(DialFailureType.NOT_PLACED, message);
    }
    if (err.status >= 500) return new DialError(DialFailureType.UNKNOWN, message);
    return new DialError(DialFailureType.TRUNK_ERROR, message);
  }
  // No response: the request may have reached the server and placed the call. Look, don't redial.
  return new DialError(DialFailureType.UNKNOWN, `no response to the dial request: ${safeMessage(err)}`);
}

/** The LiveKit Telephony, plus a start-up check of its configuration. */
export interface LiveKitTelephony extends Telephony {
  /** Fails with a message naming `LIVEKIT_SIP_TRUNK_ID` when the outbound trunk does not exist. Never prints credentials. */
  verifyTrunk(): Promise<void>;
  ensureAgent(input: Parameters<NonNullable<Telephony['ensureAgent']>>[0]): Promise<AgentPresence>;
}

/** Creates the LiveKit-backed Telephony. */
export function createLiveKitTelephony(config: LiveKitTelephonyConfig): LiveKitTelephony {
  const host = config.url.replace(/^ws/, 'http');
  // Failover off: a re-sent CreateSIPParticipant would be a second call.
  const rooms = new RoomServiceClient(host, config.apiKey, config.apiSecret, { failover: false, requestTimeout: 10 });
  const sip = new SipClient(host, config.apiKey, config.apiSecret, { failover: false });
  const dispatches = new AgentDispatchClient(host, config.apiKey, config.apiSecret);
  const log = config.logger;
  const offerMs = config.dispatchOfferMs ?? 3_000;
  const joinMs = config.agentJoinMs ?? 15_000;
  const readyMs = config.agentReadyMs ?? 3_000;
  /** One dispatch of the agent to the call's room; a failure is left to the call's watcher. */
  const dispatchAgent = (input: DialInput) =>
    dispatches
      .createDispatch(input.roomName, config.agentName, { metadata: JSON.stringify(input.agentMetadata) })
      .then(() => undefined)
      .catch((err: unknown) => log?.warn({ room: input.roomName, error: safeMessage(err) }, 'dispatching the agent failed; the call watcher dispatches it again'));

  /**
   * Whether a failed room request failed because the room is gone. livekit-server answers 404 for a
   * room it never had, but 500 "could not find object" for one being deleted at that moment (a
   * hang-up racing the patient's), and such a room may still be listed for a moment: anything else
   * is settled by asking whether the room exists, a few times over about a second.
   */
  async function roomIsGone(err: unknown, roomName: string): Promise<boolean> {
    if (err instanceof ServerError && err.status === 404) return true;
    const deleting = err instanceof ServerError && /could not find object/i.test(err.message);
    for (let i = 0; i < (deleting ? 6 : 1); i += 1) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 200));
      try {
        if ((await rooms.listRooms([roomName])).length === 0) return true;
      } catch {
        return false;
      }
    }
    return false;
  }

  /**
   * Waits until an agent in the room says it is ready, at most `readyMs`; whether it did. Polled:
   * a room listing is a local request, and the wait is about the job's start and join (~0.1–1.5 s).
   * Half-way, a dispatch that still has no job (livekit-server offered it to no worker: all were
   * full, and it does not offer it again) is replaced, once — no job, so never a second one.
   */
  async function agentReady(input: DialInput): Promise<boolean> {
    const until = Date.now() + readyMs;
    let recheckAt: number | undefined = Date.now() + readyMs / 2;
    for (;;) {
      const participants = await rooms.listParticipants(input.roomName).catch(() => []);
      const agents = participants.filter((p) => p.kind === PARTICIPANT_KIND_AGENT);
      if (agents.some((p) => p.attributes?.[AGENT_READY_ATTRIBUTE] === 'true')) return true;
      if (Date.now() >= until) return false;
      if (recheckAt !== undefined && Date.now() >= recheckAt && agents.length === 0) {
        recheckAt = undefined;
        const ours = (await dispatches.listDispatch(input.roomName).catch(() => [])).filter((d) => d.agentName === config.agentName);
        if (ours.length > 0 && ours.every((d) => (d.state?.jobs ?? []).length === 0)) {
          for (const d of ours) await dispatches.deleteDispatch(d.id, input.roomName).catch(() => undefined);
          log?.info({ room: input.roomName }, 'no agent worker took the call\'s dispatch; dispatching it again before the INVITE');
          await dispatchAgent(input);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  const dispatchAtDial = (config.agentDispatch ?? 'dial') === 'dial';
  /** Rooms whose agent was dispatched (at the dial) by this process, and when. */
  const agentAsked = new Map<string, number>();
  /**
   * Dispatched at the dial: the agent is dispatched once per room — a dial refused before any INVITE
   * and tried again, or a dispatch made by an earlier try of the activity, is not made twice — and
   * the INVITE waits (bounded) until it is ready in the room.
   */
  async function agentBeforeInvite(input: DialInput): Promise<void> {
    if (!dispatchAtDial) return;
    if (!agentAsked.has(input.roomName)) {
      noteRoom(agentAsked, input.roomName, 10 * 60_000);
      const earlier = (await dispatches.listDispatch(input.roomName).catch(() => [])).some((d) => d.agentName === config.agentName);
      if (!earlier) await dispatchAgent(input);
    }
    // The phone may answer within half a second of the INVITE: the agent is made ready first.
    const waitedFrom = Date.now();
    if (readyMs > 0 && !(await agentReady(input))) {
      log?.info({ room: input.roomName, waitedMs: Date.now() - waitedFrom }, 'the agent is not ready in the room yet; placing the call anyway');
    }
  }

  /** Rooms made (and agents readied) by prepareCall, and when (dropped at the dial). */
  const prepared = new Map<string, number>();
  const createCallRoom = (name: string) => rooms.createRoom({ name, emptyTimeout: 60, departureTimeout: 10, maxParticipants: 4 });
  return {
    async verifyTrunk(): Promise<void> {
      let trunks;
      try {
        // The listing holds the trunk's password in plaintext: read the id only, print nothing of it.
        trunks = await sip.listSipOutboundTrunk({ trunkIds: [config.sipTrunkId] });
      } catch (err) {
        // Names the setting to fix (a refused secret is not the URL's fault); never the server's text, which may echo the token.
        throw liveKitError(err, config.url, 'listing SIP trunks');
      }
      if (!trunks.some((t) => t?.sipTrunkId === config.sipTrunkId)) {
        throw new UserError(`LIVEKIT_SIP_TRUNK_ID: outbound trunk "${config.sipTrunkId}" does not exist on ${config.url}; create it first (see the README) or fix the id.`);
      }
    },

    async prepareCall(input: DialInput): Promise<void> {
      await createCallRoom(input.roomName);
      // When the room was made (its empty timeout runs from then); rooms prepared for dials that
      // never came (cancelled before the INVITE) are forgotten.
      noteRoom(prepared, input.roomName, PREPARED_ROOM_FRESH_MS);
      // Before the call slot too: the wait for the agent must not sit between the slot and the INVITE.
      await agentBeforeInvite(input);
    },

    async dial(input: DialInput): Promise<DialResult> {
      // The room and, dispatched at the dial, the ready agent come from prepareCall, before the call
      // slot: between the slot and the INVITE there is only CreateSIPParticipant. A warm job process
      // is ready for each call the gate lets ring (agent capacity), whichever the dispatch time: at
      // the dial it waits in the room; at the answer, busy, declined and rung-out calls cost no agent job.
      const preparedAt = prepared.get(input.roomName);
      prepared.delete(input.roomName);
      if (preparedAt === undefined || Date.now() - preparedAt > PREPARED_ROOM_FRESH_MS) {
        await createCallRoom(input.roomName);
        // Not prepared (or long ago): the agent is made ready here (dispatched once per room).
        await agentBeforeInvite(input);
      }
      let participant;
      try {
        participant = await sip.createSipParticipant(config.sipTrunkId, input.phone, input.roomName, {
          participantIdentity: SIP_PARTICIPANT_IDENTITY,
          participantName: 'Patient',
          waitUntilAnswered: true,
          ringingTimeout: input.ringingTimeoutSeconds,
          maxCallDuration: input.maxCallDurationSeconds,
          playDialtone: false,
          timeout: input.ringingTimeoutSeconds + DIAL_TIMEOUT_MARGIN_SECONDS,
        });
      } catch (err) {
        throw classifyDialError(err);
      }
      const answeredAt = new Date().toISOString();
      log?.debug({ room: input.roomName, sipCallId: participant.sipCallId }, 'SIP participant answered');
      // The patient answered: the agent now (one dispatch; the call's watcher makes sure it comes).
      if (!dispatchAtDial) await dispatchAgent(input);
      return { answered: true, participantIdentity: participant.participantIdentity, sipCallId: participant.sipCallId, answeredAt };
    },

    async checkCall(roomName: string): Promise<CallCheckResult> {
      let participants;
      try {
        participants = await rooms.listParticipants(roomName);
      } catch (err) {
        if (await roomIsGone(err, roomName)) return { state: CallCheckState.NOT_CONNECTED };
        throw err;
      }
      const callee = participants.find((p) => p.kind === PARTICIPANT_KIND_SIP && p.identity === SIP_PARTICIPANT_IDENTITY);
      const callStatus = callee?.attributes?.['sip.callStatus'];
      const joinedMs = callee ? Number(callee.joinedAtMs) || Number(callee.joinedAt) * 1000 : 0;
      const joinedAt = joinedMs > 0 ? new Date(joinedMs).toISOString() : undefined;
      if (callStatus === 'active') return { state: CallCheckState.ANSWERED, callStatus, ...(joinedAt && { joinedAt }) };
      return { state: CallCheckState.NOT_CONNECTED, callStatus, ...(joinedAt && { joinedAt }) };
    },

    async ensureAgent(input): Promise<AgentPresence> {
      const participants = await rooms.listParticipants(input.roomName);
      if (participants.some((p) => p.kind === PARTICIPANT_KIND_AGENT)) return 'present';
      const now = Date.now();
      const ours = (await dispatches.listDispatch(input.roomName)).filter((d) => d.agentName === config.agentName);
      const onItsWay = ours.some((d) => {
        const ageMs = now - Number(d.state?.createdAt ?? 0n) / 1e6;
        const jobs = d.state?.jobs ?? [];
        // No job yet: still offered to the workers. A job not ended: its process is joining.
        if (jobs.length === 0) return ageMs < offerMs;
        return jobs.some((j) => (j.state?.status ?? 0) <= JOB_STATUS_RUNNING) && ageMs < joinMs;
      });
      if (onItsWay) return 'on-its-way';
      // Every earlier dispatch was refused by all workers, or its job ended without an agent: replace it.
      for (const d of ours) await dispatches.deleteDispatch(d.id, input.roomName).catch(() => undefined);
      await dispatches.createDispatch(input.roomName, config.agentName, { metadata: JSON.stringify(input.agentMetadata) });
      return 'dispatched';
    },

    async hangUp(roomName: string): Promise<void> {
      try {
        await rooms.deleteRoom(roomName);
      } catch (err) {
        // Hanging up is idempotent: the room may be gone, or going, already.
        if (await roomIsGone(err, roomName)) return;
        throw err;
      }
    },
  };
}
