/**
 * The same change as incompatible-workflows.ts, made safely with `patched()`: running (and
 * recorded) confirmations keep their old path; new ones take the new one.
 */
import { patched, sleep } from '@temporalio/workflow';
import type { ConfirmationRequest, ConfirmationResult } from '../../src/contracts';
import { confirmAppointmentWorkflow as current } from '../../workflows/confirm-appointment';

export async function confirmAppointmentWorkflow(request: ConfirmationRequest): Promise<ConfirmationResult> {
  if (patched('pause-before-first-plan')) await sleep('1 minute');
  return current(request);
}

export { campaignWorkflow, recordLateOutcomeWorkflow } from '../../workflows';
