/**
 * `npm run cli -- <command>`: the backend API from a shell. Health data (requests, phone numbers)
 * is read from a file or standard input — never from arguments, which land in shell history and
 * process listings.
 */
import { readFile } from 'node:fs/promises';
import { Client, Connection, QueryNotRegisteredError, QueryRejectedError, WorkflowNotFoundError } from '@temporalio/client';
import { Command } from 'commander';
import { z } from 'zod';
import { CampaignClient } from './campaigns/client';
import { registerCampaignCommands } from './campaigns/cli';
import { ConfirmationClient } from './client';
import { createDataConverter } from './codec';
import { ConfigError, databaseUrlSchema, payloadKeySchema } from './config';
import { databaseError, errorCode, exitWithError, liveKitError, redact, temporalError, UserError } from './errors';
import { createStore, type SqlStore } from './store';
import { validateTimeZoneOverride } from './time-zone-override';
import { trunkCredentials, Trunks } from './trunks';
import { validateId, validatePhone, ValidationError } from './validation';

const clientEnv = z.object({
  TEMPORAL_ADDRESS: z.string().trim().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().trim().min(1, 'must not be empty').default('default'),
  TEMPORAL_TASK_QUEUE: z.string().trim().min(1, 'must not be empty').optional(),
  PAYLOAD_ENCRYPTION_KEY: payloadKeySchema("payload encryption key, the same as the worker's"),
  DATABASE_URL: databaseUrlSchema,
  PGLITE_DATA_DIR: z.string().trim().min(1, 'must not be empty').default('.data/pglite'),
});
type ClientEnv = z.infer<typeof clientEnv>;

