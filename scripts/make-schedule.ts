/**
 * Writes a fictional schedule CSV for the demo and the benchmarks: made-up patients, numbers
 * +1 <area code> 555-01xx across many US area codes and time zones, appointments 1…N days from now.
 * Deterministic for a seed (and a day).
 *
 *   npx tsx scripts/make-schedule.ts --rows 10000 [--seed 1] [--days 3] [--zone America/Chicago] [--out schedule.csv]
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Command, InvalidArgumentError } from 'commander';
import { makeSchedule } from '../src/campaigns/sample';
import { exitWithError } from '../src/errors';

const whole = (name: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}.`);
  return n;
};

const program = new Command('make-schedule')
  .description('write a fictional schedule CSV (header + rows) for demos and benchmarks')
  .option('--rows <n>', 'rows to write', whole('--rows', 0, 1_000_000), 12)
  .option('--seed <n>', 'random seed (same seed, same schedule)', whole('--seed', 0, 2 ** 31), 1)
  .option('--days <n>', 'spread appointments over this many days from tomorrow', whole('--days', 1, 300), 3)
  .option('--zone <iana>', "the practice's time zone (appointment offsets and opening hours)", 'America/Chicago')
  .option('--out <file>', 'file to write; default: standard output')
  .action(async (opts: { rows: number; seed: number; days: number; zone: string; out?: string }) => {
    const out = opts.out ? createWriteStream(opts.out) : process.stdout;
    for (const line of makeSchedule({ rows: opts.rows, seed: opts.seed, days: opts.days, practiceZone: opts.zone })) {
      if (!out.write(line)) await once(out, 'drain');
    }
    if (opts.out) {
      out.end();
      await once(out, 'finish');
      process.stderr.write(`${opts.rows} rows written to ${opts.out}\n`);
    }
  });

program.parseAsync().catch((err: unknown) => exitWithError('make-schedule', err));
