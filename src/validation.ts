/**
 * Validation of everything callers send — the client API, direct starts of the workflows (other
 * SDKs, the `temporal` CLI), the agent's `outcome` Update and the signals — with one set of rules.
 * Every problem is reported with the field it concerns; values are never echoed back (they may be
 * health data, or megabytes long), since error messages end up in logs and failure histories.
 *
 * Deterministic (no Node built-ins, no I/O, no clock unless passed in): the workflow bundle imports
 * it, so a direct start is checked with exactly the client's rules. Two checks read data that ships
 * with the code or the runtime — the libphonenumber-js metadata and the runtime's time-zone names —
 * which is why workflows run them once, at the start of a run, never on later activations' data.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { DateTime, IANAZone } from 'luxon';
import { z } from 'zod';
import {
  AGENT_OUTCOMES,
  CallOutcome,
  MIN_RINGING_TIMEOUT_SECONDS,
  type CallLimits,
  type CampaignWorkflowInput,
  type ConfirmationRequest,
  type ControlRequest,
  type LateOutcomeInput,
  type LimitsChange,
  type OutcomeReport,
  type RowsAdded,
} from './contracts';

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

/**
 * Collects the problems of several checks, so one error names every bad field: `check(fn)` runs one
 * check and keeps its {@link ValidationError}'s problems (any other error is thrown).
 */
export function problemCollector(): { problems: FieldProblem[]; check<T>(fn: () => T): T | undefined } {
  const problems: FieldProblem[] = [];
  const check = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };
  return { problems, check };
}

/** Failure `type` of a confirmation workflow started with a bad request (non-retryable; details: the {@link FieldProblem}s). */
export const INVALID_REQUEST_FAILURE = 'INVALID_CONFIRMATION_REQUEST';
/** Failure `type` of an `outcome` Update rejected because the report itself is malformed (resending it cannot help). */
export const INVALID_REPORT_FAILURE = 'INVALID_OUTCOME_REPORT';
/** Failure `type` of a `recordLateOutcomeWorkflow` started with a bad input (non-retryable). */
export const INVALID_LATE_OUTCOME_FAILURE = 'INVALID_LATE_OUTCOME';

/** Appointments further ahead than this are refused: confirmations are for upcoming visits (and year 9999 is a typo). */
export const MAX_APPOINTMENT_LEAD_DAYS = 366;
/** Longest text the agent may attach to an outcome (`OutcomeDetail`), in characters. */
export const OUTCOME_DETAIL_MAX_CHARS = { reschedulePreference: 500, note: 1000 } as const;
/** Longest `source` / `reason` of an opt-out or consent record, in characters. */
export const SOURCE_MAX_CHARS = 200;
/** Longest workflow id accepted by the client API (Temporal ids are bounded; ours are far shorter). */
export const WORKFLOW_ID_MAX_CHARS = 255;
/** Most attempts a policy may allow (also bounds the `attempt` of reports). */
export const MAX_ATTEMPTS_LIMIT = 10;

const DAY_MS = 24 * 60 * 60 * 1000;

