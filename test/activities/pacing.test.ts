/**
 * The activities with the channel gate (PGlite, scripted phones): acquireChannel waits, gives up
 * (and drops the attempt's cap reservation: no call was placed), is idempotent; dial takes a call
 * slot and releases the channel when the call ends or fails; finishAttempt and hangUp release; the
 * planning and finishing activities write the appointment's phase.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { CallEnd, CallOutcome, ChannelRefusal, PlanDecision, type PlanAttemptResult } from '../../src/contracts';
import { PHONES, ScriptedTelephony } from '../../src/dev/scripted-telephony';
import { createLogger } from '../../src/logger';
import { ChannelBroker, channelHolder } from '../../src/pacing';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { createStore, type SqlStore } from '../../src/store';
import { sampleDialInput } from '../helpers/fixtures';

let store: SqlStore;
let phones: ScriptedTelephony;
let broker: ChannelBroker;
let acts: ReturnType<typeof createActivities>;
const env = () => new MockActivityEnvironment();
const WF = 'confirm:p1:A1';
const PHONE = '+12125550123';
const far = () => new Date(Date.now() + 60_000).toISOString();

beforeEach(async () => {
  store = await createStore({});
  phones = new ScriptedTelephony();
  broker = await ChannelBroker.start(store.sql, 'ST_test', { limits: { channels: 1, callsPerSecond: 5 } });
  acts = createActivities({ store, telephony: phones, rules: DEFAULT_CALLING_RULES, logger: createLogger('silent'), pollIntervalMs: 5, pacing: broker, dialChannelWaitMs: 500 });
});
afterEach(async () => {
  broker.close();
  await store.close();
});

const reserve = (workflowId: string, attempt = 1) =>
  store.reserveAttempt({ workflowId, attempt, appointmentId: 'A1', phone: PHONE, at: new Date(), localDate: '2026-11-30', maxCallsPerDay: 5, maxCallsPerWeek: 5 });
const ledger = async (workflowId: string) => (await store.sql.query('SELECT * FROM attempt_ledger WHERE workflow_id = $1', [workflowId])).rows;

describe('acquireChannel', () => {
  it('gives up at giveUpAt: refused, and the attempt\'s ledger reservation is gone', async () => {
    await env().run(acts.acquireChannel, { workflowId: 'confirm:p1:OTHER', attempt: 1, practiceId: 'p1', deadline: far(), giveUpAt: far() });
    await reserve(WF);
    const grant = await env().run(acts.acquireChannel, { workflowId: WF, attempt: 1, practiceId: 'p1', deadline: far(), giveUpAt: new Date(Date.now() + 300).toISOString() });
    expect(grant).toMatchObject({ granted: false, refusal: ChannelRefusal.GAVE_UP });
    expect(await ledger(WF)).toEqual([]);
  });

  it('is granted when a channel is free, and a retry finds its own lease', async () => {
    const input = { workflowId: WF, attempt: 1, practiceId: 'p1', deadline: far(), giveUpAt: far() };
    expect(await env().run(acts.acquireChannel, input)).toMatchObject({ granted: true });
    expect(await env().run(acts.acquireChannel, input)).toMatchObject({ granted: true });
    expect(await broker.lease(channelHolder(WF, 1))).toMatchObject({ live: true, practiceId: 'p1' });
  });
});

describe('dial with the gate', () => {
  const input = (attempt = 1) => sampleDialInput(`${WF}-a${attempt}`, { workflowId: WF, attempt, hangupGraceSeconds: 1 });

  it('releases the channel when the answered call ends', async () => {
    await env().run(acts.acquireChannel, { workflowId: WF, attempt: 1, practiceId: 'p1', deadline: far(), giveUpAt: far() });
    phones.script(PHONE, { kind: 'answer', hangsUpAfterMs: 300 });
    const call = env().run(acts.dial, input());
    await new Promise((r) => setTimeout(r, 150));
    expect(await broker.lease(channelHolder(WF, 1))).toMatchObject({ live: true });
    expect(await call).toMatchObject({ answered: true, end: CallEnd.HUNG_UP });
    expect(await broker.lease(channelHolder(WF, 1))).toBeUndefined();
  });

  it('releases the channel when the dial fails (busy)', async () => {
    await env().run(acts.acquireChannel, { workflowId: WF, attempt: 1, practiceId: 'p1', deadline: far(), giveUpAt: far() });
    phones.script(PHONE, PHONES.busy);
    await expect(env().run(acts.dial, input())).rejects.toMatchObject({ type: 'BUSY' });
    expect(await broker.lease(channelHolder(WF, 1))).toBeUndefined();
  });

  it('a dial without a lease waits for a channel; none free in time: NOT_PLACED, no call', async () => {
    await env().run(acts.acquireChannel, { workflowId: 'confirm:p1:OTHER', attempt: 1, practiceId: 'p1', deadline: far(), giveUpAt: far() });
    phones.script(PHONE, { kind: 'answer' });
    await expect(env().run(acts.dial, input())).rejects.toMatchObject({ type: 'NOT_PLACED', nonRetryable: true });
    expect(phones.dials).toHaveLength(0);
  });
});

describe('releases and phases', () => {
  const subject = { workflowId: WF, runId: 'r1', appointmentId: 'A1', practiceId: 'p1', phone: PHONE, patientTimeZone: 'America/Chicago' };

  it('finishAttempt releases the channel once the line is down, but not while the goodbye goes on; hangUp releases', async () => {
    await env().run(acts.acquireChannel, { workflowId: WF, attempt: 1, practiceId: 'p1', deadline: far(), giveUpAt: far() });
    await env().run(acts.finishAttempt, { ...subject, decisionSeq: 1, attempt: 1, outcome: CallOutcome.BUSY, roomName: `${WF}-a1`, now: new Date().toISOString() });
    expect(await broker.lease(channelHolder(WF, 1))).toBeUndefined();

    await env().run(acts.acquireChannel, { workflowId: WF, attempt: 2, practiceId: 'p1', deadline: far(), giveUpAt: far() });
    phones.script(PHONE, { kind: 'answer', hangsUpAfterMs: 60_000 });
    const call = env().run(acts.dial, sampleDialInput(`${WF}-a2`, { workflowId: WF, attempt: 2, hangupGraceSeconds: 1 }));
    await new Promise((r) => setTimeout(r, 150));
    // The verdict is in; the call is still up (goodbye): the channel stays.
    await env().run(acts.finishAttempt, { ...subject, decisionSeq: 2, attempt: 2, outcome: CallOutcome.CONFIRMED, finalOutcome: CallOutcome.CONFIRMED, now: new Date().toISOString() });
    expect(await broker.lease(channelHolder(WF, 2))).toMatchObject({ live: true });
    await env().run(acts.hangUp, { roomName: `${WF}-a2` });
    expect(await broker.lease(channelHolder(WF, 2))).toBeUndefined();
    await call;
    expect(await store.sql.query('SELECT phase, next_call_at FROM appointments')).toMatchObject({ rows: [] });
  });

  it('planAttempt writes the phase and the next call time, registers the campaign, and gives windowEndsAt for DIAL', async () => {
    await store.recordConsent({ practiceId: 'p1', phone: PHONE, granted: true, source: 'form' });
    const appointment = { workflowId: WF, campaignId: 'c1', appointmentId: 'A1', practiceId: 'p1', patientId: 'P1', phone: PHONE, patientTimeZone: 'America/Chicago', appointmentStart: '2026-12-01T10:30:00-06:00' };
    const base = { ...subject, patientId: 'P1', deadline: '2026-12-01T14:30:00Z', appointment };
    const phase = async () => (await store.sql.query<{ phase: string; next_call_at: Date | null; campaign_id: string }>('SELECT phase, next_call_at, campaign_id FROM appointments')).rows[0];
    // 07:00 in Chicago: before the window.
    const wait = (await env().run(acts.planAttempt, { ...base, decisionSeq: 1, attempt: 1, now: '2026-11-30T13:00:00Z' })) as PlanAttemptResult;
    expect(wait.decision).toBe(PlanDecision.WAIT_WINDOW);
    expect(await phase()).toEqual({ phase: 'WAITING_FOR_WINDOW', next_call_at: new Date(wait.waitUntil!), campaign_id: 'c1' });
    const dial = await env().run(acts.planAttempt, { ...base, decisionSeq: 2, attempt: 1, now: '2026-11-30T16:00:00Z' });
    // 19:00 in New York (18:00 Chicago): the number (212) is New York's, whose window closes first.
    expect(dial).toMatchObject({ decision: PlanDecision.DIAL, windowEndsAt: '2026-12-01T00:00:00.000Z' });
    expect(await phase()).toMatchObject({ phase: 'CALLING', next_call_at: null });
    await env().run(acts.finishAttempt, { ...subject, decisionSeq: 3, attempt: 1, outcome: CallOutcome.NO_ANSWER, now: '2026-11-30T16:01:00Z' });
    expect(await phase()).toMatchObject({ phase: 'PLANNING' });
    await env().run(acts.finishAttempt, { ...subject, decisionSeq: 4, attempt: 2, outcome: CallOutcome.CONFIRMED, finalOutcome: CallOutcome.CONFIRMED, now: '2026-11-30T18:01:00Z' });
    expect(await phase()).toMatchObject({ phase: 'DONE' });
  });
});
