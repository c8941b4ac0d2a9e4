/**
 * The whole system on one machine, with nothing faked but the phone network: the Temporal dev
 * server, the embedded database, the confirmation worker dialing through LiveKit, the voice-agent
 * worker in its own process (offline mode), and the local LiveKit stack with the phone-network
 * simulator. The demo, the call benchmark and the full-stack tests start it the same way.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { ConfirmationClient } from '../client';
import { createDataConverter } from '../codec';
import { databaseError } from '../errors';
import { createLogger } from '../logger';
import type { CallingRules } from '../ports';
import { createStore, type SqlStore } from '../store';
import { createLiveKitTelephony, type AgentDispatchTime } from '../telephony/livekit';
import { createConfirmationWorker } from '../worker-factory';
import { ChannelBroker } from '../pacing';
import type { CallLimits } from '../contracts';
import { startAgentProcess, type AgentProcess } from './agent-process';
import { createSimulatedTrunk, SIMULATED_CALLER_ID, startLiveKitStack, type LiveKitStack } from './livekit-stack';
import { type DevServerOptions } from './temporal-dev-server';
import { startTemporal, temporalServerKind, type TemporalServer, type TemporalServerKind } from './temporal-server';

/** Caller ID of the simulated trunk. */
export const DEMO_CALLER_ID = SIMULATED_CALLER_ID;

export interface LocalSystemOptions {
  payloadEncryptionKey: string;
  taskQueue?: string;
  rules: CallingRules;
  /** Options of the Temporal dev server (Web UI, database file, codec endpoint). */
  temporal?: DevServerOptions;
  /**
   * The dev server (SQLite, one process) or Temporal's own server on PostgreSQL, the production shape
   * (src/dev/temporal-server.ts). Default: `CALL_CAMPAIGNS_TEMPORAL_SERVER`, else the dev server.
   */
  temporalServer?: TemporalServerKind;
  /** Extra environment of the agent worker. */
  agentEnv?: Record<string, string>;
  /** Receives the agent worker's output lines. */
  agentEcho?: (line: string) => void;
  /** Warm agent job processes to wait for, per agent worker (default 1). */
  agentProcesses?: number;
  /** Agent worker processes (default 1). */
  agentWorkers?: number;
  /**
   * The agent workers report their capacity to the database and the trunk's grants are bounded by it
   * (production's setting). Needs `dataDir` (the agents reach the embedded database through its
   * owner). Default false: the trunk's channels alone bound the calls.
   */
  agentCapacity?: boolean;
  /** Limits of the trunk when the database has none yet (default: the worker's defaults). */
  trunkLimits?: CallLimits;
  logLevel?: string;
  /**
   * PGlite data directory (default: in memory). The system owns it while it runs and serves it to
   * other processes — the CLI's opt-outs reach the running demo's database.
   */
  dataDir?: string;
  /**
   * A real LiveKit project and outbound trunk (real phones): used instead of the local stack and
   * the simulator.
   */
  livekit?: { url: string; apiKey: string; apiSecret: string; sipTrunkId: string };
  /** The simulator's scenarios file (default tools/phone-sim/scenarios.json). */
  phoneScenarios?: string;
  /** When the agent is dispatched to a call (default `dial`; see LiveKitTelephonyConfig.agentDispatch). */
  agentDispatch?: AgentDispatchTime;
}

export interface LocalSystem {
  /** The Temporal server (the dev server's Web UI URL when it has one). */
  temporal: { address: string; namespace: string; uiUrl?: string; stop(): Promise<void> } & Partial<Pick<TemporalServer, 'postgres' | 'metricsUrl'>>;
  /** The local LiveKit stack with the simulator; absent when a real LiveKit project is used. */
  stack?: LiveKitStack;
  /** The LiveKit server calls go through. */
  livekit: { url: string; apiKey: string; apiSecret: string };
  store: SqlStore;
  client: Client;
  api: ConfirmationClient;
  worker: Worker;
  /** The first agent worker. */
  agent: AgentProcess;
  /** Every agent worker. */
  agents: AgentProcess[];
  trunkId: string;
  stop(): Promise<void>;
}

export async function startLocalSystem(options: LocalSystemOptions): Promise<LocalSystem> {
  const taskQueue = options.taskQueue ?? 'call-campaigns';
  const [temporal, stack] = await Promise.all([
    startTemporal(options.temporalServer ?? temporalServerKind(), options.temporal),
    options.livekit ? Promise.resolve(undefined) : startLiveKitStack({ phones: true, scenarios: options.phoneScenarios }),
  ]);
  const livekit = options.livekit ?? { url: stack!.url, apiKey: stack!.apiKey, apiSecret: stack!.apiSecret };
  const store = await createStore({ dataDir: options.dataDir, processName: 'demo' }).catch((err: unknown) => {
    throw databaseError(err, { dataDir: options.dataDir ?? '(memory)', dataDirVariable: 'DEMO_DATA_DIR' });
  });
  const trunkId =
    options.livekit?.sipTrunkId ??
    (await createSimulatedTrunk(livekit));
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }), dataConverter: createDataConverter(options.payloadEncryptionKey) });
  const api = new ConfirmationClient({ client, store, taskQueue });
  const telephony = createLiveKitTelephony({ ...livekit, sipTrunkId: trunkId, agentName: 'appointment-confirmer', agentDispatch: options.agentDispatch });
  await telephony.verifyTrunk();
  if (options.agentCapacity && !options.dataDir) throw new Error('startLocalSystem: agentCapacity needs a dataDir (the agent workers report to the database through its owner)');
  const pacing = await ChannelBroker.start(store.sql, trunkId, { limits: options.trunkLimits, agentName: 'appointment-confirmer' });
  const worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: temporal.address }),
    taskQueue,
    payloadEncryptionKey: options.payloadEncryptionKey,
    store,
    telephony,
    rules: options.rules,
    logger: createLogger(options.logLevel ?? 'silent'),
    onOptOut: async (phone, except) => void (await api.stopConfirmationsOf(phone, except)),
    pacing,
    // As the production worker: campaigns run here too.
    campaigns: { sql: store.sql, client, confirmations: api },
  });
  const running = worker.run();
  const agents = await Promise.all(
    Array.from({ length: options.agentWorkers ?? 1 }, () =>
      startAgentProcess({
        livekit,
        temporalAddress: temporal.address,
        taskQueue,
        payloadEncryptionKey: options.payloadEncryptionKey,
        // The trunk too: a warm transfer dials the front desk through it (STAFF_WARM_TRANSFER_NUMBER).
        env: { LIVEKIT_SIP_TRUNK_ID: trunkId, ...(options.agentCapacity ? { PGLITE_DATA_DIR: options.dataDir! } : {}), ...options.agentEnv },
        echo: options.agentEcho,
        readyProcesses: options.agentProcesses,
      }),
    ),
  );
  const agent = agents[0]!;
  return {
    temporal,
    stack,
    livekit,
    store,
    client,
    api,
    worker,
    agent,
    agents,
    trunkId,
    async stop() {
      await Promise.all(agents.map((a) => a.stop()));
      // A test may have shut the worker down already (a worker outage).
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      pacing.close();
      await store.close();
      await Promise.all([temporal.stop(), stack?.stop()]);
    },
  };
}
