/**
 * Checks a time-zone override (`TimeZoneOverrideInput`) before the append-only table sees it: every
 * bad field is named, with the problem, never its value.
 */
import type { TimeZoneOverrideInput } from './contracts';
import { ianaZone, problemCollector, validateId, validatePhone, validateText, ValidationError } from './validation';

const KEYS = new Set(['practiceId', 'phone', 'zone', 'reason', 'actor']);

/** The override, checked; throws a {@link ValidationError} naming every bad field. */
export function validateTimeZoneOverride(input: unknown): TimeZoneOverrideInput {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ValidationError([{ field: '(override)', problem: 'must be an object (practiceId, phone, zone, reason, actor)' }]);
  }
  const raw = input as Record<string, unknown>;
  const { problems, check } = problemCollector();
  const unknown = Object.keys(raw).filter((k) => !KEYS.has(k));
  if (unknown.length > 0) problems.push({ field: '(override)', problem: `${unknown.length} unknown field(s)` });
  const practiceId = check(() => validateId('practiceId', raw.practiceId));
  const phone = check(() => validatePhone('phone', raw.phone));
  let zone: string | null | undefined = null;
  if (raw.zone !== null) {
    const parsed = ianaZone().safeParse(raw.zone);
    if (parsed.success) zone = parsed.data;
    else {
      zone = undefined;
      problems.push({ field: 'zone', problem: raw.zone === undefined ? 'required (an IANA time zone, or null to withdraw the override)' : parsed.error.issues[0]!.message });
    }
  }
  const reason = check(() => validateText('reason', raw.reason));
  const actor = check(() => validateText('actor', raw.actor));
  if (problems.length > 0) throw new ValidationError(problems);
  return { practiceId: practiceId!, phone: phone!, zone: zone!, reason: reason!, actor: actor! };
}
