/**
 * The baseline of `npm run bench:campaign`'s overhead measure: a workflow that runs one activity
 * that does nothing, bundled on its own (never part of the production workflow bundle).
 */
import { proxyActivities } from '@temporalio/workflow';

const { bareActivity } = proxyActivities<{ bareActivity(n: number): Promise<number> }>({ startToCloseTimeout: '1 minute' });

/** One activity, then done. */
export async function bareWorkflow(n: number): Promise<number> {
  return bareActivity(n);
}
