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
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { CampaignProgress } from '../contracts';
import { setTrunkLimits } from '../pacing';
import { CampaignClient, CampaignControlError, type CampaignView } from './client';
import { formatReport, validateCsv, type ImportProgress } from './import';
import { progressLine as campaignLine } from './progress-line';
import { writeCampaignResults, type ResultFormat } from './results';
import { registerForecastCommand } from './forecast/cli';

/** What the campaign commands take from the CLI: the database, opened on demand (never for `validate`). */
export interface CampaignCliDeps {
  openStore(): Promise<{ sql: Sql; close(): Promise<void> }>;
  /** The campaigns API on Temporal and the database, closed afterwards (commands that start or control campaigns). */
  withCampaigns<T>(fn: (api: CampaignClient, context: { webUi?: string; namespace: string }) => Promise<T>): Promise<T>;
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

  const practiceOption = (c: Command) => c.requiredOption('--practice <id>', 'practice id');
  const actorOption = (c: Command) =>
    c.option('--actor <name>', 'who asks (audited with the time); default: your login name').option('--reason <text>', 'why (audited)');
  const actorOf = (opts: { actor?: string; reason?: string }) => ({
    actor: opts.actor ?? safeLogin(),
    ...(opts.reason === undefined ? {} : { reason: opts.reason }),
  });

