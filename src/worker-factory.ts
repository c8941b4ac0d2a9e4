/**
 * Builds the confirmation worker from its dependencies. The worker entry (`npm run worker`), the
 * demo and the end-to-end tests all go through here, so they run the same code.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createActivities, type ActivityDeps } from '../activities';
import { createCampaignActivities, type CampaignActivityDeps } from '../activities/campaign';
import { bundleWorkflowsInChildProcess } from './bundle';
import { createDataConverter } from './codec';
import { campaignWorkflowId, confirmationEndedSignal, TASK_QUEUE } from './contracts';
import { safeMessage } from './errors';
import { DEFAULT_MAX_CACHED_WORKFLOWS } from './worker-defaults';

export { DEFAULT_MALLOC_ARENA_MAX, DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_WORKER_HEAP_MB } from './worker-defaults';

export interface ConfirmationWorkerOptions extends Omit<ActivityDeps, 'logger'> {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  payloadEncryptionKey: string;
  logger: Logger;
  /** A prebuilt bundle (tests build it once per suite); bundled in a child process when omitted. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  /** What the campaign activities need; campaigns cannot run on a worker without them. */
  campaigns?: Omit<CampaignActivityDeps, 'logger'>;
  /**
   * Activities run at once (default {@link DEFAULT_MAX_CONCURRENT_ACTIVITIES}). Attempts wait for a
   * channel inside `acquireChannel`, holding an activity slot: with fewer slots than confirmations
   * waiting, the dials of granted calls queue behind waiters and the trunk's channels sit idle until
   * their leases expire.
   */
  maxConcurrentActivities?: number;
  /**
   * Workflows kept in the worker's cache (default {@link DEFAULT_MAX_CACHED_WORKFLOWS}). A workflow
   * not in the cache is replayed from its history at its next task: CPU and server reads, not errors.
   */
  maxCachedWorkflows?: number;
  /** Threads running workflow code (default: the SDK's, 1). */
  workflowThreads?: number;
}

/**
 * Default activity slots: a campaign keeps up to 300 confirmations outstanding (DEFAULT_MAX_OUTSTANDING),
 * most of them waiting for a channel in an activity, plus the calls and the campaign's own work. The
 * waits are timers and database ticks, not CPU.
 */
export const DEFAULT_MAX_CONCURRENT_ACTIVITIES = 1_000;

/** Creates (does not run) the worker serving confirmations and campaigns. */
export async function createConfirmationWorker(options: ConfirmationWorkerOptions): Promise<Worker> {
  const { connection, namespace, taskQueue, payloadEncryptionKey, workflowBundle, campaigns, maxConcurrentActivities, maxCachedWorkflows, workflowThreads, ...deps } = options;
  const campaignClient = campaigns?.client;
  return Worker.create({
    connection,
    namespace: namespace ?? 'default',
    taskQueue: taskQueue ?? TASK_QUEUE,
    workflowBundle: workflowBundle ?? (await bundleWorkflowsInChildProcess()),
    activities: {
      ...createActivities({
        ...deps,
        // A campaign's confirmation ended: the campaign counts again and starts the next at once.
        onCampaignConfirmationEnded:
          deps.onCampaignConfirmationEnded ??
          (campaignClient &&
            throttledPerCampaign(async (practiceId, campaignId) => {
              try {
                await campaignClient.workflow.getHandle(campaignWorkflowId(practiceId, campaignId)).signal(confirmationEndedSignal);
              } catch (err) {
                // The campaign ended already (cancelled, or this was its last confirmation).
                if (!(err instanceof WorkflowNotFoundError)) throw err;
              }
            }, deps.logger)),
      }),
      ...(campaigns ? createCampaignActivities({ ...campaigns, logger: deps.logger }) : {}),
    },
    dataConverter: createDataConverter(payloadEncryptionKey),
    maxConcurrentActivityTaskExecutions: maxConcurrentActivities ?? DEFAULT_MAX_CONCURRENT_ACTIVITIES,
    maxCachedWorkflows: maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS,
    ...(workflowThreads ? { workflowThreadPoolSize: workflowThreads } : {}),
  });
}

/** Shortest interval between two "confirmation ended" signals from one worker to one campaign, in ms. */
export const CAMPAIGN_NUDGE_MS = 1_000;

/**
 * Ended confirmations are signalled to their campaign at most once per {@link CAMPAIGN_NUDGE_MS}
 * from this worker: the first at once, and one more at the end of the interval when others ended
 * meanwhile (the campaign counts them all in one tick; it gathers for 2 s after a wake anyway). One
 * signal per ended confirmation cost a history event each and, in a busy campaign, kept a workflow
 * task of the campaign's open so often that its continue-as-new was refused.
 */
export function throttledPerCampaign(
  send: (practiceId: string, campaignId: string) => Promise<void>,
  logger: Logger,
): (practiceId: string, campaignId: string) => Promise<void> {
  const campaigns = new Map<string, { lastAt: number; trailing?: NodeJS.Timeout }>();
  return async (practiceId, campaignId) => {
    const key = campaignWorkflowId(practiceId, campaignId);
    const c = campaigns.get(key) ?? { lastAt: 0 };
    campaigns.set(key, c);
    if (c.trailing) return; // a signal is due at the end of the interval: it counts this end too
    const waitMs = c.lastAt + CAMPAIGN_NUDGE_MS - Date.now();
    if (waitMs <= 0) {
      c.lastAt = Date.now();
      await send(practiceId, campaignId);
      return;
    }
    c.trailing = setTimeout(() => {
      c.trailing = undefined;
      c.lastAt = Date.now();
      send(practiceId, campaignId).catch((err: unknown) => logger.warn({ campaign: key, error: safeMessage(err) }, 'could not tell the campaign'));
    }, waitMs);
    c.trailing.unref();
  };
}
