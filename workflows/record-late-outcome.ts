/**
 * Records an agent's outcome that its confirmation no longer takes (it had decided, or closed):
 * the patient said it, so it goes to the audit log — durably, retried until the database takes it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ConfirmationActivities, LateOutcomeInput } from '../src/contracts';

const { recordLateOutcome } = proxyActivities<ConfirmationActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/** Audits one late outcome; its id ({@link lateOutcomeWorkflowId}) makes a repeated report a no-op. */
export async function recordLateOutcomeWorkflow(input: LateOutcomeInput): Promise<void> {
  await recordLateOutcome(input);
}