/** "required" when missing, "must be a <kind>" when present with another type. Never quotes the value. */
const typeError = (kind: string, what: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? `required (${what})` : `must be ${kind} (${what})`;

/**
 * A string of at most `max` characters, checked before anything else looks at it: a 10 MB value
 * is refused by its length alone (no regex or parser ever runs over it).
 */
const bounded = (what: string, max: number) =>
  z.string({ error: typeError('a string', what) }).max(max, { error: `must be at most ${max} characters`, abort: true });

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const id = (what: string) =>
  bounded(what, 64).regex(ID, 'must be 1–64 letters, digits, "-" or "_" (it is part of the workflow id)');
/**
 * Control characters (C0, DEL) and bidirectional overrides: never part of a name or a reason, and in
 * logs, terminals and CSV exports for the front desk they hide or rewrite what is shown.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NO_CONTROL = /^[^\u0000-\u001f\u007f\u202a-\u202e\u2066-\u2069]*$/;
const text = (what: string, max = 200) =>
  bounded(what, max)
    .trim()
    .min(1, `required (${what})`)
    // A regex, not a refinement: the published JSON Schema carries it too.
    .regex(NO_CONTROL, { error: 'must not contain control characters (line breaks, tabs, escape or direction codes)' });

const E164 = /^\+[1-9]\d{6,14}$/;
/**
 * E.164 and, with `dataChecks` (the default), valid for its country (libphonenumber-js metadata).
 * The value is never echoed.
 */
export const e164 = (what: string, dataChecks = true) => {
  const shape = bounded(what, 16).regex(E164, { error: 'not a valid phone number in E.164 form (+ country code and number, no spaces)', abort: true });
  return dataChecks ? shape.refine((value) => isE164(value), { error: 'not a valid phone number in E.164 form (+ country code and number, no spaces)' }) : shape;
};

export function isE164(value: string): boolean {
  if (!E164.test(value)) return false;
  const parsed = parsePhoneNumberFromString(value);
  return parsed !== undefined && parsed.isValid() && parsed.number === value;
}

/** Zone names remembered at most (valid zones are ~600; the rest bounds what arbitrary input can add). */
const MAX_REMEMBERED_ZONES = 4_096;
const knownZones = new Map<string, boolean>();

/**
 * Whether `zone` is an IANA zone name the runtime's tz database (Luxon) knows, remembered per name:
 * `IANAZone.isValidZone` builds an `Intl.DateTimeFormat` on every call (0.1–1 ms) — for every
 * imported row and every number's mapped zones that was seconds per 10,000 rows — and the answer
 * cannot change while the process runs.
 */
export function isKnownZone(zone: string): boolean {
  const remembered = knownZones.get(zone);
  if (remembered !== undefined) return remembered;
  const valid = IANAZone.isValidZone(zone);
  if (knownZones.size < MAX_REMEMBERED_ZONES) knownZones.set(zone, valid);
  return valid;
}

const ZONE = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){1,2}$/;
/** An IANA zone name; with `dataChecks` (the default), one the runtime's time-zone data knows. */
export const ianaZone = (dataChecks = true) => {
  const shape = bounded('IANA time zone, e.g. America/Chicago', 64).regex(ZONE, { error: 'not an IANA time zone (e.g. America/Chicago)', abort: true });
  return dataChecks ? shape.refine((zone) => isKnownZone(zone), { error: 'not an IANA time zone (e.g. America/Chicago)' }) : shape;
};

const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
/** ISO 8601 with an explicit offset (an appointment time without one is ambiguous). */
const isoWithOffset = bounded('ISO 8601 with offset, e.g. 2026-12-01T10:30:00-06:00', 40)
  .regex(ISO_WITH_OFFSET, { error: 'not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)', abort: true })
  .refine((value) => DateTime.fromISO(value, { setZone: true }).isValid, {
    error: 'not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)',
  });

const int = (min: number, max: number, unit: string) =>
  z
    .number({ error: typeError('a number', unit) })
    .int('must be a whole number')
    .min(min, `must be at least ${min} ${unit}`)
    .max(max, `must be at most ${max} ${unit}`);

const policySchema = z
  .object(
    {
      maxAttempts: int(1, MAX_ATTEMPTS_LIMIT, 'attempts'),
      initialBackoffSeconds: int(1, 7 * 24 * 3600, 'seconds'),
      backoffMultiplier: z.number({ error: typeError('a number', 'factor') }).min(1, 'must be at least 1').max(10, 'must be at most 10'),
      ringingTimeoutSeconds: int(MIN_RINGING_TIMEOUT_SECONDS, 180, 'seconds (calling rules: ring at least 15 s)'),
      maxCallDurationSeconds: int(30, 3600, 'seconds'),
      outcomeMarginSeconds: int(0, 600, 'seconds'),
      deadlineBeforeAppointmentSeconds: int(0, 7 * 24 * 3600, 'seconds'),
    },
    { error: typeError('an object', 'call policy overrides') },
  )
  .partial()
  .strict();

/** The confirmation request's schema; `dataChecks` adds the checks that read libphonenumber-js metadata and tz data. */
const requestSchema = (dataChecks: boolean) =>
  z
    .object(
      {
        appointmentId: id("the practice's appointment id").describe("The practice's id of the appointment; part of the workflow id."),
        patientId: text("the practice's patient id", 128).describe("The practice's id of the patient."),
        patientName: text('patient name').describe('Patient name as the agent may say it. Health data.'),
        phone: e164('patient phone, E.164', dataChecks).describe('Patient phone number, E.164 (+12125550123), valid for its country. Health data.'),
        patientTimeZone: ianaZone(dataChecks).describe('Patient IANA time zone (America/Chicago); the calling window is computed in it.'),
        appointmentStart: isoWithOffset.describe(
          `Appointment start, ISO 8601 with offset; in the future and at most ${MAX_APPOINTMENT_LEAD_DAYS} days ahead. Health data.`,
        ),
        practiceId: id('practice id').describe('Practice id; part of the workflow id.'),
        practiceName: text('practice name').describe('Practice name the agent says first.'),
        practiceCallbackNumber: e164('practice callback number, E.164', dataChecks).describe('Number the patient can call back, E.164.'),
        provider: text('provider').describe('Provider the appointment is with (Dr. Rivera).'),
        reason: text('reason for the visit').describe('Short reason for the visit (cleaning); no further health details.'),
        campaignId: id('campaign id').optional().describe('Campaign that started this confirmation.'),
        policy: policySchema.optional().describe('Overrides of the retry and call-length defaults.'),
      },
      { error: 'must be an object (a ConfirmationRequest)' },
    )
    .strict()
    .meta({ title: 'ConfirmationRequest', description: 'Input of the confirmAppointmentWorkflow workflow (one appointment to confirm).' });

