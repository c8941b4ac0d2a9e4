/**
 * `npm run demo`: the whole system on one machine, with no account anywhere. Starts the Temporal
 * dev server with its Web UI (and a codec server so the UI can read the encrypted payloads), the
 * embedded database, the worker, the voice agent in offline mode (keypad, espeak-ng speech, Silero
 * voice activity, PocketSphinx speech recognition and the offline intent matcher) and the local
 * LiveKit stack with the phone-network simulator; then confirms three sample appointments and
 * prints each step as it happens:
 *   - Alex answers and says "Yes, I'll be there." once the agent has asked;
 *   - Sam is busy, and presses 1 when the retry calls (short demo settings: 10 s backoff): the keypad;
 *   - Robin's answering machine picks up: the agent leaves one message.
 * At the same time a small campaign runs: a dozen fictional patients from a sample schedule
 * (src/campaigns/sample.ts, regenerated relative to now), 3 channels, with live progress, each
 * simulated phone scripted (see CAMPAIGN_PHONES): most answer aloud, one on the keypad. The Web UI stays up until Ctrl-C (`--exit`: stop
 * when done).
 *
 * With LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, LIVEKIT_SIP_TRUNK_ID and DEMO_PHONES
 * (three E.164 numbers, comma-separated) in the environment it calls real phones through that
 * LiveKit project instead (the three single confirmations only: the campaign's fictional numbers
 * are never dialed through a real trunk).
 */
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { Runtime } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { CampaignClient } from './campaigns/client';
import { progressLine } from './campaigns/progress-line';
import { campaignResults } from './campaigns/results';
import { makeScheduleText } from './campaigns/sample';
import { startCodecServer } from './codec-server';
import { EncryptionCodec } from './codec';
import { Phase, type ConfirmationRequest } from './contracts';
import { PHONE_SCENARIOS } from './dev/livekit-stack';
import { startLocalSystem, type LocalSystem } from './dev/local-system';
import { simulatedPatientZone, zoneInOfficeHours } from './dev/office-hours';
import { freePort } from './dev/temporal-dev-server';
import { exitWithError, UserError } from './errors';
import { createLogger, temporalLogger } from './logger';
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
  { name: 'Alex Rivera', phone: '+12125550128', story: 'answers and says "Yes, I\'ll be there." once asked' },
  { name: 'Sam Okafor', phone: '+12125550119', story: 'is busy, then presses 1 when the retry calls' },
  { name: 'Robin Lee', phone: '+12125550111', story: 'has an answering machine' },
];

/** The demo campaign: its size, its channels, and the practice it calls for. */
const CAMPAIGN_ROWS = 12;
const CAMPAIGN_CHANNELS = 3;
const PRACTICE = { practiceId: 'bright-smiles', practiceName: 'Bright Smiles Dental', practiceCallbackNumber: '+13125550100' };

/** A key press 1.5 s after the agent's greeting starts (tools/phone-sim cue). */
const press = (key: string) => ({ press: key, after: 'agent-audio', afterMs: 1500 });
/**
 * A spoken answer (a clip of scripts/phone-audio.sh) once the agent has asked "Can you make it?",
 * about 13 s into its greeting: the patient answers over the keypad menu that follows, as people
 * do (the agent stops and listens), which keeps the demo's calls short.
 */
const speak = (clip: string) => ({ play: clip, after: 'agent-audio', afterMs: 13_000 });
/**
 * What the campaign patients' simulated phones do, by row of the sample schedule: the simulator
 * picks a phone by the dialed number (tools/phone-sim/scenarios.json), so the demo adds one
 * scenario per sample number to a copy of that file.
 */
