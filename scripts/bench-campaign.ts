/**
 * `npm run bench:campaign`: the campaign numbers of issue 10, printed (not a timed test).
 *
 *  1. Import: scripts/bench-import.ts (PGlite in memory) for the same number of rows.
 *  2. Overhead: confirmations per second through the whole confirmation workflow (production
 *     bundle, activities, channel gate at its highest limits — 1,000 channels, 100 calls per second —
 *     above the load; scripted phones that answer
 *     and confirm at once) divided by the rate of a bare one-activity workflow
 *     (scripts/bench-bare-workflow.ts), both on the same Temporal server, one after the other, at the
 *     same client concurrency.
 *  3. A campaign of `--rows` fictional contacts (src/campaigns/sample.ts: +1 <area code> 555-01xx,
 *     many area codes and zones; consent recorded for each) imported and started with
 *     CampaignClient.start on the Temporal CLI dev server and PostgreSQL, run by one worker process
 *     (scripts/bench-campaign-worker.ts: the production worker with the campaign activities and the
 *     channel gate) against scripted phones that ring and hold the line for a short random time.
 *     Prints: completion and outcomes, wall time, the largest history of the campaign's runs, most
 *     confirmations outstanding, worker peak RSS, and pacing — most calls up at once and most
 *     INVITEs in any 1-s window against the trunk's limits, and channel use while calls wait.
 *
 * BENCH SETTING: the worker's calling window is 00:00–23:59 every day (not the legal 08:00–21:00)
 * so every fictional contact is callable whatever the hour here; caps are 3 a day. Never use
 * these rules for real calls.
 *
 * `--temporal postgres` runs the overhead measure and the campaign on Temporal's own server on
 * PostgreSQL (src/dev/temporal-server.ts: its databases beside the project's, in one PostgreSQL
 * server, as in docker-compose.yml) instead of the CLI dev server. Either way the Temporal server's
 * peak RSS (VmHWM of its process) is printed.
 *
 *   npm run bench:campaign -- [--rows 10000] [--channels 50] [--cps 20] [--concurrency 50] [--overhead 300] [--max-cached N] [--temporal dev|postgres] [--no-import] [--no-campaign]
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
// @temporalio/proto is CommonJS: a default import works under Node ESM (as in src/codec.ts).
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DateTime } from 'luxon';
import { bundleWorkflows, FAILURE_CONVERTER_PATH } from '../src/bundle';
import { CampaignClient } from '../src/campaigns/client';
import { progressLine } from '../src/campaigns/progress-line';
import { makeScheduleText } from '../src/campaigns/sample';
import { ConfirmationClient } from '../src/client';
import { createDataConverter, EncryptionCodec } from '../src/codec';
import { CallOutcome, campaignWorkflowId } from '../src/contracts';
import { MAX_CALLS_PER_SECOND_LIMIT, MAX_CHANNELS_LIMIT } from '../src/validation';
import { startPostgres } from '../src/dev/postgres';
import { ScriptedTelephony } from '../src/dev/scripted-telephony';
import { startTemporalDevServer } from '../src/dev/temporal-dev-server';
import { startTemporalServer } from '../src/dev/temporal-server';
import { createLogger } from '../src/logger';
import { ChannelBroker } from '../src/pacing';
import type { CallingRules } from '../src/ports';
import { DEFAULT_CALLING_RULES } from '../src/rules/calling-window';
import { createStore, type SqlStore } from '../src/store';
import { createConfirmationWorker, DEFAULT_MALLOC_ARENA_MAX, DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_WORKER_HEAP_MB } from '../src/worker-factory';
import { maxInOneSecond } from '../test/helpers/pacing-load';
import type { BenchWorkerConfig, BenchWorkerMessage } from './bench-campaign-worker';

const whole = (name: string, min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number of at least ${min}.`);
  return n;
};
const opts = new Command('bench:campaign')
  .option('--rows <n>', 'contacts in the campaign', whole('--rows', 1), 10_000)
  .option('--channels <n>', "the trunk's (and the campaign's) channels", whole('--channels', 1), 50)
  .option('--cps <n>', "the trunk's (and the campaign's) calls per second", whole('--cps', 1), 20)
  .option('--concurrency <n>', 'client concurrency of the overhead measure', whole('--concurrency', 1), 50)
  .option('--overhead <n>', 'confirmations of the overhead measure (0: skip it)', whole('--overhead', 0), 300)
  .option('--max-cached <n>', "the campaign worker's workflow cache (default: the worker's, DEFAULT_MAX_CACHED_WORKFLOWS)", whole('--max-cached', 2))
  .addOption(
    new Option('--temporal <server>', "the Temporal server: the CLI's dev server (SQLite) or Temporal's own server on PostgreSQL (the production shape)")
      .choices(['dev', 'postgres'])
      .default('dev'),
  )
  .option('--no-import', 'skip the import bench')
  .option('--no-campaign', 'skip the campaign run (the import and overhead measures only)')
  .parse()
  .opts<{ rows: number; channels: number; cps: number; concurrency: number; overhead: number; maxCached?: number; temporal: 'dev' | 'postgres'; import: boolean; campaign: boolean }>();

/** BENCH SETTING (see the header): every hour of every day, 3 calls a day per number. */
const BENCH_RULES: CallingRules = { ...DEFAULT_CALLING_RULES, ruleSet: 'BENCH-ONLY-WIDE-WINDOW', days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '23:59', maxCallsPerDay: 3, maxCallsPerWeek: 3 };
const PRACTICE = { practiceId: 'bench', practiceName: 'Bright Smiles Dental', practiceCallbackNumber: '+13125550100' };
const out = (line = '') => process.stdout.write(`${line}\n`);
const stamp = () => DateTime.now().toFormat('HH:mm:ss');
const f1 = (x: number) => x.toFixed(1);
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/** Runs `count` workflows `concurrency` at a time; returns completions per second. */
async function rate(count: number, concurrency: number, one: (i: number) => Promise<void>): Promise<{ perSecond: number; seconds: number }> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await one(next++);
  }));
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: count / seconds, seconds };
}