  campaign
    .command('start <csv>')
    .description(
      'import a schedule CSV into a campaign and start it: prints the campaign id, the import report and the Web UI link. ' +
        'Starting the same file again adds nothing; a file with new rows adds them to the running campaign.',
    )
    .requiredOption('--practice <id>', 'practice id (letters, digits, - and _)')
    .requiredOption('--practice-name <name>', 'practice name the agent says first')
    .requiredOption('--callback <E.164>', 'number patients can call back, E.164 (+13125550100)')
    .option('--campaign <id>', 'campaign id (letters, digits, - and _); default: derived from the file content, so the same file is the same campaign')
    .option('--channels <n>', 'most calls of this campaign at once', intOption('--channels'))
    .option('--cps <r>', 'most new calls per second of this campaign (0.5 = one every 2 s)', numberOption('--cps'))
    .option('--max-outstanding <n>', 'most confirmations running at once (default 300)', intOption('--max-outstanding'))
    .option('--actor <name>', 'who starts it (audited); default: your login name')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        csv: string,
        opts: { practice: string; practiceName: string; callback: string; campaign?: string; channels?: number; cps?: number; maxOutstanding?: number; actor?: string; json?: boolean },
      ) => {
        // Read whole (a schedule is megabytes at most): its hash names the campaign when --campaign is not given.
        const bytes = await (csv === '-' ? readStdin() : readFile(csv)).catch((err: unknown) => {
          throw fileError(err, csv);
        });
        const campaignId = opts.campaign ?? `s-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`;
        const limits = opts.channels === undefined && opts.cps === undefined ? undefined : { channels: opts.channels ?? 3, callsPerSecond: opts.cps ?? 1 };
        const progress = progressLine(process.stderr);
        const started = await deps
          .withCampaigns(async (api, ctx) => {
            const result = await api.start(
              { practiceId: opts.practice, practiceName: opts.practiceName, practiceCallbackNumber: opts.callback, campaignId, ...(limits ? { limits } : {}) },
              { csv: bytes },
              { actor: opts.actor ?? safeLogin(), ...(opts.maxOutstanding ? { maxOutstanding: opts.maxOutstanding } : {}), onProgress: (p) => progress.update(p) },
            );
            return { ...result, webUi: ctx.webUi ? `${ctx.webUi}/namespaces/${ctx.namespace}/workflows/${encodeURIComponent(result.workflow.workflowId)}` : undefined };
          })
          .catch((err: unknown) => {
            throw fileError(optionError(err), csv);
          })
          .finally(() => progress.done());
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ campaignId, ...started }, null, 2)}
`);
          return;
        }
        const lines = [
          `campaign ${campaignId} of ${opts.practice}: ${started.workflow.created ? 'started' : `already ${started.workflow.status.toLowerCase()}`} (workflow ${started.workflow.workflowId})`,
          formatReport(started.report),
        ];
        if (started.ignoredChanges.length > 0) lines.push(`not changed (the campaign exists; use \`campaign limits\` for limits): ${started.ignoredChanges.join(', ')}`);
        if (started.webUi) lines.push(`Web UI: ${started.webUi}`);
        lines.push(`watch it: npm run cli -- campaign status ${campaignId} --practice ${opts.practice}`);
        process.stdout.write(`${lines.join('\n')}\n`);
      },
    );

  campaign
    .command('add <campaign-id> <csv>')
    .description('import more rows into a campaign (running or not yet started); duplicates and appointments confirmed elsewhere are reported, not queued')
    .requiredOption('--practice <id>', 'practice id')
    .option('--actor <name>', 'who adds them (audited); default: your login name')
    .action(async (campaignId: string, csv: string, opts: { practice: string; actor?: string }) => {
      const progress = progressLine(process.stderr);
      const report = await deps
        .withCampaigns((api) => api.addRows(opts.practice, campaignId, { csv: openCsv(csv) }, { actor: opts.actor ?? safeLogin() }, { onProgress: (p) => progress.update(p) }))
        .catch((err: unknown) => {
          throw fileError(optionError(err), csv);
        })
        .finally(() => progress.done());
      process.stdout.write(`${formatReport(report)}\n`);
    });

  practiceOption(
    campaign
      .command('status <campaign-id>')
      .description('progress: live on a terminal (until the campaign ends; Ctrl-C to stop watching), one line per refresh when piped, --json once for scripts')
      .option('--json', 'print the status once as JSON')
      .option('--once', 'print one line and exit')
      .option('--every <seconds>', 'refresh interval', numberOption('--every'), 2),
  ).action(async (campaignId: string, opts: { practice: string; json?: boolean; once?: boolean; every: number }) => {
    await deps.withCampaigns(async (api) => {
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(await api.status(opts.practice, campaignId), null, 2)}\n`);
        return;
      }
      const tty = process.stdout.isTTY === true;
      for (;;) {
        const view = await api.status(opts.practice, campaignId);
        const line = statusLine(view);
        process.stdout.write(tty ? `\r\x1b[2K${bar(view.progress)} ${line}` : `${new Date().toISOString()} ${line}\n`);
        if (opts.once || view.workflowStatus !== 'RUNNING') break;
        await new Promise((r) => setTimeout(r, Math.max(0.5, opts.every) * 1000));
      }
      if (tty) process.stdout.write('\n');
    });
  });

  for (const [name, description] of [
    ['pause', 'no new calls: calls in progress finish, waiting confirmations hold'],
    ['resume', 'resume a paused campaign'],
    ['cancel', 'cancel: confirmations not yet decided end CAMPAIGN_CANCELLED; calls in progress end normally'],
  ] as const) {
    actorOption(practiceOption(campaign.command(`${name} <campaign-id>`).description(description))).action(
      async (campaignId: string, opts: { practice: string; actor?: string; reason?: string }) => {
        const ack = await deps.withCampaigns((api) => api[name](opts.practice, campaignId, actorOf(opts))).catch((err: unknown) => {
          throw controlError(err);
        });
        process.stdout.write(`campaign ${campaignId}: ${ack.state} at ${ack.at}\n`);
      },
    );
  }

  actorOption(
    practiceOption(
      campaign
        .command('limits <campaign-id>')
        .description("change a running campaign's channels and/or calls per second (takes effect within seconds)")
        .option('--channels <n>', 'most calls of this campaign at once', intOption('--channels'))
        .option('--cps <r>', 'most new calls per second', numberOption('--cps')),
    ),
  ).action(async (campaignId: string, opts: { practice: string; channels?: number; cps?: number; actor?: string; reason?: string }) => {
    if (opts.channels === undefined && opts.cps === undefined) throw new UserError('give --channels, --cps or both.', 2);
    const ack = await deps
      .withCampaigns((api) =>
        api.setLimits(opts.practice, campaignId, {
          ...actorOf(opts),
          ...(opts.channels === undefined ? {} : { channels: opts.channels }),
          ...(opts.cps === undefined ? {} : { callsPerSecond: opts.cps }),
        }),
      )
      .catch((err: unknown) => {
        throw controlError(err);
      });
    process.stdout.write(`campaign ${campaignId}: ${ack.limits.channels} channels, ${ack.limits.callsPerSecond} calls/s (${ack.state})\n`);
  });

  campaign
    .command('trunk-limits <trunk-id>')
    .description("change a trunk's channels and/or calls per second, for every campaign and single confirmation on it (database only; takes effect within a second)")
    .option('--channels <n>', 'most calls on the trunk at once', intOption('--channels'))
    .option('--cps <r>', 'most new calls per second on the trunk', numberOption('--cps'))
    .action(async (trunkId: string, opts: { channels?: number; cps?: number }) => {
      if (opts.channels === undefined && opts.cps === undefined) throw new UserError('give --channels, --cps or both.', 2);
      const store = await deps.openStore();
      try {
        const limits = await setTrunkLimits(store.sql, trunkId, {
          ...(opts.channels === undefined ? {} : { channels: opts.channels }),
          ...(opts.cps === undefined ? {} : { callsPerSecond: opts.cps }),
        }).catch((err: unknown) => {
          throw new UserError(`${(err as Error).message}.`, 2, { cause: err });
        });
        process.stdout.write(`trunk ${trunkId}: ${limits.channels} channels, ${limits.callsPerSecond} calls/s\n`);
      } finally {
        await store.close();
      }
    });

  campaign
    .command('list')
    .description('campaigns, newest first')
    .option('--practice <id>', 'only this practice')
    .option('--json', 'print JSON')
    .action(async (opts: { practice?: string; json?: boolean }) => {
      const store = await deps.openStore();
      try {
        const { listCampaigns } = await import('./queue');
        const list = await listCampaigns(store.sql, opts.practice === undefined ? undefined : validateId('practiceId', opts.practice));
        if (opts.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        else if (list.length === 0) process.stdout.write('no campaigns\n');
        else
          process.stdout.write(
            `${list.map((c) => `${c.practiceId}  ${c.campaignId}  ${c.state}  ${c.limits.channels} ch ${c.limits.callsPerSecond}/s  created ${c.createdAt.toISOString()}`).join('\n')}\n`,
          );
      } finally {
        await store.close();
      }
    });

  registerForecastCommand(campaign);
  return campaign;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The login name for the audit, or `cli` when the OS has none to give. */
function safeLogin(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function intOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UserError(`${name}: must be a whole number.`, 2);
    return n;
  };
}

function numberOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new UserError(`${name}: must be a number.`, 2);
    return n;
  };
}

/** A refused control as a sentence (the campaign's state, or a bad value). */
function controlError(err: unknown): unknown {
  if (err instanceof CampaignControlError) return new UserError(`${err.message}.`, 2, { cause: err });
  return optionError(err);
}

/** A 20-character bar of the share of contacts done. */
function bar(p: CampaignProgress): string {
  const done = (p.byPhase.DONE ?? 0) + p.byStatus.SKIPPED + p.byStatus.CANCELLED;
  const share = p.total === 0 ? 1 : done / p.total;
  const filled = Math.round(share * 20);
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${Math.round(share * 100)}%`;
}

function statusLine(view: CampaignView): string {
  const ended = view.workflowStatus !== 'RUNNING' && view.workflowStatus !== 'NOT_STARTED' ? ` (workflow ${view.workflowStatus})` : '';
  return `${campaignLine(view.progress)}${ended}`;
}
