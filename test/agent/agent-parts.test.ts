/**
 * The agent's parts that need no call: the answering-machine heuristic, the words it says, its
 * configuration, and the offline text-to-speech (the real espeak-ng).
 */
import { initializeLogger } from '@livekit/agents';
import { describe, expect, it } from 'vitest';
import { greetingClassifier } from '../../agent/amd';
import { loadAgentConfig } from '../../agent/config';
import { EspeakTTS } from '../../agent/espeak-tts';
import { KEYPAD, greeting, sayNumber, sayWhen, voicemailMessage } from '../../agent/script';
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

  it('a silent line: nobody speaks within 1.2 s', () => {
    expect(classify(() => false)).toEqual({ verdict: 'silence', at: 1_216 });
  });

  it('a machine: seconds of greeting with short pauses; decided only after the greeting and beep are over', () => {
    // 7 s of greeting in sentences with 300 ms pauses, then the beep (not speech) and silence.
    const speaking = (t: number) => t > 300 && t < 7_300 && t % 2_000 > 300;
    const { verdict, at } = classify(speaking);
    expect(verdict).toBe('machine');
    expect(at).toBeGreaterThanOrEqual(7_300 + 1_500);
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
