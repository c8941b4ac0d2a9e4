/** Runs `src/dev/pacing-process.ts` children and collects their events (multi-process pacing tests and the benchmark). */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const CHILD = join(import.meta.dirname, '../../src/dev/pacing-process.ts');

export type LoadEvent =
  | { ready: number }
  | { grant: string; t: number }
  | { slot: string; at: number; sent: number }
  | { end: string; t: number }
  | { refused: string }
  | { done: true; ticks: number };

/** One load process. */
export class LoadProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly events: LoadEvent[] = [];
  readonly ready: Promise<void>;
  readonly done: Promise<void>;
  stderr = '';

  constructor(config: Record<string, unknown>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config)], { stdio: 'pipe' });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const lines = createInterface({ input: this.child.stdout });
    let ready!: () => void;
    let done!: () => void;
    this.ready = new Promise((r) => (ready = r));
    this.done = new Promise((r) => (done = r));
    lines.on('line', (line) => {
      const e = JSON.parse(line) as LoadEvent;
      this.events.push(e);
      if ('ready' in e) ready();
      if ('done' in e) done();
    });
    this.child.once('exit', () => {
      ready();
      done();
    });
  }

  count(kind: 'grant' | 'slot' | 'end'): number {
    return this.events.filter((e) => kind in e).length;
  }

  kill(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

/** Most calls up at once, from [grant, end] intervals across processes (same host clock). */
export function maxConcurrent(processes: LoadProcess[]): number {
  const points: [number, number][] = [];
  for (const p of processes) {
    for (const e of p.events) {
      if ('grant' in e) points.push([e.t, 1]);
      if ('end' in e) points.push([e.t, -1]);
    }
  }
  // Ends before starts at the same instant: a channel released and re-granted in one ms is one channel.
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let up = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (up += d));
  return max;
}

/** Most of `times` within any 1-s window [t, t + 1000). */
export function maxInOneSecond(times: number[]): number {
  const t = [...times].sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < t.length; i += 1) {
    while (t[i]! - t[j]! >= 1_000) j += 1;
    max = Math.max(max, i - j + 1);
  }
  return max;
}

export const slotTimes = (processes: LoadProcess[], field: 'at' | 'sent'): number[] =>
  processes.flatMap((p) => p.events.flatMap((e) => ('slot' in e ? [e[field]] : [])));
