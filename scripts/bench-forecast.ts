/**
 * Timing of `campaign forecast` (a printed number, not a timed test): a fictional schedule of
 * `--rows` appointments over `--days` days, forecast at `--channels` / `--cps`.
 *
 *   npx tsx scripts/bench-forecast.ts [--rows 1000] [--days 3] [--channels 10] [--cps 2] [--seed 1] [--speed 200]
 */
import { Command } from 'commander';
import { DateTime } from 'luxon';
import { makeScheduleText } from '../src/campaigns/sample';
import { formatForecast, runForecast } from '../src/campaigns/forecast/run';
import { exitWithError } from '../src/errors';

/**
 * Milliseconds one thread takes for a fixed loop: this machine's speed drifts by up to 2× during a
 * day (a shared host), so a wall time means little without it.
 */
function hostSpeedMs(): number {
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < 3e8; i += 1) x += i % 7;
  if (x < 0) process.stdout.write(''); // keeps the loop from being optimised away
  return Math.round(performance.now() - t0);
}

const program = new Command('bench-forecast')
  .option('--rows <n>', 'appointments', '1000')
  .option('--days <n>', 'over this many days', '3')
  .option('--channels <n>', 'channels', '10')
  .option('--cps <r>', 'calls per second', '2')
  .option('--seed <n>', 'seed', '1')
  .option('--speed <k>', 'calls played k times faster than modelled')
  .option('--json', 'print the report as JSON')
  .action(async (o: { rows: string; days: string; channels: string; cps: string; seed: string; speed?: string; json?: boolean }) => {
    // A fixed start (next Monday 08:00 Chicago) so runs compare; the schedule is relative to it.
    const start = DateTime.now().setZone('America/Chicago').startOf('week').plus({ weeks: 1, hours: 8 });
    const hostMs = hostSpeedMs();
    const csv = makeScheduleText({ rows: Number(o.rows), seed: Number(o.seed), days: Number(o.days), now: start.toJSDate() });
    const t0 = performance.now();
    const report = await runForecast({
      practiceId: 'bench-practice',
      practiceName: 'Bench Dental',
      practiceCallbackNumber: '+13125550100',
      csv,
      limits: { channels: Number(o.channels), callsPerSecond: Number(o.cps) },
      seed: Number(o.seed),
      ...(o.speed ? { speed: Number(o.speed) } : {}),
      start: start.toJSDate(),
      onProgress: (p) => process.stderr.write(`\r${p.decided}/${p.total} decided, ${p.callsPlaced} calls, ${p.at.toISOString()}   `),
    });
    process.stderr.write('\n');
    process.stdout.write(`${o.json ? JSON.stringify(report, null, 2) : formatForecast(report)}\n`);
    const rss = process.memoryUsage().rss / 2 ** 20;
    process.stdout.write(`\nbench-forecast: ${o.rows} rows over ${o.days} days, ${o.channels} channels, ${o.cps} cps: ${((performance.now() - t0) / 1000).toFixed(1)} s wall (including the test server's start), peak RSS ~${rss.toFixed(0)} MB; host speed before the run: ${hostMs} ms for a fixed loop (this 2-core machine: 330–640 ms on 2026-12-01 — compare runs at like speeds)\n`);
  });

program.parseAsync().catch((err: unknown) => exitWithError('bench-forecast', err));
