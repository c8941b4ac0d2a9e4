/**
 * Spoken answers for the offline speech tests and benchmark: what patients say, rendered by two
 * flite voices (Debian `flite`) and made to sound like a phone line with sox — 8 kHz, 300–3400 Hz,
 * background noise — then carried at 48 kHz as a LiveKit room carries a phone leg.
 */
import { AudioFrame } from '@livekit/rtc-node';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Intent } from '../../agent/intent-llm';

const run = promisify(execFile);

/** The two voices of the simulated patients (flite's US-English female and male voices). */
export const VOICES = ['slt', 'rms'] as const;
export type Voice = (typeof VOICES)[number];

/** The room's rate for a phone leg. */
export const CLIP_RATE = 48_000;

/** At least a dozen phrasings per intent, and answers that must not be taken for one. */
export const PHRASES: Readonly<Record<Intent, readonly string[]>> = {
  confirm_appointment: [
    'Yes, I will be there.',
    "Yes, I'll be there.",
    'Yeah, that works for me.',
    'Sure, I can make it.',
    'Yes.',
    'Yep, see you then.',
    'Yes, that time works.',
    'Of course, I will come.',
    "Okay, I'll be there.",
    'Yes, I can come.',
    'Sounds good.',
    'Absolutely, I will be there.',
    'Yes, please confirm it.',
    "Yes, that's fine.",
    "Yeah, I'll be there.",
    'Okay, that works.',
  ],
  cancel_appointment: [
    'I need to cancel that appointment.',
    'Please cancel it.',
    'Cancel the appointment, please.',
    'I want to cancel.',
    "I'd like to cancel my appointment.",
    'Can you cancel it for me?',
    'Cancel.',
    'Please cancel my visit.',
    'I have to cancel.',
    'Go ahead and cancel it.',
    'I would like to cancel, thank you.',
    "Cancel it, I've moved away.",
    'I need to cancel, sorry.',
    'Could you cancel my appointment?',
    'Please cancel the appointment.',
  ],
  request_reschedule: [
    'I need to reschedule.',
    'Can we move it to Tuesday morning?',
    'Can I reschedule for next week?',
    'I would like another day, please.',
    'Could we find a different time?',
    'Can we change the time to the afternoon?',
    'I need a different day.',
    'Can you move it to Friday?',
    'Can we do Monday instead?',
    "I'd like to reschedule to a later date.",
    'Another time would be better.',
    'How about Wednesday afternoon?',
    'I need to move my appointment.',
    'Can we push it to next week?',
    'Is there a different time available?',
  ],
  opt_out: [
    'Please stop calling me.',
    "Don't call me again.",
    'Stop calling this number.',
    'Take me off your list.',
    'Do not call me.',
    'Remove me from your calls.',
    'No more calls, please.',
    'Stop calling, thank you.',
    'Please take me off the list.',
    'Never call me again.',
    'Stop these calls.',
    'I want you to stop calling me.',
    "Please don't call this number again.",
    'Stop calling here.',
    'Remove me from your list.',
  ],
  wrong_number: [
    'You have the wrong number.',
    'Wrong number.',
    'Sorry, wrong number.',
    'There is no one here by that name.',
    "I think you have the wrong number.",
    "That person doesn't live here.",
    "I don't know who that is.",
    'You have got the wrong person.',
    'Nobody here by that name.',
    'This is the wrong number.',
    'Wrong person, sorry.',
    'You must have the wrong number.',
    "You've got the wrong number.",
    'No one by that name lives here.',
    'I think you have the wrong person.',
  ],
  transfer_to_staff: [
    'Can I talk to someone at the front desk?',
    'I want to speak to a person.',
    'Let me talk to a human.',
    'Can I speak with the receptionist?',
    'Put me through to the front desk.',
    'I need to talk to someone.',
    'Can I speak to a real person?',
    'Operator, please.',
    'Connect me to the front desk.',
    'I would like to speak with someone.',
    'Can I talk to the staff?',
    'Transfer me to a representative.',
    'Can I speak to someone, please?',
    "I'd like to talk to the front desk.",
    'Let me speak to the receptionist.',
  ],
  unclear: [
    'Um, let me think.',
    'Hmm.',
    'What?',
    'Who is this?',
    'Hold on a second.',
    'Hello?',
    'I am not sure.',
    'Maybe.',
    'Sorry, say that again.',
    'What is the weather like today?',
    'My dog is barking.',
    'I am driving right now.',
    'Is this about my bill?',
    "I can't make it.",
    "Who's calling?",
    "I'm at work right now.",
    "Um, I don't know.",
  ],
};

/**
 * Renders `text` by `voice` as a phone would carry it: 16-bit mono PCM at 48 kHz, band-limited to
 * 300–3400 Hz at 8 kHz with pink background noise (about 25 dB below the speech).
 */
export async function phoneClip(text: string, voice: Voice, opts: { noise?: number } = {}): Promise<Int16Array> {
  const dir = await mkdtemp(join(tmpdir(), 'speech-clip-'));
  try {
    const spoken = join(dir, 'spoken.wav');
    const line = join(dir, 'line.wav');
    const noise = join(dir, 'noise.wav');
    const out = join(dir, 'out.raw');
    await run('flite', ['-voice', voice, '-t', text, '-o', spoken]);
    await run('sox', ['-q', spoken, '-r', '8000', '-c', '1', line, 'sinc', '300-3400']);
    const { stdout } = await run('soxi', ['-D', line]);
    // -R: the same noise every run, so a clip decodes the same way every time.
    await run('sox', ['-R', '-q', '-n', '-r', '8000', '-c', '1', noise, 'synth', stdout.trim(), 'pinknoise', 'vol', String(opts.noise ?? 0.01)]);
    await run('sox', ['-q', '-m', line, noise, '-r', String(CLIP_RATE), '-b', '16', '-e', 'signed-integer', '-t', 'raw', out]);
    const raw = await readFile(out);
    return new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length - (raw.length % 2)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A clip as 20 ms frames at the room's rate, as the session's stream adapter hands them to the STT. */
export function clipFrames(pcm: Int16Array): AudioFrame[] {
  const n = CLIP_RATE / 50;
  const out: AudioFrame[] = [];
  for (let i = 0; i < pcm.length; i += n) {
    const data = new Int16Array(n);
    data.set(pcm.subarray(i, i + n));
    out.push(new AudioFrame(data, CLIP_RATE, 1, n));
  }
  return out;
}
