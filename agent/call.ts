/**
 * One call, from the agent's side: wait for the patient's line to be answered, find out who
 * answered, then talk (greeting with the keypad menu, re-prompts, the outcome, goodbye) or leave a
 * voicemail, and hang up. The workflow deletes the room once the line is down.
 */
import { voice, type JobContext, type VAD } from '@livekit/agents';
import { RoomEvent, type AudioFrame, type RemoteParticipant, type Room } from '@livekit/rtc-node';
import { RoomServiceClient, SipClient } from 'livekit-server-sdk';
import { AGENT_READY_ATTRIBUTE, CallOutcome, SIP_PARTICIPANT_IDENTITY, type AgentJobMetadata } from '../src/contracts';
import { DEFAULT_GREETING_RULES, detectAnswerer, type Answerer } from './amd';
import type { AgentConfig } from './config';
import { ACK_WAIT_MS, ConfirmationAgent } from './confirmation-agent';
import { EspeakTTS, growingAudio, play, prerender } from './espeak-tts';
import { languageModel, offlineModels, speechToText, textToSpeech } from './models';
import type { OutcomeReporter } from './reporter';
import { QuietWatch, TRANSCRIPT_WAIT_MS } from './quiet';
import { KEYPAD, greeting, greetingBody, holdOn, lateReply, noAnswerGoodbye, opening, reprompt, voicemailMessage } from './script';
import { transferToStaff, trunkLineThrough } from './warm-transfer';

/** Longest voicemail message, in ms (calling rules). */
export const MAX_VOICEMAIL_MS = 60_000;

export interface CallDeps {
  config: AgentConfig;
  reporter: (meta: AgentJobMetadata) => OutcomeReporter;
  vad: VAD;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Work the job must finish before it exits (and before its Temporal connection closes): the
   * patient's answer, until acknowledged or audited as late; a warm transfer, until the patient's
   * call with the front desk ends. Called with a getter for each.
   */
  keepUntilDone?: (work: () => Promise<unknown> | undefined) => void;
  /** Told once per answered call: seconds from the answer (as the agent saw it) to the agent's first audio frame. */
  onFirstAudio?: (seconds: number) => void;
}

/** Parses the job metadata the dial activity put on the dispatch. */
export function parseJobMetadata(raw: string | undefined): AgentJobMetadata {
  const meta = JSON.parse(raw || '{}') as Partial<AgentJobMetadata>;
  for (const key of ['workflowId', 'attempt', 'practiceName', 'practiceCallbackNumber', 'appointmentStartLocal', 'patientTimeZone'] as const) {
    if (meta[key] === undefined || meta[key] === '') throw new Error(`job metadata: ${key} is missing`);
  }
  return meta as AgentJobMetadata;
}

/**
 * The callee's participant once its line is answered (`sip.callStatus` active), or undefined if it
 * leaves first. livekit-sip's leg of a call that fails or rings out leaves with its status still
 * `ringing`, never `hangup`: its departure is the end.
 */
export function waitForAnswer(room: Room, timeoutMs = 120_000): Promise<RemoteParticipant | undefined> {
  return new Promise((resolve) => {
    const check = () => {
      const p = room.remoteParticipants.get(SIP_PARTICIPANT_IDENTITY);
      if (p?.attributes['sip.callStatus'] === 'active') finish(p);
      else if (p?.attributes['sip.callStatus'] === 'hangup') finish(undefined);
    };
    const finish = (p: RemoteParticipant | undefined) => {
      clearTimeout(timer);
      room.off(RoomEvent.ParticipantConnected, check);
      room.off(RoomEvent.ParticipantAttributesChanged, check);
      room.off(RoomEvent.ParticipantDisconnected, left);
      room.off(RoomEvent.Disconnected, gone);
      resolve(p);
    };
    const gone = () => finish(undefined);
    const left = (p: RemoteParticipant) => {
      if (p.identity === SIP_PARTICIPANT_IDENTITY) finish(undefined);
    };
    const timer = setTimeout(gone, timeoutMs);
    room.on(RoomEvent.ParticipantConnected, check);
    room.on(RoomEvent.ParticipantAttributesChanged, check);
    room.on(RoomEvent.ParticipantDisconnected, left);
    room.on(RoomEvent.Disconnected, gone);
    check();
  });
}

