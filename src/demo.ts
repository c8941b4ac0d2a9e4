/**
 * `npm run demo`: the whole system on one machine, with no account anywhere. Starts the Temporal
 * dev server with its Web UI (and a codec server so the UI can read the encrypted payloads), the
 * embedded database, the worker, the voice agent in offline mode (keypad, espeak-ng speech, Silero
 * voice activity) and the local LiveKit stack with the phone-network simulator; then confirms three
 * sample appointments and prints each step as it happens:
 *   - Alex answers and presses 1;
 *   - Sam is busy, and presses 1 when the retry calls (short demo settings: 10 s backoff);
 *   - Robin's answering machine picks up: the agent leaves one message.
 * The Web UI stays up until Ctrl-C.
 *
 * With LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, LIVEKIT_SIP_TRUNK_ID and DEMO_PHONES
 * (three E.164 numbers, comma-separated) in the environment it calls real phones through that
 * LiveKit project instead.
 */
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { startCodecServer } from './codec-server';
import { EncryptionCodec } from './codec';
import { Phase, type ConfirmationRequest } from './contracts';
import { startLocalSystem } from './dev/local-system';
import { zoneInOfficeHours } from './dev/office-hours';
import { freePort } from './dev/temporal-dev-server';
import { exitWithError, UserError } from './errors';
import { DEFAULT_CALLING_RULES } from './rules/calling-window';

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


/** The demo's patients: who they are, and what their (simulated) phone does. */
const SAMPLES = [
  { name: 'Alex Rivera', phone: '+12125550113', story: 'answers and presses 1' },
  { name: 'Sam Okafor', phone: '+12125550119', story: 'is busy, then presses 1 when the retry calls' },
  { name: 'Robin Lee', phone: '+12125550111', story: 'has an answering machine' },
];

/** Real LiveKit and trunk settings, when the environment has them all. */
function realPhones(): { livekit: { url: string; apiKey: string; apiSecret: string; sipTrunkId: string }; phones: string[] } | undefined {
  const e = process.env;
  if (!e.LIVEKIT_URL || !e.LIVEKIT_SIP_TRUNK_ID) return undefined;
  const missing = ['LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET', 'DEMO_PHONES'].filter((k) => !e[k]);
  if (missing.length) throw new UserError(`real-phone demo: set ${missing.join(', ')} as well (DEMO_PHONES: three E.164 numbers, comma-separated)`);
  const phones = e.DEMO_PHONES!.split(',').map((p) => p.trim());
  if (phones.length !== 3 || phones.some((p) => !/^\+[1-9]\d{6,14}$/.test(p))) throw new UserError('DEMO_PHONES: must be three E.164 numbers like +13125550123, comma-separated');
  return { livekit: { url: e.LIVEKIT_URL, apiKey: e.LIVEKIT_API_KEY!, apiSecret: e.LIVEKIT_API_SECRET!, sipTrunkId: e.LIVEKIT_SIP_TRUNK_ID }, phones };
}

/** The agent's log lines worth showing (ids only; its logs never carry names or numbers). */
const AGENT_EVENTS: Record<string, string> = {
  answered: 'answered by',
  'key pressed': 'heard key',
  'hanging up': 'hangs up:',
};

