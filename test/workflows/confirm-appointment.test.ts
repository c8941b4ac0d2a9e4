/**
 * confirmAppointmentWorkflow on Temporal's time-skipping test server: every branch, with the real
 * activities over a real database (PGlite) and scripted phones behind the Telephony port.
 */
import { Writable } from 'node:stream';
import { ApplicationFailure, Client, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporalReporter } from '../../agent/reporter';
import {
  appointmentMovedSignal,
  CallOutcome,
  confirmationWorkflowId,
  lateOutcomeWorkflowId,
  outcomeUpdate,
  Phase,
  PlanDecision,
  publicText,
  statusQuery,
  type ConfirmationResult,
} from '../../src/contracts';
import { PHONES } from '../../src/dev/scripted-telephony';
import { createDataConverter } from '../../src/codec';
import { createLogger } from '../../src/logger';
import {
  INVALID_LATE_OUTCOME_FAILURE,
  INVALID_REPORT_FAILURE,
  INVALID_REQUEST_FAILURE,
  MAX_APPOINTMENT_LEAD_DAYS,
  type FieldProblem,
} from '../../src/validation';
import { createHarness, mondayAt as harnessMondayAt, sampleRequest, TEST_ENCRYPTION_KEY, untilStatus, type Harness, type TestContext } from '../helpers/workflow-harness';

const CHICAGO = 'America/Chicago';
let h: Harness;

beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.teardown();
});

const mondayAt = (time: string, zone = CHICAGO) => harnessMondayAt(h, time, zone);

async function consent(ctx: TestContext, phone: string, practiceId = 'bright-smiles'): Promise<void> {
  await ctx.store.recordConsent({ practiceId, phone, granted: true, source: 'intake form' });
}

async function run(ctx: TestContext, request: ReturnType<typeof sampleRequest>): Promise<ConfirmationResult> {
  const { workflowId } = await ctx.api.startConfirmation(request);
  return ctx.api.result(workflowId);
}

const until = untilStatus;

describe('consent and do-not-call, checked before every attempt', () => {
  it('ends NO_CONSENT without dialing when no consent is on record', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }).set({ hour: 14 }));
      const result = await run(ctx, request);
      expect(result.outcome).toBe(CallOutcome.NO_CONSENT);
      expect(ctx.phones.dials).toHaveLength(0);
      const audit = await ctx.store.listAudit({ appointmentId: request.appointmentId });
      expect(audit.map((a) => a.decision)).toEqual([PlanDecision.NO_CONSENT, 'OUTCOME']);
      expect(audit[0]).toMatchObject({ consentState: 'MISSING', timeZone: CHICAGO, ruleSet: 'US-TCPA-HEALTHCARE' });
      expect((await ctx.store.getAppointment(request.practiceId, request.appointmentId))?.outcome).toBe(CallOutcome.NO_CONSENT);
    });
  });

  it('ends OPTED_OUT without dialing when the number is on the do-not-call list', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, request.phone);
      await ctx.store.addDoNotCall(request.phone, 'test', 'asked by letter');
      const result = await run(ctx, request);
      expect(result.outcome).toBe(CallOutcome.OPTED_OUT);
      expect(ctx.phones.dials).toHaveLength(0);
    });
  });

  it('stops when the patient opts out while it waits, and puts the number on the do-not-call list', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 3 }));
      await consent(ctx, request.phone);
      const { workflowId } = await ctx.api.startConfirmation(request);
      await until(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_WINDOW);
      expect(await ctx.api.optOut(request.phone, 'sms STOP')).toEqual({ signalled: 1 });
      const result = await ctx.api.result(workflowId);
      expect(result.outcome).toBe(CallOutcome.OPTED_OUT);
      expect(ctx.phones.dials).toHaveLength(0);
      expect(await ctx.store.consentState(request.practiceId, request.phone)).toBe('DO_NOT_CALL');
    });
  });
});

