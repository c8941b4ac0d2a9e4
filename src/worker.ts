/**
 * Worker entry: `npm run worker`. Configuration comes from the environment (see the README's table)
 * and is validated before anything connects; a bad setting stops the process with every problem named.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfirmationClient } from './client';
import { createDataConverter } from './codec';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { createStore } from './store';
import { createLiveKitTelephony } from './telephony/livekit';
import { createConfirmationWorker } from './worker-factory';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`call-campaigns worker: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const store = await createStore({ databaseUrl: config.database.url, dataDir: config.database.dataDir });
  const telephony = createLiveKitTelephony({ ...config.livekit, logger });
  // A wrong trunk id would fail every call; fail the start instead, naming the setting.
  try {
    await telephony.verifyTrunk();
  } catch (err) {
    process.stderr.write(`call-campaigns worker: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  // Opt-outs reported by the agent stop the number's other confirmations through the client API.
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const api = new ConfirmationClient({
    client: new Client({ connection: clientConnection, namespace: config.temporal.namespace, dataConverter: createDataConverter(config.payloadEncryptionKey) }),
    store,
    taskQueue: config.temporal.taskQueue,
  });
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
  });
  logger.info(
    {
      temporal: config.temporal.address,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      database: config.database.url ? 'postgresql' : `pglite:${config.database.dataDir}`,
      livekit: config.livekit.url,
      agentName: config.livekit.agentName,
    },
    'worker started',
  );
  try {
    await worker.run();
  } finally {
    await store.close();
    await connection.close();
    await clientConnection.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`call-campaigns worker: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
