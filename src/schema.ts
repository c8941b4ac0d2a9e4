/**
 * The published JSON Schema of `confirmAppointmentWorkflow`'s input, generated from the zod schema
 * the client and the workflow validate with — so a Python or Java backend can check a request
 * before it starts a confirmation with its own Temporal SDK. `npm run schema` writes it to
 * {@link CONFIRMATION_REQUEST_SCHEMA_PATH}; a test keeps the committed file equal to this.
 */
import { z } from 'zod';
import { TASK_QUEUE } from './contracts';
import { getConfirmationRequestSchema, MAX_APPOINTMENT_LEAD_DAYS } from './validation';

/** Where the schema is committed, relative to the repository root. */
export const CONFIRMATION_REQUEST_SCHEMA_PATH = 'schemas/confirmation-request.schema.json';

/** The JSON Schema (draft 2020-12) of a confirmation request, as JSON text (2-space indent, trailing newline). */
export function confirmationRequestJsonSchema(): string {
  const schema = z.toJSONSchema(getConfirmationRequestSchema(), { io: 'input', target: 'draft-2020-12' });
  const published = {
    ...schema,
    $comment:
      `Workflow type confirmAppointmentWorkflow, task queue ${TASK_QUEUE} (default), workflow id confirm-<practiceId>-<appointmentId>, ` +
      `one argument: this object. Checks beyond this schema, applied by the client and by the workflow at its start: phone numbers ` +
      `valid for their country (libphonenumber-js), a time zone the runtime knows, appointmentStart in the future and at most ` +
      `${MAX_APPOINTMENT_LEAD_DAYS} days ahead. A request that fails them ends the workflow at once with a non-retryable ` +
      `ApplicationFailure of type INVALID_CONFIRMATION_REQUEST naming each bad field. Generated from src/validation.ts by npm run schema.`,
  };
  return `${JSON.stringify(published, null, 2)}\n`;
}
