/**
 * Every field of every input, with the values a hostile or careless caller sends: each is refused
 * with a ValidationError naming the field, in a bounded message that never quotes the value.
 * Hundreds of cases, generated: for each field of the confirmation request, the outcome report,
 * the late outcome and the consent record, every bad value below in its place.
 */
import { describe, expect, it } from 'vitest';
import { CallOutcome } from '../../src/contracts';
import {
  validateConfirmationRequest,
  validateConsent,
  validateLateOutcome,
  validateOutcomeReport,
  ValidationError,
} from '../../src/validation';

const now = new Date('2026-11-24T15:00:00Z');
/** Marks a string so that any echo of it in a message is found. */
const MARK = 'ZQXJ';
const HUGE = `${MARK}${'x'.repeat(10 * 1024 * 1024)}`;

/** Values no field accepts (for a string field, a number field or a boolean alike). */
const BAD_VALUES: Array<[string, unknown]> = [
  ['null', null],
  ['an object', { [MARK]: MARK }],
  ['an array', [MARK]],
  ['a 10 MB string', HUGE],
  ['a 1 KB marked string', `${MARK}-${'y'.repeat(1024)}`],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['a negative number', -1],
  ['a huge number', 1e308],
  ['control characters', `${MARK}\u0000\u0007\u001b[2J`],
  ['a line break', `${MARK}\nforged log line`],
  ['a right-to-left override', `${MARK}\u202e`],
];

/** Extra values for fields whose type is a string: wrong types and empty. */
const BAD_FOR_STRINGS: Array<[string, unknown]> = [
  ['a number', 42],
  ['a boolean', true],
  ['empty', ''],
];

const request = {
  appointmentId: 'A-1042',
  patientId: 'P-77',
  patientName: 'Jordan Sample',
  phone: '+12125550123',
  patientTimeZone: 'America/Chicago',
  appointmentStart: '2026-12-01T16:30:00Z',
  practiceId: 'bright-smiles',
  practiceName: 'Bright Smiles Dental',
  practiceCallbackNumber: '+13125550100',
  provider: 'Dr. Rivera',
  reason: 'cleaning',
};

/** Field-specific values that look right and are not. */
const LOOKALIKES: Record<string, unknown[]> = {
  appointmentId: ['A:1', 'a b', 'x'.repeat(65), '../etc', 'A7\n', `${MARK}'; DROP TABLE appointments; --`, `${MARK}(){}`],
  practiceId: ['bi:north', 'p/1', 'x'.repeat(65), `${MARK}%00`],
  phone: ['tomorrow', '2125550123', '+1555', '+1 212 555 0123', '+12125550123x', '+999999999999999', '+1212555012a'],
  practiceCallbackNumber: ['911', '+1', 'call us'],
  patientTimeZone: ['Mars/Base', 'UTC', 'America/Chicago/../../x', 'GMT+5', 'Europe/'],
  appointmentStart: ['tomorrow', '2027-03-04', '2027-03-04T16:30:00', '9999-03-04T10:00:00Z', '2020-03-04T10:00:00Z', '2027-13-04T10:00:00Z', '2027-03-04T25:00:00Z'],
};

function expectRefused(run: () => unknown, field: string, value: unknown): void {
  let error: unknown;
  try {
    run();
  } catch (err) {
    error = err;
  }
  expect(error, `${field} = ${describeValue(value)} was accepted`).toBeInstanceOf(ValidationError);
  const message = (error as ValidationError).message;
  expect((error as ValidationError).problems.some((p) => p.field === field || p.field.startsWith(`${field}.`) || p.field === '(request)' || p.field.includes(field))).toBe(true);
  expect(message.length).toBeLessThan(2_000);
  expect(message).not.toContain(MARK);
  if (typeof value === 'string' && value.length >= 4) expect(message).not.toContain(value);
}

function describeValue(value: unknown): string {
  return typeof value === 'string' ? `string(${value.length})` : Array.isArray(value) ? 'array' : typeof value;
}