describe('calling window in the patient\'s time zone', () => {
  it('waits from 20:00 until 09:00 the next morning, patient-local, and says so to operators', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 2 }).set({ hour: 15 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      const waiting = await until(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_WINDOW);
      const tuesdayNine = now.plus({ days: 1 }).set({ hour: 9, minute: 0 });
      expect(waiting.nextCallAt).toBe(tuesdayNine.toUTC().toISO());
      const handle = ctx.client.workflow.getHandle(workflowId);
      const description = await handle.describe();
      expect(await description.staticSummary()).toBe(publicText(`Confirm appointment ${request.appointmentId} for Bright Smiles Dental`));
      // What the Web UI shows as the workflow's current details.
      const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      expect(metadata.currentDetails).toBe(
        publicText(`waiting for calling window until ${tuesdayNine.toFormat('ccc yyyy-LL-dd')} 09:00 America/Chicago (attempt 1 of 3)`),
      );

      // An operator without decryption rights (a client with no codec, as the Web UI without the
      // codec server): summary, details, current details and search attributes readable and free of
      // health data; the input (name, number, appointment) and the status query stay encrypted.
      const reader = new Client({ connection: h.env.connection, namespace: h.env.namespace ?? 'default' });
      const raw = reader.workflow.getHandle(workflowId);
      const seen = await raw.describe();
      const summary = await seen.staticSummary();
      const details = await seen.staticDetails();
      const current = (await raw.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails;
      expect(summary).toContain(request.appointmentId);
      expect(summary).toContain('Bright Smiles Dental');
      expect(details).toContain('Practice bright-smiles');
      expect(current).toContain('waiting for calling window until');
      expect(current).toContain('(attempt 1 of 3)');
      expect(seen.searchAttributes).toMatchObject({ AppointmentId: [request.appointmentId], PracticeId: ['bright-smiles'], Phase: [Phase.WAITING_FOR_WINDOW] });
      const appointmentLocal = DateTime.fromISO(request.appointmentStart, { setZone: true });
      for (const text of [summary, details, current, JSON.stringify(seen.searchAttributes)]) {
        for (const phi of [request.patientName, request.phone, request.phone.slice(2), request.appointmentStart, appointmentLocal.toFormat('yyyy-LL-dd'), request.provider!, request.reason!]) {
          expect(text).not.toContain(phi);
        }
      }
      const started = (await raw.fetchHistory()).events![0]!.workflowExecutionStartedEventAttributes!;
      const input = started.input!.payloads![0]!;
      expect(Buffer.from(input.metadata!.encoding!).toString()).toBe('binary/encrypted');
      expect(Buffer.from(input.data!).toString('latin1')).not.toContain(request.patientName);
      await expect(raw.query(statusQuery)).rejects.toThrow();
      expect(description.searchAttributes.Phase).toEqual([Phase.WAITING_FOR_WINDOW]);
      expect(description.searchAttributes.AppointmentId).toEqual([request.appointmentId]);
      const result = await ctx.api.result(workflowId);
      expect(result.outcome).toBe(CallOutcome.CONFIRMED);
      const dialed = DateTime.fromISO(result.attempts[0]!.dialedAt).setZone(CHICAGO);
      expect(dialed.toFormat('ccc HH:mm')).toBe('Tue 09:00');
      expect(result.attempts[0]!.dialedAtLocal).toMatch(/T09:00:\d\d.*-0[56]:00$/);
    });
  });
});

