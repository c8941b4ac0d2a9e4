/**
 * Offline answering-machine detection: a voice-activity heuristic on what the callee says first,
 * with Silero's detector (its model ships in @livekit/agents-plugin-silero). People answer with a
 * short "Hello?" and wait; machines talk on for seconds, then beep. With cloud models the library's
 * `voice.AMD` does this job.
 */
import { AudioStream, type RemoteParticipant, type RemoteTrackPublication, type Room, RoomEvent, TrackKind, type RemoteTrack } from '@livekit/rtc-node';
import { VADEventType, type VAD } from '@livekit/agents';

/** What answered. `silence`: nobody spoke within the listening window (a person waiting for us). */
export type Answerer = 'human' | 'machine' | 'silence';

/** Thresholds of the heuristic (ms). */
export interface GreetingRules {
  /**
   * Nobody speaks within this: a person waiting for the caller. Default 2000: counted from the
   * answer now (the agent is listening from the first moment), where it used to start half a second
   * or more later; the opening plays meanwhile, so a longer window costs no silence.
   */
  listenMs: number;
  /** This much speech before a real pause: a recorded greeting. Default 2200. */
  machineSpeechMs: number;
  /** A pause this long after short speech: a person who said hello and waits. Default 900. */
  humanPauseMs: number;
  /**
   * Silence this long after a machine's greeting (and beep): it is recording. Default 2000: the
   * detector's state ends ~550 ms after the last word, and a beep (no speech) can last a second.
   */
  greetingEndSilenceMs: number;
  /** Give up listening after this: decide with what was heard. Default 25 000. */
  maxMs: number;
  /**
   * A raw pause this long after a short first utterance: most likely a person who said "Hello?" —
   * the agent goes on speaking at once, while the decision above still stands. Default 250.
   */
  quickPauseMs: number;
  /** Only a first utterance at most this long (raw speech) counts as a likely hello. Default 1500. */
  quickSpeechMs: number;
}

export const DEFAULT_GREETING_RULES: GreetingRules = {
  listenMs: 2000,
  machineSpeechMs: 2200,
  humanPauseMs: 900,
  greetingEndSilenceMs: 2000,
  maxMs: 25_000,
  quickPauseMs: 250,
  quickSpeechMs: 1500,
};

/**
 * Early signs, before the decision: `likely-human` (a short first utterance, then a short pause:
 * the agent can answer a "Hello?" at once) and `likely-machine` (speech long enough for a recorded
 * greeting: the agent stops talking over it). Each comes at most once; the decision may still
 * overrule a `likely-human`, never a `likely-machine`.
 */
export type AnswererHint = 'likely-human' | 'likely-machine';

/** One reading of the tracker: the decision once made, and an early sign when one comes. */
export interface AnswererReading {
  verdict?: Answerer;
  hint?: AnswererHint;
}

/**
 * The decision and its early signs as a pure function of voice-activity observations (`atMs` of
 * audio since the answer; `speaking`, the detector's smoothed state, which stays on ~550 ms after
 * speech; `rawSpeaking`, this window's own speech probability over the threshold), so it is tested
 * without audio. The decision is exactly {@link greetingClassifier}'s.
 */
export function answererTracker(rules: GreetingRules = DEFAULT_GREETING_RULES): (atMs: number, speaking: boolean, rawSpeaking?: boolean) => AnswererReading {
  let prev = 0;
  let speechMs = 0;
  let rawSpeechMs = 0;
  let firstSpeech: number | undefined;
  let lastSpeech = 0;
  let lastRawSpeech = 0;
  let machine = false;
  let hinted: AnswererHint | undefined;
  const hint = (h: AnswererHint): AnswererHint | undefined => {
    if (hinted === h || hinted === 'likely-machine') return undefined;
    hinted = h;
    return h;
  };
  return (atMs, speaking, rawSpeaking = speaking) => {
    const dt = Math.max(0, atMs - prev);
    prev = atMs;
    if (speaking) {
      speechMs += dt;
      lastSpeech = atMs;
      firstSpeech ??= atMs;
    }
    if (rawSpeaking) {
      rawSpeechMs += dt;
      lastRawSpeech = atMs;
    }
    if (firstSpeech === undefined) return atMs >= rules.listenMs ? { verdict: 'silence' } : {};
    const becameMachine = !machine && speechMs >= rules.machineSpeechMs;
    if (becameMachine) machine = true;
    const quietFor = speaking ? 0 : atMs - lastSpeech;
    if (!machine && quietFor >= rules.humanPauseMs) return { verdict: 'human' };
    if (machine && quietFor >= rules.greetingEndSilenceMs) return { verdict: 'machine', hint: hint('likely-machine') };
    if (atMs >= rules.maxMs) return { verdict: machine ? 'machine' : 'human' };
    if (becameMachine) return { hint: hint('likely-machine') };
    // The smoothed state lags the end of speech by the detector's hangover: the raw pause is what
    // lets the agent answer a hello within a few hundred ms.
    if (!machine && !hinted && !rawSpeaking && rawSpeechMs > 0 && rawSpeechMs <= rules.quickSpeechMs && atMs - lastRawSpeech >= rules.quickPauseMs) {
      return { hint: hint('likely-human') };
    }
    return {};
  };
}