describe('the confirmation request, field by field', () => {
  const cases: Array<[string, string, unknown]> = [];
  for (const field of Object.keys(request)) {
    for (const [what, value] of [...BAD_VALUES, ...BAD_FOR_STRINGS]) cases.push([field, what, value]);
    for (const value of LOOKALIKES[field] ?? []) cases.push([field, `look-alike ${describeValue(value)}`, value]);
  }

  it(`refuses ${cases.length} bad values, each naming its field, never quoting the value`, () => {
    for (const [field, , value] of cases) {
      expectRefused(() => validateConfirmationRequest({ ...request, [field]: value }, now), field, value);
    }
    expect(cases.length).toBeGreaterThan(190);
  });

  it('refuses a missing field, an unknown field, and things that are not a request', () => {
    for (const field of Object.keys(request)) {
      const { [field]: _gone, ...rest } = request as Record<string, unknown>;
      expectRefused(() => validateConfirmationRequest(rest, now), field, undefined);
    }
    // An unknown field is named only when it looks like a field name; anything else is not echoed.
    expectRefused(() => validateConfirmationRequest({ ...request, [`${MARK} Jordan Quinn`]: 1 }, now), '(request)', undefined);
    for (const value of [null, undefined, 42, 'request', [request], HUGE]) {
      expect(() => validateConfirmationRequest(value, now)).toThrow(ValidationError);
    }
  });

  it('refuses bad policies: each knob out of range or of the wrong type', () => {
    const knobs = ['maxAttempts', 'initialBackoffSeconds', 'backoffMultiplier', 'ringingTimeoutSeconds', 'maxCallDurationSeconds', 'outcomeMarginSeconds', 'deadlineBeforeAppointmentSeconds'];
    for (const knob of knobs) {
      for (const value of [-1, 1e12, 'ten', null, Number.NaN, [1], { v: 1 }]) {
        expectRefused(() => validateConfirmationRequest({ ...request, policy: { [knob]: value } }, now), `policy.${knob}`, value);
      }
    }
    expectRefused(() => validateConfirmationRequest({ ...request, policy: { ringingTimeoutSeconds: 5 } }, now), 'policy.ringingTimeoutSeconds', 5);
  });
});

describe('the agent\'s outcome report', () => {
  const report = { attempt: 1, outcome: CallOutcome.CONFIRMED };
  it('refuses every bad attempt, outcome and detail', () => {
    let n = 0;
    for (const [, value] of [...BAD_VALUES, ['zero', 0], ['a fraction', 1.5], ['a string', '1']] as Array<[string, unknown]>) {
      expectRefused(() => validateOutcomeReport({ ...report, attempt: value }), 'attempt', value);
      n += 1;
    }
    for (const value of [...BAD_VALUES.map(([, v]) => v), 'MAYBE', CallOutcome.CAP_REACHED, CallOutcome.CONFIRMATION_CANCELLED, 'confirmed']) {
      expectRefused(() => validateOutcomeReport({ ...report, outcome: value }), 'outcome', value);
      n += 1;
    }
    for (const detail of [HUGE, `${MARK}string detail`, { finalOutcome: 'CONFIRMED' }, { note: HUGE }, { reschedulePreference: 42 }, { note: { [MARK]: 1 } }, [MARK]]) {
      expectRefused(() => validateOutcomeReport({ ...report, detail }), 'detail', detail);
      n += 1;
    }
    expectRefused(() => validateOutcomeReport({ ...report, [`${MARK}: +12125550123`]: true }), '(report)', undefined);
    expect(n).toBeGreaterThan(30);
  });
});

describe('the late outcome and the consent record', () => {
  it('refuses bad values in every field', () => {
    const late = { workflowId: 'confirm:p:a', attempt: 1, outcome: CallOutcome.CONFIRMED, reason: 'workflow closed', reportedAt: '2026-11-24T15:00:00Z' };
    for (const field of Object.keys(late)) {
      for (const [what, value] of BAD_VALUES) {
        // A workflow id may hold any character Temporal allows; only its type and length are bounded.
        if (field === 'workflowId' && typeof value === 'string' && value.length < 2_000) continue;
        expectRefused(() => validateLateOutcome({ ...late, [field]: value }), field, value);
        void what;
      }
    }
    const consent = { practiceId: 'bright-smiles', phone: '+12125550123', granted: true, source: 'intake form' };
    for (const field of Object.keys(consent)) {
      for (const [, value] of [...BAD_VALUES, ['no', 'no'], ['one', 1]] as Array<[string, unknown]>) {
        if (field !== 'granted' && value === 'no') continue; // a short text is a valid id or source
        expectRefused(() => validateConsent({ ...consent, [field]: value }), field, value);
      }
    }
  });
});