async function overhead(address: string, store: SqlStore, key: string): Promise<string[]> {
  const n = opts.overhead;
  const c = opts.concurrency;
  const client = new Client({ connection: await Connection.connect({ address }), dataConverter: createDataConverter(key) });
  const api = new ConfirmationClient({ client, store, taskQueue: 'bench-full' });
  const phones = new ScriptedTelephony(client);
  const pacing = await ChannelBroker.start(store.sql, 'ST_overhead', { limits: { channels: MAX_CHANNELS_LIMIT, callsPerSecond: MAX_CALLS_PER_SECOND_LIMIT } });
  const full = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address }),
    taskQueue: 'bench-full',
    payloadEncryptionKey: key,
    store,
    telephony: phones,
    rules: BENCH_RULES,
    logger: createLogger('silent'),
    pacing,
  });
  const bare = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue: 'bench-bare',
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./bench-bare-workflow.ts', import.meta.url)),
      failureConverterPath: FAILURE_CONVERTER_PATH,
      logger: new DefaultLogger('WARN'),
    }),
    activities: { bareActivity: async (i: number) => i },
    dataConverter: createDataConverter(key),
  });
  const runs = [full.run(), bare.run()];
  const zone = 'America/Chicago';
  // Fictional numbers (555-0100…0199) in ten Chicago-area codes: 1,000 numbers, so the caps (3 a day) never bind.
  const areaCodes = ['312', '773', '872', '630', '708', '847', '224', '331', '779', '815'];
  const phone = (i: number) => `+1${areaCodes[Math.floor(i / 100) % 10]}555${String(100 + (i % 100)).padStart(4, '0')}`;
  for (let i = 0; i < 1000; i += 1) await store.recordConsent({ practiceId: 'bench', phone: phone(i), granted: true, source: 'bench' });
  const tag = Date.now();
  const confirm = async (i: number) => {
    phones.script(phone(i), { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
    const { workflowId } = await api.startConfirmation({
      ...PRACTICE,
      appointmentId: `ovh-${tag}-${i}`,
      patientId: `p-${i}`,
      patientName: 'Bench Patient',
      phone: phone(i),
      patientTimeZone: zone,
      appointmentStart: DateTime.now().setZone(zone).plus({ days: 2 }).toISO(),
      provider: 'Dr. Bench',
      reason: 'cleaning',
    });
    const result = await api.result(workflowId);
    if (result.outcome !== CallOutcome.CONFIRMED) throw new Error(`overhead: unexpected outcome ${result.outcome}`);
  };
  const bareOne = async (i: number) => {
    await client.workflow.execute('bareWorkflow', { taskQueue: 'bench-bare', workflowId: `bare-${tag}-${i}`, args: [i] });
  };
  // Warm both paths (bundles loaded, connections up) before measuring.
  await rate(Math.min(20, n), c, (i) => confirm(1_000_000 + i));
  await rate(20, c, (i) => bareOne(1_000_000 + i));
  // Three rounds, alternating, so drift on a shared machine (and the server's growing tables) hits both alike.
  const rounds: { full: { perSecond: number; seconds: number }; bare: { perSecond: number; seconds: number } }[] = [];
  for (let r = 0; r < 3; r += 1) {
    const fullR = await rate(n, c, (i) => confirm(r * n + i));
    const bareR = await rate(n * 2, c, (i) => bareOne(r * n * 2 + i));
    rounds.push({ full: fullR, bare: bareR });
  }
  const sum = (k: 'full' | 'bare', count: number) => {
    const seconds = rounds.reduce((t, x) => t + x[k].seconds, 0);
    return { perSecond: (count * rounds.length) / seconds, seconds };
  };
  const fullRate = sum('full', n);
  const bareRate = sum('bare', n * 2);
  full.shutdown();
  bare.shutdown();
  await Promise.all(runs);
  pacing.close();
  await client.connection.close();
  return [
    `overhead (same Temporal server, client concurrency ${c}, 3 alternating rounds of ${n} confirmations / ${n * 2} bare workflows):`,
    `  full confirmation workflow (plan, channel, dial, Update, finish)  ${f1(fullRate.perSecond)} /s  (${f1(fullRate.seconds)} s)`,
    `  bare one-activity workflow                                     ${f1(bareRate.perSecond)} /s  (${f1(bareRate.seconds)} s)`,
    `  ratio                                                          ${(fullRate.perSecond / bareRate.perSecond).toFixed(2)}  (goal >= 0.5; by round: ${rounds.map((x) => (x.full.perSecond / x.bare.perSecond).toFixed(2)).join(', ')})`,
  ];
}

let localHeartbeatWarnings = 0;

/** The worker's heap limit, as `npm run worker` sets it (WORKER_HEAP_MB). */
const workerHeapMb = Number(process.env.WORKER_HEAP_MB ?? DEFAULT_WORKER_HEAP_MB);

function startWorker(config: BenchWorkerConfig): Promise<{ stop(): Promise<Extract<BenchWorkerMessage, { stats: unknown }>['stats']> }> {
  const child = spawn(process.execPath, [`--max-old-space-size=${workerHeapMb}`, '--import', 'tsx', fileURLToPath(new URL('./bench-campaign-worker.ts', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    // As `npm run worker` starts it: its heap limit and its malloc arenas.
    env: { MALLOC_ARENA_MAX: String(DEFAULT_MALLOC_ARENA_MAX), ...process.env, BENCH_WORKER_CONFIG: JSON.stringify(config) },
  });
  process.once('exit', () => child.kill('SIGKILL'));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  // The SDK core warns once per heartbeat of a local activity (campaignTick heartbeats): counted, not shown.
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (/Activity heartbeat failed/.test(line)) localHeartbeatWarnings += 1;
      else process.stderr.write(`${line}\n`);
    });
  }
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bench worker exited (${code})`)));
    child.once('message', () =>
      resolve({
        stop: () =>
          new Promise((done) => {
            child.on('message', (m: BenchWorkerMessage) => {
              if ('stats' in m) done(m.stats);
            });
            child.send({ stop: true });
          }),
      }),
    );
  });
}

async function campaign(address: string, databaseUrl: string, store: SqlStore, key: string): Promise<string[]> {
  const { rows, channels, cps } = opts;
  const taskQueue = 'bench-campaign';
  const trunkId = 'ST_bench_campaign';
  const csv = makeScheduleText({ rows, seed: 7, days: 3 });
  // Consent for every number (the numbers are in the CSV's fourth column; fictional 555-01xx).
  const phones = [...new Set(csv.split('\r\n').slice(1, -1).map((l) => l.split(',')[3]!))];
  let t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < phones.length) await store.recordConsent({ practiceId: PRACTICE.practiceId, phone: phones[next++]!, granted: true, source: 'bench' });
  }));
  const consentS = (performance.now() - t) / 1000;

  out(`${stamp()}  starting the campaign worker process…`);
  const worker = await startWorker({
    temporalAddress: address,
    databaseUrl,
    payloadEncryptionKey: key,
    taskQueue,
    trunkId,
    channels,
    callsPerSecond: cps,
    rules: BENCH_RULES,
    ringMs: [500, 2_000],
    talkMs: [1_500, 4_000],
    maxCachedWorkflows: opts.maxCached,
  });
  const client = new Client({ connection: await Connection.connect({ address }), dataConverter: createDataConverter(key) });
  const campaigns = new CampaignClient({ client, sql: store.sql, taskQueue });
  const campaignId = `c${Date.now()}`;
  t = performance.now();
  const wallStart = Date.now();
  const { report } = await campaigns.start(
    // Retries after 5 s (not 30 min), two attempts: a busy phone is called again within the run.
    { ...PRACTICE, campaignId, limits: { channels, callsPerSecond: cps }, policy: { initialBackoffSeconds: 5, maxAttempts: 2 } },
    { csv },
    { actor: 'bench' },
  );
  const importS = (performance.now() - t) / 1000;
  if (report.added !== rows) throw new Error(`import added ${report.added} of ${rows} rows`);
  out(`${stamp()}  ${rows} contacts imported and the campaign started in ${f1(importS)} s (consent for ${phones.length} numbers in ${f1(consentS)} s)`);

  let maxOutstanding = 0;
  let maxCallsInProgress = 0;
  let done = false;
  const summaryP = campaigns.result(PRACTICE.practiceId, campaignId).finally(() => (done = true));
  let allDecidedS: number | undefined;
  const statusErrors: string[] = [];
  while (!done) {
    await Promise.race([new Promise((r) => setTimeout(r, 5_000)), summaryP.catch(() => undefined)]);
    let s;
    try {
      s = await campaigns.status(PRACTICE.practiceId, campaignId);
    } catch (err) {
      // The campaign's status query can fail (a workflow task that fails, a busy server): counted, not fatal.
      statusErrors.push(`${stamp()} ${(err as Error).message}`);
      out(`${stamp()}  status failed: ${(err as Error).message}`);
      if (statusErrors.length > 20) throw new Error(`the campaign's status failed ${statusErrors.length} times; giving up`, { cause: err });
      continue;
    }
    maxOutstanding = Math.max(maxOutstanding, s.progress.outstanding);
    maxCallsInProgress = Math.max(maxCallsInProgress, s.progress.callsInProgress);
    out(`${stamp()}  ${progressLine(s.progress)}`);
    const p = s.progress;
    if (allDecidedS === undefined && p.byStatus.QUEUED === 0 && p.outstanding === 0) allDecidedS = (Date.now() - wallStart) / 1000;
    // Every contact is decided: the workflow should end at its next tick. It waits for a timer
    // instead when a confirmation's end woke it last (workflows/campaign.ts keeps `wake` set through
    // that tick, and then sleeps the idle tick, 10 min): measured, not waited for.
    if (allDecidedS !== undefined && (Date.now() - wallStart) / 1000 - allDecidedS > 30) break;
  }
  const summary = done ? await summaryP : undefined;
  const wallS = summary ? (Date.now() - wallStart) / 1000 : undefined;
  const final = await campaigns.status(PRACTICE.practiceId, campaignId);
  const stats = await worker.stop();

  // Every run of the campaign (continue-as-new) and its history length.
  const runs: number[] = [];
  const campaignWf = campaignWorkflowId(PRACTICE.practiceId, campaignId);
  for await (const run of client.workflow.list({ query: `WorkflowId = "${campaignWf}"` })) if (run.status.name !== 'RUNNING') runs.push(run.historyLength);
  // The current run's length from the history service (visibility may lag for a running one).
  const current = await client.workflow.getHandle(campaignWf).describe();
  if (current.status.name === 'RUNNING') runs.push(current.historyLength);
  // Every run's history replayed against the production bundle: a campaign must survive a worker restart.
  const replays: string[] = [];
  /** The largest run's events by type: what fills a campaign's history (signals, workflow tasks, markers, timers). */
  let largest: { events: number; byType: string } = { events: 0, byType: '' };
  const bundle = await bundleWorkflows();
  for await (const run of client.workflow.list({ query: `WorkflowId = "${campaignWf}"` })) {
    const history = await client.workflow.getHandle(campaignWf, run.runId).fetchHistory();
    if ((history.events?.length ?? 0) > largest.events) {
      const byType = new Map<string, number>();
      for (const e of history.events ?? []) {
        const name = String(proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? e.eventType).replace(/^EVENT_TYPE_/, '');
        byType.set(name, (byType.get(name) ?? 0) + 1);
      }
      largest = { events: history.events?.length ?? 0, byType: [...byType].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(', ') };
    }
    try {
      await Worker.runReplayHistory({ workflowBundle: bundle, dataConverter: createDataConverter(key) }, history, campaignWf);
      replays.push(`${history.events?.length ?? 0} events: ok`);
    } catch (err) {
      const detail = /\[TMPRL\d+\][^"]*/.exec((err as Error).message)?.[0] ?? (err as Error).message.slice(0, 300);
      replays.push(`${history.events?.length ?? 0} events: ${(err as Error).name}: ${detail}`);
      // Kept for whoever debugs it: ids and counts only (payloads sealed with this run's throwaway key, written beside it).
      const dir = `.data/bench-campaign/${campaignId}`;
      await mkdir(dir, { recursive: true });
      await writeFile(`${dir}/${run.runId}.json`, JSON.stringify(history));
      await writeFile(`${dir}/payload-key`, `${key}\n`, { mode: 0o600 });
      replays.push(`(history and key in ${dir})`);
    }
  }
  // The connection stays open: the wait for the summary may still be pending (the process exits at the end).

  // Pacing from the phones' side: [INVITE sent, line down] per call.
  const points = stats.calls.flatMap(([a, b]) => [[a, 1], [b, -1]] as [number, number][]).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let up = 0;
  let maxUp = 0;
  for (const [, d] of points) maxUp = Math.max(maxUp, (up += d));
  const maxCps = maxInOneSecond(stats.calls.map((c) => c[0]));
  const waiting = stats.samples.filter((s) => s[1] > 0 && s[2] >= 0);
  const leaseUse = waiting.reduce((sum, s) => sum + Math.min(1, s[2] / channels), 0) / Math.max(1, waiting.length);
  const lineUse = waiting.reduce((sum, s) => sum + Math.min(1, s[3] / channels), 0) / Math.max(1, waiting.length);
  const maxLeases = Math.max(0, ...stats.samples.map((s) => s[2]));
  const p = final.progress;
  const outcomes = Object.entries(p.byOutcome).sort((a, b) => b[1] - a[1]).map(([o, n]) => `${o} ${n}`).join(', ');
  const decided = Object.values(p.byOutcome).reduce((a, b) => a + b, 0);
  const decidedS = allDecidedS ?? Number.NaN;

  return [
    `campaign: ${rows} contacts, 1 worker process, trunk and campaign ${channels} channels / ${cps} calls per second, max outstanding 300 (default)`,
    `  completed                               ${decided}/${p.total} decided, ${p.callsPlaced} calls placed (${outcomes}); campaign workflow ${summary ? `${summary.state} after ${f1(wallS!)} s` : `still ${final.workflowStatus} 30 s after the last decision (see workflows/campaign.ts: completes at its idle tick)`}`,
    `  wall time (start → every contact decided) ${f1(decidedS)} s  (${f1(p.callsPlaced / decidedS)} calls/s, ${f1(decided / decidedS)} confirmations/s)`,
    `  campaign runs (continue-as-new)         ${runs.length}; largest history ${Math.max(...runs)} events (all: ${runs.sort((a, b) => b - a).join(', ')})`,
    `  replay of every campaign run          ${replays.join('; ')}`,
    `  largest run's events by type           ${largest.byType}`,
    `  status errors                           ${statusErrors.length}${statusErrors.length ? ` (first: ${statusErrors[0]})` : ''}`,
    `  most confirmations outstanding          ${maxOutstanding} (sampled every 5 s; bound 300)`,
    `  worker peak RSS                         ${stats.peakRssMb.toFixed(0)} MB  (VmHWM, bundling at start included; goal <= 512 MB); while the campaign ran ${stats.sampledMaxRssMb.toFixed(0)} MB (V8 heap ${stats.atMax.heapMb.toFixed(0)} MB, external ${stats.atMax.externalMb.toFixed(0)} MB, the rest native); workflow cache ${opts.maxCached ?? DEFAULT_MAX_CACHED_WORKFLOWS}, heap limit ${workerHeapMb} MB per thread, MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? DEFAULT_MALLOC_ARENA_MAX}; idle after start ${stats.idleRssMb.toFixed(0)} MB`,
    `  agent Updates refused                   ${stats.agentErrors}`,
    `  core warnings "Activity heartbeat failed" (heartbeats from the campaignTick local activity): ${localHeartbeatWarnings}`,
    `pacing (the phones' view: INVITE → line down, ${stats.calls.length} calls):`,
    `  max concurrent calls                    ${maxUp}  (limit ${channels})`,
    `  max live leases (sampled 100 ms)        ${maxLeases}  (limit ${channels})`,
    `  max INVITEs in any 1-s window           ${maxCps}  (limit ${cps})`,
    `  channel use while calls wait            leases ${pct(leaseUse)}, lines up ${pct(lineUse)}  (goal >= 95 %; ${f1(waiting.length / 10)} s with waiters)`,
    `  most calls up in the progress counts    ${maxCallsInProgress}  (live leases of the campaign, sampled every 5 s)`,
  ];
}