describe('retries', () => {
  it('busy → retry after the backoff → confirmed, and writes the result back', async () => {
    await h.withWorker(
      async (ctx) => {
        const now = await mondayAt('10:00');
        const request = sampleRequest(now.plus({ days: 2 }));
        await consent(ctx, request.phone);
        ctx.phones.script(request.phone, PHONES.busy, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
        const result = await run(ctx, request);
        expect(result.outcome).toBe(CallOutcome.CONFIRMED);
        expect(result.attempts.map((a) => [a.outcome, a.sipStatusCode])).toEqual([
          [CallOutcome.BUSY, 486],
          [CallOutcome.CONFIRMED, 200],
        ]);
        const gapMinutes = (Date.parse(result.attempts[1]!.dialedAt) - Date.parse(result.attempts[0]!.dialedAt)) / 60_000;
        expect(gapMinutes).toBeGreaterThanOrEqual(30);
        expect(gapMinutes).toBeLessThan(31);
        expect(ctx.phones.hangUps).toEqual(result.attempts.map((a) => a.roomName));
        const row = await ctx.store.getAppointment(request.practiceId, request.appointmentId);
        expect(row).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });
        const handle = ctx.client.workflow.getHandle(confirmationWorkflowId(request.practiceId, request.appointmentId));
        const attrs = (await handle.describe()).searchAttributes;
        expect(attrs.Phase).toEqual([Phase.DONE]);
        expect(attrs.Outcome).toEqual([CallOutcome.CONFIRMED]);
      },
      { rules: { maxCallsPerDay: 3 } },
    );
  });

  it('no answer until the attempts run out, backing off 30 then 60 minutes', async () => {
    await h.withWorker(
      async (ctx) => {
        const now = await mondayAt('10:00');
        const request = sampleRequest(now.plus({ days: 2 }));
        await consent(ctx, request.phone);
        ctx.phones.script(request.phone, PHONES.noAnswer, PHONES.noAnswer, PHONES.noAnswer, { kind: 'answer' });
        const result = await run(ctx, request);
        expect(result.outcome).toBe(CallOutcome.NO_ANSWER);
        expect(ctx.phones.dials).toHaveLength(3);
        const at = result.attempts.map((a) => Date.parse(a.dialedAt));
        expect(Math.round((at[1]! - at[0]!) / 60_000)).toBe(30);
        expect(Math.round((at[2]! - at[1]!) / 60_000)).toBe(60);
        expect(ctx.phones.dials.every((d) => d.ringingTimeoutSeconds === 30 && d.maxCallDurationSeconds === 300)).toBe(true);
      },
      { rules: { maxCallsPerDay: 3 } },
    );
  });

  it('answered but no verdict from the agent → NO_OUTCOME, then retried', async () => {
    await h.withWorker(
      async (ctx) => {
        const now = await mondayAt('10:00');
        const request = sampleRequest(now.plus({ days: 2 }), { policy: { maxAttempts: 2 } });
        await consent(ctx, request.phone);
        ctx.phones.script(request.phone, { kind: 'answer' }, { kind: 'answer', agentReports: CallOutcome.RESCHEDULE_REQUESTED, detail: { reschedulePreference: 'Friday mornings' } });
        const result = await run(ctx, request);
        expect(result.attempts.map((a) => a.outcome)).toEqual([CallOutcome.NO_OUTCOME, CallOutcome.RESCHEDULE_REQUESTED]);
        expect(result.outcome).toBe(CallOutcome.RESCHEDULE_REQUESTED);
        expect(result.detail).toEqual({ reschedulePreference: 'Friday mornings' });
        const row = await ctx.store.getAppointment(request.practiceId, request.appointmentId);
        expect(row?.outcomeDetail).toEqual({ reschedulePreference: 'Friday mornings' });
      },
      { rules: { maxCallsPerDay: 3 } },
    );
  });

  it('leaves at most one voicemail: a second machine ends VOICEMAIL_LEFT without another message', async () => {
    await h.withWorker(
      async (ctx) => {
        const now = await mondayAt('10:00');
        const request = sampleRequest(now.plus({ days: 2 }));
        await consent(ctx, request.phone);
        ctx.phones.script(
          request.phone,
          { kind: 'answer', agentReports: CallOutcome.VOICEMAIL_LEFT },
          { kind: 'answer', agentReports: CallOutcome.VOICEMAIL_REACHED },
        );
        const result = await run(ctx, request);
        expect(result.outcome).toBe(CallOutcome.VOICEMAIL_LEFT);
        expect(ctx.phones.dials.map((d) => d.agentMetadata.voicemailAllowed)).toEqual([true, false]);
        expect(result.attempts.map((a) => a.outcome)).toEqual([CallOutcome.VOICEMAIL_LEFT, CallOutcome.VOICEMAIL_REACHED]);
      },
      { rules: { maxCallsPerDay: 3 } },
    );
  });

  it('declined is final', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, PHONES.declined);
      const result = await run(ctx, request);
      expect(result.outcome).toBe(CallOutcome.DECLINED);
      expect(result.attempts[0]).toMatchObject({ sipStatusCode: 603, sipStatus: 'Decline' });
      expect(ctx.phones.dials).toHaveLength(1);
    });
  });

  it('an ambiguous dial (response lost) is resolved by looking at the room, never by dialing again', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, { kind: 'lost', answered: true, agentReports: CallOutcome.CONFIRMED });
      const result = await run(ctx, request);
      expect(result.outcome).toBe(CallOutcome.CONFIRMED);
      expect(ctx.phones.dials).toHaveLength(1);
    });
  });
});

