// Dumps every bench clip as 16 kHz PCM (after the STT's resample + high-band fill) for offline experiments.
import { writeFileSync, mkdirSync } from 'node:fs';
import { PHRASES, VOICES, clipFrames, phoneClip } from '../src/dev/speech-clips';
import { to16k, fillHighBand } from '../agent/offline-stt';
const out = process.argv[2] ?? '/tmp/acc/clips';
const fill = Number(process.argv[3] ?? 80);
mkdirSync(out, { recursive: true });
const rows: string[] = [];
let i = 0;
for (const [intent, list] of Object.entries(PHRASES)) for (const text of list.filter((t) => (process.env.ONLY ?? '').split('|').includes(t))) for (const v of VOICES) {
  const pcm = fillHighBand(to16k(clipFrames(await phoneClip(text, v))), fill);
  const name = `${String(i++).padStart(3, '0')}-${v}`;
  writeFileSync(`${out}/${name}.raw`, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  rows.push(`${name}\t${intent}\t${v}\t${text}`);
}
writeFileSync(`${out}/index.tsv`, rows.join('\n') + '\n');
console.log(rows.length);
