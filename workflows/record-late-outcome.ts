/**
 * Records an agent's outcome that its confirmation no longer takes (it had decided, or closed):
 * the patient said it, so it goes to the audit log — durably, retried until the database takes it.
 */
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { ConfirmationActivities, LateOutcomeInput } from '../src/contracts';
import { INVALID_LATE_OUTCOME_FAILURE, validateLateOutcome, ValidationError } from '../src/validation';

const { recordLateOutcome } = proxyActivities<ConfirmationActivities>({
  startToCloseTimeout: '30 seconds',
  // Unbounded on purpose: what the patient said is never dropped — a database outage (or an
  // appointment row not written yet) is waited out, visible to operators as a pending activity.
  // Bad data can never succeed: the input is validated below, and the activity fails non-retryably
  // on constraint violations.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/** Audits one late outcome; its id ({@link lateOutcomeWorkflowId}) makes a repeated report a no-op. */
export async function recordLateOutcomeWorkflow(input: LateOutcomeInput): Promise<void> {
  let valid: LateOutcomeInput;
  try {
    // Started by the agent's reporter, or by anyone with a Temporal client: checked like the Update.
    valid = validateLateOutcome(input);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    throw ApplicationFailure.create({ type: INVALID_LATE_OUTCOME_FAILURE, message: `invalid late outcome: ${err.message}`, nonRetryable: true, details: [err.problems] });
  }
  await recordLateOutcome(valid);
}
