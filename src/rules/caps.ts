/**
 * The per-number call caps (calls a patient-local day and a rolling week, counted in the attempt
 * ledger), and the first instant a next call is allowed by them and the calling window together.
 * Pure functions, used by activities only (never by workflow code: a tz-database update must not
 * break a replay).
 */
import type { CallingRules, LedgerCall, ReserveAttemptResult } from '../ports';
import { localDate, nextCommonWindowStart, nextLocalDayStart, type CommonWindowStart } from './calling-window';

/** The caps' week: 168 hours (the ledger counts calls placed after `at − 168 h`, up to `at`). */
export const CAP_WEEK_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * When the caps allow a call again, for a number whose counts at `at` are `counts`: `at` itself when
 * neither cap is full, else the next local day (day cap) and/or a week after the week's oldest call
 * (week cap), whichever is later. Not checked against the calling window.
 */
export function capSlot(at: Date, zone: string, rules: Pick<CallingRules, 'maxCallsPerDay' | 'maxCallsPerWeek'>, counts: Pick<ReserveAttemptResult, 'dayCount' | 'weekCount' | 'oldestInWeek'>): Date {
  let slot = at;
  if (counts.dayCount >= rules.maxCallsPerDay) slot = nextLocalDayStart(at, zone);
  if (counts.weekCount >= rules.maxCallsPerWeek && counts.oldestInWeek) {
    const weekSlot = new Date(counts.oldestInWeek.getTime() + CAP_WEEK_MS);
    if (weekSlot > slot) slot = weekSlot;
  }
  return slot;
}

/** The caps' counts at `at` over the number's ledger rows: calls on its local day (in `zone`) and in the week up to it. */
export function capCounts(at: Date, zone: string, calls: readonly LedgerCall[]): Pick<ReserveAttemptResult, 'dayCount' | 'weekCount' | 'oldestInWeek'> {
  const day = localDate(at, zone);
  let dayCount = 0;
  let weekCount = 0;
  let oldestInWeek: Date | undefined;
  for (const c of calls) {
    if (c.localDate === day) dayCount += 1;
    if (c.placedAt.getTime() > at.getTime() - CAP_WEEK_MS && c.placedAt.getTime() <= at.getTime()) {
      weekCount += 1;
      if (oldestInWeek === undefined || c.placedAt < oldestInWeek) oldestInWeek = c.placedAt;
    }
  }
  return { dayCount, weekCount, ...(oldestInWeek ? { oldestInWeek } : {}) };
}

/** Bounds the search: each step moves to a later day or a later week slot, so a few suffice. */
const MAX_STEPS = 100;

/**
 * The first instant at or after `from`, and before `until`, at which a call to the number is allowed
 * by the calling window in every zone of `zones` and by the caps, counting `calls` (the number's
 * ledger rows); undefined when there is none. Days are counted in `primaryZone` (as the planning
 * activity counts them). A plan made then checks everything again: this only says when to look.
 */
export function nextAllowedCall(from: Date, zones: readonly string[], primaryZone: string, rules: CallingRules, until: Date, calls: readonly LedgerCall[]): CommonWindowStart | undefined {
  let t = from;
  for (let step = 0; step < MAX_STEPS; step += 1) {
    const open = nextCommonWindowStart(t, zones, rules, until);
    if (open === undefined) return undefined;
    t = open.opens;
    const slot = capSlot(t, primaryZone, rules, capCounts(t, primaryZone, calls));
    if (slot.getTime() <= t.getTime()) return open;
    t = slot;
  }
  return undefined;
}
