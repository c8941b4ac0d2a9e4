/**
 * npm run bench:speech [-- --voices slt,rms] [--no-fill] [--concurrency 2]
 *
 * The offline speech path on phone-quality audio: every phrasing of every intent (src/dev/
 * speech-clips.ts), by two voices, telephone-band with background noise, through PocketSphinx
 * (agent/offline-stt.ts) and the intent matcher (agent/intent-llm.ts). Prints the confusion table
 * (intent heard vs meant), the share correct, and the false confirmations and cancellations —
 * the goal is none. `--no-fill` decodes without the high-band noise floor, for comparison.
 */
import { Command } from 'commander';
import { matchIntent, type Intent } from '../agent/intent-llm';
import { PocketSphinxSTT } from '../agent/offline-stt';
import { PHRASES, VOICES, clipFrames, phoneClip, type Voice } from '../src/dev/speech-clips';

const opts = new Command()
  .option('--voices <list>', 'flite voices, comma-separated', VOICES.join(','))
  .option('--no-fill', 'decode without the high-band noise floor')
  .option('--generic-lm', "the package's general English model instead of the answers model")
  .option('--concurrency <n>', 'decoders at once', '2')
  .option('--verbose', 'print every transcript')
  .parse()
  .opts<{ voices: string; fill: boolean; genericLm?: boolean; concurrency: string; verbose?: boolean }>();

const voices = opts.voices.split(',').map((v) => v.trim()) as Voice[];
const stt = new PocketSphinxSTT({ ...(opts.fill ? {} : { highBandNoise: 0 }), ...(opts.genericLm ? { languageModel: 'generic' as const } : {}) });
// Nothing else keeps the process alive between a child's exit and the next clip.
const keepAlive = setInterval(() => undefined, 1_000);
const intents = Object.keys(PHRASES) as Intent[];
const cases = intents.flatMap((meant) => PHRASES[meant].flatMap((text) => voices.map((voice) => ({ meant, text, voice }))));

const started = Date.now();
const results: { meant: Intent; heard: Intent; text: string; voice: Voice; transcript: string; ms: number }[] = [];
let next = 0;
await Promise.all(
  Array.from({ length: Number(opts.concurrency) }, async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      const clip = await phoneClip(c.text, c.voice);
      const t0 = Date.now();
      const { transcript, confidence } = await stt
        .recognize(clipFrames(clip))
        .then((event) => ({ transcript: event.alternatives?.[0]?.text ?? '', confidence: event.alternatives?.[0]?.confidence ?? 0 }))
        .catch((err: unknown) => (console.error(`decode failed: ${String(err)}`), { transcript: '', confidence: 0 }));
      const heard = matchIntent(transcript);
      results.push({ ...c, heard, transcript, ms: Date.now() - t0 });
      if (opts.verbose || heard !== c.meant) {
        console.log(`${heard === c.meant ? 'ok  ' : 'MISS'} [${c.voice}] ${c.meant} "${c.text}" → "${transcript}" (${confidence.toFixed(2)}) → ${heard}`);
      }
    }
  }),
);

const short: Record<Intent, string> = {
  confirm_appointment: 'confirm',
  cancel_appointment: 'cancel',
  request_reschedule: 'resched',
  opt_out: 'opt-out',
  wrong_number: 'wrong#',
  transfer_to_staff: 'staff',
  unclear: 'unclear',
};
const pad = (s: string | number, n = 9) => String(s).padStart(n);
console.log(`\nConfusion table (rows: meant, columns: heard), ${results.length} clips, voices ${voices.join('+')}, high-band fill ${opts.fill ? 'on' : 'off'}, language model ${opts.genericLm ? 'generic' : 'answers'}`);
console.log(`${'meant \\ heard'.padEnd(14)}${intents.map((i) => pad(short[i])).join('')}${pad('correct')}`);
for (const meant of intents) {
  const row = results.filter((r) => r.meant === meant);
  const cells = intents.map((heard) => pad(row.filter((r) => r.heard === heard).length));
  console.log(`${short[meant].padEnd(14)}${cells.join('')}${pad(`${row.filter((r) => r.heard === meant).length}/${row.length}`)}`);
}
const answers = results.filter((r) => r.meant !== 'unclear');
const correct = results.filter((r) => r.heard === r.meant).length;
const falseConfirm = results.filter((r) => r.heard === 'confirm_appointment' && r.meant !== 'confirm_appointment').length;
const falseCancel = results.filter((r) => r.heard === 'cancel_appointment' && r.meant !== 'cancel_appointment').length;
const wrongAction = results.filter((r) => r.heard !== r.meant && r.heard !== 'unclear').length;
const ms = results.map((r) => r.ms).sort((a, b) => a - b);
console.log(`\ncorrect intent: ${correct}/${results.length} (${((100 * correct) / results.length).toFixed(1)}%)`);
console.log(`answers understood: ${answers.filter((r) => r.heard === r.meant).length}/${answers.length}; re-prompted (heard unclear): ${answers.filter((r) => r.heard === 'unclear').length}`);
console.log(`false confirmations: ${falseConfirm}; false cancellations: ${falseCancel}; any wrong action: ${wrongAction}`);
console.log(`decode time per utterance: median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms.at(-1)} ms; wall ${((Date.now() - started) / 1000).toFixed(0)} s`);
clearInterval(keepAlive);
