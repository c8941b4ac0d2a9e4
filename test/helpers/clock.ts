/** Picking instants in a zone's wall-clock time for scenario tests. */
import { DateTime } from 'luxon';

/** The next `weekday` (1 = Monday … 7 = Sunday) at `time` (`HH:mm`) in `zone`, strictly after `after`. */
export function nextLocal(after: DateTime, zone: string, weekday: number, time: string): DateTime {
  const [hour, minute] = time.split(':').map(Number) as [number, number];
  let day = after.setZone(zone).startOf('day');
  for (let i = 0; i < 15; i += 1) {
    const candidate = day.set({ hour, minute });
    if (candidate.weekday === weekday && candidate > after) return candidate;
    day = day.plus({ days: 1 });
  }
  throw new Error('unreachable');
}

/** The first local day after `after` on which `zone`'s UTC offset changes in direction `kind`. */
export function nextDstChange(after: DateTime, zone: string, kind: 'spring-forward' | 'fall-back'): DateTime {
  let day = after.setZone(zone).startOf('day').plus({ days: 1 });
  for (let i = 0; i < 400; i += 1) {
    const next = day.plus({ days: 1 });
    const delta = next.offset - day.offset;
    if ((kind === 'spring-forward' && delta > 0) || (kind === 'fall-back' && delta < 0)) return day;
    day = next;
  }
  throw new Error(`${zone} has no ${kind} within a year`);
}
