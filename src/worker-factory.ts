/**
 * Builds the confirmation worker from its dependencies. The worker entry (`npm run worker`), the
 * demo and the end-to-end tests all go through here, so they run the same code.
 */
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities, type ActivityDeps } from '../activities';
import { bundleWorkflows } from './bundle';
import { createDataConverter } from './codec';
import { TASK_QUEUE } from './contracts';

export interface ConfirmationWorkerOptions extends Omit<ActivityDeps, 'logger'> {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  payloadEncryptionKey: string;
  logger: Logger;
  /** A prebuilt bundle (tests build it once per suite); bundled here when omitted. */
  workflowBundle?: WorkflowBundleWithSourceMap;
}

/** Creates (does not run) the worker serving confirmations. */
export async function createConfirmationWorker(options: ConfirmationWorkerOptions): Promise<Worker> {
  const { connection, namespace, taskQueue, payloadEncryptionKey, workflowBundle, ...deps } = options;
  return Worker.create({
    connection,
    namespace: namespace ?? 'default',
    taskQueue: taskQueue ?? TASK_QUEUE,
    workflowBundle: workflowBundle ?? (await bundleWorkflows()),
    activities: createActivities(deps),
    dataConverter: createDataConverter(payloadEncryptionKey),
  });
}