function env(): ClientEnv {
  const parsed = clientEnv.safeParse(process.env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return parsed.data;
}

type DatabaseEnv = Pick<ClientEnv, 'DATABASE_URL' | 'PGLITE_DATA_DIR'>;

/** The database settings alone: commands that only read the database need no Temporal settings or payload key. */
function databaseEnv(): DatabaseEnv {
  const parsed = clientEnv.pick({ DATABASE_URL: true, PGLITE_DATA_DIR: true }).safeParse(process.env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return parsed.data;
}

/** A file's text, or standard input. A file that cannot be read is named, with the reason only. */
async function readInput(file: string | undefined, option = '--file'): Promise<string> {
  if (file && file !== '-') {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new UserError(`${option}: cannot read ${file} (${errorCode(err)}).`, 3, { cause: err });
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** JSON from the user. The parser's message quotes the text (health data, passwords): only the position is kept. */
function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0];
    throw new UserError(`${what} is not valid JSON${at ? ` (${at})` : text.trim() === '' ? ' (it is empty)' : ''}.`);
  }
}

async function openStore(e: DatabaseEnv) {
  return createStore({ databaseUrl: e.DATABASE_URL, dataDir: e.PGLITE_DATA_DIR, processName: 'cli' }).catch((err: unknown) => {
    throw databaseError(err, { url: e.DATABASE_URL, dataDir: e.PGLITE_DATA_DIR });
  });
}

async function connectTemporal(e: ClientEnv): Promise<Connection> {
  const connection = await Connection.connect({ address: e.TEMPORAL_ADDRESS, connectTimeout: '5s' }).catch((err: unknown) => {
    throw temporalError(err, e.TEMPORAL_ADDRESS, e.TEMPORAL_NAMESPACE);
  });
  try {
    await connection.workflowService.describeNamespace({ namespace: e.TEMPORAL_NAMESPACE });
  } catch (err) {
    await connection.close();
    throw temporalError(err, e.TEMPORAL_ADDRESS, e.TEMPORAL_NAMESPACE);
  }
  return connection;
}

/** The API on Temporal (and `store`, when given), closed afterwards; failures the user can fix are named. */
async function withApi<T>(fn: (api: ConfirmationClient) => Promise<T>, store?: SqlStore): Promise<T> {
  const e = env();
  const connection = await connectTemporal(e);
  try {
    const client = new Client({ connection, namespace: e.TEMPORAL_NAMESPACE, dataConverter: createDataConverter(e.PAYLOAD_ENCRYPTION_KEY) });
    return await fn(new ConfirmationClient({ client, store, taskQueue: e.TEMPORAL_TASK_QUEUE })).catch((err: unknown) => {
      throw temporalFailure(err);
    });
  } finally {
    await connection.close();
  }
}

/** Failures of a Temporal call the user can act on. */
function temporalFailure(err: unknown): unknown {
  if (err instanceof WorkflowNotFoundError) {
    return new UserError(`no confirmation with workflow id ${err.workflowId ?? '(unknown)'}: check the id (\`status\` takes the workflowId that \`start\` printed) and TEMPORAL_NAMESPACE.`, 2, { cause: err });
  }
  // Temporal answers a query only through a worker: none polling the task queue looks like this.
  if (/query timed out before a worker could process it/i.test(`${(err as Error)?.message} ${((err as Error)?.cause as Error | undefined)?.message}`)) {
    return new UserError(
      'no worker answered the status query: start the worker (`npm run worker`) on the same TEMPORAL_NAMESPACE and TEMPORAL_TASK_QUEUE.',
      3,
      { cause: err },
    );
  }
  if (err instanceof QueryNotRegisteredError || err instanceof QueryRejectedError) {
    return new UserError('the confirmation cannot answer a status query; is it a confirmation workflow?', 2, { cause: err });
  }
  return err;
}

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

const program = new Command('call-campaigns').description('Appointment confirmations by phone, on Temporal and LiveKit');
// Commander prints its own errors (`unknown command '…'` quotes the argument: a pasted number or
// time) and exits: through the same redaction as every other message. Set before any subcommand,
// which inherits it.
program.configureOutput({ outputError: (text, write) => write(redact(text)) });
program
  .command('start')
  .description('start a confirmation from a JSON ConfirmationRequest (file or stdin)')
  .option('-f, --file <path>', 'request JSON file; - or omitted: standard input')
  .action(async (opts: { file?: string }) => {
    const request = parseJson(await readInput(opts.file), 'the request');
    print(await withApi((api) => api.startConfirmation(request)));
  });
program
  .command('status <workflowId>')
  .description('phase, attempt, next call time and outcomes of a confirmation')
  .action(async (workflowId: string) => print(await withApi((api) => api.getStatus(workflowId))));
program
  .command('cancel <practiceId> <appointmentId>')
  .description('the practice cancelled the appointment: stop its confirmation')
  .action(async (practiceId: string, appointmentId: string) => withApi((api) => api.cancel(practiceId, appointmentId)));
program
  .command('move <practiceId> <appointmentId> <appointmentStart>')
  .description('the appointment moved (ISO 8601 with offset): re-plan')
  .action(async (practiceId: string, appointmentId: string, start: string) => withApi((api) => api.moveAppointment(practiceId, appointmentId, start)));
program
  .command('opt-out')
  .description('put a number (E.164, read from stdin or a file) on the do-not-call list and stop its confirmations')
  .option('-f, --file <path>', 'file holding the number; - or omitted: standard input')
  .option('--source <source>', 'where the opt-out came from', 'cli')
  .action(async (opts: { file?: string; source: string }) => {
    const phone = validatePhone('phone', (await readInput(opts.file)).trim());
    const store = await openStore(env());
    try {
      // The do-not-call entry first: it holds (no later plan dials the number) even when Temporal cannot be reached.
      await store.addDoNotCall(phone, opts.source, 'patient opted out');
      try {
        print({ signalled: await withApi((api) => api.stopConfirmationsOf(phone), store) });
      } catch (err) {
        const why = err instanceof UserError ? err.message : `an unexpected failure (${errorCode(err)}).`;
        throw new UserError(`the number is on the do-not-call list, but its running confirmations were not told to stop: ${why} Run the opt-out again once that is fixed.`, 3, { cause: err });
      }
    } finally {
      await store.close();
    }
  });
program
  .command('consent <practiceId>')
  .description('record consent for a number (E.164, read from stdin or a file) to be called by the practice')
  .option('-f, --file <path>', 'file holding the number; - or omitted: standard input')
  .option('--revoke', 'record a withdrawal instead')
  .option('--source <source>', 'where the consent was given', 'cli')
  .action(async (practiceId: string, opts: { file?: string; revoke?: boolean; source: string }) => {
    const phone = (await readInput(opts.file)).trim();
    const input = { practiceId: validateId('practiceId', practiceId), phone: validatePhone('phone', phone), granted: !opts.revoke, source: opts.source };
    const store = await openStore(env());
    try {
      await store.recordConsent(input);
    } finally {
      await store.close();
    }
  });

program
  .command('tz-override <practiceId>')
  .description("record that the patient of a number (E.164, read from stdin or a file) lives in another time zone than the number's own; calls then follow that zone alone (audited)")
  .option('-f, --file <path>', 'file holding the number; - or omitted: standard input')
  .option('--zone <zone>', 'IANA time zone the patient lives in (e.g. Pacific/Honolulu)')
  .option('--clear', 'withdraw the override (the number’s own zones count again)')
  .requiredOption('--reason <reason>', 'why (e.g. "patient confirmed they moved to Hawaii"); no further health details')
  .requiredOption('--actor <actor>', 'who records it (operator id)')
  .action(async (practiceId: string, opts: { file?: string; zone?: string; clear?: boolean; reason: string; actor: string }) => {
    if ((opts.zone === undefined) === (opts.clear !== true)) throw new UserError('tz-override: give either --zone <IANA zone> or --clear.');
    const phone = (await readInput(opts.file)).trim();
    const input = validateTimeZoneOverride({ practiceId, phone, zone: opts.clear ? null : opts.zone, reason: opts.reason, actor: opts.actor });
    const store = await openStore(databaseEnv());
    try {
      const overrideId = await store.recordTimeZoneOverride(input);
      // Waiting confirmations of the number plan again now. Without Temporal settings (or a reachable
      // server) the override still holds: each confirmation reads it at its next plan.
      let replanned: number | undefined;
      try {
        replanned = await withApi((api) => api.replanConfirmationsOf(input.practiceId, input.phone), store);
      } catch (err) {
        const why = err instanceof UserError || err instanceof ConfigError ? err.message : `an unexpected failure (${errorCode(err)}).`;
        process.stderr.write(`tz-override: recorded; waiting confirmations of the number were not told to plan again (${why}); they use it at their next plan.\n`);
      }
      print({ overrideId, zone: input.zone, ...(replanned === undefined ? {} : { replanned }) });
    } finally {
      await store.close();
    }
  });

const livekitEnv = z.object({
  LIVEKIT_URL: z
    .string({ error: 'required (LiveKit server URL, e.g. wss://example.livekit.cloud)' })
    .trim()
    .min(1, 'required (LiveKit server URL, e.g. wss://example.livekit.cloud)')
    .pipe(z.url({ protocol: /^(wss?|https?)$/, error: 'must be a ws://, wss://, http:// or https:// URL' })),
  LIVEKIT_API_KEY: z.string({ error: 'required (LiveKit API key)' }).trim().min(1, 'required (LiveKit API key)'),
  LIVEKIT_API_SECRET: z.string({ error: 'required (LiveKit API secret)' }).trim().min(1, 'required (LiveKit API secret)'),
});

/** Trunk administration; LiveKit's failures are named by the setting to fix (never its text: it may echo the token). */
async function withTrunks<T>(fn: (trunks: Trunks) => Promise<T>): Promise<T> {
  const parsed = livekitEnv.safeParse(process.env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const { LIVEKIT_URL: url, LIVEKIT_API_KEY: apiKey, LIVEKIT_API_SECRET: apiSecret } = parsed.data;
  try {
    return await fn(new Trunks({ url, apiKey, apiSecret }));
  } catch (err) {
    if (err instanceof UserError || err instanceof ValidationError) throw err;
    throw liveKitError(err, url, 'the LiveKit SIP API');
  }
}
const trunk = program.command('trunk').description('outbound SIP trunks on LiveKit (credentials from SIP_TRUNK_AUTH_* or --credentials-file; never printed)');
trunk
  .command('create <name> <address> <numbers...>')
  .description('create an outbound trunk: carrier address and caller-ID numbers (E.164)')
  .option('--credentials-file <path>', 'JSON {"authUsername", "authPassword"}; default: SIP_TRUNK_AUTH_USERNAME / SIP_TRUNK_AUTH_PASSWORD')
  .action(async (name: string, address: string, numbers: string[], opts: { credentialsFile?: string }) => {
    const credentials = await trunkCredentials(process.env, opts.credentialsFile);
    print(await withTrunks((t) => t.create({ name, address, numbers, ...credentials })));
  });
trunk.command('list').description('list outbound trunks (credentials masked)').action(async () => print(await withTrunks((t) => t.list())));
trunk
  .command('delete <id>')
  .description('delete an outbound trunk')
  .action(async (id: string) => print(await withTrunks((t) => t.delete(id))));

registerCampaignCommands(program, {
  openStore: () => openStore(databaseEnv()),
  async withCampaigns(fn) {
    const e = env();
    const store = await openStore(e);
    try {
      const connection = await connectTemporal(e);
      try {
        const client = new Client({ connection, namespace: e.TEMPORAL_NAMESPACE, dataConverter: createDataConverter(e.PAYLOAD_ENCRYPTION_KEY) });
        const api = new CampaignClient({ client, sql: store.sql, taskQueue: e.TEMPORAL_TASK_QUEUE });
        return await fn(api, { webUi: process.env.TEMPORAL_UI_URL?.trim() || 'http://127.0.0.1:8233', namespace: e.TEMPORAL_NAMESPACE });
      } finally {
        await connection.close();
      }
    } finally {
      await store.close();
    }
  },
});

program.parseAsync().catch((err: unknown) => exitWithError('call-campaigns', err));
