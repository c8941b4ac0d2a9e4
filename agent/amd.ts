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
  /** Nobody speaks within this: a person waiting for the caller. Default 1200. */
  listenMs: number;
  /** This much speech before a real pause: a recorded greeting. Default 2200. */
  machineSpeechMs: number;
  /** A pause this long after short speech: a person who said hello and waits. Default 900. */
  humanPauseMs: number;
  /** Silence this long after a machine's greeting (and beep): it is recording. Default 1500. */
  greetingEndSilenceMs: number;
  /** Give up listening after this: decide with what was heard. Default 25 000. */
  maxMs: number;
}

export const DEFAULT_GREETING_RULES: GreetingRules = { listenMs: 1200, machineSpeechMs: 2200, humanPauseMs: 900, greetingEndSilenceMs: 1500, maxMs: 25_000 };

/**
 * The decision as a pure function of voice-activity observations (`atMs` since the answer,
 * `speaking` per inference), so it is tested without audio. Returns undefined while undecided.
 */
export function greetingClassifier(rules: GreetingRules = DEFAULT_GREETING_RULES): (atMs: number, speaking: boolean) => Answerer | undefined {
  let prev = 0;
  let speechMs = 0;
  let firstSpeech: number | undefined;
  let lastSpeech = 0;
  let machine = false;
  return (atMs, speaking) => {
    const dt = Math.max(0, atMs - prev);
    prev = atMs;
    if (speaking) {
      speechMs += dt;
      lastSpeech = atMs;
      firstSpeech ??= atMs;
    }
    if (firstSpeech === undefined) return atMs >= rules.listenMs ? 'silence' : undefined;
    if (speechMs >= rules.machineSpeechMs) machine = true;
    const quietFor = speaking ? 0 : atMs - lastSpeech;
    if (!machine && quietFor >= rules.humanPauseMs) return 'human';
    if (machine && quietFor >= rules.greetingEndSilenceMs) return 'machine';
    if (atMs >= rules.maxMs) return machine ? 'machine' : 'human';
    return undefined;
  };
}

/**
 * Listens to the callee's first words and says who answered. For a machine it returns once the
 * greeting and its beep are over, so a message left then is recorded from its first word.
 */
export async function detectAnswerer(room: Room, callee: RemoteParticipant, vad: VAD, rules: GreetingRules = DEFAULT_GREETING_RULES): Promise<Answerer> {
  const track = await audioTrackOf(room, callee, rules.listenMs);
  if (!track) return 'silence';
  const decide = greetingClassifier(rules);
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
      const verdict = decide(ev.timestamp, ev.speaking); // the detector's timestamps are ms of audio
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
