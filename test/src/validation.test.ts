import { describe, expect, it } from 'vitest';
import { CallOutcome } from '../../src/contracts';
import {
  MAX_APPOINTMENT_LEAD_DAYS,
  parseConfirmationRequest,
  validateConfirmationRequest,
  validateConsent,
  validateFutureTime,
  validateLateOutcome,
  validateOutcomeReport,
  validatePhone,
  ValidationError,
} from '../../src/validation';

const now = new Date('2026-11-24T15:00:00Z');
const valid = {
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

function problems(input: unknown): Record<string, string> {
  try {
    validateConfirmationRequest(input, now);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return Object.fromEntries((err as ValidationError).problems.map((p) => [p.field, p.problem]));
  }
  throw new Error('expected a ValidationError');
}

describe('validateConfirmationRequest', () => {
  it('accepts a valid request and expresses the start in the patient zone', () => {
    expect(validateConfirmationRequest(valid, now).appointmentStart).toBe('2026-12-01T10:30:00-06:00');
  });

  it('names every bad field and the problem', () => {
    const found = problems({
      ...valid,
      phone: '+15555550123',
      patientTimeZone: 'Mars/Olympus',
      appointmentStart: '2026-12-01 10:30',
      practiceId: 'bright smiles!',
      reason: '',
      policy: { ringingTimeoutSeconds: 5 },
      extra: 1,
    });
    expect(found.phone).toMatch(/not a valid phone number in E\.164 form/);
    expect(found.patientTimeZone).toBe('not an IANA time zone (e.g. America/Chicago)');
    expect(found.appointmentStart).toMatch(/^not an ISO 8601 time with offset/);
    expect(found.practiceId).toMatch(/letters, digits/);
    expect(found.reason).toMatch(/required/);
    expect(found['policy.ringingTimeoutSeconds']).toMatch(/at least 15/);
    expect(found['(request)']).toMatch(/unknown field\(s\): extra/);
  });

  it('never echoes the phone number or the name in a message', () => {
    const found = problems({ ...valid, phone: '+1212555012', patientName: '' });
    expect(JSON.stringify(found)).not.toContain('212555012');
    expect(found.patientName).toMatch(/required/);
    // Appointment times and zones are not quoted back either: not well-formed, or in the past.
    const late = problems({ ...valid, appointmentStart: '2026-11-20T10:00:00-06:00', patientTimeZone: 'Mars/Olympus' });
    const bad = problems({ ...valid, appointmentStart: '2026-11-20 10:00 in Chicago' });
    expect(JSON.stringify([late, bad])).not.toMatch(/2026-11-20|Mars|Chicago"/);
  });

  it('rejects an appointment in the past, missing fields and a non-object', () => {
    expect(problems({ ...valid, appointmentStart: '2026-11-20T10:00:00-06:00' }).appointmentStart).toBe('must be in the future');
    const { phone: _phone, ...noPhone } = valid;
    expect(problems(noPhone).phone).toMatch(/required/);
    expect(Object.keys(problems(null))).toEqual(['(request)']);
  });

  it('validates numbers for opt-out', () => {
    expect(validatePhone('phone', '+12125550123')).toBe('+12125550123');
    expect(() => validatePhone('phone', '212-555-0123')).toThrow(/phone: not a valid phone number/);
  });
});

/** Every problem of `fn`'s ValidationError, as field → problem. */
function problemsOf(fn: () => unknown): Record<string, string> {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return Object.fromEntries((err as ValidationError).problems.map((p) => [p.field, p.problem]));
  }
  throw new Error('expected a ValidationError');
}

const HUGE = 'x'.repeat(10 * 1024 * 1024);

describe('every field has a type and a bound; messages never quote a value', () => {
  it('refuses a 10 MB value in every string field by its length, with a short message', () => {
    const stringFields = Object.keys(valid) as (keyof typeof valid)[];
    for (const field of stringFields) {
      let message = '';
      try {
        validateConfirmationRequest({ ...valid, [field]: HUGE }, now);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, field).toMatch(new RegExp(`^${field}: must be at most \\d+ characters$`));
    }
  });

  it('names the field and the problem without the value: zone, time, types, unknown keys', () => {
    const found = problems({
      ...valid,
      patientTimeZone: 'Mars/Base',
      appointmentStart: 'tomorrow',
      patientName: 42,
      policy: 'fast',
      [`k${'y'.repeat(5000)}`]: 1,
      colour: 'blue',
    });
    expect(found).toEqual({
      patientTimeZone: 'not an IANA time zone (e.g. America/Chicago)',
      appointmentStart: 'not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)',
      patientName: 'must be a string (patient name)',
      policy: 'must be an object (call policy overrides)',
      '(request)': 'unknown field(s): colour, 1 other',
    });
    expect(JSON.stringify(found)).not.toMatch(/Mars|tomorrow|fast|yyyy/);
  });

  it(`refuses an appointment more than ${MAX_APPOINTMENT_LEAD_DAYS} days ahead (year 9999) with the limit`, () => {
    expect(problems({ ...valid, appointmentStart: '9999-12-01T10:00:00-06:00' })).toEqual({
      appointmentStart: `must be at most ${MAX_APPOINTMENT_LEAD_DAYS} days ahead (confirmations are for upcoming appointments)`,
    });
    expect(() => validateFutureTime('appointmentStart', '9999-12-01T10:00:00-06:00', now)).toThrow(/at most 366 days ahead/);
    expect(validateConfirmationRequest({ ...valid, appointmentStart: '2027-11-20T10:00:00-06:00' }, now).appointmentStart).toBe('2027-11-20T10:00:00-06:00');
  });

  it('parseConfirmationRequest (the workflow\'s check) keeps the caller\'s offset and names every problem of a non-object', () => {
    expect(parseConfirmationRequest({ ...valid, patientName: '  Jordan Sample ' }, now)).toMatchObject({ appointmentStart: '2026-12-01T16:30:00Z', patientName: 'Jordan Sample' });
    // Replaying, the workflow skips only the checks that read libphonenumber-js metadata and tz data.
    const dataOnly = { ...valid, phone: '+15555550123', patientTimeZone: 'Mars/Base' };
    expect(Object.keys(problemsOf(() => parseConfirmationRequest(dataOnly, now)))).toEqual(['phone', 'patientTimeZone']);
    expect(parseConfirmationRequest(dataOnly, now, { dataChecks: false })).toMatchObject({ phone: '+15555550123', patientTimeZone: 'Mars/Base' });
    expect(Object.keys(problemsOf(() => parseConfirmationRequest({ ...dataOnly, phone: '555-0123' }, now, { dataChecks: false })))).toEqual(['phone']);
    for (const bad of [null, 'hello', 42, [valid]]) {
      expect(problemsOf(() => parseConfirmationRequest(bad, now))).toEqual({ '(request)': 'must be an object (a ConfirmationRequest)' });
    }
  });
});

describe('validateOutcomeReport (the outcome Update)', () => {
  it('accepts a report and its known detail fields', () => {
    const report = { attempt: 1, outcome: CallOutcome.RESCHEDULE_REQUESTED, detail: { reschedulePreference: 'Tuesday mornings' } };
    expect(validateOutcomeReport(report)).toEqual(report);
  });

  it('refuses a 3 MB detail, a string detail, workflow-owned keys and unknown fields, naming each', () => {
    expect(problemsOf(() => validateOutcomeReport({ attempt: 1, outcome: CallOutcome.CONFIRMED, detail: { note: 'n'.repeat(3 * 1024 * 1024) } }))).toEqual({
      'detail.note': 'must be at most 1000 characters',
    });
    expect(problemsOf(() => validateOutcomeReport({ attempt: 1, outcome: CallOutcome.CONFIRMED, detail: 'confirmed!' }))).toEqual({
      detail: 'must be an object (outcome detail: reschedulePreference, note)',
    });
    expect(problemsOf(() => validateOutcomeReport({ attempt: 1, outcome: CallOutcome.NO_OUTCOME, detail: { finalOutcome: 'CONFIRMED' } }))).toEqual({
      detail: 'unknown field(s): finalOutcome',
    });
    expect(problemsOf(() => validateOutcomeReport({ attempt: 1.5, outcome: 'MAYBE', extra: true }))).toEqual({
      attempt: 'must be a whole number',
      outcome: expect.stringMatching(/^not an outcome the agent can report \(CONFIRMED, /),
      '(report)': 'unknown field(s): extra',
    });
    expect(problemsOf(() => validateOutcomeReport(null))).toEqual({ '(report)': 'must be an object (an OutcomeReport)' });
  });

  it('refuses an outcome the workflow decides itself (BUSY), without quoting a huge value', () => {
    expect(problemsOf(() => validateOutcomeReport({ attempt: 1, outcome: CallOutcome.BUSY })).outcome).toMatch(/^not an outcome the agent can report/);
    expect(JSON.stringify(problemsOf(() => validateOutcomeReport({ attempt: 1, outcome: HUGE }))).length).toBeLessThan(400);
  });
});

describe('validateLateOutcome and validateConsent', () => {
  it('checks the late-outcome input like the Update', () => {
    const late = { workflowId: 'confirm-p-A1', attempt: 1, outcome: CallOutcome.CONFIRMED, reason: 'workflow closed', reportedAt: '2026-11-24T15:00:00.123Z' };
    expect(validateLateOutcome(late)).toEqual(late);
    expect(problemsOf(() => validateLateOutcome({ ...late, detail: 'x', reportedAt: 'now', workflowId: 'has space' }))).toEqual({
      detail: 'must be an object (outcome detail: reschedulePreference, note)',
      reportedAt: 'not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)',
      workflowId: 'must be printable ASCII without spaces',
    });
  });

  it('refuses granted: "no", a 10 MB source and unknown fields', () => {
    const consent = { practiceId: 'bright-smiles', phone: '+12125550123', granted: true, source: 'intake form' };
    expect(validateConsent(consent)).toEqual(consent);
    expect(problemsOf(() => validateConsent({ ...consent, granted: 'no', source: HUGE, patientId: 7, x: 1 }))).toEqual({
      granted: 'must be true or false (consent given, or withdrawn)',
      source: 'must be at most 200 characters',
      patientId: "must be a string (the practice's patient id)",
      '(consent)': 'unknown field(s): x',
    });
  });
});
