import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CALLING_RULES,
  formatForOperators,
  isWithinWindow,
  localDate,
  nextLocalDayStart,
  nextWindowStart,
  parseCallingRules,
} from '../../src/rules/calling-window';

const at = (iso: string) => DateTime.fromISO(iso, { setZone: true }).toJSDate();
const rules = DEFAULT_CALLING_RULES;

describe('calling window', () => {
  it('inside the window: now', () => {
    const t = at('2026-11-30T10:00:00-06:00'); // Monday
    expect(isWithinWindow(t, 'America/Chicago', rules)).toBe(true);
    expect(nextWindowStart(t, 'America/Chicago', rules)).toEqual(t);
  });

  it('before opening, after closing, and the closing minute itself', () => {
    expect(nextWindowStart(at('2026-11-30T07:30:00-06:00'), 'America/Chicago', rules).toISOString()).toBe('2026-11-30T15:00:00.000Z');
    expect(nextWindowStart(at('2026-11-30T19:00:00-06:00'), 'America/Chicago', rules).toISOString()).toBe('2026-12-01T15:00:00.000Z');
    expect(isWithinWindow(at('2026-11-30T18:59:59-06:00'), 'America/Chicago', rules)).toBe(true);
  });

  it('skips Sunday', () => {
    // Saturday 20:00 → Monday 09:00
    expect(nextWindowStart(at('2026-11-28T20:00:00-06:00'), 'America/Chicago', rules).toISOString()).toBe('2026-11-30T15:00:00.000Z');
  });

  it('keeps 09:00 local across New York DST changes', () => {
    const every = { ...rules, days: [1, 2, 3, 4, 5, 6, 7] };
    // Spring forward 2027-03-14: 09:00 EDT = 13:00Z (the day before, 09:00 EST = 14:00Z).
    expect(nextWindowStart(at('2027-03-13T20:00:00-05:00'), 'America/New_York', every).toISOString()).toBe('2027-03-14T13:00:00.000Z');
    expect(nextWindowStart(at('2027-03-13T07:00:00-05:00'), 'America/New_York', every).toISOString()).toBe('2027-03-13T14:00:00.000Z');
    // Fall back 2026-11-01 and 2027-11-07: 09:00 EST = 14:00Z.
    expect(nextWindowStart(at('2026-10-31T20:00:00-04:00'), 'America/New_York', every).toISOString()).toBe('2026-11-01T14:00:00.000Z');
    expect(nextWindowStart(at('2027-11-06T20:00:00-04:00'), 'America/New_York', every).toISOString()).toBe('2027-11-07T14:00:00.000Z');
  });

  it('zones without DST, and ahead of UTC across the date line', () => {
    expect(nextWindowStart(at('2026-11-30T20:00:00+05:30'), 'Asia/Kolkata', rules).toISOString()).toBe('2026-12-01T03:30:00.000Z');
    expect(nextWindowStart(at('2026-11-30T20:00:00-07:00'), 'America/Phoenix', rules).toISOString()).toBe('2026-12-01T16:00:00.000Z');
    // Auckland Tue 07:00 (NZDT, +13) is Mon 18:00Z: opens Tue 09:00 local = Mon 20:00Z.
    expect(nextWindowStart(at('2026-12-01T07:00:00+13:00'), 'Pacific/Auckland', rules).toISOString()).toBe('2026-11-30T20:00:00.000Z');
    expect(localDate(at('2026-12-01T07:00:00+13:00'), 'Pacific/Auckland')).toBe('2026-12-01');
  });

  it('next local day and operator format', () => {
    expect(nextLocalDayStart(at('2026-11-30T22:00:00-06:00'), 'America/Chicago').toISOString()).toBe('2026-12-01T06:00:00.000Z');
    expect(formatForOperators(at('2026-12-01T09:00:00-06:00'), 'America/Chicago')).toBe('Tue 2026-12-01 09:00 America/Chicago');
  });
});

describe('parseCallingRules', () => {
  it('accepts the defaults', () => {
    expect(parseCallingRules({ ...DEFAULT_CALLING_RULES })).toEqual(DEFAULT_CALLING_RULES);
  });

  it('never wider than 08:00–21:00, and names every bad field', () => {
    const bad = () => parseCallingRules({ ...rules, start: '07:30', end: '21:30', days: [0, 1], maxCallsPerDay: 0 });
    expect(bad).toThrow(/start: 07:30 is earlier than the legal earliest 08:00/);
    expect(bad).toThrow(/end: 21:30 is later than the legal latest 21:00/);
    expect(bad).toThrow(/days\.0: must be ISO weekdays/);
    expect(bad).toThrow(/maxCallsPerDay: must be at least 1/);
    expect(() => parseCallingRules({ ...rules, start: '9am' })).toThrow(/start: must be HH:mm \(got "9am"\)/);
    expect(() => parseCallingRules({ ...rules, start: '12:00', end: '10:00' })).toThrow(/end: 10:00 is not after start 12:00/);
  });
});