/** VmHWM of a process, in MB ("n/a" when /proc does not say: not Linux, or the process is gone). */
function peakRssMb(pid: number | undefined): string {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? `${(Number(kb[1]) / 1024).toFixed(0)} MB` : 'n/a';
  } catch {
    return 'n/a';
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const report: string[] = [];
  if (opts.import) {
    out(`${stamp()}  import bench (${opts.rows} rows)…`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./bench-import.ts', import.meta.url)), String(opts.rows)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the import bench failed: ${r.stderr}`);
    report.push(...r.stdout.trimEnd().split('\n'));
    out(r.stdout.trimEnd());
  }
  const onPostgres = opts.temporal === 'postgres';
  out(`${stamp()}  starting ${onPostgres ? "Temporal's server on PostgreSQL" : 'the Temporal dev server and PostgreSQL'}…`);
  const [dev, postgres] = await Promise.all([onPostgres ? undefined : startTemporalDevServer(), startPostgres()]);
  // The production shape: Temporal's databases in the same PostgreSQL server as the project's.
  const server = dev ?? (await startTemporalServer({ postgres }));
  const store = await createStore({ databaseUrl: postgres.url });
  const key = EncryptionCodec.generateSetting('bench');
  try {
    if (opts.overhead > 0) {
      out(`${stamp()}  overhead: full confirmations vs a bare workflow…`);
      const lines = await overhead(server.address, store, key);
      lines.forEach((l) => out(l));
      report.push(...lines);
    }
    if (opts.campaign) report.push(...(await campaign(server.address, postgres.url, store, key)));
    report.push(
      `temporal server: ${onPostgres ? 'temporal-server on PostgreSQL (SQL visibility; its databases beside the project\'s)' : 'the CLI dev server (SQLite in memory)'}; peak RSS ${peakRssMb(server.process.pid)} (VmHWM)`,
    );
    out();
    out(`== bench:campaign (${new Date().toISOString()}, ${(await import('node:os')).cpus().length} cores) ==`);
    report.forEach((l) => out(l));
  } finally {
    await store.close();
    await Promise.all([server.stop(), postgres.stop()]);
  }
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