/**
 * The confirmation request (`ConfirmationRequest`), as a JSON value. Exported (through
 * {@link getConfirmationRequestSchema}) for the published JSON Schema
 * (`schemas/confirmation-request.schema.json`); the checks that JSON Schema cannot express (valid
 * number for its country, known time zone, in the future, at most {@link MAX_APPOINTMENT_LEAD_DAYS}
 * ahead) run in {@link parseConfirmationRequest}.
 */
const confirmationRequestSchema = requestSchema(true);
/**
 * {@link confirmationRequestSchema}. A function, not an exported object, as every schema here: the
 * workflow bundle preloads this module once per workflow thread (src/workflow-preload.ts) and the
 * SDK deep-freezes the objects a preloaded module exports — zod schemas stop working when frozen.
 */
export function getConfirmationRequestSchema(): typeof confirmationRequestSchema {
  return confirmationRequestSchema;
}
/** The same without the checks that read data shipped outside the code (phone metadata, time-zone names). */
const requestShapeSchema = requestSchema(false);

const outcomeDetailSchema = z
  .object(
    {
      reschedulePreference: bounded('preferred days or times', OUTCOME_DETAIL_MAX_CHARS.reschedulePreference).optional(),
      note: bounded('note for the practice', OUTCOME_DETAIL_MAX_CHARS.note).optional(),
    },
    { error: typeError('an object', 'outcome detail: reschedulePreference, note') },
  )
  .strict();

const attemptNumber = z
  .number({ error: typeError('a number', 'attempt number') })
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(MAX_ATTEMPTS_LIMIT, `must be at most ${MAX_ATTEMPTS_LIMIT}`);
const agentOutcome = z.enum([...AGENT_OUTCOMES] as [CallOutcome, ...CallOutcome[]], {
  error: `not an outcome the agent can report (${[...AGENT_OUTCOMES].join(', ')})`,
});

const outcomeReportSchema = z
  .object({ attempt: attemptNumber, outcome: agentOutcome, detail: outcomeDetailSchema.optional() }, { error: 'must be an object (an OutcomeReport)' })
  .strict();

const lateOutcomeSchema = z
  .object(
    {
      workflowId: bounded('workflow id', WORKFLOW_ID_MAX_CHARS).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
      attempt: attemptNumber,
      outcome: agentOutcome,
      detail: outcomeDetailSchema.optional(),
      reason: text('why the confirmation did not take it', 500),
      reportedAt: isoWithOffset,
    },
    { error: 'must be an object (a LateOutcomeInput)' },
  )
  .strict();

const consentSchema = z
  .object(
    {
      practiceId: id('practice id'),
      phone: e164('patient phone, E.164'),
      patientId: text("the practice's patient id", 128).optional(),
      granted: z.boolean({ error: typeError('true or false', 'consent given, or withdrawn') }),
      source: text('where the consent was given', SOURCE_MAX_CHARS),
    },
    { error: 'must be an object (practiceId, phone, patientId, granted, source)' },
  )
  .strict();

/** Unknown keys are named (bounded: a hostile key name must not make the message huge), never their values. */
function unknownKeys(keys: string[]): string {
  const shown = keys.filter((k) => /^[A-Za-z0-9_.-]{1,40}$/.test(k)).slice(0, 10);
  const rest = keys.length - shown.length;
  return `unknown field(s): ${[...shown, ...(rest > 0 ? [`${rest} other${rest > 1 ? 's' : ''}`] : [])].join(', ')}`;
}

