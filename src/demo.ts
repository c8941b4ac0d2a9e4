/**
 * `npm run demo`: the whole system on embedded defaults, on one machine, with no account anywhere.
 * Starts the Temporal dev server with its Web UI (and a codec server so the UI can read the
 * encrypted payloads), the embedded database and the worker, confirms one sample appointment whose
 * phone is scripted (busy first, then answered and confirmed), and prints each phase as it happens.
 *
 * Phones are scripted behind the production Telephony port in this version; the next issues dial
 * through LiveKit and talk through the voice agent.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { ConfirmationClient } from './client';
import { startCodecServer } from './codec-server';
import { EncryptionCodec, createDataConverter } from './codec';
import { CallOutcome, Phase, type ConfirmationRequest } from './contracts';
import { PHONES, ScriptedTelephony } from './dev/scripted-telephony';
import { zoneInOfficeHours } from './dev/office-hours';
import { freePort, startTemporalDevServer } from './dev/temporal-dev-server';
import { createLogger } from './logger';
import { DEFAULT_CALLING_RULES } from './rules/calling-window';
import { createStore } from './store';
import { createConfirmationWorker } from './worker-factory';

const DATA_DIR = process.env.DEMO_DATA_DIR ?? '.data';
const say = (line: string) => process.stdout.write(`${DateTime.now().toFormat('HH:mm:ss')}  ${line}\n`);

/** The demo's payload key: generated once, kept private in the data directory. */
async function demoKey(): Promise<string> {
  const file = `${DATA_DIR}/payload-key`;
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const key = EncryptionCodec.generateSetting('demo');
    await writeFile(file, `${key}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    return key;
  }
}


async function main(): Promise<void> {
  const keepRunning = process.argv.includes('--keep-running') || (process.stdout.isTTY && !process.argv.includes('--exit'));
  await mkdir(DATA_DIR, { recursive: true });
  Runtime.install({ logger: new DefaultLogger('ERROR') }); // expected call failures (busy) are not news here
  const key = await demoKey();

  const uiPort = Number(process.env.DEMO_UI_PORT ?? (await freePort()));
  const uiOrigin = `http://127.0.0.1:${uiPort}`;
  const codecServer = await startCodecServer({ encryptionKey: key, allowedOrigin: uiOrigin });
  say('starting the Temporal dev server (with the Web UI)…');
  const temporal = await startTemporalDevServer({
    uiPort,
    headless: false,
    dbFile: `${DATA_DIR}/temporal-dev.db`,
    extraArgs: ['--ui-codec-endpoint', codecServer.url],
  });
  say(`Temporal ${temporal.address}, Web UI ${temporal.uiUrl ?? uiOrigin} (codec server ${codecServer.url})`);

  // A fresh database each run: the sample patient's per-number caps (calls a day / a week) would
  // otherwise fill up after a few demos. Histories persist in the dev server's file.
  const store = await createStore({});
  say('database: embedded PGlite, in memory for the demo (migrations applied)');
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }), dataConverter: createDataConverter(key) });
  const api = new ConfirmationClient({ client, store });
  const phones = new ScriptedTelephony(client);
  const worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: temporal.address }),
    payloadEncryptionKey: key,
    store,
    telephony: phones,
    // Every day, so the demo runs on a Sunday too; the legal 08:00–21:00 bounds still hold.
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '21:00', maxCallsPerDay: 3 },
    logger,
    onOptOut: async (phone, except) => void (await api.stopConfirmationsOf(phone, except)),
  });
  const running = worker.run();
  say('worker running on task queue call-campaigns');

  const zone = zoneInOfficeHours();
  const request: ConfirmationRequest = {
    appointmentId: `demo-${DateTime.now().toFormat('yyyyLLddHHmmss')}`,
    patientId: 'demo-patient-1',
    patientName: 'Jordan Sample',
    phone: '+12125550123',
    patientTimeZone: zone,
    appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 10, minute: 30, second: 0, millisecond: 0 }).toISO()!,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
    // Short demo settings: retry after 10 s instead of 30 min.
    policy: { initialBackoffSeconds: 10 },
  };
  await api.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'demo intake form' });
  phones.script(request.phone, PHONES.busy, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
  say(`sample patient in ${zone} (local time ${DateTime.now().setZone(zone).toFormat('ccc HH:mm')}); their phone is scripted: busy, then answered and confirmed`);

  const { workflowId } = await api.startConfirmation(request);
  const link = `${temporal.uiUrl ?? uiOrigin}/namespaces/default/workflows/${workflowId}`;
  say(`started ${workflowId}`);
  say(`history in the Web UI: ${link}`);

  let last = '';
  for (;;) {
    const status = await api.getStatus(workflowId);
    const line = `phase ${status.phase}${status.attempt ? `, attempt ${status.attempt}` : ''}${status.nextCallAt ? `, next call ${status.nextCallAt}` : ''}${status.lastOutcome ? `, last outcome ${status.lastOutcome}` : ''}`;
    if (line !== last) say((last = line));
    if (status.phase === Phase.DONE) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const result = await api.result(workflowId);
  say(`result: ${result.outcome} after ${result.attempts.length} attempt(s): ${result.attempts.map((a) => `${a.outcome} (SIP ${a.sipStatusCode ?? '-'})`).join(', ')}`);
  const row = await store.getAppointment(request.practiceId, request.appointmentId);
  say(`written back to the appointments table: ${row?.status} ${row?.outcome}`);
  say(`operators: find it in the UI with the query  AppointmentId="${request.appointmentId}"`);

  const stop = async () => {
    worker.shutdown();
    await running.catch(() => undefined);
    await store.close();
    await temporal.stop();
    codecServer.server.close();
  };
  if (keepRunning) {
    say(`the Web UI stays up at ${link} — Ctrl-C to stop`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  await stop();
  say('stopped');
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
