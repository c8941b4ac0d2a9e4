import { describe, expect, it } from 'vitest';
import { validateConfirmationRequest, validatePhone, ValidationError } from '../../src/validation';

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
    // Named, never quoted back (messages reach logs).
    expect(found.patientTimeZone).toBe('not an IANA time zone (e.g. America/Chicago)');
    expect(found.appointmentStart).toMatch(/is not an ISO 8601 time with offset/);
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
    expect(problems({ ...valid, appointmentStart: '2026-11-20T10:00:00-06:00' }).appointmentStart).toMatch(/is not in the future/);
    const { phone: _phone, ...noPhone } = valid;
    expect(problems(noPhone).phone).toMatch(/required/);
    expect(Object.keys(problems(null))).toEqual(['(request)']);
  });

  it('validates numbers for opt-out', () => {
    expect(validatePhone('phone', '+12125550123')).toBe('+12125550123');
    expect(() => validatePhone('phone', '212-555-0123')).toThrow(/phone: not a valid phone number/);
  });
});