function problemsOf(error: z.ZodError, root = '(request)'): FieldProblem[] {
  return error.issues.map((issue) => ({
    field: issue.path.join('.') || root,
    problem: issue.code === 'unrecognized_keys' ? unknownKeys(issue.keys) : issue.message,
  }));
}

/**
 * Checks a confirmation request with every rule, without rewriting it (beyond trimming text):
 * what the workflow runs at its start. `now` is the caller's clock (the workflow's start time there).
 * Throws {@link ValidationError} listing every problem.
 *
 * `dataChecks: false` leaves out the two checks that read data shipped outside this code — phone
 * numbers valid for their country (libphonenumber-js metadata) and zone names the runtime knows —
 * for a workflow replaying a run that passed them already: a metadata or tz-data upgrade must never
 * make a running confirmation fail on replay.
 */
export function parseConfirmationRequest(input: unknown, now: Date, options: { dataChecks?: boolean } = {}): ConfirmationRequest {
  const parsed = (options.dataChecks === false ? requestShapeSchema : confirmationRequestSchema).safeParse(input);
  const problems = parsed.success ? [] : problemsOf(parsed.error);
  if (parsed.success) {
    const startProblem = appointmentTimeProblem(parsed.data.appointmentStart, now);
    if (startProblem) problems.push({ field: 'appointmentStart', problem: startProblem });
  }
  if (problems.length > 0) throw new ValidationError(problems);
  return parsed.data as ConfirmationRequest;
}

/**
 * Validates a confirmation request (the client API); throws {@link ValidationError} listing every
 * problem. Returns the request with the appointment start expressed in the patient's zone.
 */
export function validateConfirmationRequest(input: unknown, now: Date = new Date()): ConfirmationRequest {
  const request = parseConfirmationRequest(input, now);
  const start = DateTime.fromISO(request.appointmentStart, { setZone: true });
  return { ...request, appointmentStart: start.setZone(request.patientTimeZone).toISO({ suppressMilliseconds: true })! };
}

/** Why an (ISO, with offset) appointment time is unacceptable at `now`, or undefined. Never quotes it. */
export function appointmentTimeProblem(iso: string, now: Date): string | undefined {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return 'not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)';
  if (at <= now.getTime()) return 'must be in the future';
  if (at > now.getTime() + MAX_APPOINTMENT_LEAD_DAYS * DAY_MS) {
    return `must be at most ${MAX_APPOINTMENT_LEAD_DAYS} days ahead (confirmations are for upcoming appointments)`;
  }
  return undefined;
}

/** Validates the agent's `outcome` Update argument: types, allowed keys, bounded sizes. */
export function validateOutcomeReport(input: unknown): OutcomeReport {
  const parsed = outcomeReportSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError(problemsOf(parsed.error, '(report)'));
  return parsed.data as OutcomeReport;
}

/** Validates the input of `recordLateOutcomeWorkflow`. */
export function validateLateOutcome(input: unknown): LateOutcomeInput {
  const parsed = lateOutcomeSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError(problemsOf(parsed.error, '(input)'));
  return parsed.data as LateOutcomeInput;
}

/** Validates a consent record (client API). */
export function validateConsent(input: unknown): { practiceId: string; phone: string; patientId?: string; granted: boolean; source: string } {
  const parsed = consentSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError(problemsOf(parsed.error, '(consent)'));
  return parsed.data;
}

/** Validates a phone number argument (opt-out, consent). */
export function validatePhone(field: string, value: unknown): string {
  return single(field, e164(field), value);
}

/** Validates a short free-text argument (an opt-out's source): required, at most `max` characters. */
export function validateText(field: string, value: unknown, max = SOURCE_MAX_CHARS): string {
  return single(field, text(field, max), value);
}

