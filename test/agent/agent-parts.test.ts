/**
 * The agent's parts that need no call: the answering-machine heuristic, the words it says, its
 * configuration, and the offline text-to-speech (the real espeak-ng).
 */
import { initializeLogger, voice } from '@livekit/agents';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { answererTracker, greetingClassifier, type AnswererHint } from '../../agent/amd';
import { loadAgentConfig } from '../../agent/config';
import { QuietWatch, TRANSCRIPT_WAIT_MS } from '../../agent/quiet';
import { EspeakTTS, growingAudio, play, prerender } from '../../agent/espeak-tts';
import { KEYPAD, greeting, greetingBody, opening, sayNumber, sayWhen, voicemailMessage } from '../../agent/script';
import { briefing } from '../../agent/warm-transfer';
import { CallOutcome, type AgentJobMetadata } from '../../src/contracts';
import { ConfigError } from '../../src/config';
import { resolveTool } from '../../src/dev/tools';

/** Feeds the classifier one inference per 32 ms (Silero's window) from a speech pattern. */
function classify(speakingAt: (ms: number) => boolean, untilMs = 30_000) {
  const decide = greetingClassifier();
  for (let t = 32; t <= untilMs; t += 32) {
    const verdict = decide(t, speakingAt(t));
    if (verdict) return { verdict, at: t };
  }
  return { verdict: undefined, at: untilMs };
}

describe('answering-machine heuristic', () => {
  it('a person: a short "Hello?", then waiting', () => {
    expect(classify((t) => t > 300 && t < 900)).toMatchObject({ verdict: 'human' });
  });

  it('a person who says a little more ("Hello, this is Maria") is still a person', () => {
    expect(classify((t) => t > 200 && t < 1_900)).toMatchObject({ verdict: 'human' });
  });

  it('a silent line: nobody speaks within 2 s (the listening window, counted from the answer while the opening plays)', () => {
    expect(classify(() => false)).toEqual({ verdict: 'silence', at: 2_016 });
  });

  it('a person whose "Hello?" starts 1.3 s after the answer is a person, not a silent line', () => {
    expect(classify((t) => t > 1_300 && t < 1_900)).toMatchObject({ verdict: 'human' });
  });

  it('a machine: seconds of greeting with short pauses; decided only after the greeting and beep are over', () => {
    // 7 s of greeting in sentences with 300 ms pauses, then the beep (not speech) and silence.
    const speaking = (t: number) => t > 300 && t < 7_300 && t % 2_000 > 300;
    const { verdict, at } = classify(speaking);
    expect(verdict).toBe('machine');
    expect(at).toBeGreaterThanOrEqual(7_300 + 1_500);
  });
});

/**
 * Feeds the tracker one inference per 32 ms from a raw speech pattern, with the detector's smoothed
 * state as Silero keeps it (on 550 ms past the last speech): the early hints and the verdict, with times.
 */
function track(rawAt: (ms: number) => boolean, untilMs = 30_000) {
  const next = answererTracker();
  const hints: { hint: AnswererHint; at: number }[] = [];
  let lastRaw = -Infinity;
  for (let t = 32; t <= untilMs; t += 32) {
    const raw = rawAt(t);
    if (raw) lastRaw = t;
    const { verdict, hint } = next(t, t - lastRaw <= 550, raw);
    if (hint) hints.push({ hint, at: t });
    if (verdict) return { verdict, at: t, hints };
  }
  return { verdict: undefined, at: untilMs, hints };
}