export async function runCall(ctx: JobContext, deps: CallDeps): Promise<void> {
  const { config, log } = deps;
  const meta = parseJobMetadata(ctx.job.metadata);
  const ids = { workflowId: meta.workflowId, attempt: meta.attempt };
  const http = config.livekit.url.replace(/^ws/, 'http');
  const rooms = new RoomServiceClient(http, config.livekit.apiKey, config.livekit.apiSecret);
  const timeline = callTimeline();
  log('job started', ids);
  const offline = config.mode === 'offline';
  const espeak = offline ? new EspeakTTS({ bin: config.espeakBin }) : undefined;
  // Offline, the first words are rendered while the agent joins (dispatched at the dial, while the
  // phone rings): at the answer they leave at once, with no synthesis on the way. A failed
  // rendering leaves them to live synthesis (undefined).
  const openingAudio = espeak ? prerender(espeak, opening(meta)).catch(() => undefined) : Promise.resolve(undefined);
  const bodyAudio = openingAudio.then(() => (espeak ? prerender(espeak, greetingBody(meta)).catch(() => undefined) : undefined));
  await ctx.connect();
  timeline.mark('connected');
  const room = ctx.room;
  log('connected to the room', ids);

  // The call's room may be gone before this job joined (the dial failed at once: busy): joining then
  // creates a new, empty room of the same name. Nothing to wait for in it.
  const dispatchedSid = ctx.job.room?.sid;
  if (dispatchedSid && (await room.getSid()) !== dispatchedSid) {
    log('the call\'s room was gone before the agent joined', ids);
    await rooms.deleteRoom(room.name!).catch(() => undefined); // the empty one this join created
    ctx.shutdown('room gone');
    return;
  }

  const transfer = config.transferNumber
    ? async () => {
        const sip = new SipClient(http, config.livekit.apiKey, config.livekit.apiSecret);
        await sip.transferSipParticipant(room.name!, SIP_PARTICIPANT_IDENTITY, `tel:${config.transferNumber}`, { playDialtone: false });
      }
    : undefined;
  const agent = new ConfirmationAgent({ meta, reporter: deps.reporter(meta), transfer, warmTransfer: config.warmTransfer !== undefined });
  /** A voice like the call's, for the front desk's briefing (agent/warm-transfer.ts). */
  const tts = () => (offline ? new EspeakTTS({ bin: config.espeakBin }) : textToSpeech(config.models!.tts));
  // Offline: PocketSphinx and the intent matcher stand in for the cloud STT and LLM (same tools, same
  // replies); with spoken answers turned off, the keypad alone.
  const offlineEars = offline ? offlineModels(config, greeting(meta)) : undefined;
  const session = new voice.AgentSession({
    vad: deps.vad,
    tts: espeak ?? tts(),
    ...(offline ? (offlineEars ?? {}) : { stt: speechToText(config.models!.stt), llm: languageModel(config.models!.llm) }),
    // Speech that never became words is reported (the re-prompts stop waiting for it, see QuietWatch).
    transcriptionTimeout: TRANSCRIPT_WAIT_MS,
  });
  const quiet = new QuietWatch(session);
  const startSession = async () => {
    await session.start({
      agent,
      room,
      inputOptions: { participantIdentity: SIP_PARTICIPANT_IDENTITY, audioEnabled: !offline || offlineEars !== undefined, closeOnDisconnect: true },
    });
    // Offline the session starts before the answer: its ears stay shut until a person is decided
    // (a ringing line's early media, or the hello the greeting already answers, is no reply to act on).
    if (offlineEars) session.input.setAudioEnabled(false);
    timeline.mark('sessionStarted');
  };
  // Offline, the session starts before the answer: its audio track is published and the phone's
  // leg subscribed to it while the line rings (or, dispatched at the answer, while the agent has
  // nothing else to do). In cloud mode speech recognition would run on a ringing line: it waits.
  if (offline) await startSession();
  // Ready to speak at the answer: dispatched at the dial, the dial activity places the call now
  // (it waits for this a bounded while), so a phone answered at once does not wait for the join.
  await openingAudio;
  await room.localParticipant?.setAttributes({ [AGENT_READY_ATTRIBUTE]: 'true' }).catch(() => undefined);
  timeline.mark('ready');

  // Never speak to a ringing line. While it rings the job does nothing but wait: its ears are shut
  // (no voice activity or speech recognition runs), no detection, no synthesis beyond the opening.
  const cpuBefore = process.cpuUsage();
  const ringingFrom = Date.now();
  const callee = await waitForAnswer(room);
  /** What waiting for the answer cost this job process, for the log (the ringing should cost ~nothing). */
  const ringing = () => {
    const cpu = process.cpuUsage(cpuBefore);
    return { waitedMs: Date.now() - ringingFrom, cpuMs: Math.round((cpu.user + cpu.system) / 1000) };
  };
  if (!callee) {
    log('the line was never answered', { ...ids, ...ringing() });
    if (offline) await session.close().catch(() => undefined);
    ctx.shutdown('not answered');
    return;
  }
  timeline.mark('answerSeen');
  log('line answered', { ...ids, ...ringing() });
  const answeredAt = Date.now();
  // The first frame of the agent's audio sets its state to speaking: answer → first audio (metrics).
  const firstAudio = (ev: voice.AgentStateChangedEvent) => {
    if (ev.newState !== 'speaking') return;
    session.off(voice.AgentSessionEventTypes.AgentStateChanged, firstAudio);
    deps.onFirstAudio?.((Date.now() - answeredAt) / 1000);
  };
  session.on(voice.AgentSessionEventTypes.AgentStateChanged, firstAudio);
  // The patient's answer outlives the call: the job exits only once it is acknowledged or audited.
  deps.keepUntilDone?.(() =>
    agent.settling?.then((settled) =>
      log(settled.accepted ? 'outcome acknowledged' : 'outcome kept as a late outcome', { ...ids, outcome: settled.outcome }),
    ),
  );

  // The keypad works from the answer on (a key is a person's answer, whatever detection says).
  let outcomeReply: Promise<void> | undefined;
  let voicemail = false; // keys are no answer on the voicemail path
  const onKey = (_code: number, digit: string, p: RemoteParticipant) => {
    if (p.identity !== SIP_PARTICIPANT_IDENTITY || outcomeReply || voicemail) return;
    let outcome = KEYPAD[digit];
    if (outcome === undefined) return;
    if (outcome === CallOutcome.TRANSFERRED && !agent.canTransfer) outcome = CallOutcome.RESCHEDULE_REQUESTED; // a person will call back
    log('key pressed', { ...ids, digit });
    if (outcome === CallOutcome.TRANSFERRED && agent.warmTransfer) {
      agent.hear(outcome);
      outcomeReply = staff(true).then(() => undefined);
      return;
    }
    outcomeReply = (async () => {
      void agent.settle(outcome, digit === '3' || outcome !== KEYPAD[digit] ? { note: `keypad ${digit}` } : undefined);
      session.interrupt();
      // Usually acknowledged in tens of ms. If not (no worker right now), the patient hears that the
      // answer was taken, never silence or a re-prompt; the answer is kept until acknowledged or audited.
      let settled = await agent.settledWithin(1_500);
      if (!settled) {
        log('answer heard; waiting for the acknowledgement', { ...ids, outcome });
        await session.say(holdOn, { allowInterruptions: false }).waitForPlayout();
        settled = await agent.settledWithin(ACK_WAIT_MS);
      }
      await session.say(settled?.reply ?? lateReply(meta), { allowInterruptions: false }).waitForPlayout();
      if (settled?.outcome === CallOutcome.TRANSFERRED && settled.accepted) await agent.transfer();
    })();
  };
  room.on(RoomEvent.DtmfReceived, onKey);
  /** The warm transfer to the front desk (agent/warm-transfer.ts); it reports the outcome. */
  const staff = (announce: boolean) => {
    const settings = config.warmTransfer!;
    // With the confirmations' database, staff's leg takes a channel and a call slot of the trunk first.
    const trunkLine = config.database ? trunkLineThrough(config.database, settings.sipTrunkId, meta) : undefined;
    const run = transferToStaff({ settings, livekit: config.livekit, meta, callerRoom: room, session, agent, vad: deps.vad, tts, log, trunkLine }, { announce });
    // After the merge the patient's room is deleted (the job would end): the job stays until the
    // patient's call with the front desk is over, to hang up the one left on the line.
    deps.keepUntilDone?.(() => run);
    return run;
  };

  let answerer: Answerer;
  let greetingHandle: voice.SpeechHandle | undefined;
  if (offline) {
    // The opening at once, while the heuristic listens (Silero, on the callee's first words). A
    // likely hello, or a silent line, gets the rest of the greeting right after it; a machine gets
    // the opening stopped, then the voicemail path once its greeting and beep are over.
    const openingFrames = await openingAudio;
    // One speech for the opening and, once a person is likely, the rest of the greeting appended to
    // it: no second speech to schedule between them (a gap of up to a second on a loaded host).
    const growing = openingFrames ? growingAudio(openingFrames) : undefined;
    const openingHandle = growing
      ? session.say(opening(meta), { audio: growing.stream, allowInterruptions: true, addToChatCtx: false })
      : sayPrepared(session, opening(meta), undefined, { allowInterruptions: true, addToChatCtx: false });
    timeline.mark('openingQueued');
    let likely!: (a: Answerer) => void;
    const early = new Promise<Answerer>((resolve) => (likely = resolve));
    const decided = detectAnswerer(room, callee, deps.vad, DEFAULT_GREETING_RULES, (hint) => {
      log('answerer hint', { ...ids, hint });
      likely(hint === 'likely-human' ? 'human' : 'machine');
      if (hint === 'likely-machine') stopTalking(session, greetingHandle, openingHandle);
    });
    void decided.then(likely);
    let first: Answerer;
    let bodyFrames: AudioFrame[] | undefined;
    try {
      first = await early;
      timeline.mark('likely');
      bodyFrames = await bodyAudio;
      if (first !== 'machine' && !outcomeReply) {
        if (growing && bodyFrames && growing.append(bodyFrames)) greetingHandle = openingHandle;
        else greetingHandle = sayPrepared(session, greetingBody(meta), bodyFrames, { allowInterruptions: true });
        timeline.mark('greetingQueued');
      }
    } finally {
      growing?.end(); // whatever happens, the opening's speech ends
    }
    const heuristic = await decided;
    log('answering-machine heuristic', { ...ids, heuristic });
    // A key pressed: a person, whatever the heuristic heard.
    answerer = heuristic === 'machine' && outcomeReply ? 'human' : heuristic;
    if (answerer === 'machine') {
      voicemail = true;
      stopTalking(session, greetingHandle, openingHandle);
    } else if (!greetingHandle && !outcomeReply) {
      greetingHandle = sayPrepared(session, greetingBody(meta), bodyFrames, { allowInterruptions: true });
    }
  } else {
    await startSession();
    // With cloud models the library's voice.AMD (speech recognition + LLM) decides.
    const amd = new voice.AMD(session, { participantIdentity: SIP_PARTICIPANT_IDENTITY, waitUntilFinished: true });
    const prediction = await amd.execute().finally(() => amd.aclose());
    answerer = prediction.isMachine ? 'machine' : 'human';
    voicemail = answerer === 'machine';
    if (!voicemail && !outcomeReply) greetingHandle = session.say(greeting(meta), { allowInterruptions: true });
  }
  timeline.mark('decided');
  if (offlineEars && answerer !== 'machine') session.input.setAudioEnabled(true);
  log('answered', { ...ids, answerer });

  /** Hangs up the patient's line; the workflow's dial activity sees it and deletes the room. */
  const hangUp = async (why: string) => {
    log('hanging up', { ...ids, why });
    quiet.close();
    log('call timeline', { ...ids, ...timeline.report() });
    await rooms.removeParticipant(room.name!, SIP_PARTICIPANT_IDENTITY).catch(() => undefined);
    ctx.shutdown(why);
  };

  if (answerer === 'machine') {
    if (meta.voicemailAllowed) {
      const message = session.say(voicemailMessage(meta), { allowInterruptions: false, addToChatCtx: false });
      const cap = setTimeout(() => session.interrupt({ force: true }), MAX_VOICEMAIL_MS);
      await message.waitForPlayout();
      clearTimeout(cap);
      await agent.settle(CallOutcome.VOICEMAIL_LEFT);
    } else {
      // One message per appointment: the machine again gets none.
      await agent.settle(CallOutcome.VOICEMAIL_REACHED);
    }
    await hangUp('voicemail');
    return;
  }

  // A person (or a silent line): the greeting is under way; the keypad works since the answer.
  /** Resolves once the patient's answer is heard (keypad or a tool), acknowledged yet or not. */
  const answerHeard = new Promise<boolean>((resolve) => agent.onHeard(() => resolve(true)));
  /**
   * True once the patient's answer is heard (keypad or a tool), false after `ms` of quiet: counted
   * only while nobody speaks and no words of the patient's are still being recognized or answered.
   */
  const heardOrQuiet = async (ms: number) => {
    const stop = new AbortController();
    try {
      return await Promise.race([answerHeard, quiet.quietFor(ms, stop.signal).then(() => false)]);
    } finally {
      stop.abort();
    }
  };

  const greetingDone = (greetingHandle?.waitForPlayout() ?? Promise.resolve()).catch(() => undefined);
  let heard = await Promise.race([greetingDone.then(() => false), answerHeard]);
  // Silence or an unclear answer: re-prompt at most twice, then end with no outcome (the workflow
  // retries). An answer that was heard ends this at once, acknowledged yet or not.
  for (let n = 1; !heard && n <= 3; n += 1) {
    heard = await heardOrQuiet(config.answerTimeoutSeconds * 1000);
    if (heard) break;
    if (n === 3) break;
    log('no answer yet: asking again', { ...ids, reprompt: n });
    await session.say(reprompt(n), { allowInterruptions: true }).waitForPlayout().catch(() => undefined);
  }
  if (!heard) {
    await session.say(noAnswerGoodbye, { allowInterruptions: false }).waitForPlayout().catch(() => undefined);
    await hangUp('no answer from the patient');
    return;
  }
  if (outcomeReply) await outcomeReply;
  else {
    await waitUntilQuiet(session); // the LLM speaks the reply after its tool returns
    if (agent.heard?.outcome === CallOutcome.TRANSFERRED && agent.warmTransfer && !agent.settled) await staff(false);
    if (agent.settled?.outcome === CallOutcome.TRANSFERRED && agent.settled.accepted) await agent.transfer();
  }
  if (agent.settled?.outcome === CallOutcome.TRANSFERRED && agent.settled.accepted) {
    // The carrier took the call to the front desk: the leg is gone, the workflow deletes the room.
    ctx.shutdown('transferred');
    return;
  }
  await hangUp(`outcome ${agent.settled?.outcome}`);
}

