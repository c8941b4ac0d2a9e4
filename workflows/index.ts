/** Workflow entry point bundled by the worker: every workflow the task queue serves. */
export { confirmAppointmentWorkflow } from './confirm-appointment';
export { recordLateOutcomeWorkflow } from './record-late-outcome';
export { campaignWorkflow } from './campaign';
