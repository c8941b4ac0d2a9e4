/**
 * The agent worker: registers with LiveKit under AGENT_NAME (explicit dispatch: the dial activity
 * dispatches it to each call's room) and runs each call in a job process (agent/entry.ts).
 *
 *   npm run agent        (LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, PAYLOAD_ENCRYPTION_KEY, …)
 */
import { cli, log as agentLog, ServerOptions, type AgentServer } from '@livekit/agents';
import { WorkerMessage, WorkerStatus } from '@livekit/protocol';
import { RoomServiceClient } from 'livekit-server-sdk';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { databaseError, exitWithError, liveKitError, safeMessage, UserError } from '../src/errors';
import { createAgentMetrics, createRegistry, serveMetrics } from '../src/metrics';
import { AGENT_REPORT_TTL_MS, removeAgentWorker, reportAgentWorker } from '../src/pacing/agent-capacity';
import { createStore } from '../src/store';
import { ProcessCensus } from './capacity';
import { loadAgentConfig, type AgentConfig } from './config';
import { describeModel } from './models';

let config: AgentConfig;
try {
  config = loadAgentConfig();
} catch (err) {
  exitWithError('agent', err); // a ConfigError names every bad variable
}
// The library retries a refused key or secret forever (a 401 warning every few seconds): check them
// once here and stop, naming the settings. An unreachable server is left to the library's retries.
try {
  await new RoomServiceClient(config.livekit.url.replace(/^ws/, 'http'), config.livekit.apiKey, config.livekit.apiSecret, { requestTimeout: 10 }).listRooms(['-']);
} catch (err) {
  const explained = liveKitError(err, config.livekit.url);
  if (/LIVEKIT_API_KEY/.test(explained.message)) exitWithError('agent', explained);
}
process.stdout.write(
  config.mode === 'offline'
    ? `agent: offline mode (keypad input, espeak-ng speech, Silero voice activity); agent name ${config.agentName}\n`
    : `agent: cloud mode (STT ${describeModel(config.models!.stt)}, LLM ${describeModel(config.models!.llm)}, TTS ${describeModel(config.models!.tts)}); agent name ${config.agentName}\n`,
);
// Its job processes tell it when they are warm and when they take a call: what it can serve now.
const census = await ProcessCensus.start(config.maxCalls);
const metrics = config.metrics.port === undefined ? undefined : await startMetrics(config, census);
if (config.database) await reportCapacity(config, census);
else {
  process.stdout.write('agent: not reporting capacity (no DATABASE_URL or PGLITE_DATA_DIR): dials are bounded by the trunk\'s channels only\n');
  if (config.warmTransfer) {
    process.stdout.write('agent: warm transfers dial the front desk without the trunk\'s channel and calls-per-second limits (no DATABASE_URL or PGLITE_DATA_DIR)\n');
  }
}

// livekit-server picks a worker for each job by the status and load each worker last sent. The
// library sends them every 2.5 s: between two sends a worker that just took its last warm process
// still looks available (it gets the next job and must refuse it), and one whose process just
// warmed still looks full (it is never asked) — a refused job then waits for the call watcher's
// re-dispatch, seconds of silence for an answered patient. So every change of the census is sent at
// once, on the library's own channel to the server (the server instance arrives with the first load
// request). Not while draining: the library then reports full, and so does this.
let server: AgentServer | undefined;
let draining = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => (draining = true));
census.onChange(() => {
  if (!server || draining) return;
  const load = census.load();
  server.event.emit(
    'worker_msg',
    new WorkerMessage({ message: { case: 'updateWorker', value: { load, status: load >= 1 ? WorkerStatus.WS_FULL : WorkerStatus.WS_AVAILABLE } } }),
  );
});