/**
 * Says `text` with audio rendered beforehand ({@link prerender}); without it (the rendering
 * failed), with live synthesis: the words are the same. Not async on purpose: a speech handle is
 * a thenable, and returning it from an async function would wait for its playout.
 */
function sayPrepared(
  session: voice.AgentSession,
  text: string,
  frames: AudioFrame[] | undefined,
  options: { allowInterruptions: boolean; addToChatCtx?: boolean },
): voice.SpeechHandle {
  return session.say(text, { ...options, ...(frames ? { audio: play(frames) } : {}) });
}

/** Stops the agent mid-word (a machine is talking): what it was saying and what it had queued. */
function stopTalking(session: voice.AgentSession, ...handles: (voice.SpeechHandle | undefined)[]): void {
  for (const h of handles) if (h && !h.done()) h.interrupt(true);
  try {
    void session.interrupt({ force: true }).await.catch(() => undefined);
  } catch {
    // not running (the call ended)
  }
}

/** Waits until the agent has finished speaking (its state leaves "speaking"/"thinking"), at most 30 s. */
function waitUntilQuiet(session: voice.AgentSession): Promise<void> {
  return new Promise((resolve) => {
    const deadline = setTimeout(resolve, 30_000);
    const check = () => {
      if (session.agentState === 'listening' || session.agentState === 'idle') {
        clearTimeout(deadline);
        session.off(voice.AgentSessionEventTypes.AgentStateChanged, check);
        resolve();
      }
    };
    session.on(voice.AgentSessionEventTypes.AgentStateChanged, check);
    setTimeout(check, 500);
  });
}

/**
 * Where the time of a call goes, for `npm run bench:calls`: named moments in ms since the job
 * started, and the job's start on the wall clock (to align with the phone's clock). Ids and times
 * only, never what was said.
 */
function callTimeline() {
  const startedAt = Date.now();
  const marks: Record<string, number> = {};
  return {
    mark(name: string) {
      marks[name] ??= Date.now() - startedAt;
    },
    report: () => ({ jobStartedAt: startedAt, marks }),
  };
}
