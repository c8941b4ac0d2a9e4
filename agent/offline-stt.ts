/**
 * Offline speech recognition: CMU PocketSphinx (Debian `pocketsphinx` + `pocketsphinx-en-us`)
 * behind the library's `stt.STT` interface, so the agent understands spoken answers with no cloud
 * account. Non-streaming: the session wraps it in the library's stream adapter, whose voice-activity
 * detection cuts the patient's turn into utterances, each decoded here.
 *
 * Phone audio is narrowband (300–3400 Hz, G.711), but the US-English model was trained on 16 kHz
 * speech: fed as is, the empty band above 4 kHz makes PocketSphinx hear nonsense ("wrong number" →
 * "rom lumber"). A faint noise floor in that band (see {@link fillHighBand}) brings it close to
 * what the model expects; measured on the simulator's telephone-band clips, this turns most
 * transcripts from nonsense into the words said.
 */
import { AudioFrame, AudioResampler } from '@livekit/rtc-node';
import { APIConnectionError, normalizeLanguage, stt, type AudioBuffer } from '@livekit/agents';
import { spawn } from 'node:child_process';
import { domainLanguageModel } from './domain-lm';

/** The acoustic model's sample rate. */
export const DECODE_RATE = 16_000;

export interface PocketSphinxOptions {
  /** `pocketsphinx_continuous` binary. Default on the PATH. */
  bin?: string;
  /** The model directory (holding `en-us/`, `en-us.lm.bin`, `cmudict-en-us.dict`). Default Debian's. */
  modelDir?: string;
  /** RMS of the noise floor added above 4 kHz, in 16-bit sample units. Default 80; 0 turns it off. */
  highBandNoise?: number;
  /**
   * `answers` (default): a small model of answers about an appointment (agent/domain-lm.ts);
   * `generic`: the package's general US-English model (for comparison).
   */
  languageModel?: 'answers' | 'generic';
}

/** One decoded utterance: the words and PocketSphinx's mean word posterior (0–1). */
export interface Transcript {
  text: string;
  confidence: number;
}

export class PocketSphinxSTT extends stt.STT {
  label = 'pocketsphinx';
  readonly options: Required<PocketSphinxOptions>;

  constructor(options: PocketSphinxOptions = {}) {
    super({ streaming: false, interimResults: false });
    this.options = {
      bin: options.bin ?? 'pocketsphinx_continuous',
      modelDir: options.modelDir ?? '/usr/share/pocketsphinx/model/en-us',
      highBandNoise: options.highBandNoise ?? 80,
      languageModel: options.languageModel ?? 'answers',
    };
  }

  #lm?: { lm: string; dict: string };
  /** The language model and dictionary files: built once (tens of ms), then reused. */
  get languageModelFiles(): { lm: string; dict: string } {
    const m = this.options.modelDir;
    try {
      this.#lm ??=
        this.options.languageModel === 'generic' ? { lm: `${m}/en-us.lm.bin`, dict: `${m}/cmudict-en-us.dict` } : domainLanguageModel(`${m}/cmudict-en-us.dict`);
    } catch (err) {
      // A file that cannot be read is a missing install; anything else is a bug, reported as it is.
      if ((err as NodeJS.ErrnoException).code === undefined) throw err;
      throw new APIConnectionError({
        message: `pocketsphinx: no pronouncing dictionary at ${m}/cmudict-en-us.dict (${(err as NodeJS.ErrnoException).code}; install it: apt-get install pocketsphinx pocketsphinx-en-us)`,
      });
    }
    return this.#lm;
  }

  override get model(): string {
    return 'pocketsphinx-en-us';
  }

  override get provider(): string {
    return 'cmu-sphinx';
  }

  stream(): stt.SpeechStream {
    throw new Error('PocketSphinx is used per utterance; the agent wraps it in stt.StreamAdapter');
  }

  protected async _recognize(buffer: AudioBuffer, abortSignal?: AbortSignal): Promise<stt.SpeechEvent> {
    const frames = Array.isArray(buffer) ? buffer : [buffer];
    const pcm = fillHighBand(to16k(frames), this.options.highBandNoise);
    const { text, confidence } = await this.decode(pcm, abortSignal);
    const duration = pcm.length / DECODE_RATE;
    return {
      type: stt.SpeechEventType.FINAL_TRANSCRIPT,
      alternatives: [{ text, language: normalizeLanguage('en'), startTime: 0, endTime: duration, confidence }],
    };
  }