describe('answering-machine heuristic: early signs, so the agent talks at once without talking over a machine', () => {
  it('a "Hello?" is a likely person within 300 ms of its end, long before the decision', () => {
    const { verdict, at, hints } = track((t) => t > 1_000 && t < 1_640);
    expect(hints).toHaveLength(1);
    expect(hints[0]!.hint).toBe('likely-human');
    expect(hints[0]!.at - 1_640).toBeLessThanOrEqual(300);
    expect(verdict).toBe('human');
    expect(at).toBeGreaterThan(hints[0]!.at + 1_000); // the decision itself is as before
  });

  it('a machine: a likely machine once its greeting runs long (to stop the opening), the decision after the beep', () => {
    // "Hi, you have reached the Rivera family." and two more sentences, 300 ms pauses, then the beep and silence.
    const { verdict, at, hints } = track((t) => t > 300 && t < 7_300 && t % 2_000 > 300);
    expect(hints.map((h) => h.hint)).toEqual(['likely-machine']);
    expect(hints[0]!.at).toBeLessThan(3_500);
    expect(verdict).toBe('machine');
    expect(at).toBeGreaterThanOrEqual(7_300 + 1_500);
  });

  it('a machine whose first phrase is short and pauses: a likely person at first, overruled (likely machine, then machine)', () => {
    const { verdict, hints } = track((t) => (t > 300 && t < 1_200) || (t > 1_700 && t < 7_000));
    expect(hints.map((h) => h.hint)).toEqual(['likely-human', 'likely-machine']);
    expect(verdict).toBe('machine');
  });

  it('a silent line: no hint, silence after 2 s', () => {
    expect(track(() => false)).toEqual({ verdict: 'silence', at: 2_016, hints: [] });
  });

  it('the decisions are exactly the classifier\'s', () => {
    const patterns = [(t: number) => t > 300 && t < 900, (t: number) => t > 200 && t < 1_900, () => false, (t: number) => t > 300 && t < 7_300 && t % 2_000 > 300];
    for (const p of patterns) {
      const decide = greetingClassifier();
      let classified;
      for (let t = 32; t <= 30_000 && !classified; t += 32) classified = decide(t, p(t));
      const next = answererTracker();
      let tracked;
      for (let t = 32; t <= 30_000 && !tracked; t += 32) tracked = next(t, p(t)).verdict;
      expect(tracked).toBe(classified);
    }
  });
});

const meta: AgentJobMetadata = {
  workflowId: 'confirm-bright-smiles-A1',
  attempt: 1,
  practiceName: 'Bright Smiles Dental',
  practiceCallbackNumber: '+13125550100',
  provider: 'Dr. Rivera',
  appointmentStartLocal: '2026-11-26T09:30:00.000-06:00',
  patientTimeZone: 'America/Chicago',
  reason: 'root canal follow-up',
  patientFirstName: 'Jordan',
  voicemailAllowed: true,
};

describe('what the agent says', () => {
  it('the greeting names the practice and the callback number first, then the appointment and the keypad menu', () => {
    const words = greeting(meta);
    expect(words.indexOf('Bright Smiles Dental')).toBeLessThan(words.indexOf('appointment'));
    expect(words).toContain(sayNumber(meta.practiceCallbackNumber));
    expect(words).toContain('Thursday, November 26 at 9:30 AM');
    for (const key of Object.keys(KEYPAD)) expect(words).toMatch(new RegExp(`(Press|press|or) ${key}\\b|${key} to`));
  });

  it('the opening, said before anyone is known to listen: the practice, nothing of the patient', () => {
    const words = opening(meta);
    expect(words).toContain('Bright Smiles Dental');
    for (const secret of [meta.patientFirstName!, meta.provider, meta.reason, 'Thursday', 'November', '9:30']) expect(words).not.toContain(secret);
    expect(greeting(meta).startsWith(words)).toBe(true);
    expect(greeting(meta)).toContain(greetingBody(meta));
  });

  it('the rest of the greeting gives the callback number before the patient\'s name', () => {
    const body = greetingBody(meta);
    expect(body.indexOf(sayNumber(meta.practiceCallbackNumber))).toBeLessThan(body.indexOf('Jordan'));
    expect(body.indexOf('Jordan')).toBeGreaterThan(0);
  });

  it('the keypad: 1 confirm, 2 cancel, 3 reschedule, 0 staff, 9 opt out', () => {
    expect(KEYPAD).toEqual({
      '1': CallOutcome.CONFIRMED,
      '2': CallOutcome.CANCELLED,
      '3': CallOutcome.RESCHEDULE_REQUESTED,
      '0': CallOutcome.TRANSFERRED,
      '9': CallOutcome.OPTED_OUT,
    });
  });

  it('the voicemail: practice, callback number, how to opt out; no health details beyond the time', () => {
    const words = voicemailMessage(meta);
    expect(words).toContain('Bright Smiles Dental');
    expect(words).toContain(sayNumber(meta.practiceCallbackNumber));
    expect(words).toMatch(/stop these reminder calls/);
    expect(words).not.toContain(meta.reason);
    expect(words).not.toContain(meta.provider);
    expect(words).not.toContain(meta.patientFirstName);
  });

  it('numbers are read in groups, digit by digit', () => {
    expect(sayNumber('+13125550100')).toBe('3 1 2, 5 5 5, 0 1 0 0');
  });
});