describe('per-number caps across workflows', () => {
  it('CAP_REACHED when another confirmation used today\'s call and the next slot is past the deadline', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const first = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, first.phone);
      ctx.phones.script(first.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      // Wait by polling, not by awaiting the result: once nothing is pending, the time-skipping
      // server may jump far ahead while a result is awaited, and this test needs "still Monday".
      const { workflowId } = await ctx.api.startConfirmation(first);
      expect((await until(ctx, workflowId, (s) => s.phase === Phase.DONE)).finalOutcome).toBe(CallOutcome.CONFIRMED);
      // Same number, appointment tomorrow 10:00: deadline 08:00, before tomorrow's window and slot.
      const second = sampleRequest(now.plus({ days: 1 }), { phone: first.phone });
      const result = await run(ctx, second);
      expect(result.outcome).toBe(CallOutcome.CAP_REACHED);
      expect(ctx.phones.dials).toHaveLength(1);
      const audit = await ctx.store.listAudit({ appointmentId: second.appointmentId });
      expect(audit[0]).toMatchObject({ decision: PlanDecision.CAP_REACHED, dayCount: 1, weekCount: 1 });
    });
  });

  it('waits for the next day\'s slot when the deadline allows it', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 3 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, PHONES.busy, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      const result = await ctx.api.result(workflowId);
      expect(result.outcome).toBe(CallOutcome.CONFIRMED);
      const audit = await ctx.store.listAudit({ workflowId });
      // Busy at 10:00 → the backoff until 10:30 is recorded with the outcome, and with it the first
      // time a call is allowed: today's call is used, so tomorrow's window. The workflow waits for
      // that, not for 10:30 only to wait again.
      expect(audit.map((a) => a.decision)).toEqual([PlanDecision.DIAL, 'OUTCOME', PlanDecision.DIAL, 'OUTCOME']);
      expect(DateTime.fromISO(audit[1]!.detail!.retryAt as string).setZone(CHICAGO).toFormat('ccc HH:mm')).toBe('Mon 10:30');
      expect(DateTime.fromISO(audit[1]!.detail!.nextCallAt as string).setZone(CHICAGO).toFormat('ccc HH:mm')).toBe('Tue 09:00');
      expect(DateTime.fromISO(result.attempts[1]!.dialedAt).setZone(CHICAGO).toFormat('ccc HH:mm')).toBe('Tue 09:00');
    });
  });

  it('a retry no allowed time remains for (today\'s call used, tomorrow past the deadline) ends CAP_REACHED at once, not after the backoff', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      // Appointment tomorrow 10:00: deadline 08:00, before tomorrow's window.
      const request = sampleRequest(now.plus({ days: 1 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, PHONES.busy);
      const result = await run(ctx, request);
      expect(result.outcome).toBe(CallOutcome.CAP_REACHED);
      expect(ctx.phones.dials).toHaveLength(1);
      const audit = await ctx.store.listAudit({ appointmentId: request.appointmentId });
      expect(audit.map((a) => a.decision)).toEqual([PlanDecision.DIAL, 'OUTCOME', PlanDecision.CAP_REACHED, 'OUTCOME']);
      expect(audit[1]!.detail).toMatchObject({ noCallBeforeDeadline: true });
      expect(DateTime.fromISO(audit[2]!.decidedAt.toISOString()).setZone(CHICAGO).toFormat('ccc HH:mm')).toBe('Mon 10:00');
    });
  });

  it('another confirmation used the number\'s call today: the plan waits for tomorrow\'s slot (WAIT_CAP)', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const first = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, first.phone);
      ctx.phones.script(first.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED }, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(first);
      expect((await until(ctx, workflowId, (s) => s.phase === Phase.DONE)).finalOutcome).toBe(CallOutcome.CONFIRMED);
      const second = sampleRequest(now.plus({ days: 3 }), { phone: first.phone });
      const result = await run(ctx, second);
      expect(result.outcome).toBe(CallOutcome.CONFIRMED);
      const audit = await ctx.store.listAudit({ appointmentId: second.appointmentId });
      expect(audit.map((a) => a.decision)).toEqual([PlanDecision.WAIT_CAP, PlanDecision.DIAL, 'OUTCOME']);
      expect(DateTime.fromISO(result.attempts[0]!.dialedAt).setZone(CHICAGO).toFormat('ccc HH:mm')).toBe('Tue 09:00');
    });
  });

  it('cap race: two confirmations for the same number started together — exactly one dials', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const a = sampleRequest(now.plus({ days: 1 }));
      const b = sampleRequest(now.plus({ days: 1 }), { phone: a.phone });
      await consent(ctx, a.phone);
      ctx.phones.script(a.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED }, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const started = await Promise.all([ctx.api.startConfirmation(a), ctx.api.startConfirmation(b)]);
      const results = await Promise.all(started.map((s) => ctx.api.result(s.workflowId)));
      expect(results.map((r) => r.outcome).sort()).toEqual([CallOutcome.CAP_REACHED, CallOutcome.CONFIRMED]);
      expect(ctx.phones.dialsTo(a.phone)).toHaveLength(1);
    });
  });
});

