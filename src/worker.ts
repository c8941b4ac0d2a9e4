/**
 * Worker entry: `npm run worker`. Configuration comes from the environment (see the README's table)
 * and is validated before anything connects; a bad setting stops the process with every problem named.
 */
import { getHeapStatistics } from 'node:v8';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { ConfirmationClient } from './client';
import { createDataConverter } from './codec';
import { loadConfig, type WorkerConfig } from './config';
import { databaseError, exitWithError, temporalError, UserError } from './errors';
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
  try {
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
  } catch (err) {
    // The exporter binds at install: a port in use fails here ("Address already in use").
    if (temporalPort === undefined) throw err;
    throw new UserError(`TEMPORAL_METRICS_PORT: the Temporal SDK cannot serve its metrics on ${host}:${temporalPort} (${/in use/i.test(String(err)) ? 'the port is in use' : 'cannot listen there'}); choose a free port or unset it`, 2, { cause: err });
  }
  // Bound before anything connects: a port in use stops the start at once, naming METRICS_PORT.
  const registry = config.metrics.port === undefined ? undefined : createRegistry('worker');
  const metricsServer = registry && (await serveMetrics(registry, host, config.metrics.port!).catch((err: unknown) => {
    throw new UserError(`METRICS_PORT: cannot listen on ${host}:${config.metrics.port} (${(err as NodeJS.ErrnoException).code ?? 'error'}); choose a free port or unset it`, 2, { cause: err });
  }));
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
    await run(config, logger, store, telephony, connection, clientConnection, registry);
  } finally {
    await metricsServer?.close();
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
  registry: Registry | undefined,
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
  // The trunk's channels are read from the database at each scrape (every worker's leases).
  const trunkId = config.livekit.sipTrunkId;
  const metrics: WorkerMetrics = registry
    ? createWorkerMetrics(registry, trunkId, async () => {
        const [inUse, limits] = await Promise.all([liveLeaseCount(store.sql, trunkId), getTrunkLimits(store.sql, trunkId)]);
        return { inUse, channels: limits?.channels ?? config.trunkLimits.channels, callsPerSecond: limits?.callsPerSecond ?? config.trunkLimits.callsPerSecond };
      })
    : noopWorkerMetrics;
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
      metrics: registry ? `${config.metrics.host}:${config.metrics.port}` : 'off',
      temporalMetrics: config.metrics.temporalPort === undefined ? 'off' : `${config.metrics.host}:${config.metrics.temporalPort}`,
    },
    'worker started',
  );
  try {
    await worker.run();
  } finally {
    pacing.close();
    await connection.close();
    await clientConnection.close();
  }
}

main().catch((err: unknown) => exitWithError('call-campaigns worker', err));
