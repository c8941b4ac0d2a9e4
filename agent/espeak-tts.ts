/**
 * Offline text-to-speech: espeak-ng (Debian) behind the library's `tts.TTS` interface, so the
 * agent runs with no cloud account. Non-streaming: the agent wraps it in the library's stream
 * adapter, which speaks sentence by sentence.
 */
import { AudioFrame } from '@livekit/rtc-node';
import { APIConnectionError, shortuuid, tts, type APIConnectOptions } from '@livekit/agents';
import { spawn } from 'node:child_process';
import { ReadableStream, type ReadableStreamDefaultController } from 'node:stream/web';

/** espeak-ng's native rate. */
const SAMPLE_RATE = 22_050;
/** 20 ms frames, as a phone leg carries them. */
const FRAME_SAMPLES = SAMPLE_RATE / 50;

export interface EspeakOptions {
  /** espeak-ng binary. Default `espeak-ng` on the PATH. */
  bin?: string;
  /** Voice. Default `en-us`. */
  voice?: string;
  /** Words per minute. Default 165. */
  wordsPerMinute?: number;
}

export class EspeakTTS extends tts.TTS {
  label = 'espeak-ng';
  readonly options: Required<EspeakOptions>;

  constructor(options: EspeakOptions = {}) {
    super(SAMPLE_RATE, 1, { streaming: false });
    this.options = { bin: options.bin ?? 'espeak-ng', voice: options.voice ?? 'en-us', wordsPerMinute: options.wordsPerMinute ?? 165 };
  }

  synthesize(text: string, connOptions?: APIConnectOptions, abortSignal?: AbortSignal): tts.ChunkedStream {
    return new EspeakStream(this, text, connOptions, abortSignal);
  }

  stream(): tts.SynthesizeStream {
    throw new Error('espeak-ng does not stream; the agent wraps it in tts.StreamAdapter');
  }

  /** Renders `text` to 16-bit mono PCM at 22.05 kHz. */
  render(text: string, signal?: AbortSignal): Promise<Int16Array> {
    return new Promise((resolve, reject) => {
      // Text on stdin, never in the arguments (process listings; it can hold a patient's name).
      const child = spawn(this.options.bin, ['-v', this.options.voice, '-s', String(this.options.wordsPerMinute), '--stdin', '--stdout'], { signal });
      const chunks: Buffer[] = [];
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (err) => reject(new APIConnectionError({ message: `espeak-ng: ${err.message} (install it: apt-get install espeak-ng)` })));
      child.on('close', (code) => {
        if (code !== 0) return reject(new APIConnectionError({ message: `espeak-ng exited ${code}: ${stderr.trim()}` }));
        const wav = Buffer.concat(chunks);
        const data = wav.indexOf('data');
        if (data < 0) return reject(new APIConnectionError({ message: 'espeak-ng wrote no WAV data' }));
        const pcm = wav.subarray(data + 8);
        resolve(new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.length - (pcm.length % 2))));
      });
      child.stdin.end(text);
    });
  }
}

class EspeakStream extends tts.ChunkedStream {
  label = 'espeak-ng';
  readonly #engine: EspeakTTS;
  readonly #text: string;

  constructor(engine: EspeakTTS, text: string, connOptions?: APIConnectOptions, abortSignal?: AbortSignal) {
    super(text, engine, connOptions, abortSignal);
    this.#engine = engine;
    this.#text = text;
  }

  protected async run(): Promise<void> {
    const samples = await this.#engine.render(this.#text, this.abortController.signal);
    const requestId = shortuuid();
    const frames = Math.ceil(samples.length / FRAME_SAMPLES);
    for (let i = 0; i < frames; i += 1) {
      const data = new Int16Array(FRAME_SAMPLES);
      data.set(samples.subarray(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES));
      this.queue.put({ requestId, segmentId: requestId, frame: new AudioFrame(data, SAMPLE_RATE, 1, FRAME_SAMPLES), final: i === frames - 1 });
    }
  }
}

/**
 * Synthesizes `text` ahead of time (while the agent joins the call, or while the phone rings), so
 * that saying it later starts with no synthesis delay: `session.say(text, { audio: play(frames) })`.
 */
export async function prerender(engine: tts.TTS, text: string): Promise<AudioFrame[]> {
  const frames: AudioFrame[] = [];
  for await (const audio of engine.synthesize(text)) frames.push(audio.frame);
  return frames;
}

/** Frames rendered by {@link prerender}, as the audio stream `session.say` plays. */
export function play(frames: readonly AudioFrame[]): ReadableStream<AudioFrame> {
  return new ReadableStream<AudioFrame>({
    start(controller) {
      for (const frame of frames) controller.enqueue(frame);
      controller.close();
    },
  });
}

/**
 * Pre-rendered frames as a speech that can be extended while it plays: {@link GrowingAudio.append}
 * adds more (the rest of the greeting, right behind the opening, with no new speech to schedule),
 * {@link GrowingAudio.end} ends it. Until it ends, the speech goes on (silent once the frames run out).
 */
export interface GrowingAudio {
  stream: ReadableStream<AudioFrame>;
  /** Adds frames; false if the speech was stopped (interrupted) meanwhile. */
  append(frames: readonly AudioFrame[]): boolean;
  end(): void;
}

export function growingAudio(frames: readonly AudioFrame[]): GrowingAudio {
  let controller!: ReadableStreamDefaultController<AudioFrame>;
  let open = true;
  const stream = new ReadableStream<AudioFrame>({
    start(c) {
      controller = c;
      for (const frame of frames) c.enqueue(frame);
    },
    cancel() {
      open = false;
    },
  });
  return {
    stream,
    append(more) {
      if (!open) return false;
      try {
        for (const frame of more) controller.enqueue(frame);
        return true;
      } catch {
        open = false; // cancelled by the reader
        return false;
      }
    },
    end() {
      if (!open) return;
      open = false;
      try {
        controller.close();
      } catch {
        // already cancelled
      }
    },
  };
}
