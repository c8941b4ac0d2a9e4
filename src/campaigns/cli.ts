/**
 * The `campaign` command group of the CLI (`npm run cli -- campaign …`), registered by src/cli.ts.
 * One function per command; each gets what it needs (the database) through {@link CampaignCliDeps},
 * so commands that need Temporal can be added beside these with their own dependency.
 *
 * Exit codes: 0 done (for `validate`: every row valid); 1 `validate` found invalid rows (or an
 * unexpected failure); 2 bad input or settings (a missing column, a bad practice id, no such
 * campaign); 3 a file or server that cannot be reached or read.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { errorCode, UserError } from '../errors';
import type { Sql } from '../store/sql';
import { validateId, ValidationError } from '../validation';
import { formatReport, validateCsv, type ImportProgress } from './import';
import { writeCampaignResults, type ResultFormat } from './results';
import { registerForecastCommand } from './forecast/cli';

/** What the campaign commands take from the CLI: the database, opened on demand (never for `validate`). */
export interface CampaignCliDeps {
  openStore(): Promise<{ sql: Sql; close(): Promise<void> }>;
}

/** CLI option of each settings field, for messages that name what to type. */
const OPTION_OF: Record<string, string> = {
  practiceId: '--practice',
  practiceName: '--practice-name',
  practiceCallbackNumber: '--callback',
  campaignId: '<campaign-id>',
  'limits.channels': '--channels',
  'limits.callsPerSecond': '--cps',
};

/** A settings ValidationError with the CLI's option names instead of the API's field names. */
export function optionError(err: unknown): unknown {
  if (!(err instanceof ValidationError)) return err;
  return new UserError(`${err.problems.map((p) => `${OPTION_OF[p.field] ?? p.field}: ${p.problem}`).join('; ')}.`, 2, { cause: err });
}

/** A CSV file as a stream (`-`: standard input); a file that cannot be opened is named with the reason only. */
export function openCsv(path: string): NodeJS.ReadableStream & AsyncIterable<Buffer> {
  if (path === '-') return process.stdin as never;
  const stream = createReadStream(path);
  // Opening errors surface while reading: the import rethrows them; this names the file.
  stream.on('error', () => undefined);
  return stream as never;
}

/** A read failure of the schedule file, as a sentence. */
export function fileError(err: unknown, path: string): unknown {
  if (err instanceof UserError || err instanceof ValidationError) return err;
  const code = errorCode(err);
  if (/^E[A-Z]+$/.test(code)) return new UserError(`<csv>: cannot read ${path} (${code}).`, 3, { cause: err });
  return err;
}

/**
 * A progress line on a terminal (`read 5,000 rows, stored 4,500`), redrawn at most 10 times a
 * second; nothing when `stream` is not a terminal (a log must not fill with redraws). Counts only.
 */
export function progressLine(stream: NodeJS.WriteStream = process.stderr, stored = 'stored'): { update(p: ImportProgress): void; done(): void } {
  if (!stream.isTTY) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let shown = false;
  const draw = (p: ImportProgress) => {
    stream.write(`\r\x1b[2K${p.rowsRead.toLocaleString('en-US')} rows read, ${p.rowsStored.toLocaleString('en-US')} ${stored}${p.rowsStored === p.rowsRead ? '' : '…'}`);
    shown = true;
  };
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      draw(p);
    },
    done() {
      if (shown) stream.write('\r\x1b[2K');
    },
  };
}

/** Adds `campaign validate` and `campaign results`; returns the `campaign` command for more. */
export function registerCampaignCommands(program: Command, deps: CampaignCliDeps): Command {
  const campaign = program.command('campaign').description('campaigns: a practice confirms a whole schedule (CSV) in one go');

  campaign
    .command('validate <csv>')
    .description(
      'check a schedule CSV with the confirmation rules and print the report; nothing is stored or started, and no server is needed ' +
        '(so appointments already being confirmed elsewhere are found only at import). Exit 0: every row valid; 1: some rows are not.',
    )
    .requiredOption('--practice <id>', 'practice id (letters, digits, - and _)')
    .requiredOption('--practice-name <name>', 'practice name the agent says first')
    .requiredOption('--callback <E.164>', 'number patients can call back, E.164 (+13125550100)')
    .option('--json', 'print the report as JSON')
    .action(async (csv: string, opts: { practice: string; practiceName: string; callback: string; json?: boolean }) => {
      const progress = progressLine(process.stderr, 'checked');
      let report;
      try {
        report = await validateCsv(openCsv(csv), { practiceId: opts.practice, practiceName: opts.practiceName, practiceCallbackNumber: opts.callback }, {
          onProgress: (p) => progress.update(p),
        });
      } catch (err) {
        throw fileError(optionError(err), csv);
      } finally {
        progress.done();
      }
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
      if (report.invalid.length > 0 || report.rowsRead === 0) process.exitCode = 1;
    });

  campaign
    .command('results <campaign-id>')
    .description("the campaign's results from the database, per appointment: outcome, attempts, last call (patient's time), reschedule preference — the front desk's call-back list. Holds health data: written only where you say.")
    .requiredOption('--practice <id>', 'practice id')
    .option('--format <format>', 'csv or json', 'csv')
    .option('--out <file>', 'write to this file (created readable by you only); default: standard output')
    .action(async (campaignId: string, opts: { practice: string; format: string; out?: string }) => {
      const format = opts.format.trim().toLowerCase();
      if (format !== 'csv' && format !== 'json') throw new UserError(`--format: must be csv or json.`, 2);
      const ids = (() => {
        try {
          return { practiceId: validateId('practiceId', opts.practice), campaignId: validateId('campaignId', campaignId) };
        } catch (err) {
          throw optionError(err);
        }
      })();
      const store = await deps.openStore();
      try {
        if (!opts.out) {
          await writeCampaignResults(store.sql, ids, format as ResultFormat, process.stdout);
          return;
        }
        // Health data: the file is the user's alone (0600), and a failed export leaves no half file pretending to be whole.
        const file = createWriteStream(opts.out, { mode: 0o600 });
        const opened = new Promise<void>((resolve, reject) => {
          file.once('open', () => resolve());
          file.once('error', reject);
        });
        try {
          await opened;
        } catch (err) {
          throw new UserError(`--out: cannot write ${opts.out} (${errorCode(err)}).`, 3, { cause: err });
        }
        let n: number;
        try {
          n = await writeCampaignResults(store.sql, ids, format as ResultFormat, file);
          file.end();
          await finished(file);
        } catch (err) {
          file.destroy();
          await rm(opts.out, { force: true }).catch(() => undefined);
          throw err;
        }
        process.stderr.write(`${n.toLocaleString('en-US')} appointments written to ${opts.out}.\n`);
      } finally {
        await store.close();
      }
    });

  registerForecastCommand(campaign);
  return campaign;
}
