/**
 * Scenarios whose histories are recorded from real runs (time-skipping server, real activities,
 * PGlite) into test/histories/ by `npm run record-histories`, and replayed by test/replay.
 * Fictional data only; payloads are sealed with the test key.
 */
import { CallOutcome, campaignWorkflowId, Phase } from '../../src/contracts';
import { seedCampaign } from '../helpers/campaign-fixtures';
import { PHONES } from '../../src/dev/scripted-telephony';
import { nextLocal } from '../helpers/clock';
import { sampleRequest, type Harness, type TestContext } from '../helpers/workflow-harness';

export interface Scenario {
  name: string;
  rules?: { maxCallsPerDay?: number };
  /** Run with the channel gate (trunk limits). */
  pacing?: { trunkLimits: { channels: number; callsPerSecond: number } };
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
    // A retry's backoff waited out by the workflow itself, recorded with the busy outcome (patch
    // 'backoff-waited-without-plan'); the histories above were recorded before it and replay without it.
    name: 'busy-backoff-waited-then-confirmed',
    rules: { maxCallsPerDay: 3 },
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-backoff' }));
      ctx.phones.script(request.phone, PHONES.busy, PHONES.noAnswer, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    // A retry whose backoff ends on a day the number's call is used: the workflow waits straight for
    // the next allowed time that finishAttempt returned (tomorrow's window), with no plan between.
    name: 'busy-then-next-allowed-call-confirmed',
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 3 }), { appointmentId: 'rec-next-call' }));
      ctx.phones.script(request.phone, PHONES.busy, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    // No allowed time is left before the deadline after a busy call: finishAttempt says so and the
    // workflow plans at once (CAP_REACHED), without waiting for the backoff.
    name: 'busy-then-cap-reached-at-once',
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 1 }), { appointmentId: 'rec-cap-now' }));
      ctx.phones.script(request.phone, PHONES.busy);
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
  {
    // Through the channel gate (acquireChannel before the dial): the path of every new confirmation.
    name: 'gated-happy-path-confirmed',
    pacing: { trunkLimits: { channels: 2, callsPerSecond: 5 } },
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const request = await consented(ctx, sampleRequest(now.plus({ days: 2 }), { appointmentId: 'rec-gated' }));
      ctx.phones.script(request.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
  {
    // A campaign of three, one at a time, paused and resumed on the way: starts, controls, ticks, completion.
    name: 'campaign-paused-resumed-completed',
    pacing: { trunkLimits: { channels: 2, callsPerSecond: 5 } },
    async run(h, ctx) {
      const now = await mondayAt(h, '10:00');
      const contacts = [0, 1, 2].map((i) => ({ appointmentId: `rec-camp-${i}`, phone: `+1212555${String(160 + i).padStart(4, '0')}`, start: now.plus({ days: 2, hours: i }) }));
      for (const c of contacts) {
        await ctx.store.recordConsent({ practiceId: 'bright-smiles', phone: c.phone, granted: true, source: 'recording' });
        ctx.phones.script(c.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      }
      await seedCampaign(ctx.sql, { campaignId: 'rec-week', contacts });
      await ctx.campaigns.startWorkflow('bright-smiles', 'rec-week', { maxOutstanding: 1 });
      await ctx.campaigns.pause('bright-smiles', 'rec-week', { actor: 'recording', reason: 'replay scenario' });
      await ctx.campaigns.resume('bright-smiles', 'rec-week', { actor: 'recording' });
      await ctx.campaigns.setLimits('bright-smiles', 'rec-week', { actor: 'recording', channels: 2 });
      await ctx.campaigns.result('bright-smiles', 'rec-week');
      return campaignWorkflowId('bright-smiles', 'rec-week');
    },
  },
  {
    // Cancelled while its confirmations wait for the window: queued ones cancelled, waiting ones end CAMPAIGN_CANCELLED.
    name: 'campaign-cancelled',
    async run(h, ctx) {
      const now = await mondayAt(h, '20:00');
      const contacts = [0, 1, 2].map((i) => ({ appointmentId: `rec-cc-${i}`, phone: `+1212555${String(170 + i).padStart(4, '0')}`, start: now.plus({ days: 3, hours: i }) }));
      for (const c of contacts) await ctx.store.recordConsent({ practiceId: 'bright-smiles', phone: c.phone, granted: true, source: 'recording' });
      await seedCampaign(ctx.sql, { campaignId: 'rec-cancel', contacts });
      await ctx.campaigns.startWorkflow('bright-smiles', 'rec-cancel', { maxOutstanding: 2 });
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
        if (((await ctx.campaigns.status('bright-smiles', 'rec-cancel')).progress.byPhase[Phase.WAITING_FOR_WINDOW] ?? 0) === 2) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await ctx.campaigns.cancel('bright-smiles', 'rec-cancel', { actor: 'recording' });
      await ctx.campaigns.result('bright-smiles', 'rec-cancel');
      return campaignWorkflowId('bright-smiles', 'rec-cancel');
    },
  },
  {
    // A campaign's confirmation told that its campaign was cancelled while it waited for the window.
    name: 'confirmation-campaign-cancelled',
    async run(h, ctx) {
      const now = await mondayAt(h, '20:00');
      const contacts = [{ appointmentId: 'rec-cc-conf', phone: '+12125550175', start: now.plus({ days: 3 }) }];
      await ctx.store.recordConsent({ practiceId: 'bright-smiles', phone: contacts[0]!.phone, granted: true, source: 'recording' });
      await seedCampaign(ctx.sql, { campaignId: 'rec-cancel-one', contacts });
      await ctx.campaigns.startWorkflow('bright-smiles', 'rec-cancel-one');
      const workflowId = 'confirm:bright-smiles:rec-cc-conf';
      // Started by the campaign's first tick.
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
        const status = await ctx.api.getStatus(workflowId).catch(() => undefined);
        if (status?.phase === Phase.WAITING_FOR_WINDOW) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await ctx.campaigns.cancel('bright-smiles', 'rec-cancel-one', { actor: 'recording' });
      await ctx.api.result(workflowId);
      return workflowId;
    },
  },
];