describe('agent configuration', () => {
  // The key is checked like the worker's: 32 bytes.
  const base = { LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's', PAYLOAD_ENCRYPTION_KEY: 'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=' };

  it('offline mode without model settings; cloud mode with all three', () => {
    expect(loadAgentConfig(base).mode).toBe('offline');
    const cloud = loadAgentConfig({ ...base, AGENT_STT: 'deepgram/nova-3', AGENT_LLM: 'openai/gpt-4.1-mini', AGENT_TTS: 'cartesia/sonic-2' });
    expect(cloud).toMatchObject({ mode: 'cloud', models: { stt: 'deepgram/nova-3', llm: 'openai/gpt-4.1-mini', tts: 'cartesia/sonic-2' } });
  });

  it('errors name every bad variable and never echo a secret', () => {
    let err: unknown;
    try {
      loadAgentConfig({ LIVEKIT_URL: 'ftp://x', LIVEKIT_API_SECRET: 'hunter2-secret', STAFF_TRANSFER_NUMBER: '555', AGENT_MAX_CALLS: '0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const name of ['LIVEKIT_URL', 'LIVEKIT_API_KEY', 'PAYLOAD_ENCRYPTION_KEY', 'STAFF_TRANSFER_NUMBER', 'AGENT_MAX_CALLS']) expect(message).toContain(name);
    expect(message).not.toContain('hunter2-secret');
  });

  it('warm transfer: the front desk number with the trunk it is dialed through; either wrong is named', () => {
    expect(loadAgentConfig(base).warmTransfer).toBeUndefined();
    const warm = loadAgentConfig({ ...base, STAFF_WARM_TRANSFER_NUMBER: '+13125550198', LIVEKIT_SIP_TRUNK_ID: 'ST_abc', STAFF_RING_SECONDS: '15' });
    expect(warm.warmTransfer).toEqual({ staffNumber: '+13125550198', sipTrunkId: 'ST_abc', ringSeconds: 15, decideSeconds: 30 });
    expect(() => loadAgentConfig({ ...base, STAFF_WARM_TRANSFER_NUMBER: '+13125550198' })).toThrow(/LIVEKIT_SIP_TRUNK_ID: required with STAFF_WARM_TRANSFER_NUMBER/);
    let message = '';
    try {
      loadAgentConfig({ ...base, STAFF_WARM_TRANSFER_NUMBER: '312-555-0198', LIVEKIT_SIP_TRUNK_ID: 'ST_abc', STAFF_RING_SECONDS: '2' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/STAFF_WARM_TRANSFER_NUMBER: must be an E.164 number/);
    expect(message).toMatch(/STAFF_RING_SECONDS: must be at least 5 seconds/);
    expect(message).not.toContain('312-555-0198');
  });

  it('half a cloud setup is an error, not a silent fallback', () => {
    expect(() => loadAgentConfig({ ...base, AGENT_LLM: 'openai/gpt-4.1-mini' })).toThrow(/AGENT_STT, AGENT_LLM, AGENT_TTS/);
  });
});

describe('offline text-to-speech (espeak-ng behind tts.TTS)', () => {
  it('synthesizes 20 ms frames of speech at 22.05 kHz', async () => {
    initializeLogger({ pretty: false, level: 'warn' });
    const tts = new EspeakTTS({ bin: resolveTool('espeakNg') });
    const frames = [];
    for await (const audio of tts.synthesize('Hello, this is Bright Smiles Dental calling.')) frames.push(audio.frame);
    expect(frames.length).toBeGreaterThan(50); // over a second of speech
    expect(frames.every((f) => f.sampleRate === 22_050 && f.samplesPerChannel === 441 && f.channels === 1)).toBe(true);
    const peak = Math.max(...frames.map((f) => Math.max(...Array.from(f.data, Math.abs))));
    expect(peak).toBeGreaterThan(3_000);
  });

  it('renders ahead of time, then plays the same frames (no synthesis at the answer)', async () => {
    initializeLogger({ pretty: false, level: 'warn' });
    const tts = new EspeakTTS({ bin: resolveTool('espeakNg') });
    const frames = await prerender(tts, opening(meta));
    expect(frames.length).toBeGreaterThan(50);
    const played = [];
    for await (const f of play(frames)) played.push(f);
    expect(played).toEqual(frames);
  });

  it('one speech for the opening and the rest of the greeting: frames appended while it plays, then ended', async () => {
    initializeLogger({ pretty: false, level: 'warn' });
    const tts = new EspeakTTS({ bin: resolveTool('espeakNg') });
    const [first, rest] = await Promise.all([prerender(tts, 'Hello.'), prerender(tts, 'Goodbye.')]);
    const speech = growingAudio(first);
    const reader = speech.stream.getReader();
    for (let i = 0; i < first.length; i += 1) expect((await reader.read()).value).toBe(first[i]);
    const pending = reader.read(); // waits: the speech goes on until it ends
    expect(speech.append(rest)).toBe(true);
    speech.end();
    expect((await pending).value).toBe(rest[0]);
    let n = 1;
    while (!(await reader.read()).done) n += 1;
    expect(n).toBe(rest.length);
    // Stopped (the reader cancels): nothing more is taken.
    const stopped = growingAudio(first);
    await stopped.stream.cancel();
    expect(stopped.append(rest)).toBe(false);
    stopped.end();
  });

  it('a missing binary is a clear error', async () => {
    initializeLogger({ pretty: false, level: 'fatal' });
    const tts = new EspeakTTS({ bin: '/nonexistent/espeak-ng' });
    await expect(tts.render('hi')).rejects.toThrow(/espeak-ng.*apt-get install espeak-ng/);
  });
});

describe('warm transfer briefing', () => {
  it('tells staff who is on hold and why, then the keys', () => {
    const meta: AgentJobMetadata = {
      workflowId: 'w',
      attempt: 1,
      practiceName: 'Bright Smiles Dental',
      practiceCallbackNumber: '+13125550100',
      provider: 'Dr. Rivera',
      appointmentStartLocal: '2026-12-01T09:30:00.000-05:00',
      patientTimeZone: 'America/New_York',
      reason: 'cleaning',
      patientFirstName: 'Jordan',
      voicemailAllowed: true,
    };
    const words = briefing(meta);
    for (const part of ['Jordan', 'Dr. Rivera', sayWhen(meta), 'cleaning', 'Press 1', '2']) expect(words).toContain(part);
    expect(briefing({ ...meta, patientFirstName: '' })).toMatch(/^This is the appointment line of Bright Smiles Dental\. A patient is on hold/);
  });
});

/**
 * The session's states and events as the library emits them, driven by hand (no audio): what the
 * re-prompt timer sees.
 */
function sessionStates() {
  const emitter = new EventEmitter();
  const s = Object.assign(emitter, { agentState: 'listening' as voice.AgentState, userState: 'listening' as voice.UserState });
  return {
    session: s as unknown as ConstructorParameters<typeof QuietWatch>[0],
    listeners: () => emitter.eventNames().reduce((n, e) => n + emitter.listenerCount(e), 0),
    agent(state: voice.AgentState) {
      const oldState = s.agentState;
      s.agentState = state;
      s.emit(voice.AgentSessionEventTypes.AgentStateChanged, { type: 'agent_state_changed', oldState, newState: state, createdAt: Date.now() });
    },
    user(state: voice.UserState) {
      const oldState = s.userState;
      s.userState = state;
      s.emit(voice.AgentSessionEventTypes.UserStateChanged, { type: 'user_state_changed', oldState, newState: state, createdAt: Date.now() });
    },
    transcript(text: string) {
      s.emit(voice.AgentSessionEventTypes.UserInputTranscribed, { type: 'user_input_transcribed', transcript: text, isFinal: true, createdAt: Date.now() });
    },
    noTranscript() {
      s.emit(voice.AgentSessionEventTypes.UserTranscriptionTimeout, { type: 'user_transcription_timeout', speechDuration: 800, vadSpeechStartedAt: Date.now(), createdAt: Date.now() });
    },
  };
}

describe('re-prompt timing: quiet counts only when nobody speaks and no answer is being recognized', () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  const resolvedAt = (p: Promise<void>) => {
    let at: number | undefined;
    void p.then(() => (at = Date.now()));
    return () => at;
  };
  /** A line, and a 2-s quiet wait on it: `done()` is when the wait resolved (undefined: not yet). */
  const waitingForQuiet = () => {
    const line = sessionStates();
    const watch = new QuietWatch(line.session);
    return { line, watch, done: resolvedAt(watch.quietFor(2_000)) };
  };
  /** The patient speaks for `ms`, then stops (the recognizer now works on it). */
  const patientSpeaks = async (line: ReturnType<typeof sessionStates>, ms: number) => {
    line.user('speaking');
    await vi.advanceTimersByTimeAsync(ms);
    line.user('listening');
  };

  it('a silent line: the re-prompt after the quiet', async () => {
    const start = Date.now();
    const { done } = waitingForQuiet();
    await vi.advanceTimersByTimeAsync(1_999);
    expect(done()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(done()! - start).toBe(2_000);
  });

  it('the patient answers, and the words take 6 s to recognize: no re-prompt while they are on their way', async () => {
    const { line, done } = waitingForQuiet();
    await vi.advanceTimersByTimeAsync(1_000);
    await patientSpeaks(line, 2_000); // the answer's end; recognition runs
    await vi.advanceTimersByTimeAsync(6_000);
    expect(done()).toBeUndefined();
    line.transcript('yes i will be there');
    line.agent('thinking'); // the reply (a tool call, then the acknowledgement) is under way
    await vi.advanceTimersByTimeAsync(3_000);
    expect(done()).toBeUndefined();
  });

  it('the agent answered an unclear reply: the quiet is counted from the end of that reply', async () => {
    const { line, done } = waitingForQuiet();
    await patientSpeaks(line, 1_000);
    await vi.advanceTimersByTimeAsync(500);
    line.transcript('um let me think');
    line.agent('thinking');
    line.agent('speaking'); // "Sorry, I didn't catch that …"
    await vi.advanceTimersByTimeAsync(5_000);
    const replyEnd = Date.now();
    line.agent('listening');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(done()).toBe(replyEnd + 2_000);
  });

  it('speech that never becomes words (a cough): the library says so, and the count starts then', async () => {
    const { line, done } = waitingForQuiet();
    await patientSpeaks(line, 400);
    line.transcript(''); // an empty final is no answer: still waiting
    await vi.advanceTimersByTimeAsync(3_000);
    expect(done()).toBeUndefined();
    const gaveUp = Date.now();
    line.noTranscript();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(done()).toBe(gaveUp + 2_000);
  });

  it('a recognizer that never answers nor times out does not silence the re-prompts for long', async () => {
    const { line, done } = waitingForQuiet();
    await patientSpeaks(line, 500);
    const spokeEnd = Date.now();
    await vi.advanceTimersByTimeAsync(TRANSCRIPT_WAIT_MS + 1_000 + 2_000);
    expect(done()).toBe(spokeEnd + TRANSCRIPT_WAIT_MS + 1_000 + 2_000);
  });

  it('a stopped wait never resolves, and close() leaves no timer behind', async () => {
    const line = sessionStates();
    const watch = new QuietWatch(line.session);
    const stop = new AbortController();
    const done = resolvedAt(watch.quietFor(2_000, stop.signal));
    await vi.advanceTimersByTimeAsync(1_000);
    stop.abort();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(done()).toBeUndefined();
    line.user('speaking');
    line.user('listening');
    watch.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(line.listeners()).toBe(0);
  });
});
