/**
 * For the demo, the bench and end-to-end tests that run in real time: a patient zone where it is
 * office hours right now, so a confirmation calls at once whatever the time of day.
 */
import { DateTime } from 'luxon';
import type { TimeZoneOverrideInput } from '../contracts';

const ZONES = ['America/Chicago', 'America/New_York', 'America/Los_Angeles', 'Pacific/Honolulu', 'Pacific/Auckland', 'Australia/Sydney', 'Asia/Tokyo', 'Asia/Kolkata', 'Europe/Berlin', 'Europe/London', 'America/Sao_Paulo'];

/** A zone whose local hour is in [fromHour, toHour) now; the zones cover every hour of the day. */
export function zoneInOfficeHours(fromHour = 10, toHour = 18, now = DateTime.now()): string {
  const zone = ZONES.find((z) => {
    const hour = now.setZone(z).hour;
    return hour >= fromHour && hour < toHour;
  });
  if (!zone) throw new Error(`no zone between ${fromHour}:00 and ${toHour}:00 local right now`);
  return zone;
}

/**
 * The simulator's numbers are New York (212) numbers, while a zone from {@link zoneInOfficeHours} is
 * often elsewhere, and the calling window is checked in the number's own zone too. The simulated
 * patient "lives" in `zone` the way a real one who kept their number after a move does: by a
 * time-zone override the practice records (audited), which `ConfirmationClient.recordTimeZoneOverride`
 * (or the store) takes.
 */
export function simulatedPatientZone(practiceId: string, phone: string, zone: string): TimeZoneOverrideInput {
  return { practiceId, phone, zone, reason: 'simulated patient: lives where it is office hours now', actor: 'dev-simulation' };
}
