/**
 * The calling window: office hours in the patient's wall-clock time, never wider than the legal
 * 08:00–21:00 (47 CFR 64.1200(c)(1)). Pure functions over Luxon, used by the planning activity —
 * never by workflow code, so a tz-database update cannot break a replay.
 */
import { DateTime } from 'luxon';
import { z } from 'zod';
import { InvalidDataError, type CallingRules } from '../ports';
import { isKnownZone } from '../validation';

/** Earliest local time any call may be placed. */
export const LEGAL_EARLIEST = '08:00';
/** Local time by which every call must have been placed (exclusive). */
export const LEGAL_LATEST = '21:00';

/** Default rules: Mon–Sat 09:00–19:00, 1 call a day and 3 a week per number. */
export const DEFAULT_CALLING_RULES: Readonly<CallingRules> = Object.freeze({
  ruleSet: 'US-TCPA-HEALTHCARE',
  ruleSetVersion: '2026-11-24',
  days: [1, 2, 3, 4, 5, 6],
  start: '09:00',
  end: '19:00',
  maxCallsPerDay: 1,
  maxCallsPerWeek: 3,
});

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;
const minutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const time = (field: string) => z.string({ error: `${field}: required (HH:mm)` }).regex(HHMM, { error: (i) => `must be HH:mm (got "${String(i.input)}")` });

/** Zod schema of {@link CallingRules}; messages start with the field name. */
export const callingRulesSchema = z
  .object({
    ruleSet: z.string().trim().min(1, 'required'),
    ruleSetVersion: z.string().trim().min(1, 'required'),
    days: z
      .array(z.number().int('must be whole numbers').min(1, 'must be ISO weekdays 1 (Monday) … 7 (Sunday)').max(7, 'must be ISO weekdays 1 (Monday) … 7 (Sunday)'))
      .min(1, 'at least one day')
      .refine((d) => new Set(d).size === d.length, 'days must not repeat'),
    start: time('start'),
    end: time('end'),
    maxCallsPerDay: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1'),
    maxCallsPerWeek: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1'),
  });

/** Cross-field and legal-bound checks, run even when another field is bad so every problem is named. */
function boundProblems(r: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const start = typeof r.start === 'string' && HHMM.test(r.start) ? r.start : undefined;
  const end = typeof r.end === 'string' && HHMM.test(r.end) ? r.end : undefined;
  if (start && minutes(start) < minutes(LEGAL_EARLIEST)) problems.push(`start: ${start} is earlier than the legal earliest ${LEGAL_EARLIEST}`);
  if (end && minutes(end) > minutes(LEGAL_LATEST)) problems.push(`end: ${end} is later than the legal latest ${LEGAL_LATEST}`);
  if (start && end && minutes(start) >= minutes(end)) problems.push(`end: ${end} is not after start ${start}`);
  const perDay = r.maxCallsPerDay;
  const perWeek = r.maxCallsPerWeek;
  if (typeof perDay === 'number' && typeof perWeek === 'number' && perWeek < perDay) {
    problems.push(`maxCallsPerWeek: ${perWeek} is below maxCallsPerDay ${perDay}`);
  }
  return problems;
}

