/**
 * Validation of what callers send, before anything is started: every problem is reported with the
 * field it concerns. Values of health-data fields (name, phone) are never echoed back, since error
 * messages end up in logs.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { DateTime, IANAZone } from 'luxon';
import { z } from 'zod';
import { MIN_RINGING_TIMEOUT_SECONDS, type ConfirmationRequest } from './contracts';

/** One problem with one field. */
export interface FieldProblem {
  field: string;
  problem: string;
}

/** Bad input: lists every problem, each naming its field. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(readonly problems: FieldProblem[]) {
    super(problems.map((p) => `${p.field}: ${p.problem}`).join('; '));
  }
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const id = (what: string) =>
  z.string({ error: `required (${what})` }).regex(ID, 'must be 1–64 letters, digits, "-" or "_" (it is part of the workflow id)');
const text = (what: string, max = 200) =>
  z.string({ error: `required (${what})` }).trim().min(1, `required (${what})`).max(max, `must be at most ${max} characters`);

/** E.164 and valid for its country (libphonenumber-js metadata). The value is never echoed. */
export const e164 = (what: string) =>
  z.string({ error: `required (${what})` }).refine((value) => isE164(value), {
    error: 'not a valid phone number in E.164 form (+ country code and number, no spaces)',
  });

export function isE164(value: string): boolean {
  if (!/^\+[1-9]\d{6,14}$/.test(value)) return false;
  const parsed = parsePhoneNumberFromString(value);
  return parsed !== undefined && parsed.isValid() && parsed.number === value;
}

export const timeZone = z
  .string({ error: 'required (IANA time zone, e.g. America/Chicago)' })
  .refine((zone) => IANAZone.isValidZone(zone) && zone.includes('/'), {
    // The value is not quoted back: error messages reach logs (rule for every field).
    error: 'not an IANA time zone (e.g. America/Chicago)',
  });

/** ISO 8601 with an explicit offset (an appointment time without one is ambiguous). */
export const isoWithOffset = z
  .string({ error: 'required (ISO 8601 with offset, e.g. 2026-12-01T10:30:00-06:00)' })
  .refine((value) => /(Z|[+-]\d{2}:?\d{2})$/.test(value) && DateTime.fromISO(value, { setZone: true }).isValid, {
    // An appointment time is health data: never quoted back.
    error: 'is not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)',
  });

const int = (min: number, max: number, unit: string) =>
  z.number({ error: `must be a number (${unit})` }).int('must be a whole number').min(min, `must be at least ${min} ${unit}`).max(max, `must be at most ${max} ${unit}`);

const policySchema = z
  .object({
    maxAttempts: int(1, 10, 'attempts'),
    initialBackoffSeconds: int(1, 7 * 24 * 3600, 'seconds'),
    backoffMultiplier: z.number().min(1, 'must be at least 1').max(10, 'must be at most 10'),
    ringingTimeoutSeconds: int(MIN_RINGING_TIMEOUT_SECONDS, 180, 'seconds (calling rules: ring at least 15 s)'),
    maxCallDurationSeconds: int(30, 3600, 'seconds'),
    outcomeMarginSeconds: int(0, 600, 'seconds'),
    deadlineBeforeAppointmentSeconds: int(0, 7 * 24 * 3600, 'seconds'),
  })
  .partial()
  .strict();

const requestSchema = z
  .object({
    appointmentId: id('the practice\'s appointment id'),
    patientId: text('the practice\'s patient id', 128),
    patientName: text('patient name'),
    phone: e164('patient phone, E.164'),
    patientTimeZone: timeZone,
    appointmentStart: isoWithOffset,
    practiceId: id('practice id'),
    practiceName: text('practice name'),
    practiceCallbackNumber: e164('practice callback number, E.164'),
    provider: text('provider'),
    reason: text('reason for the visit'),
    campaignId: id('campaign id').optional(),
    policy: policySchema.optional(),
  })
  .strict();

function problemsOf(error: z.ZodError): FieldProblem[] {
  return error.issues.map((issue) => ({
    field: issue.path.join('.') || '(request)',
    problem: issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
  }));
}

/**
 * Validates a confirmation request; throws {@link ValidationError} listing every problem.
 * Returns the request with the appointment start expressed in the patient's zone.
 */
export function validateConfirmationRequest(input: unknown, now: Date = new Date()): ConfirmationRequest {
  const parsed = requestSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError(problemsOf(parsed.error));
  const request = parsed.data as ConfirmationRequest;
  const start = DateTime.fromISO(request.appointmentStart, { setZone: true });
  if (start.toMillis() <= now.getTime()) {
    throw new ValidationError([{ field: 'appointmentStart', problem: 'is not in the future' }]);
  }
  return { ...request, appointmentStart: start.setZone(request.patientTimeZone).toISO({ suppressMilliseconds: true })! };
}

/** Validates a phone number argument (opt-out, consent). */
export function validatePhone(field: string, value: unknown): string {
  const parsed = e164(field).safeParse(value);
  if (!parsed.success) throw new ValidationError([{ field, problem: parsed.error.issues[0]!.message }]);
  return parsed.data;
}

/** Validates an ISO 8601 time with offset in the future (appointment moves). */
export function validateFutureTime(field: string, value: unknown, now: Date = new Date()): string {
  const parsed = isoWithOffset.safeParse(value);
  if (!parsed.success) throw new ValidationError([{ field, problem: parsed.error.issues[0]!.message }]);
  if (Date.parse(parsed.data) <= now.getTime()) throw new ValidationError([{ field, problem: 'is not in the future' }]);
  return parsed.data;
}

/** Validates an id used in workflow ids. */
export function validateId(field: string, value: unknown): string {
  const parsed = id(field).safeParse(value);
  if (!parsed.success) throw new ValidationError([{ field, problem: parsed.error.issues[0]!.message }]);
  return parsed.data;
}