async function main(): Promise<void> {
  const keepRunning = process.argv.includes('--keep-running') || (process.stdout.isTTY && !process.argv.includes('--exit'));
  await mkdir(DATA_DIR, { recursive: true });
  Runtime.install({ logger: new DefaultLogger('ERROR') }); // expected call failures (busy) are not news here
  const key = await demoKey();
  const real = realPhones();

  const uiPort = Number(process.env.DEMO_UI_PORT ?? (await freePort()));
  const uiOrigin = `http://127.0.0.1:${uiPort}`;
  const codecServer = await startCodecServer({ encryptionKey: key, allowedOrigin: uiOrigin });
  say(`starting Temporal (dev server + Web UI), the database, the worker, the voice agent (offline mode)${real ? '' : ' and the local LiveKit stack with the phone-network simulator'}…`);
  const byWorkflow = new Map<string, string>();
  // The agent worker's full log (ids only, never names or numbers), for anyone who wants the detail.
  const agentLog = createWriteStream(`${DATA_DIR}/agent.log`, { flags: 'w' });
  const system = await startLocalSystem({
    payloadEncryptionKey: key,
    temporal: { uiPort, headless: false, dbFile: `${DATA_DIR}/temporal-dev.db`, extraArgs: ['--ui-codec-endpoint', codecServer.url] },
    // Every day, so the demo runs on a Sunday too; the legal 08:00–21:00 bounds still hold.
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], start: '08:00', end: '21:00', maxCallsPerDay: 3 },
    agentEnv: { AGENT_LOG_LEVEL: 'info' },
    agentProcesses: SAMPLES.length, // one warm process per simultaneous call
    // The CLI's default database: an opt-out typed in another terminal reaches this demo (see below).
    dataDir: `${DATA_DIR}/pglite`,
    livekit: real?.livekit,
    agentEcho: (line) => {
      agentLog.write(`${line}\n`);
      const m = /"workflowId":"([^"]+)".*"msg":"([^"]+)"/.exec(line);
      if (!m || !(m[2]! in AGENT_EVENTS)) return;
      const detail = /"(answerer|digit|why)":"([^"]+)"/.exec(line)?.[2] ?? '';
      say(`${byWorkflow.get(m[1]!) ?? m[1]}: agent ${AGENT_EVENTS[m[2]!]} ${detail}`);
    },
  });
  const ui = system.temporal.uiUrl ?? uiOrigin;
  say(`Temporal ${system.temporal.address}, Web UI ${ui} (codec server ${codecServer.url})`);
  say(
    `the CLI works against this demo while it runs, e.g. an opt-out: TEMPORAL_ADDRESS=${system.temporal.address} PAYLOAD_ENCRYPTION_KEY="$(cat ${DATA_DIR}/payload-key)" npm run cli -- opt-out < number.txt`,
  );
  say(real ? `LiveKit ${real.livekit.url}, trunk ${real.livekit.sipTrunkId} (real phones)` : `LiveKit ${system.livekit.url} with the phone-network simulator; agent in offline mode`);

  const zone = zoneInOfficeHours();
  say(`sample patients in ${zone} (local time ${DateTime.now().setZone(zone).toFormat('ccc HH:mm')}):`);
  const stamp = DateTime.now().toFormat('yyyyLLddHHmmss');
  const started = await Promise.all(
    SAMPLES.map(async (sample, i) => {
      const phone = real?.phones[i] ?? sample.phone;
      const request: ConfirmationRequest = {
        appointmentId: `demo-${stamp}-${i + 1}`,
        patientId: `demo-patient-${i + 1}`,
        patientName: sample.name,
        phone,
        patientTimeZone: zone,
        appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).set({ hour: 9 + i, minute: 30, second: 0, millisecond: 0 }).toISO()!,
        practiceId: 'bright-smiles',
        practiceName: 'Bright Smiles Dental',
        practiceCallbackNumber: '+13125550100',
        provider: 'Dr. Rivera',
        reason: 'cleaning',
        // Short demo settings: retry after 10 s instead of 30 min.
        policy: { initialBackoffSeconds: 10, maxAttempts: 2 },
      };
      await system.api.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'demo intake form' });
      const { workflowId } = await system.api.startConfirmation(request);
      const label = `${sample.name.split(' ')[0]} (${request.appointmentId})`;
      byWorkflow.set(workflowId, label);
      say(`  ${label} ${real ? '' : sample.story}`);
      say(`    history: ${ui}/namespaces/default/workflows/${workflowId}`);
      return { workflowId, request, label };
    }),
  );

  await Promise.all(
    started.map(async ({ workflowId, request, label }) => {
      let last = '';
      for (;;) {
        const status = await system.api.getStatus(workflowId);
        const line = `phase ${status.phase}${status.attempt ? `, attempt ${status.attempt}` : ''}${status.nextCallAt ? `, next call ${status.nextCallAt}` : ''}${status.lastOutcome ? `, last outcome ${status.lastOutcome}` : ''}`;
        if (line !== last) say(`${label}: ${(last = line)}`);
        if (status.phase === Phase.DONE) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      const result = await system.api.result(workflowId);
      const row = await system.store.getAppointment(request.practiceId, request.appointmentId);
      say(`${label}: result ${result.outcome} after ${result.attempts.length} call(s): ${result.attempts.map((a) => `${a.outcome} (SIP ${a.sipStatusCode ?? '-'})`).join(', ')}; written back: ${row?.status} ${row?.outcome}`);
    }),
  );
  say(`the agent's log: ${DATA_DIR}/agent.log`);
  say(`operators: find them in the Web UI with the query  PracticeId="bright-smiles"`);

  if (keepRunning) {
    say(`the Web UI stays up at ${ui} — Ctrl-C to stop`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  await system.stop();
  codecServer.server.close();
  say('stopped');
}

main().catch((err: unknown) => exitWithError('demo', err));