describe('deadline and appointment changes', () => {
  it('EXPIRED when the next window opens after the deadline (appointment start − 2 h)', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 1 }).set({ hour: 10, minute: 30 }));
      await consent(ctx, request.phone);
      const result = await run(ctx, request);
      expect(result.outcome).toBe(CallOutcome.EXPIRED);
      expect(ctx.phones.dials).toHaveLength(0);
    });
  });

  it('appointment moved while waiting: re-plans with the new deadline', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 3 }).set({ hour: 15 }));
      await consent(ctx, request.phone);
      const { workflowId } = await ctx.api.startConfirmation(request);
      await until(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_WINDOW);
      const moved = now.plus({ days: 1 }).set({ hour: 10, minute: 0 });
      await ctx.api.moveAppointment(request.practiceId, request.appointmentId, moved.toISO()!);
      const result = await ctx.api.result(workflowId);
      expect(result.outcome).toBe(CallOutcome.EXPIRED);
      const status = await ctx.client.workflow.getHandle(workflowId).query(statusQuery);
      expect(status.deadline).toBe(moved.minus({ hours: 2 }).toUTC().toISO());
      const row = await ctx.store.getAppointment(request.practiceId, request.appointmentId);
      expect(row?.startsAt.toISOString()).toBe(moved.toUTC().toISO());
    });
  });

  it('appointment cancelled while waiting: APPOINTMENT_CANCELLED, never dials', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 3 }));
      await consent(ctx, request.phone);
      const { workflowId } = await ctx.api.startConfirmation(request);
      await until(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_WINDOW);
      await ctx.api.cancel(request.practiceId, request.appointmentId);
      expect((await ctx.api.result(workflowId)).outcome).toBe(CallOutcome.APPOINTMENT_CANCELLED);
      expect(ctx.phones.dials).toHaveLength(0);
      expect(await ctx.store.getAppointment(request.practiceId, request.appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.APPOINTMENT_CANCELLED });
    });
  });
});

describe('health data stays out of logs', () => {
  it('logs ids and decisions, never the patient name or phone number', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    await h.withWorker(
      async (ctx) => {
        const now = await mondayAt('10:00');
        const request = sampleRequest(now.plus({ days: 2 }));
        await consent(ctx, request.phone);
        ctx.phones.script(request.phone, PHONES.busy, { kind: 'answer', agentReports: CallOutcome.OPTED_OUT });
        const result = await run(ctx, request);
        expect(result.outcome).toBe(CallOutcome.OPTED_OUT);
        const log = lines.join('');
        expect(log).toContain(confirmationWorkflowId(request.practiceId, request.appointmentId));
        expect(log).not.toContain(request.phone);
        expect(log).not.toContain(request.phone.slice(2));
        expect(log).not.toMatch(/Jordan|Sample/);
      },
      { rules: { maxCallsPerDay: 3 }, logger: createLogger('debug', sink) },
    );
  });
});