const CAMPAIGN_PHONES: Record<string, unknown>[] = [
  { behavior: 'answer', script: [speak('answer-yes')] },
  { behavior: 'answer', answerAfterMs: 2000, script: [press('1')] }, // the keypad still works
  { behavior: 'answer', script: [speak('answer-reschedule')] },
  { sequence: ['busy', 'answer'], script: [speak('answer-yes-2')] },
  { behavior: 'answer', script: [speak('answer-yes-2')] },
  { behavior: 'answer', script: [speak('answer-cancel')] },
  // No answering machine here: Robin shows that, and a machine's calls are the longest.
  { behavior: 'answer', answerAfterMs: 1500, script: [speak('answer-yes')] },
  { behavior: 'answer', answerAfterMs: 1000, script: [speak('answer-yes-2')] },
  { behavior: 'unavailable' },
  { behavior: 'answer', script: [speak('answer-yes')] },
  { sequence: ['unavailable', 'answer'], script: [speak('answer-yes-2')] },
  { behavior: 'answer', answerAfterMs: 2000, script: [speak('answer-yes')] },
];

/** The sample schedule's numbers (fourth column), in row order. */
const phonesOf = (csv: string): string[] => csv.trim().split('\r\n').slice(1).map((line) => line.split(',')[3]!);

/** Writes the simulator's scenarios: the bundled ones and one per campaign number. */
async function writeScenarios(csv: string): Promise<string> {
  const base = JSON.parse(await readFile(PHONE_SCENARIOS, 'utf8')) as { number: string }[];
  const added = phonesOf(csv).map((number, i) => ({ number, ...CAMPAIGN_PHONES[i % CAMPAIGN_PHONES.length], description: 'demo campaign patient' }));
  const numbers = new Set(added.map((a) => a.number));
  const file = `${DATA_DIR}/demo-phone-scenarios.json`;
  await writeFile(file, JSON.stringify([...base.filter((b) => !numbers.has(b.number)), ...added], null, 1));
  return file;
}

/**
 * The campaign part: consent for each sample patient, import and start through CampaignClient (as
 * `campaign start` does), then one progress line per refresh until it ends, and each appointment's
 * outcome (ids only).
 */
