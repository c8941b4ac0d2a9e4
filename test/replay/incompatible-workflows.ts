/**
 * A deliberately incompatible change for the negative replay test: a timer before the first
 * activity changes the command sequence that every recorded history starts with.
 */
import { sleep } from '@temporalio/workflow';
import type { ConfirmationRequest, ConfirmationResult } from '../../src/contracts';
import { confirmAppointmentWorkflow as current } from '../../workflows/confirm-appointment';

export async function confirmAppointmentWorkflow(request: ConfirmationRequest): Promise<ConfirmationResult> {
  await sleep('1 minute');
  return current(request);
}
