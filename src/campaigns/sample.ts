/**
 * Fictional schedules for the demo, the tests and the benchmarks: made-up patients with numbers
 * in the 555-0100…0199 range (reserved for fiction) across US area codes and their time zones,
 * appointments a few days from a given instant. Deterministic for a seed.
 */
import { DateTime } from 'luxon';
import { REQUIRED_COLUMNS } from './import';

/** US area codes by the IANA zone of the region they serve (each valid with 555-01xx numbers). */
export const AREA_CODES_BY_ZONE: Readonly<Record<string, readonly string[]>> = {
  'America/New_York': '212 718 646 917 347 201 202 203 215 267 305 786 404 470 617 781 407 813 704 919 410 443 703 757 412 216 614 513 401 603 802 207 860 973 908 732 516 631 914 845 518 585 716 607 904 954 561 239 941 727 352 321 772 843 864 803 828 336 910 980 937 330 440 301 240 302 304 413 478 484 508 540 570 678 770 804 862 978'.split(' '),
  'America/Detroit': ['313', '248', '616'],
  'America/Chicago': '312 773 630 847 708 815 618 217 713 832 281 214 972 469 817 210 512 314 417 612 651 952 507 414 262 608 715 504 985 318 615 901 731 205 251 316 402 405 918 479 501 515 319 563 601'.split(' '),
  'America/Denver': ['303', '720', '719', '970', '801', '385', '505', '575', '406', '307'],
  'America/Boise': ['208'],
  'America/Phoenix': ['602', '480', '623', '520', '928'],
  'America/Los_Angeles': '213 310 323 818 626 562 714 949 909 760 619 858 415 510 650 408 925 707 916 530 559 661 805 831 206 253 425 360 509 503 971 541 702 775'.split(' '),
  'America/Anchorage': ['907'],
  'Pacific/Honolulu': ['808'],
};

const FIRST = ['Alex', 'Sam', 'Robin', 'Jordan', 'Taylor', 'Casey', 'Morgan', 'Riley', 'Jamie', 'Avery', 'Quinn', 'Drew', 'Reese', 'Skyler', 'Parker', 'Rowan', 'Emerson', 'Hayden', 'Logan', 'Sawyer'];
const LAST = ['Rivera', 'Nguyen', 'Okafor', 'Schmidt', 'Kowalski', 'Haddad', 'Tanaka', 'Moreau', 'Lindqvist', 'Costa', 'Mensah', 'Byrne', 'Novak', 'Patel', 'Garcia', 'Ivanova', 'Dubois', 'Yilmaz', 'Kim', 'Fischer'];
const PROVIDERS = ['Dr. Rivera', 'Dr. Chen', 'Dr. Adeyemi', 'Dr. Walsh'];
const REASONS = ['cleaning', 'check-up', 'filling', 'crown fitting', 'x-rays', 'consultation'];

/** Settings of {@link makeSchedule}. */
export interface ScheduleOptions {
  /** Rows to write. */
  rows: number;
  /** Same seed, same schedule (given the same `now`). Default 1. */
  seed?: number;
  /** Appointments are 1…`days` days after this instant. Default: now. */
  now?: Date;
  /** Spread appointments over this many days from tomorrow. Default 3. */
  days?: number;
  /** The practice's zone: appointment times are written with its offset, in its opening hours (8:00–17:00). Default America/Chicago. */
  practiceZone?: string;
  /** First appointment id number (`A000001`…). Default 1. */
  firstId?: number;
  /**
   * Every patient in this zone instead of their area code's (the demo: a zone where it is calling
   * hours now, so the campaign calls at once whatever the hour).
   */
  patientZone?: string;
}

/** Small fast PRNG (mulberry32): deterministic, good enough for test data. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Every (area code, zone), in a fixed order: the n-th phone number uses `AREAS[n / 100]`. */
const AREAS: readonly { code: string; zone: string }[] = Object.entries(AREA_CODES_BY_ZONE).flatMap(([zone, codes]) => codes.map((code) => ({ code, zone })));
/** Most distinct fictional numbers: 100 per area code. */
export const MAX_DISTINCT_PHONES = AREAS.length * 100;

/**
 * The lines of a schedule CSV (header first, each line ending in CRLF): fictional patients with
 * distinct numbers (+1 <area code> 555-01xx; up to {@link MAX_DISTINCT_PHONES}, then they repeat),
 * area codes spread over the US time zones (interleaved, so a dozen rows already cross several),
 * appointments on the quarter hour in the practice's opening hours, 1…`days` days after `now`.
 */
export function* makeSchedule(options: ScheduleOptions): Generator<string> {
  const rnd = random(options.seed ?? 1);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const zone = options.practiceZone ?? 'America/Chicago';
  const days = Math.max(1, options.days ?? 3);
  const today = DateTime.fromJSDate(options.now ?? new Date()).setZone(zone).startOf('day');
  // Interleave the zones: row k takes the k-th area of a list that cycles through the zones.
  const byZone = Object.values(AREA_CODES_BY_ZONE);
  const interleaved: { code: string; zone: string }[] = [];
  for (let i = 0; interleaved.length < AREAS.length; i += 1) {
    byZone.forEach((codes, z) => {
      if (i < codes.length) interleaved.push({ code: codes[i]!, zone: Object.keys(AREA_CODES_BY_ZONE)[z]! });
    });
  }
  yield `${REQUIRED_COLUMNS.join(',')}\r\n`;
  for (let n = 0; n < options.rows; n += 1) {
    const area = interleaved[n % interleaved.length]!;
    const number = 100 + (Math.floor(n / interleaved.length) % 100);
    const day = 1 + Math.floor(rnd() * days);
    const minutes = 8 * 60 + 15 * Math.floor(rnd() * 36);
    const start = today.plus({ days: day }).set({ hour: Math.floor(minutes / 60), minute: minutes % 60 });
    const id = String((options.firstId ?? 1) + n).padStart(6, '0');
    const row = [`A${id}`, `P${id}`, `${pick(FIRST)} ${pick(LAST)}`, `+1${area.code}5550${number}`, options.patientZone ?? area.zone, start.toISO({ suppressMilliseconds: true })!, pick(PROVIDERS), pick(REASONS)];
    yield `${row.join(',')}\r\n`;
  }
}

/** A whole schedule as one string (small schedules; stream {@link makeSchedule} for large ones). */
export function makeScheduleText(options: ScheduleOptions): string {
  return [...makeSchedule(options)].join('');
}
