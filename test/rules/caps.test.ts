import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { capSlot, nextAllowedCall } from '../../src/rules/caps';

const at = (iso: string) => DateTime.fromISO(iso, { setZone: true }).toJSDate();
const rules = DEFAULT_CALLING_RULES; // Mon–Sat 09:00–19:00, 1 call a day, 3 a week
const CHI = 'America/Chicago';
const call = (iso: string) => ({ placedAt: at(iso), localDate: DateTime.fromISO(iso, { setZone: true }).setZone(CHI).toISODate()! });
const iso = (d: Date | undefined) => d?.toISOString();

describe('capSlot', () => {
  it('is `at` itself while neither cap is full', () => {
    const t = at('2026-11-30T10:00:00-06:00');
    expect(capSlot(t, CHI, rules, { dayCount: 0, weekCount: 2 })).toEqual(t);
  });

  it('the next local day when the day cap is used; a week after the oldest call when the week is full (the later of both)', () => {
    const t = at('2026-11-30T10:00:00-06:00');
    expect(iso(capSlot(t, CHI, rules, { dayCount: 1, weekCount: 1 }))).toBe('2026-12-01T06:00:00.000Z');
    expect(iso(capSlot(t, CHI, rules, { dayCount: 1, weekCount: 3, oldestInWeek: at('2026-11-25T11:00:00-06:00') }))).toBe('2026-12-02T17:00:00.000Z');
  });
});

describe('nextAllowedCall', () => {
  const deadline = at('2026-12-10T08:00:00-06:00');

  it('inside the window with the caps free: the instant itself', () => {
    const from = at('2026-11-30T10:30:00-06:00');
    expect(nextAllowedCall(from, [CHI], CHI, rules, deadline, [])).toEqual({ opens: from });
  });

  it('a backoff ending after the window closed: the next window opening', () => {
    const from = at('2026-11-30T19:30:00-06:00');
    expect(iso(nextAllowedCall(from, [CHI], CHI, rules, deadline, [])?.opens)).toBe('2026-12-01T15:00:00.000Z');
  });

  it('today\'s call is used: tomorrow\'s window (not the end of the backoff)', () => {
    const from = at('2026-11-30T10:30:00-06:00');
    expect(iso(nextAllowedCall(from, [CHI], CHI, rules, deadline, [call('2026-11-30T10:00:00-06:00')])?.opens)).toBe('2026-12-01T15:00:00.000Z');
  });

  it('a full week: a week after its oldest call, then the window (Sunday has none)', () => {
    const calls = [call('2026-11-26T09:00:00-06:00'), call('2026-11-27T09:00:00-06:00'), call('2026-11-28T09:00:00-06:00')];
    // Saturday's call used the day (Sunday has no window); on Monday the week still holds 3 calls
    // until Thursday's leaves it, 168 h later: Thursday 09:00.
    expect(iso(nextAllowedCall(at('2026-11-28T09:30:00-06:00'), [CHI], CHI, rules, deadline, calls)?.opens)).toBe('2026-12-03T15:00:00.000Z');
  });

  it('several zones: the window must be open in each (Chicago and Los Angeles: 11:00 Chicago)', () => {
    const from = at('2026-11-30T20:00:00-06:00');
    const next = nextAllowedCall(from, [CHI, 'America/Los_Angeles'], CHI, rules, deadline, []);
    expect(iso(next?.opens)).toBe('2026-12-01T17:00:00.000Z');
    expect(next?.openedBy).toBe('America/Los_Angeles');
  });

  it('none before the deadline: undefined (the plan then decides)', () => {
    const from = at('2026-11-30T10:30:00-06:00');
    const soon = at('2026-12-01T08:00:00-06:00');
    expect(nextAllowedCall(from, [CHI], CHI, rules, soon, [call('2026-11-30T10:00:00-06:00')])).toBeUndefined();
    expect(nextAllowedCall(at('2026-11-30T19:30:00-06:00'), [CHI], CHI, rules, soon, [])).toBeUndefined();
  });
});
