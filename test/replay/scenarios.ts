/**
 * Scenarios whose histories are recorded from real runs (time-skipping server, real activities,
 * PGlite) into test/histories/ by `npm run record-histories`, and replayed by test/replay.
 * Fictional data only; payloads are sealed with the test key.
 */
import { CallOutcome, Phase } from '../../src/contracts';
import { PHONES } from '../../src/dev/scripted-telephony';
import { nextLocal } from '../helpers/clock';
import { sampleRequest, type Harness, type TestContext } from '../helpers/workflow-harness';

export interface Scenario {
  name: string;
  rules?: { maxCallsPerDay?: number };
  /** Runs the scenario to completion and returns its workflow id. */
  run(h: Harness, ctx: TestContext): Promise<string>;
}

async function mondayAt(h: Harness, time: string) {
  const at = nextLocal(await h.now(), 'America/Chicago', 1, time);
  await h.advanceTo(at);
  return at;
}

async function consented(ctx: TestContext, request: ReturnType<typeof sampleRequest>) {
  await ctx.store.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'recording' });
  return request;
}

async function waitForPhase(ctx: TestContext, workflowId: string, phase: Phase) {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
    if ((await ctx.api.getStatus(workflowId)).phase === phase) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never reached ${phase}`);
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'happy-path-confirmed',
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-happy' }));
      ctx.phones.script(request.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'window-wait-then-busy-then-confirmed',
    rules: { maxCallsPerDay: 3 },
    async run(h, ctx) {
      const now = await mondayAt(h, '20:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-busy' }));
      ctx.phones.script(request.phone, PHONES.busy, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'no-answer-until-attempts-run-out',
    rules: { maxCallsPerDay: 3 },
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-noanswer' }));
      ctx.phones.script(request.phone, PHONES.noAnswer, PHONES.noAnswer, PHONES.noAnswer);
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'voicemail-once-then-machine-again',
    rules: { maxCallsPerDay: 3 },
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-voicemail' }));
      ctx.phones.script(
        request.phone,
        { kind: 'answer', agentReports: CallOutcome.VOICEMAIL_LEFT },
        { kind: 'answer', agentReports: CallOutcome.VOICEMAIL_REACHED },
      );
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'no-consent',
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-noconsent' });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'opted-out-while-waiting',
    async run(h, ctx) {
      const now = await mondayAt(h, '20:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 3 }), { appointmentId: 'rec-optout' }));
      const { workflowId } = await ctx.api.startConfirmation(request);
      await waitForPhase(ctx, workflowId, Phase.WAITING_FOR_WINDOW);
      await ctx.api.optOut(request.phone, 'recording');
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'moved-then-expired',
    async run(h, ctx) {
      const now = await mondayAt(h, '20:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 3 }), { appointmentId: 'rec-moved' }));
      const { workflowId } = await ctx.api.startConfirmation(request);
      await waitForPhase(ctx, workflowId, Phase.WAITING_FOR_WINDOW);
      await ctx.api.moveAppointment(request.practiceId, request.appointmentId, now.plus({ days: 1 }).set({ hour: 10 }).toISO()!);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'cancelled-while-waiting',
    async run(h, ctx) {
      const now = await mondayAt(h, '20:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 3 }), { appointmentId: 'rec-cancelled' }));
      const { workflowId } = await ctx.api.startConfirmation(request);
      await waitForPhase(ctx, workflowId, Phase.WAITING_FOR_WINDOW);
      await ctx.api.cancel(request.practiceId, request.appointmentId);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'answered-no-outcome-then-reschedule',
    rules: { maxCallsPerDay: 3 },
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-nooutcome' }));
      ctx.phones.script(request.phone, { kind: 'answer' }, { kind: 'answer', agentReports: CallOutcome.RESCHEDULE_REQUESTED, detail: { reschedulePreference: 'mornings' } });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    name: 'ambiguous-dial-resolved-by-check',
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-ambiguous' }));
      ctx.phones.script(request.phone, { kind: 'lost', answered: true, agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    // Recorded with the patch 'orphaned-call-watched': the answered call is watched by watchCall.
    name: 'lost-dial-orphaned-call-watched',
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-orphan-watched' }));
      ctx.phones.script(request.phone, { kind: 'lost', answered: true, agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    // A lost dial whose call was never seen: CALL_RESULT_UNKNOWN (retried), never CALL_FAILED.
    name: 'lost-dial-result-unknown',
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-lost-unknown', policy: { maxAttempts: 1 } }));
      ctx.phones.script(request.phone, { kind: 'lost', answered: false });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
];
