/**
 * Worker entry: `npm run worker`. Configuration comes from the environment (see the README's table)
 * and is validated before anything connects; a bad setting stops the process with every problem named.
 */
import { getHeapStatistics } from 'node:v8';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { ConfirmationClient } from './client';
import { createDataConverter } from './codec';
import { loadConfig, type WorkerConfig } from './config';
import { databaseError, exitWithError, temporalError } from './errors';
import { createLogger, temporalLogger } from './logger';
import { createRegistry, createWorkerMetrics, noopWorkerMetrics, serveMetrics, type WorkerMetrics } from './metrics';
import { ChannelBroker, getTrunkLimits, liveLeaseCount } from './pacing';
import { createStore } from './store';
import { createLiveKitTelephony } from './telephony/livekit';
import { createConfirmationWorker } from './worker-factory';

async function main(): Promise<void> {
  const config = loadConfig(); // a ConfigError names every bad variable
  const logger = createLogger(config.logLevel);
  // The SDK's own lines (an activity's failure with its error) through the same redaction as ours.
  // Its metrics (workflow/activity task latencies, slots, polls, cache) on a port of their own: the
  // SDK's exporter serves them itself (durations in seconds, counters with `_total`, as Prometheus names them).
  const { host, temporalPort } = config.metrics;
  Runtime.install({
    logger: temporalLogger(logger),
    ...(temporalPort !== undefined
      ? {
          telemetryOptions: {
            metrics: {
              prometheus: { bindAddress: `${host.includes(':') ? `[${host}]` : host}:${temporalPort}`, useSecondsForDurations: true, countersTotalSuffix: true },
            },
          },
        }
      : {}),
  });
  const store = await createStore({ databaseUrl: config.database.url, dataDir: config.database.dataDir, processName: 'worker' }).catch((err: unknown) => {
    throw databaseError(err, config.database);
  });
  try {
    const telephony = createLiveKitTelephony({ ...config.livekit, logger });
    // A wrong trunk id, key or secret would fail every call; fail the start instead, naming the setting.
    await telephony.verifyTrunk();
    const [connection, clientConnection] = await Promise.all([
      NativeConnection.connect({ address: config.temporal.address }),
      // Opt-outs reported by the agent stop the number's other confirmations through the client API.
      Connection.connect({ address: config.temporal.address }),
    ]).catch((err: unknown) => {
      throw temporalError(err, config.temporal.address, config.temporal.namespace);
    });
    await run(config, logger, store, telephony, connection, clientConnection);
  } finally {
    await store.close();
  }
}

async function run(
  config: WorkerConfig,
  logger: ReturnType<typeof createLogger>,
  store: Awaited<ReturnType<typeof createStore>>,
  telephony: ReturnType<typeof createLiveKitTelephony>,
  connection: NativeConnection,
  clientConnection: Connection,
): Promise<void> {
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace, dataConverter: createDataConverter(config.payloadEncryptionKey) });
  const api = new ConfirmationClient({ client, store, taskQueue: config.temporal.taskQueue });
  // A namespace that does not exist fails here, before polling starts, naming TEMPORAL_NAMESPACE.
  await clientConnection.workflowService.describeNamespace({ namespace: config.temporal.namespace }).catch((err: unknown) => {
    throw temporalError(err, config.temporal.address, config.temporal.namespace);
  });
  // The trunk's channel / calls-per-second gate, shared through the database with every worker.
  const pacing = await ChannelBroker.start(store.sql, config.livekit.sipTrunkId, {
    limits: config.trunkLimits,
    logger,
    // Grants are bounded by the capacity this agent's workers report (none reporting: no bound).
    agentName: config.livekit.agentName,
  });
  let metrics: WorkerMetrics = noopWorkerMetrics;
  let metricsServer: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  if (config.metrics.port !== undefined) {
    const trunkId = config.livekit.sipTrunkId;
    const registry = createRegistry('worker');
    metrics = createWorkerMetrics(registry, trunkId, async () => {
      const [inUse, limits] = await Promise.all([liveLeaseCount(store.sql, trunkId), getTrunkLimits(store.sql, trunkId)]);
      return { inUse, channels: limits?.channels ?? config.trunkLimits.channels, callsPerSecond: limits?.callsPerSecond ?? config.trunkLimits.callsPerSecond };
    });
    metricsServer = await serveMetrics(registry, config.metrics.host, config.metrics.port).catch((err: unknown) => {
      throw new Error(`METRICS_PORT: cannot listen on ${config.metrics.host}:${config.metrics.port} (${(err as NodeJS.ErrnoException).code ?? 'error'}); choose a free port`, { cause: err });
    });
  }
  const worker = await createConfirmationWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    payloadEncryptionKey: config.payloadEncryptionKey,
    store,
    telephony,
    rules: config.rules,
    logger,
    onOptOut: async (phone, except) => void (await api.stopConfirmationsOf(phone, except)),
    // Campaigns start their confirmations through the same client API as single starts.
    campaigns: { sql: store.sql, client, confirmations: api },
    pacing,
    metrics,
    maxCachedWorkflows: config.maxCachedWorkflows,
  });
  // WORKER_HEAP_MB reaches V8 as a node flag (`npm run worker` passes it): say so when it did not.
  const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
  if (heapLimitMb > config.heapMb * 1.5) {
    logger.warn(
      { heapLimitMb, WORKER_HEAP_MB: config.heapMb },
      'the V8 heap limit is not WORKER_HEAP_MB: start the worker with `npm run worker` (or node --max-old-space-size=<WORKER_HEAP_MB>), or its memory grows far beyond what it uses',
    );
  }
  logger.info(
    {
      temporal: config.temporal.address,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      database: config.database.url ? 'postgresql' : `pglite:${config.database.dataDir}`,
      livekit: config.livekit.url,
      agentName: config.livekit.agentName,
      maxCachedWorkflows: config.maxCachedWorkflows,
      heapLimitMb,
      metrics: metricsServer ? `${config.metrics.host}:${metricsServer.port}` : 'off',
      temporalMetrics: config.metrics.temporalPort === undefined ? 'off' : `${config.metrics.host}:${config.metrics.temporalPort}`,
    },
    'worker started',
  );
  try {
    await worker.run();
  } finally {
    await metricsServer?.close();
    pacing.close();
    await connection.close();
    await clientConnection.close();
  }
}

main().catch((err: unknown) => exitWithError('call-campaigns worker', err));