/** Validates a workflow id argument (status, result, opt-out exceptions). */
export function validateWorkflowId(field: string, value: unknown): string {
  return single(field, bounded(field, WORKFLOW_ID_MAX_CHARS).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'), value);
}

/** Validates an ISO 8601 time with offset in the future, at most {@link MAX_APPOINTMENT_LEAD_DAYS} ahead (appointment moves). */
export function validateFutureTime(field: string, value: unknown, now: Date = new Date()): string {
  const time = single(field, isoWithOffset, value);
  const problem = appointmentTimeProblem(time, now);
  if (problem) throw new ValidationError([{ field, problem }]);
  return time;
}

/** Validates an id used in workflow ids. */
export function validateId(field: string, value: unknown): string {
  return single(field, id(field), value);
}

function single<T>(field: string, schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ValidationError([{ field, problem: parsed.error.issues[0]!.message }]);
  return parsed.data;
}

// ------------------------------------------------------------------------------- campaigns

/** Most channels a campaign or trunk limit may name (a sanity bound, far above a practice's trunk). */
export const MAX_CHANNELS_LIMIT = 1_000;
/** Most calls per second a limit may name. */
export const MAX_CALLS_PER_SECOND_LIMIT = 100;
/** Most confirmations one campaign may run at once. */
export const MAX_OUTSTANDING_LIMIT = 2_000;

const channels = z
  .number({ error: typeError('a whole number', 'concurrent calls') })
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(MAX_CHANNELS_LIMIT, `must be at most ${MAX_CHANNELS_LIMIT}`);
const callsPerSecond = z
  .number({ error: typeError('a number', 'new calls per second') })
  .gt(0, 'must be above 0')
  .max(MAX_CALLS_PER_SECOND_LIMIT, `must be at most ${MAX_CALLS_PER_SECOND_LIMIT}`)
  .refine(Number.isFinite, 'must be a finite number');

const controlShape = { actor: text('who asks: a user or service name'), reason: text('why', SOURCE_MAX_CHARS).optional() };
const controlSchema = z.strictObject(controlShape);
const limitsChangeSchema = z
  .strictObject({ ...controlShape, channels: channels.optional(), callsPerSecond: callsPerSecond.optional() })
  .refine((v) => v.channels !== undefined || v.callsPerSecond !== undefined, { error: 'give channels, callsPerSecond or both', path: ['channels'] });
const rowsAddedSchema = z.strictObject({ ...controlShape, added: z.number({ error: typeError('a whole number', 'rows added') }).int().min(0).max(1_000_000) });
const callLimitsSchema = z.strictObject({ channels, callsPerSecond });
const campaignInputSchema = z.strictObject({
  practiceId: id('practice id'),
  campaignId: id('campaign id'),
  maxOutstanding: z.number({ error: typeError('a whole number', 'confirmations at once') }).int('must be a whole number').min(1, 'must be at least 1').max(MAX_OUTSTANDING_LIMIT, `must be at most ${MAX_OUTSTANDING_LIMIT}`).optional(),
  continueAsNewAfterEvents: z.number({ error: typeError('a whole number', 'history events') }).int('must be a whole number').min(100, 'must be at least 100').max(10_000, 'must be at most 10000').optional(),
  // Written by the previous run of the workflow itself (continue-as-new); checked loosely.
  carried: z.record(z.string(), z.unknown()).optional(),
});

function parsed<T>(schema: z.ZodType<T>, input: unknown, root: string): T {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(problemsOf(result.error, root));
  return result.data;
}

/** Validates who asks for a campaign control, and why. */
export function validateControlRequest(input: unknown): ControlRequest {
  return parsed(controlSchema, input, '(control)');
}

/** Validates a change of a campaign's limits (at least one of channels, callsPerSecond). */
export function validateLimitsChange(input: unknown): LimitsChange {
  return parsed(limitsChangeSchema, input, '(limits)');
}

/** Validates the argument of the `rowsAdded` Update. */
export function validateRowsAdded(input: unknown): RowsAdded {
  return parsed(rowsAddedSchema, input, '(rowsAdded)');
}

/**
 * Validates channel and call-rate limits (of a trunk, or a campaign's share): whole channels from 1
 * to {@link MAX_CHANNELS_LIMIT}, calls per second above 0 (fractions allowed) up to
 * {@link MAX_CALLS_PER_SECOND_LIMIT}. Fields are named under `prefix` (`limits.channels`).
 */
export function validateCallLimits(input: unknown, prefix?: string): CallLimits {
  const result = callLimitsSchema.safeParse(input ?? {});
  if (!result.success) {
    const problems = problemsOf(result.error, '(limits)');
    throw new ValidationError(prefix ? problems.map((p) => ({ ...p, field: `${prefix}.${p.field}` })) : problems);
  }
  return result.data;
}

/** Problems of part of a set of limits (the fields given), each naming its field; empty when fine. */
export function callLimitProblems(limits: Partial<CallLimits>): FieldProblem[] {
  const result = callLimitsSchema.partial().safeParse(limits ?? {});
  return result.success ? [] : problemsOf(result.error, '(limits)');
}

/** Validates the campaign workflow's input (ids only). */
export function validateCampaignInput(input: unknown): CampaignWorkflowInput {
  return parsed(campaignInputSchema, input, '(input)') as CampaignWorkflowInput;
}