  /** Decodes 16 kHz 16-bit mono PCM. Exposed for the speech benchmark. */
  decode(pcm: Int16Array, signal?: AbortSignal): Promise<Transcript> {
    const m = this.options.modelDir;
    const files = this.languageModelFiles;
    return new Promise((resolve, reject) => {
      // Audio on stdin, never in a file (it is the patient's voice). PocketSphinx opens its input
      // by name, and /dev/stdin of a Node child is a socket it cannot open: `cat` makes it a pipe.
      const child = spawn(
        'sh',
        ['-c', 'cat | exec "$0" "$@"', this.options.bin, '-infile', '/dev/stdin', '-hmm', `${m}/en-us`, '-lm', files.lm, '-dict', files.dict, '-time', 'yes', '-logfn', '/dev/null'],
        { signal },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e) =>
        reject(new APIConnectionError({ message: `pocketsphinx: ${e.message} (install it: apt-get install pocketsphinx pocketsphinx-en-us)` })),
      );
      child.on('close', (code) => {
        if (code !== 0) return reject(new APIConnectionError({ message: `pocketsphinx exited ${code}: ${err.trim().split('\n').pop() ?? ''}` }));
        resolve(parseOutput(out));
      });
      child.stdin.on('error', () => undefined); // it exited early; 'close' reports why
      child.stdin.end(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    });
  }
}

/**
 * `pocketsphinx_continuous -time yes` prints, per utterance it finds, the hypothesis and then one
 * line per word: `word start end posterior`. Fillers and silences are left out of the confidence.
 */
export function parseOutput(out: string): Transcript {
  const words: string[] = [];
  const posteriors: number[] = [];
  for (const line of out.split('\n').map((l) => l.trim())) {
    const m = /^(\S+) \d+\.\d+ \d+\.\d+ (\d+(?:\.\d+)?)$/.exec(line);
    if (!m) continue;
    const word = m[1]!;
    if (/^(<.*>|\[.*\]|\+\+.*\+\+)$/.test(word)) continue;
    words.push(word.replace(/\(\d+\)$/, '')); // alternate pronunciations: will(2)
    posteriors.push(Number(m[2]));
  }
  const confidence = posteriors.length ? posteriors.reduce((a, b) => a + b, 0) / posteriors.length : 0;
  return { text: words.join(' '), confidence };
}

/** Mono 16 kHz PCM from the session's frames (48 kHz from a phone leg in LiveKit). */
export function to16k(frames: AudioFrame[]): Int16Array {
  if (frames.length === 0) return new Int16Array(0);
  const rate = frames[0]!.sampleRate;
  const mono = frames.map((f) => (f.channels === 1 ? f.data : downmix(f)));
  if (rate === DECODE_RATE) return concat(mono);
  const resampler = new AudioResampler(rate, DECODE_RATE, 1);
  try {
    const out: Int16Array[] = [];
    for (const [i, data] of mono.entries()) {
      for (const f of resampler.push(new AudioFrame(data, rate, 1, frames[i]!.samplesPerChannel))) out.push(f.data);
    }
    for (const f of resampler.flush()) out.push(f.data);
    return concat(out);
  } finally {
    resampler.close();
  }
}

function downmix(f: AudioFrame): Int16Array {
  const out = new Int16Array(f.samplesPerChannel);
  for (let i = 0; i < out.length; i += 1) {
    let sum = 0;
    for (let c = 0; c < f.channels; c += 1) sum += f.data[i * f.channels + c]!;
    out[i] = Math.round(sum / f.channels);
  }
  return out;
}

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** 31-tap windowed-sinc low-pass at 3.6 kHz (of 16 kHz): mirrored, it passes 4.4–8 kHz. */
const TAPS = (() => {
  const n = 31;
  const fc = 3_600 / DECODE_RATE;
  const taps = Array.from({ length: n }, (_, i) => {
    const k = i - (n - 1) / 2;
    const sinc = k === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * k) / (Math.PI * k);
    return sinc * (0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (n - 1))); // Hamming
  });
  const sum = taps.reduce((a, b) => a + b, 0);
  return taps.map((t) => t / sum);
})();

/**
 * Adds a faint noise floor above ~4.4 kHz, where narrowband phone audio has nothing: low-passed
 * white noise, mirrored to the upper band by flipping every other sample's sign. Deterministic (a
 * fixed seed), so one recording always decodes the same way.
 */
export function fillHighBand(pcm: Int16Array, rms: number): Int16Array {
  if (rms <= 0 || pcm.length === 0) return pcm;
  let seed = 0x2545f491;
  const white = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
  const history = new Float64Array(TAPS.length);
  // Uniform noise in [-0.5, 0.5) has RMS 0.289; the low-pass keeps 3.6/8 of its power.
  const gain = rms / (0.289 * Math.sqrt(3_600 / 8_000));
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i += 1) {
    history.copyWithin(1, 0);
    history[0] = white();
    let low = 0;
    for (let k = 0; k < TAPS.length; k += 1) low += TAPS[k]! * history[k]!;
    const high = (i % 2 === 0 ? 1 : -1) * low * gain;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(pcm[i]! + high)));
  }
  return out;
}
