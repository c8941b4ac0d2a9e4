/**
 * `campaign forecast <csv>`: what a campaign of this schedule would do, before launching it. Runs
 * the real workflows and activities on Temporal's time-skipping test server, over a throwaway
 * in-memory database, against the seeded phone model; needs no server and stores nothing.
 *
 * Exit codes: 0 done; 2 bad input or settings (options, the model file, a missing column);
 * 3 a file that cannot be read; 1 an unexpected failure.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { UserError } from '../../errors';
import { ValidationError } from '../../validation';
import { fileError, openCsv, optionError } from '../cli';
import { loadPhoneModel } from './phone-model';
import { DEFAULT_FORECAST_SPEED, formatForecast, runForecast } from './run';

const number = (name: string) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number.`);
  return n;
};
const whole = (name: string) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a whole number.`);
  return n;
};

/** Option names of the forecast's fields, for messages that name what to type. */
const OPTION_OF: Record<string, string> = { channels: '--channels', callsPerSecond: '--cps', speed: '--speed', start: '--start' };

interface ForecastCliOptions {
  practice: string;
  practiceName: string;
  callback: string;
  channels: number;
  cps: number;
  seed: number;
  model?: string;
  speed: number;
  start?: string;
  json?: boolean;
}

/** Adds `forecast <csv>` to the `campaign` command. */
export function registerForecastCommand(campaign: Command): void {
  campaign
    .command('forecast <csv>')
    .description(
      'forecast a campaign of this schedule before launching it: the real campaign and confirmation workflows on Temporal\'s time-skipping ' +
        'test server, a throwaway in-memory database and a seeded model of the phone network (answer, busy, no-answer and voicemail rates by ' +
        'the patient\'s local hour; ringing and call lengths; what patients say). Assumes consent on file for every row. Prints the share ' +
        'reached before the deadline, attempts per patient, calls per hour, channel utilisation and the expected finish; counts only. ' +
        'Needs no server; stores nothing.',
    )
    .requiredOption('--practice <id>', 'practice id (letters, digits, - and _)')
    .requiredOption('--practice-name <name>', 'practice name the agent says first')
    .requiredOption('--callback <E.164>', 'number patients can call back, E.164 (+13125550100)')
    .requiredOption('--channels <n>', "the campaign's (and the trunk's) channels: most calls at once", whole('--channels'))
    .requiredOption('--cps <r>', "the campaign's (and the trunk's) new calls per second", number('--cps'))
    .option('--seed <n>', 'seed of the phone model (same seed, same forecast)', whole('--seed'), 1)
    .option('--model <json>', 'phone-model file overriding the defaults part by part (see the README)')
    .option('--speed <k>', 'calls are played k times faster than modelled (see the README: time)', number('--speed'), DEFAULT_FORECAST_SPEED)
    .option('--start <iso>', 'start the forecast at this instant (ISO 8601; default now)')
    .option('--json', 'print the report as JSON')
    .action(async (csv: string, opts: ForecastCliOptions) => {
      let start: Date | undefined;
      if (opts.start !== undefined) {
        start = new Date(opts.start);
        if (Number.isNaN(start.getTime())) throw new UserError('--start: must be an ISO 8601 time (2026-12-07T08:00:00-06:00).', 2);
      }
      let model;
      try {
        model = opts.model === undefined ? undefined : await loadPhoneModel(opts.model);
      } catch (err) {
        if (err instanceof ValidationError) throw new UserError(`${err.message}.`, /cannot read/.test(err.message) ? 3 : 2, { cause: err });
        throw err;
      }
      const live = process.stderr.isTTY;
      let report;
      try {
        report = await runForecast({
          practiceId: opts.practice,
          practiceName: opts.practiceName,
          practiceCallbackNumber: opts.callback,
          csv: openCsv(csv),
          limits: { channels: opts.channels, callsPerSecond: opts.cps },
          seed: opts.seed,
          ...(model ? { model } : {}),
          speed: opts.speed,
          ...(start ? { start } : {}),
          ...(live
            ? {
                onProgress: (p: { decided: number; total: number; callsPlaced: number; at: Date }) =>
                  process.stderr.write(`\r\x1b[2K${p.decided}/${p.total} decided, ${p.callsPlaced} calls placed, forecast clock ${p.at.toISOString().slice(0, 16)}Z`),
              }
            : {}),
        });
      } catch (err) {
        if (err instanceof ValidationError && err.problems.every((p) => p.field in OPTION_OF)) {
          throw new UserError(`${err.problems.map((p) => `${OPTION_OF[p.field]}: ${p.problem}`).join('; ')}.`, 2, { cause: err });
        }
        throw fileError(optionError(err), csv);
      } finally {
        if (live) process.stderr.write('\r\x1b[2K');
      }
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatForecast(report)}\n`);
    });
}
