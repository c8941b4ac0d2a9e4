/**
 * For the demo, the bench and end-to-end tests that run in real time: a patient zone where it is
 * office hours right now, so a confirmation calls at once whatever the time of day.
 */
import { DateTime } from 'luxon';

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