/** Validates calling rules; throws an Error with one `field: problem` line per problem. */
export function parseCallingRules(input: unknown): CallingRules {
  const parsed = callingRulesSchema.safeParse(input);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || 'rules'}: ${i.message}`);
  if (input !== null && typeof input === 'object') problems.push(...boundProblems(input as Record<string, unknown>));
  if (problems.length > 0 || !parsed.success) throw new Error(problems.join('\n'));
  return { ...parsed.data, days: [...parsed.data.days].sort((a, b) => a - b) };
}

/** Whether `zone` is an IANA zone name Luxon (the runtime's tz database) knows. */
export function isValidTimeZone(zone: string): boolean {
  return isKnownZone(zone);
}

const local = (at: Date, zone: string): DateTime => {
  const dt = DateTime.fromJSDate(at, { zone });
  if (!dt.isValid) throw new InvalidDataError(at instanceof Date && !Number.isNaN(at.getTime()) ? 'patientTimeZone: not an IANA time zone' : 'time: not a valid instant');
  return dt;
};

/** The patient-local calendar day of `at`, `YYYY-MM-DD`. */
export function localDate(at: Date, zone: string): string {
  return local(at, zone).toISODate()!;
}

/** `at` as the patient's wall clock, ISO 8601 with offset. */
export function toLocalIso(at: Date, zone: string): string {
  return local(at, zone).toISO({ suppressMilliseconds: true })!;
}

/** Start (local midnight, or the first instant after it on a DST day) of the patient's next day. */
export function nextLocalDayStart(at: Date, zone: string): Date {
  return local(at, zone).startOf('day').plus({ days: 1 }).toJSDate();
}

/** The window of the local day of `day`: [open, close), or undefined on a day without calls. */
function windowOf(day: DateTime, rules: CallingRules): { open: DateTime; close: DateTime } | undefined {
  if (!rules.days.includes(day.weekday)) return undefined;
  const at = (hhmm: string) => day.set({ hour: Number(hhmm.slice(0, 2)), minute: Number(hhmm.slice(3, 5)), second: 0, millisecond: 0 });
  return { open: at(rules.start), close: at(rules.end) };
}

/** Whether a call may be placed at `at` under `rules` in the patient's zone. */
export function isWithinWindow(at: Date, zone: string, rules: CallingRules): boolean {
  const now = local(at, zone);
  const w = windowOf(now.startOf('day'), rules);
  return w !== undefined && now >= w.open && now < w.close;
}

/**
 * `at` itself when a call may be placed then, else the next instant the window opens. Wall-clock
 * arithmetic in the zone keeps 09:00 at 09:00 local across DST changes.
 */
export function nextWindowStart(at: Date, zone: string, rules: CallingRules): Date {
  const now = local(at, zone);
  let day = now.startOf('day');
  for (let i = 0; i < 15; i += 1) {
    const w = windowOf(day, rules);
    if (w !== undefined) {
      if (now < w.open) return w.open.toJSDate();
      if (now < w.close) return at;
    }
    day = day.plus({ days: 1 }).startOf('day');
  }
  throw new Error(`no calling window within two weeks (days: ${rules.days.join(',')})`);
}

/**
 * When the calling window that `at` lies in closes (exclusive: no call may start then or later); for
 * an `at` outside every window, when the next window closes.
 */
export function windowEnd(at: Date, zone: string, rules: CallingRules): Date {
  const opens = nextWindowStart(at, zone, rules);
  const w = windowOf(local(opens, zone).startOf('day'), rules);
  if (!w) throw new Error('calling window: no window on the day it opens');
  return w.close.toJSDate();
}

/** For operators: `Tue 2026-12-01 09:00 America/Chicago` (no health data). */
export function formatForOperators(at: Date, zone: string): string {
  return `${local(at, zone).toFormat('ccc yyyy-LL-dd HH:mm')} ${zone}`;
}

/**
 * Bounds the search for a window open in every zone: each step lands on some zone's window opening,
 * so a few zones over the longest confirmation (months) take far fewer steps than this.
 */
const MAX_INTERSECTION_STEPS = 10_000;

/** When the calling window is open in every one of several zones, and which zone decided it. */
export interface CommonWindowStart {
  /** `at` itself when every zone's window is open then, else the first instant after it when they all are. */
  opens: Date;
  /**
   * The zone whose window opened last (the one the wait was for); undefined when every window was
   * already open at `at`.
   */
  openedBy?: string;
}

/**
 * The first instant at or after `at`, and before `until`, at which the calling window is open in
 * every zone of `zones` (the called party's local time is uncertain: a call must suit each zone
 * they may be in); undefined when there is none before `until` (e.g. zones 12 hours apart with a
 * 10-hour window never overlap). Each zone's own window follows {@link nextWindowStart}.
 *
 * Exact: each step moves to the latest "next opening" among the zones, and no instant skipped can
 * have every window open (the zone that opens latest is closed throughout the skipped stretch).
 */
export function nextCommonWindowStart(at: Date, zones: readonly string[], rules: CallingRules, until: Date): CommonWindowStart | undefined {
  if (zones.length === 0) throw new Error('calling window: no time zone to check');
  let t = at;
  let openedBy: string | undefined;
  for (let step = 0; step < MAX_INTERSECTION_STEPS && t.getTime() < until.getTime(); step += 1) {
    let latest = t;
    let latestZone: string | undefined;
    for (const zone of zones) {
      const opens = nextWindowStart(t, zone, rules);
      if (opens.getTime() > latest.getTime()) {
        latest = opens;
        latestZone = zone;
      }
    }
    if (latestZone === undefined) return openedBy === undefined ? { opens: t } : { opens: t, openedBy };
    t = latest;
    openedBy = latestZone;
  }
  return undefined;
}

/** When a window open in every zone at `at` closes, and the zone whose window closes first. */
export function commonWindowEnd(at: Date, zones: readonly string[], rules: CallingRules): { closes: Date; closedBy: string } {
  if (zones.length === 0) throw new Error('calling window: no time zone to check');
  let closes: Date | undefined;
  let closedBy = zones[0]!;
  for (const zone of zones) {
    const end = windowEnd(at, zone, rules);
    if (closes === undefined || end.getTime() < closes.getTime()) {
      closes = end;
      closedBy = zone;
    }
  }
  return { closes: closes!, closedBy };
}