/**
 * The decision as a pure function of voice-activity observations (`atMs` since the answer,
 * `speaking` per inference), so it is tested without audio. Returns undefined while undecided.
 */
export function greetingClassifier(rules: GreetingRules = DEFAULT_GREETING_RULES): (atMs: number, speaking: boolean) => Answerer | undefined {
  const track = answererTracker(rules);
  return (atMs, speaking) => track(atMs, speaking).verdict;
}

/**
 * Listens to the callee's first words and says who answered. For a machine it returns once the
 * greeting and its beep are over, so a message left then is recorded from its first word.
 */
export async function detectAnswerer(
  room: Room,
  callee: RemoteParticipant,
  vad: VAD,
  rules: GreetingRules = DEFAULT_GREETING_RULES,
  onHint?: (hint: AnswererHint) => void,
): Promise<Answerer> {
  const track = await audioTrackOf(room, callee, rules.listenMs);
  if (!track) return 'silence';
  const decide = answererTracker(rules);
  // Silero's default activation threshold (the plugin does not expose its options): the raw,
  // unsmoothed speech state of each window.
  const threshold = 0.5;
  const stream = vad.stream();
  const audio = new AudioStream(track, { sampleRate: 16_000, numChannels: 1 });
  const reader = audio.getReader();
  let done = false;
  void (async () => {
    while (!done) {
      const { value, done: ended } = await reader.read();
      if (ended || done) break;
      stream.pushFrame(value);
    }
  })().catch(() => undefined); // releasing the reader below ends a pending read: not an error
  // Decisions run on audio time (the detector's clock), not the wall clock: on a loaded machine the
  // inferences lag, and a greeting must not pass for silence because they came late. The wall-clock
  // timer only covers a line that sends no audio at all.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Answerer>((resolve) => {
    timer = setTimeout(() => resolve('silence'), rules.maxMs + 5_000);
  });
  const inferred = (async (): Promise<Answerer> => {
    for await (const ev of stream) {
      if (ev.type !== VADEventType.INFERENCE_DONE) continue;
      // The detector's timestamps are ms of audio.
      const { verdict, hint } = decide(ev.timestamp, ev.speaking, ev.probability > threshold);
      if (hint) onHint?.(hint);
      if (verdict) return verdict;
    }
    return 'human';
  })();
  try {
    return await Promise.race([inferred, timeout]);
  } finally {
    clearTimeout(timer);
    done = true;
    reader.releaseLock();
    stream.close();
  }
}

/** The callee's audio track, once subscribed (or undefined after `waitMs`). */
function audioTrackOf(room: Room, callee: RemoteParticipant, waitMs: number): Promise<RemoteTrack | undefined> {
  for (const pub of callee.trackPublications.values()) {
    if (pub.kind === TrackKind.KIND_AUDIO && pub.track) return Promise.resolve(pub.track as RemoteTrack);
  }
  return new Promise((resolve) => {
    const onTrack = (track: RemoteTrack, _pub: RemoteTrackPublication, p: RemoteParticipant) => {
      if (p.identity !== callee.identity || track.kind !== TrackKind.KIND_AUDIO) return;
      room.off(RoomEvent.TrackSubscribed, onTrack);
      resolve(track);
    };
    room.on(RoomEvent.TrackSubscribed, onTrack);
    setTimeout(() => {
      room.off(RoomEvent.TrackSubscribed, onTrack);
      resolve(undefined);
    }, waitMs + 2_000);
  });
}