describe('starting and messages', () => {
  it('a duplicate start returns the running confirmation: one workflow, one call', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED }, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const first = await ctx.api.startConfirmation(request);
      const second = await ctx.api.startConfirmation({ ...request });
      expect(first).toMatchObject({ workflowId: `confirm:bright-smiles:${request.appointmentId}`, created: true });
      expect(second).toMatchObject({ workflowId: first.workflowId, runId: first.runId, created: false, status: 'RUNNING' });
      await ctx.api.result(first.workflowId);
      // Waiting for the result skipped the test clock far past the appointment: a start must be in
      // the future (the client checks against the test server's clock), so the same appointment id
      // comes with a later time.
      const later = (await h.now()).plus({ days: 2 }).setZone(request.patientTimeZone).toISO({ suppressMilliseconds: true })!;
      const third = await ctx.api.startConfirmation({ ...request, appointmentStart: later });
      expect(third).toMatchObject({ workflowId: first.workflowId, created: false, status: 'COMPLETED' });
      expect(ctx.phones.dials).toHaveLength(1);
    });
  });

  it('the outcome Update rejects an unknown outcome, a wrong attempt, and anything after the decision', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, { kind: 'answer', hangsUpAfterMs: 60_000 }); // the test plays the agent
      const { workflowId } = await ctx.api.startConfirmation(request);
      const handle = ctx.client.workflow.getHandle(workflowId);
      await until(ctx, workflowId, (s) => s.phase === Phase.CALLING && ctx.phones.dials.length === 1);

      const send = (report: unknown) => handle.executeUpdate(outcomeUpdate, { args: [report as never] });
      /** The validator's reason, as the agent sees it. */
      const rejection = async (report: unknown): Promise<string> => {
        const err = await send(report).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
        return String((err as WorkflowUpdateFailedError).cause?.message);
      };
      expect(await rejection({ attempt: 1, outcome: 'MAYBE' })).toMatch(/^outcome: not an outcome the agent can report \(CONFIRMED, /);
      expect(await rejection({ attempt: 1, outcome: CallOutcome.BUSY })).toMatch(/not an outcome the agent can report/);
      expect(await rejection({ attempt: 2, outcome: CallOutcome.CONFIRMED })).toBe('attempt: 2 is not the call in progress (attempt 1)');
      const ack = await send({ attempt: 1, outcome: CallOutcome.CONFIRMED });
      expect(ack).toEqual({ accepted: true, attempt: 1, outcome: CallOutcome.CONFIRMED, final: true });
      ctx.phones.endCall(ctx.phones.dials[0]!.roomName); // the agent's goodbye is over
      // After the decision: rejected while the workflow finishes, and once it has closed.
      await expect(send({ attempt: 1, outcome: CallOutcome.CANCELLED })).rejects.toThrow();
      expect((await handle.result()).outcome).toBe(CallOutcome.CONFIRMED);
      await expect(send({ attempt: 1, outcome: CallOutcome.CANCELLED })).rejects.toThrow();
      expect(ctx.phones.dials).toHaveLength(1);
    });
  });
});

const { EventType } = proto.temporal.api.enums.v1;

/** Settles `promise` within `ms` of real time, or fails the test saying what never ended. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: did not end within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The failure a workflow run ended with: its ApplicationFailure cause, and its problems by field. */
async function failureOf(result: Promise<unknown>, what: string): Promise<{ failure: ApplicationFailure; problems: Record<string, string> }> {
  const err = await within(30_000, what, result.then(() => undefined, (e: unknown) => e));
  expect(err, what).toBeInstanceOf(WorkflowFailedError);
  const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(failure, what).toBeInstanceOf(ApplicationFailure);
  const problems = Object.fromEntries(((failure.details?.[0] ?? []) as FieldProblem[]).map((p) => [p.field, p.problem]));
  return { failure, problems };
}

