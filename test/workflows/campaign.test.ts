/**
 * campaignWorkflow on Temporal's time-skipping test server, with the real confirmation workflow and
 * activities over a real database (PGlite) and scripted phones: start order, completion, controls
 * (pause, resume, cancel, limits, rows added), continue-as-new, and a history that holds no contact.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { createCampaignActivities } from '../../activities/campaign';
import { CampaignControlError } from '../../src/campaigns/client';
import { createLogger } from '../../src/logger';
import { listCampaignEvents } from '../../src/campaigns/queue';
import {
  CallOutcome,
  CampaignState,
  campaignStatusQuery,
  confirmationWorkflowId,
  ContactStatus,
  pauseCampaignUpdate,
  Phase,
  SearchAttr,
} from '../../src/contracts';
import { addContacts, seedCampaign, type FixtureContact } from '../helpers/campaign-fixtures';
import { harnessPerTest, mondayAt, type TestContext } from '../helpers/workflow-harness';

const harness = harnessPerTest();
const PRACTICE = 'bright-smiles';

function contacts(prefix: string, n: number, start: DateTime, phoneBase = 100): FixtureContact[] {
  // Later rows have sooner appointments: the campaign must start the soonest first.
  return Array.from({ length: n }, (_, i) => ({
    appointmentId: `${prefix}-${i}`,
    phone: `+1212555${String(phoneBase + i).padStart(4, '0')}`,
    start: start.plus({ hours: n - i }),
    name: `Marked Patient${i}`,
  }));
}

async function consentAll(ctx: TestContext, list: FixtureContact[]): Promise<void> {
  for (const c of list) await ctx.store.recordConsent({ practiceId: PRACTICE, phone: c.phone, granted: true, source: 'test' });
}

async function untilCampaign(ctx: TestContext, campaignId: string, predicate: (v: Awaited<ReturnType<TestContext['campaigns']['status']>>) => boolean, timeoutMs = 120_000) {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const v = await ctx.campaigns.status(PRACTICE, campaignId);
    if (predicate(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('campaign condition not reached');
}

describe('campaign workflow', () => {
  it('starts every contact soonest appointment first, with the CampaignId attribute, and completes with counts only', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt(harness(), '10:00');
      const list = contacts('c1', 6, now.plus({ days: 2 }));
      await consentAll(ctx, list);
      for (const c of list) ctx.phones.script(c.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      await seedCampaign(ctx.sql, { campaignId: 'week-49', contacts: list });

      const started = await ctx.campaigns.startWorkflow(PRACTICE, 'week-49', { maxOutstanding: 1 });
      expect(started).toMatchObject({ workflowId: 'campaign:bright-smiles:week-49', created: true });
      // A second start returns the same campaign.
      expect(await ctx.campaigns.startWorkflow(PRACTICE, 'week-49')).toMatchObject({ workflowId: started.workflowId, created: false });

      const summary = await ctx.campaigns.result(PRACTICE, 'week-49');
      expect(summary).toMatchObject({ state: CampaignState.COMPLETED, total: 6, callsPlaced: 6 });
      expect(summary.byOutcome).toEqual({ [CallOutcome.CONFIRMED]: 6 });
      expect(summary.byStatus[ContactStatus.STARTED]).toBe(6);

      // Soonest appointment first: the last contact (soonest) was dialed first.
      const order = ctx.phones.dials.map((d) => d.phone);
      expect(order).toEqual([...list].reverse().map((c) => c.phone));

      const d = await ctx.client.workflow.getHandle(confirmationWorkflowId(PRACTICE, 'c1-0')).describe();
      expect(d.typedSearchAttributes.get(SearchAttr.CampaignId)).toBe('week-49');

      // No contact in the campaign's history: ids and counts only.
      const history = JSON.stringify(await ctx.client.workflow.getHandle(started.workflowId).fetchHistory());
      for (const c of list) {
        expect(history).not.toContain(c.phone);
        expect(history).not.toContain(c.name!);
      }
      const events = await listCampaignEvents(ctx.sql, PRACTICE, 'week-49');
      expect(events.map((e) => e.action)).toEqual(['start', 'complete']);
    });
  });

  it('pause holds new starts; resume goes on; each control is audited with who and when', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt(harness(), '10:00');
      const list = contacts('c2', 4, now.plus({ days: 2 }));
      await consentAll(ctx, list);
      for (const c of list) ctx.phones.script(c.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      await seedCampaign(ctx.sql, { campaignId: 'paused', contacts: list });
      await ctx.client.workflow.start('campaignWorkflow', {
        workflowId: 'campaign:bright-smiles:paused',
        taskQueue: ctx.taskQueue,
        args: [{ practiceId: PRACTICE, campaignId: 'paused', maxOutstanding: 1 }],
      });
      await untilCampaign(ctx, 'paused', (v) => v.progress.byStatus.STARTED >= 1);
      const ack = await ctx.campaigns.pause(PRACTICE, 'paused', { actor: 'front-desk', reason: 'lunch' });
      expect(ack.state).toBe(CampaignState.PAUSED);
      // A second pause is refused, naming the state.
      await expect(ctx.campaigns.pause(PRACTICE, 'paused', { actor: 'front-desk' })).rejects.toThrow(CampaignControlError);
      // A control without an actor never reaches the workflow.
      await expect(ctx.campaigns.resume(PRACTICE, 'paused', { actor: '' })).rejects.toThrow(/actor/);
      const startedWhilePaused = (await ctx.campaigns.status(PRACTICE, 'paused')).progress.byStatus.STARTED;
      await ctx.campaigns.status(PRACTICE, 'paused');
      // Time passes while paused: nothing new starts.
      await harness().advanceTo((await harness().now()).plus({ minutes: 5 }));
      const paused = await ctx.campaigns.status(PRACTICE, 'paused');
      expect(paused.progress.byStatus.STARTED).toBe(startedWhilePaused);
      expect(paused.state).toBe(CampaignState.PAUSED);
      expect((await ctx.sql.query<{ state: string }>(`SELECT state FROM campaigns WHERE campaign_id = 'paused'`)).rows[0]!.state).toBe('PAUSED');

      await ctx.campaigns.resume(PRACTICE, 'paused', { actor: 'front-desk' });
      const summary = await ctx.campaigns.result(PRACTICE, 'paused');
      expect(summary.byOutcome).toEqual({ [CallOutcome.CONFIRMED]: 4 });
      const events = await listCampaignEvents(ctx.sql, PRACTICE, 'paused');
      expect(events.map((e) => [e.action, e.actor])).toEqual([
        ['start', 'campaign workflow'],
        ['pause', 'front-desk'],
        ['resume', 'front-desk'],
        ['complete', 'campaign workflow'],
      ]);
      expect(events[1]!.reason).toBe('lunch');
    });
  });

  it('cancel: queued contacts are cancelled, waiting confirmations end CAMPAIGN_CANCELLED, the campaign ends CANCELLED', async () => {
    await harness().withWorker(async (ctx) => {
      // Evening: every confirmation waits for tomorrow's window.
      const now = await mondayAt(harness(), '20:00');
      const list = contacts('c3', 5, now.plus({ days: 3 }));
      await consentAll(ctx, list);
      await seedCampaign(ctx.sql, { campaignId: 'cancelled', contacts: list });
      await ctx.client.workflow.start('campaignWorkflow', {
        workflowId: 'campaign:bright-smiles:cancelled',
        taskQueue: ctx.taskQueue,
        args: [{ practiceId: PRACTICE, campaignId: 'cancelled', maxOutstanding: 3 }],
      });
      await untilCampaign(ctx, 'cancelled', (v) => (v.progress.byPhase[Phase.WAITING_FOR_WINDOW] ?? 0) === 3);
      await ctx.campaigns.cancel(PRACTICE, 'cancelled', { actor: 'office-manager' });
      const summary = await ctx.campaigns.result(PRACTICE, 'cancelled');
      expect(summary.state).toBe(CampaignState.CANCELLED);
      expect(summary.byStatus).toMatchObject({ [ContactStatus.STARTED]: 3, [ContactStatus.CANCELLED]: 2 });
      expect(summary.byOutcome).toEqual({ [CallOutcome.CAMPAIGN_CANCELLED]: 3 });
      expect(ctx.phones.dials).toHaveLength(0);
    });
  });

  it('limits change while running (state mirrored for the channel gate); bad limits are refused by field', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt(harness(), '20:00');
      const list = contacts('c4', 2, now.plus({ days: 3 }));
      await consentAll(ctx, list);
      await seedCampaign(ctx.sql, { campaignId: 'limits', contacts: list });
      await ctx.campaigns.startWorkflow(PRACTICE, 'limits');
      const ack = await ctx.campaigns.setLimits(PRACTICE, 'limits', { actor: 'ops', channels: 7, callsPerSecond: 0.5 });
      expect(ack.limits).toEqual({ channels: 7, callsPerSecond: 0.5 });
      const row = (await ctx.sql.query<{ max_channels: number; max_calls_per_second: number }>(`SELECT max_channels, max_calls_per_second FROM campaigns WHERE campaign_id = 'limits'`)).rows[0]!;
      expect([Number(row.max_channels), Number(row.max_calls_per_second)]).toEqual([7, 0.5]);
      await expect(ctx.campaigns.setLimits(PRACTICE, 'limits', { actor: 'ops', channels: 0 })).rejects.toThrow(/channels: must be at least 1/);
      await expect(ctx.campaigns.setLimits(PRACTICE, 'limits', { actor: 'ops' })).rejects.toThrow(/channels/);
      // Straight to the workflow (another SDK): the validator refuses it, and it never reaches history.
      const handle = ctx.client.workflow.getHandle('campaign:bright-smiles:limits');
      await expect(handle.executeUpdate(pauseCampaignUpdate, { args: [{ actor: 'x', extra: 1 } as never] })).rejects.toThrow(WorkflowUpdateFailedError);
      expect((await handle.query(campaignStatusQuery)).state).toBe(CampaignState.RUNNING);
      await ctx.campaigns.cancel(PRACTICE, 'limits', { actor: 'ops' });
      await ctx.campaigns.result(PRACTICE, 'limits');
    });
  });

  it('rows added to a running campaign are started; a campaign of many rows continues as new and runs to the end', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt(harness(), '10:00');
      const first = contacts('c5', 12, now.plus({ days: 2 }));
      const more = contacts('c5b', 6, now.plus({ days: 2 }), 200);
      await consentAll(ctx, [...first, ...more]);
      for (const c of [...first, ...more]) ctx.phones.script(c.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      await seedCampaign(ctx.sql, { campaignId: 'big', contacts: first });
      const handle = await ctx.client.workflow.start('campaignWorkflow', {
        workflowId: 'campaign:bright-smiles:big',
        taskQueue: ctx.taskQueue,
        // One at a time and a low history bound: several runs.
        args: [{ practiceId: PRACTICE, campaignId: 'big', maxOutstanding: 1, continueAsNewAfterEvents: 100 }],
      });
      await untilCampaign(ctx, 'big', (v) => v.progress.byStatus.STARTED >= 3, 20_000).catch(async (e) => { const h = await ctx.client.workflow.getHandle('campaign:bright-smiles:big').fetchHistory(); console.log(JSON.stringify(h.events?.map((x) => [x.eventId, x.eventType, x.eventTime, x.markerRecordedEventAttributes?.failure?.message, x.timerStartedEventAttributes?.startToFireTimeout]))); throw e; });
      await addContacts(ctx.sql, PRACTICE, 'big', more);
      await ctx.campaigns.rowsAdded(PRACTICE, 'big', { actor: 'import', added: more.length });
      const summary = await ctx.campaigns.result(PRACTICE, 'big');
      expect(summary.byOutcome).toEqual({ [CallOutcome.CONFIRMED]: 18 });
      const status = (await handle.describe()).runId !== handle.firstExecutionRunId;
      expect(status).toBe(true);
    });
  });
});

describe('campaign tick', () => {
  it('stops starting confirmations when its time is up; the next tick starts the rest (the workflow checks its history between ticks)', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt(harness(), '10:00');
      const list = contacts('c6', 20, now.plus({ days: 2 }));
      await consentAll(ctx, list);
      await seedCampaign(ctx.sql, { campaignId: 'timed', contacts: list });
      const deps = { sql: ctx.sql, client: ctx.client, confirmations: ctx.api, logger: createLogger('silent'), startConcurrency: 8 };
      const input = { practiceId: PRACTICE, campaignId: 'timed', maxOutstanding: 300, maxStarts: 100, now: now.toUTC().toISO()! };
      // No time at all: one batch of starts per tick.
      const outOfTime = createCampaignActivities({ ...deps, maxTickMs: 0 });
      expect((await outOfTime.campaignTick(input)).started).toBe(8);
      expect((await outOfTime.campaignTick(input)).started).toBe(8);
      // The default leaves a tick time for every start it may make.
      const tick = await createCampaignActivities(deps).campaignTick(input);
      expect(tick.started).toBe(4);
      expect(tick.progress.byStatus).toMatchObject({ QUEUED: 0, STARTED: 20 });
    });
  });
});

describe('campaigns with the channel gate and the per-number rules', () => {
  it('pause holds confirmations waiting for a channel (the call up finishes); resume dials them, one channel at a time', async () => {
    await harness().withWorker(
      async (ctx) => {
        const now = await mondayAt(harness(), '10:00');
        const list = contacts('g1', 3, now.plus({ days: 2 }));
        await consentAll(ctx, list);
        // Answered; nobody reports; the patient hangs up after 2 s (one attempt each: NO_OUTCOME).
        for (const c of list) ctx.phones.script(c.phone, { kind: 'answer', hangsUpAfterMs: 2_000 });
        await seedCampaign(ctx.sql, { campaignId: 'gated', contacts: list, limits: { channels: 1, callsPerSecond: 5 }, policy: { maxAttempts: 1 } });
        await ctx.campaigns.startWorkflow(PRACTICE, 'gated');
        await untilCampaign(ctx, 'gated', (v) => ctx.phones.dials.length === 1 && (v.progress.byPhase[Phase.WAITING_FOR_CHANNEL] ?? 0) === 2);
        await ctx.campaigns.pause(PRACTICE, 'gated', { actor: 'front-desk' });
        // The call in progress ends normally; the two waiting ones hold at the gate.
        await untilCampaign(ctx, 'gated', (v) => (v.progress.byOutcome[CallOutcome.NO_OUTCOME] ?? 0) === 1);
        await new Promise((r) => setTimeout(r, 3_000));
        expect(ctx.phones.dials).toHaveLength(1);
        const held = await ctx.campaigns.status(PRACTICE, 'gated');
        expect(held.progress.byPhase[Phase.WAITING_FOR_CHANNEL]).toBe(2);
        expect(held.progress.callsInProgress).toBe(0);

        await ctx.campaigns.resume(PRACTICE, 'gated', { actor: 'front-desk' });
        const summary = await ctx.campaigns.result(PRACTICE, 'gated');
        expect(summary.byOutcome).toEqual({ [CallOutcome.NO_OUTCOME]: 3 });
        expect(ctx.phones.dials).toHaveLength(3);
        // No lease left behind.
        const { rows } = await ctx.sql.query<{ n: string }>(`SELECT count(*) AS n FROM channel_leases WHERE expires_at > now()`);
        expect(Number(rows[0]!.n)).toBe(0);
      },
      { pacing: { trunkLimits: { channels: 5, callsPerSecond: 5 } } },
    );
  });

  it('an opt-out in one campaign stops the number in every campaign; the per-number caps hold across campaigns', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt(harness(), '10:00');
      const shared = '+12125550150';
      const capped = '+12125550151';
      const a: FixtureContact[] = [
        { appointmentId: 'oa-1', phone: shared, start: now.plus({ days: 3 }) },
        { appointmentId: 'oa-2', phone: capped, start: now.plus({ days: 3 }) },
      ];
      const b: FixtureContact[] = [
        { appointmentId: 'ob-1', phone: shared, start: now.plus({ days: 3, hours: 1 }) },
        { appointmentId: 'ob-2', phone: capped, start: now.plus({ days: 3, hours: 1 }) },
      ];
      await consentAll(ctx, [...a, ...b]);
      ctx.phones.script(shared, { kind: 'answer', agentReports: CallOutcome.OPTED_OUT });
      ctx.phones.script(capped, { kind: 'answer', agentReports: CallOutcome.CONFIRMED }, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      await seedCampaign(ctx.sql, { campaignId: 'camp-a', contacts: a });
      await seedCampaign(ctx.sql, { campaignId: 'camp-b', contacts: b });
      await ctx.campaigns.startWorkflow(PRACTICE, 'camp-a');
      await ctx.campaigns.startWorkflow(PRACTICE, 'camp-b');
      // One at a time: the test server skips time only while a result is awaited, and two awaits
      // at once leave it locked when the first returns.
      const ra = await ctx.campaigns.result(PRACTICE, 'camp-a');
      const rb = await ctx.campaigns.result(PRACTICE, 'camp-b');
      // Whichever campaign called the shared number first heard the opt-out; the other's
      // confirmation of that number ends OPTED_OUT too, and only one call was ever placed to it.
      expect((await ctx.store.getAppointment(PRACTICE, 'oa-1'))?.outcome).toBe(CallOutcome.OPTED_OUT);
      expect((await ctx.store.getAppointment(PRACTICE, 'ob-1'))?.outcome).toBe(CallOutcome.OPTED_OUT);
      expect((ra.byOutcome[CallOutcome.OPTED_OUT] ?? 0) + (rb.byOutcome[CallOutcome.OPTED_OUT] ?? 0)).toBe(2);
      expect(ctx.phones.dialsTo(shared)).toHaveLength(1);
      // One call a day to a number, whichever campaign asks: the second call to `capped` came on a later day.
      const calls = (await ctx.sql.query<{ local_date: string }>(`SELECT to_char(local_date, 'YYYY-MM-DD') AS local_date FROM attempt_ledger WHERE phone = $1 ORDER BY placed_at`, [capped])).rows;
      expect(calls).toHaveLength(2);
      expect(calls[0]!.local_date).not.toBe(calls[1]!.local_date);
      expect((ra.byOutcome[CallOutcome.CONFIRMED] ?? 0) + (rb.byOutcome[CallOutcome.CONFIRMED] ?? 0)).toBe(2);
    });
  });
});