async function runCampaign(system: LocalSystem, csv: string, ui: string, stamp: string, zone: string): Promise<void> {
  const campaigns = new CampaignClient({ client: system.client, sql: system.store.sql });
  for (const phone of phonesOf(csv)) {
    await system.api.recordConsent({ practiceId: PRACTICE.practiceId, phone, granted: true, source: 'demo intake form' });
    // Simulated phones: the fictional patient lives where it is office hours now, whatever the number's area code.
    await system.api.recordTimeZoneOverride(simulatedPatientZone(PRACTICE.practiceId, phone, zone));
  }
  const campaignId = `demo-${stamp}`;
  const { report, workflow } = await campaigns.start(
    // Short demo settings, as for the single confirmations: retry after 10 s, at most 2 calls.
    { ...PRACTICE, campaignId, limits: { channels: CAMPAIGN_CHANNELS, callsPerSecond: 1 }, policy: { initialBackoffSeconds: 10, maxAttempts: 2 } },
    { csv },
    { actor: 'demo' },
  );
  say(`campaign ${campaignId}: ${report.added} patients imported from the sample schedule (${report.invalid.length} bad rows), ${CAMPAIGN_CHANNELS} channels`);
  say(`    history: ${ui}/namespaces/default/workflows/${workflow.workflowId}`);
  let last = '';
  let progress;
  for (;;) {
    const status = await campaigns.status(PRACTICE.practiceId, campaignId);
    progress = status.progress;
    // The estimated finish moves with every refresh; a line is printed when anything else changes.
    const line = progressLine({ ...progress, estimatedFinishAt: undefined });
    if (line !== last) say(`campaign: ${(last = line)}`);
    if (status.workflowStatus !== 'RUNNING' || (progress.byStatus.QUEUED === 0 && progress.outstanding === 0)) break;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const outcomes = Object.entries(progress.byOutcome).map(([o, n]) => `${o} ${n}`).join(', ');
  say(`campaign ${campaignId}: every patient decided, ${progress.callsPlaced} calls for ${progress.total} patients: ${outcomes}`);
  for await (const row of campaignResults(system.store.sql, { practiceId: PRACTICE.practiceId, campaignId })) {
    say(`  ${row.appointmentId}: ${row.outcome ?? row.status} after ${row.attempts} call(s)`);
  }
  say(`    the front desk's list: npm run cli -- campaign results ${campaignId} --practice ${PRACTICE.practiceId}  (CSV, with names: health data)`);
}

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
  // Expected call failures (busy) are not news here, nor the SDK core's warnings (its own log, on stderr).
  // Through the redacting logger (src/logger.ts), on stderr like the SDK's own.
  Runtime.install({ logger: temporalLogger(createLogger('error', process.stderr)), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const key = await demoKey();
  const real = realPhones();

  // The campaign's sample schedule: every patient in a zone where it is calling hours now.
  const zone = zoneInOfficeHours();
  const campaignCsv = makeScheduleText({ rows: CAMPAIGN_ROWS, seed: 2026, patientZone: zone });
  const phoneScenarios = real ? undefined : await writeScenarios(campaignCsv);

  const uiPort = Number(process.env.DEMO_UI_PORT ?? (await freePort()));
  const uiOrigin = `http://127.0.0.1:${uiPort}`;
  // Local development: loopback only, no login in the dev server's UI, so no token to check (the
  // Host and Origin checks still hold). Production runs `npm run codec-server` with authentication.
  const codecServer = await startCodecServer({ encryptionKey: key, allowedOrigins: [uiOrigin], auth: { mode: 'local-development' } });
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
    agentProcesses: SAMPLES.length + (real ? 0 : CAMPAIGN_CHANNELS), // one warm process per simultaneous call
    // The CLI's default database: an opt-out typed in another terminal reaches this demo (see below).
    dataDir: `${DATA_DIR}/pglite`,
    livekit: real?.livekit,
    phoneScenarios,
    agentEcho: (line) => {
      agentLog.write(`${line}\n`);
      const m = /"workflowId":"([^"]+)".*"msg":"([^"]+)"/.exec(line);
      if (!m || !(m[2]! in AGENT_EVENTS)) return;
      const detail = /"(answerer|digit|why)":"([^"]+)"/.exec(line)?.[2] ?? '';
      say(`${byWorkflow.get(m[1]!) ?? `campaign ${m[1]!.split(':').at(-1)}`}: agent ${AGENT_EVENTS[m[2]!]} ${detail}`);
    },
  });
  const ui = system.temporal.uiUrl ?? uiOrigin;
  say(`Temporal ${system.temporal.address}, Web UI ${ui} (codec server ${codecServer.url})`);
  say(
    `the CLI works against this demo while it runs, e.g. an opt-out: TEMPORAL_ADDRESS=${system.temporal.address} PAYLOAD_ENCRYPTION_KEY="$(cat ${DATA_DIR}/payload-key)" npm run cli -- opt-out < number.txt`,
  );
  say(real ? `LiveKit ${real.livekit.url}, trunk ${real.livekit.sipTrunkId} (real phones)` : `LiveKit ${system.livekit.url} with the phone-network simulator; agent in offline mode`);

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
      // Simulated phones only: a real phone is called in its own number's zone(s) as well.
      if (!real) await system.api.recordTimeZoneOverride(simulatedPatientZone(request.practiceId, phone, zone));
      const { workflowId } = await system.api.startConfirmation(request);
      const label = `${sample.name.split(' ')[0]} (${request.appointmentId})`;
      byWorkflow.set(workflowId, label);
      say(`  ${label} ${real ? '' : sample.story}`);
      say(`    history: ${ui}/namespaces/default/workflows/${workflowId}`);
      return { workflowId, request, label };
    }),
  );

  const campaign = real ? Promise.resolve() : runCampaign(system, campaignCsv, ui, stamp, zone);
  await Promise.all([
    campaign,
    ...started.map(async ({ workflowId, request, label }) => {
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
  ]);
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
  await codecServer.close();
  say('stopped');
}

main().catch((err: unknown) => exitWithError('demo', err));