describe('hostile or careless callers', () => {
  /**
   * A client that does not skip time while it waits: these runs must end at once, and skipping to
   * the server's next timer while waiting would move the suite's clock by decades.
   */
  const plainClient = () => new Client({ connection: h.env.connection, namespace: h.env.namespace, dataConverter: createDataConverter(TEST_ENCRYPTION_KEY) });

  it('a start that bypasses the client (other SDKs, the temporal CLI) with a bad request fails at once, naming each bad field', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const good = sampleRequest(now.plus({ days: 2 }));
      const { phone: _phone, ...noPhone } = good;
      const cases: [string, unknown, Record<string, string>][] = [
        ['missing phone', noPhone, { phone: 'required (patient phone, E.164)' }],
        ['zone Mars/Base', { ...good, patientTimeZone: 'Mars/Base' }, { patientTimeZone: 'not an IANA time zone (e.g. America/Chicago)' }],
        ['appointmentStart "tomorrow"', { ...good, appointmentStart: 'tomorrow' }, { appointmentStart: 'not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)' }],
        ['not an object', 'confirm please', { '(request)': 'must be an object (a ConfirmationRequest)' }],
        ['null', null, { '(request)': 'must be an object (a ConfirmationRequest)' }],
        [
          'several bad fields',
          { ...good, phone: 12125550123, practiceName: 'p'.repeat(1_000_000), policy: { maxAttempts: 1000 }, extra: true },
          {
            phone: 'must be a string (patient phone, E.164)',
            practiceName: 'must be at most 200 characters',
            'policy.maxAttempts': 'must be at most 10 attempts',
            '(request)': 'unknown field(s): extra',
          },
        ],
        ['year 9999', { ...good, appointmentStart: '9999-12-01T10:00:00-06:00' }, { appointmentStart: `must be at most ${MAX_APPOINTMENT_LEAD_DAYS} days ahead (confirmations are for upcoming appointments)` }],
      ];
      for (const [i, [what, input, expected]] of cases.entries()) {
        const handle = await plainClient().workflow.start('confirmAppointmentWorkflow', { taskQueue: ctx.taskQueue, workflowId: `direct-${good.appointmentId}-${i}`, args: [input] });
        const { failure, problems } = await failureOf(handle.result(), what);
        expect(failure.type, what).toBe(INVALID_REQUEST_FAILURE);
        expect(failure.nonRetryable, what).toBe(true);
        expect(problems, what).toEqual(expected);
        expect(failure.message, what).toMatch(/^invalid confirmation request: /);
        expect(failure.message.length, what).toBeLessThan(400);
        expect(failure.message, what).not.toMatch(/Mars|tomorrow|9999|12125550123/);
        // At once: the first workflow task fails the run — no activity, no timer, no retry; only the
        // patch marker that makes the refusal replay as a refusal.
        const history = await handle.fetchHistory();
        const events = (history.events ?? []).map((e) => e.eventType);
        expect(events, what).toEqual([
          EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
          EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
          EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
          EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
          EventType.EVENT_TYPE_MARKER_RECORDED,
          EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, // the SDK's TemporalChangeVersion, with the marker
          EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        ]);
        // And it replays as a refusal (a query on it, a worker restart): no non-determinism.
        await expect(Worker.runReplayHistory({ workflowBundle: h.bundle, dataConverter: createDataConverter(TEST_ENCRYPTION_KEY) }, history, what)).resolves.toBeUndefined();
      }
      expect(ctx.phones.dials).toHaveLength(0);
      expect(await ctx.store.listAudit({})).toEqual([]);
    });
  });

  it('the outcome Update checks the whole report (types, allowed keys, sizes) before anything is recorded; the agent\'s reporter knows the rejection', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await consent(ctx, request.phone);
      ctx.phones.script(request.phone, { kind: 'answer', hangsUpAfterMs: 60_000 }); // the test plays the agent
      const { workflowId } = await ctx.api.startConfirmation(request);
      const handle = ctx.client.workflow.getHandle(workflowId);
      await until(ctx, workflowId, (s) => s.phase === Phase.CALLING && ctx.phones.dials.length === 1);

      const cases: [string, unknown, Record<string, string>][] = [
        ['3 MB detail', { attempt: 1, outcome: CallOutcome.CONFIRMED, detail: { note: 'n'.repeat(3 * 1024 * 1024) } }, { 'detail.note': 'must be at most 1000 characters' }],
        ['string detail', { attempt: 1, outcome: CallOutcome.CONFIRMED, detail: 'confirmed' }, { detail: 'must be an object (outcome detail: reschedulePreference, note)' }],
        [
          'workflow-owned key in the detail',
          { attempt: 1, outcome: CallOutcome.NO_OUTCOME, detail: { finalOutcome: CallOutcome.CONFIRMED } },
          { detail: 'unknown field(s): finalOutcome' },
        ],
        ['unknown field', { attempt: 1, outcome: CallOutcome.CONFIRMED, callerId: '+12125550199' }, { '(report)': 'unknown field(s): callerId' }],
        ['attempt as a string', { attempt: '1', outcome: CallOutcome.CONFIRMED }, { attempt: 'must be a number (attempt number)' }],
      ];
      for (const [what, report, expected] of cases) {
        const err = await within(30_000, what, handle.executeUpdate(outcomeUpdate, { args: [report as never] }).then(() => undefined, (e: unknown) => e));
        expect(err, what).toBeInstanceOf(WorkflowUpdateFailedError);
        const failure = (err as WorkflowUpdateFailedError).cause as ApplicationFailure;
        expect(failure, what).toBeInstanceOf(ApplicationFailure);
        expect(failure.type, what).toBe(INVALID_REPORT_FAILURE);
        expect(Object.fromEntries((failure.details![0] as FieldProblem[]).map((p) => [p.field, p.problem])), what).toEqual(expected);
        expect(failure.message.length, what).toBeLessThan(300);
      }
      // Nothing of it was recorded, and the workflow still takes the agent's real verdict.
      expect((await ctx.store.listAudit({ workflowId })).map((a) => a.decision)).toEqual([PlanDecision.DIAL]);
      expect((await handle.query(statusQuery)).phase).toBe(Phase.CALLING);

      // The agent's reporter checks with the same rules: a malformed report is neither sent, retried nor audited as late.
      const reporter = temporalReporter({ client: ctx.client, workflowId, taskQueue: ctx.taskQueue, retryForMs: 60_000 });
      const t0 = Date.now();
      const refused = await reporter.report({ attempt: 1, outcome: CallOutcome.CONFIRMED, detail: 'yes' as never });
      expect(refused).toEqual({ accepted: false, reason: 'invalid report: detail: must be an object (outcome detail: reschedulePreference, note)' });
      expect(Date.now() - t0).toBeLessThan(1_000);
      await expect(ctx.client.workflow.getHandle(lateOutcomeWorkflowId({ workflowId, attempt: 1, outcome: CallOutcome.CONFIRMED })).describe()).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );

      const ack = await reporter.report({ attempt: 1, outcome: CallOutcome.RESCHEDULE_REQUESTED, detail: { reschedulePreference: 'Friday mornings' } });
      expect(ack).toMatchObject({ accepted: true, ack: { outcome: CallOutcome.RESCHEDULE_REQUESTED, final: true } });
      ctx.phones.endCall(ctx.phones.dials[0]!.roomName);
      expect((await handle.result()).outcome).toBe(CallOutcome.RESCHEDULE_REQUESTED);
      const outcomeRow = (await ctx.store.listAudit({ workflowId })).find((a) => a.decision === 'OUTCOME');
      expect(outcomeRow?.detail).toEqual({ reschedulePreference: 'Friday mornings', finalOutcome: CallOutcome.RESCHEDULE_REQUESTED });
    });
  });

  it('a malformed appointmentMoved signal (no argument, "tomorrow", year 9999) is ignored; the confirmation carries on', async () => {
    await h.withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 3 }).set({ hour: 15 }));
      await consent(ctx, request.phone);
      const { workflowId } = await ctx.api.startConfirmation(request);
      await until(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_WINDOW);
      const handle = ctx.client.workflow.getHandle(workflowId);
      await handle.signal('appointmentMoved');
      await handle.signal(appointmentMovedSignal, { appointmentStart: 'tomorrow' });
      await handle.signal(appointmentMovedSignal, { appointmentStart: '9999-12-01T10:00:00-06:00' });
      const status = await within(30_000, 'status after bad signals', handle.query(statusQuery));
      expect(status.appointmentStart).toBe(request.appointmentStart);
      // A valid move still re-plans (the workflow task never failed).
      const moved = now.plus({ days: 1 }).set({ hour: 10, minute: 0 });
      await ctx.api.moveAppointment(request.practiceId, request.appointmentId, moved.toISO()!);
      expect((await within(30_000, 'result', ctx.api.result(workflowId))).outcome).toBe(CallOutcome.EXPIRED);
    });
  });

  it('recordLateOutcomeWorkflow started with a bad input fails at once instead of retrying for ever', async () => {
    await h.withWorker(async (ctx) => {
      const handle = await plainClient().workflow.start('recordLateOutcomeWorkflow', {
        taskQueue: ctx.taskQueue,
        workflowId: `late-bad-${Date.now()}`,
        args: [{ workflowId: 'confirm-x-y', attempt: 0, outcome: CallOutcome.CONFIRMED, detail: { finalOutcome: 'CANCELLED' }, reason: 'r', reportedAt: 'now' }],
      });
      const { failure, problems } = await failureOf(handle.result(), 'late outcome');
      expect(failure).toMatchObject({ type: INVALID_LATE_OUTCOME_FAILURE, nonRetryable: true });
      expect(problems).toEqual({
        attempt: 'must be at least 1',
        detail: 'unknown field(s): finalOutcome',
        reportedAt: 'not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)',
      });
    });
  });
});