// The library's CLI reads the command (`start`) from argv; `npm run agent` passes it.
cli.runApp(
  new ServerOptions({
    agent: fileURLToPath(new URL('./entry.ts', import.meta.url)),
    agentName: config.agentName,
    wsURL: config.livekit.url,
    apiKey: config.livekit.apiKey,
    apiSecret: config.livekit.apiSecret,
    numIdleProcesses: config.idleProcesses,
    initializeProcessTimeout: config.processInitSeconds * 1000,
    // A call is taken only when a warm process is free for it: the patient hears the agent at once.
    // Refused, livekit-server offers the job to another worker at once (never queued here behind a
    // process still starting: that was seconds of silence for an answered patient).
    requestFunc: async (req) => {
      if (census.tryReserve()) {
        metrics?.job('accepted');
        await req.accept();
        return;
      }
      metrics?.job('refused');
      agentLog().warn({ jobId: req.id, ...census.counts() }, 'job refused: no warm job process free (another worker may take it)');
      await req.reject();
    },
    // Load = share of the calls this worker cannot take now (1 when no warm process is free). The
    // library's default (this machine's CPU) stops dispatch whenever the host is busy; the running
    // jobs alone (the previous load) ignore the processes still starting.
    loadFunc: async (worker) => {
      server ??= worker;
      return census.load();
    },
    loadThreshold: 1,
    // A job whose patient answered waits for the workflow's acknowledgement (or the late-outcome
    // record) before it exits: give it the reporter's whole retry budget (2 × 120 s) and a margin.
    shutdownProcessTimeout: 5 * 60_000,
    // A port of its own for the health endpoint, so several workers (tests) can share a machine.
    port: Number(process.env.AGENT_HTTP_PORT ?? 0),
  }),
);

/**
 * Serves this worker's metrics (METRICS_PORT): its capacity and backlog read from the census at each
 * scrape, and what its job processes measured about their calls (relayed over the census socket).
 */
async function startMetrics(config: AgentConfig, census: ProcessCensus) {
  const registry = createRegistry('agent');
  const metrics = createAgentMetrics(registry, census);
  census.onObservation((o) => metrics.observe(o));
  const { host, port } = config.metrics;
  const served = await serveMetrics(registry, host, port!).catch((err: unknown) =>
    exitWithError('agent', new UserError(`METRICS_PORT: cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? 'error'}); choose a free port or unset it`)),
  );
  process.stdout.write(`agent: metrics at http://${host}:${served.port}/metrics\n`);
  return metrics;
}

/**
 * Writes this worker's capacity to the database every second and at every change (expiring after
 * AGENT_REPORT_TTL_MS unless renewed): the confirmation workers' channel gate lets no more calls
 * ring than the agents' live capacity. Removed at shutdown.
 */
async function reportCapacity(config: AgentConfig, census: ProcessCensus): Promise<void> {
  const db = config.database!;
  const store = await createStore({ databaseUrl: db.url, dataDir: db.dataDir, processName: 'agent' }).catch((err: unknown) => {
    exitWithError('agent', databaseError(err, { url: db.url, dataDir: db.dataDir ?? '', dataDirVariable: 'PGLITE_DATA_DIR' }));
  });
  const workerId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  let stopped = false;
  let writing = false;
  let again = false;
  let failedAt = 0;
  const write = async (): Promise<void> => {
    if (stopped) return;
    if (writing) {
      again = true;
      return;
    }
    writing = true;
    try {
      const c = census.counts();
      await reportAgentWorker(store.sql, {
        workerId,
        agentName: config.agentName,
        maxCalls: config.maxCalls,
        activeCalls: c.busy,
        readyProcesses: Math.max(0, c.ready - c.reserved),
        refusedJobs: c.refused,
      });
    } catch (err) {
      if (Date.now() - failedAt > 30_000) agentLog().warn({ error: safeMessage(err) }, 'reporting agent capacity failed; trying again');
      failedAt = Date.now();
    } finally {
      writing = false;
      if (again) {
        again = false;
        void write();
      }
    }
  };
  census.onChange(() => void write());
  setInterval(() => void write(), Math.min(1_000, AGENT_REPORT_TTL_MS / 3)).unref();
  await write();
  process.stdout.write(`agent: reporting capacity as ${workerId} (dials are bounded by it)\n`);
  const stop = () => {
    if (stopped) return;
    stopped = true;
    // Shutting down takes no new calls: out of the capacity now (a killed worker's report expires).
    void removeAgentWorker(store.sql, workerId).catch(() => undefined);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
