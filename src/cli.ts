/**
 * `npm run cli -- <command>`: the backend API from a shell. Health data (requests, phone numbers)
 * is read from a file or standard input — never from arguments, which land in shell history and
 * process listings.
 */
import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import { z } from 'zod';
import { ConfirmationClient } from './client';
import { createDataConverter } from './codec';
import { ConfigError } from './config';
import { createStore } from './store';
import { trunkCredentials, Trunks } from './trunks';
import { ValidationError } from './validation';

const clientEnv = z.object({
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().optional(),
  PAYLOAD_ENCRYPTION_KEY: z.string({ error: 'required (payload encryption key, as the worker has it)' }).min(1, 'required'),
  DATABASE_URL: z.string().optional(),
  PGLITE_DATA_DIR: z.string().default('.data/pglite'),
});

async function readInput(file: string | undefined): Promise<string> {
  if (file && file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function withApi<T>(fn: (api: ConfirmationClient) => Promise<T>): Promise<T> {
  const parsed = clientEnv.safeParse(process.env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const env = parsed.data;
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const store = await createStore({ databaseUrl: env.DATABASE_URL, dataDir: env.PGLITE_DATA_DIR });
  try {
    const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE, dataConverter: createDataConverter(env.PAYLOAD_ENCRYPTION_KEY) });
    return await fn(new ConfirmationClient({ client, store, taskQueue: env.TEMPORAL_TASK_QUEUE }));
  } finally {
    await store.close();
    await connection.close();
  }
}

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

const program = new Command('call-campaigns').description('Appointment confirmations by phone, on Temporal and LiveKit');
program
  .command('start')
  .description('start a confirmation from a JSON ConfirmationRequest (file or stdin)')
  .option('-f, --file <path>', 'request JSON file; - or omitted: standard input')
  .action(async (opts: { file?: string }) => print(await withApi(async (api) => api.startConfirmation(JSON.parse(await readInput(opts.file))))));
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
    const phone = (await readInput(opts.file)).trim();
    print(await withApi((api) => api.optOut(phone, opts.source)));
  });
program
  .command('consent <practiceId>')
  .description('record consent for a number (E.164, read from stdin or a file) to be called by the practice')
  .option('-f, --file <path>', 'file holding the number; - or omitted: standard input')
  .option('--revoke', 'record a withdrawal instead')
  .option('--source <source>', 'where the consent was given', 'cli')
  .action(async (practiceId: string, opts: { file?: string; revoke?: boolean; source: string }) => {
    const phone = (await readInput(opts.file)).trim();
    await withApi((api) => api.recordConsent({ practiceId, phone, granted: !opts.revoke, source: opts.source }));
  });

const livekitEnv = z.object({
  LIVEKIT_URL: z.string({ error: 'required (LiveKit server URL)' }).min(1),
  LIVEKIT_API_KEY: z.string({ error: 'required' }).min(1),
  LIVEKIT_API_SECRET: z.string({ error: 'required' }).min(1),
});
function trunks(): Trunks {
  const parsed = livekitEnv.safeParse(process.env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return new Trunks({ url: parsed.data.LIVEKIT_URL, apiKey: parsed.data.LIVEKIT_API_KEY, apiSecret: parsed.data.LIVEKIT_API_SECRET });
}
const trunk = program.command('trunk').description('outbound SIP trunks on LiveKit (credentials from SIP_TRUNK_AUTH_* or --credentials-file; never printed)');
trunk
  .command('create <name> <address> <numbers...>')
  .description('create an outbound trunk: carrier address and caller-ID numbers (E.164)')
  .option('--credentials-file <path>', 'JSON {"authUsername", "authPassword"}; default: SIP_TRUNK_AUTH_USERNAME / SIP_TRUNK_AUTH_PASSWORD')
  .action(async (name: string, address: string, numbers: string[], opts: { credentialsFile?: string }) =>
    print(await trunks().create({ name, address, numbers, ...(await trunkCredentials(process.env, opts.credentialsFile)) })),
  );
trunk.command('list').description('list outbound trunks (credentials masked)').action(async () => print(await trunks().list()));
trunk.command('delete <id>').description('delete a trunk').action(async (id: string) => trunks().delete(id));

program.parseAsync().catch((err: unknown) => {
  const known = err instanceof ValidationError || err instanceof ConfigError || err instanceof SyntaxError;
  process.stderr.write(`call-campaigns: ${known ? (err as Error).message : ((err as Error)?.stack ?? String(err))}\n`);
  process.exit(known ? 2 : 1);
});
