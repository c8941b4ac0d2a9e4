/**
 * Temporal cancellation of a confirmation (Web UI "Request Cancellation", `temporal workflow
 * cancel`, `handle.cancel()`): at every stage the call is hung up, the attempt and the confirmation
 * are recorded (ledger, audit, write-back) as CONFIRMATION_CANCELLED, and the workflow ends
 * cancelled at once — never a failed workflow task, never a patient left on the line.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { attemptRoomName, CallOutcome, Phase, type ConfirmationRequest } from '../../src/contracts';
import { harnessPerTest, mondayAt as harnessMondayAt, sampleRequest, untilStatus, type TestContext } from '../helpers/workflow-harness';

const harness = harnessPerTest();

const mondayAt = (time: string) => harnessMondayAt(harness(), time);
const until = untilStatus;

/** Cancels and checks that the workflow ends cancelled, without a single failed workflow task. */
async function cancelAndExpectCancelled(handle: WorkflowHandle): Promise<number> {
  const started = Date.now();
  await handle.cancel();
  // Poll, don't await the result: under time skipping the server may jump years ahead while a
  // result is awaited and nothing else is pending.
  for (const deadline = Date.now() + 120_000; Date.now() < deadline && (await handle.describe()).status.name === 'RUNNING'; ) await new Promise((r) => setTimeout(r, 25));
  expect((await handle.describe()).status.name, 'the workflow is still running 120 s after the cancellation').not.toBe('RUNNING');
  const error = await handle.result().then(
    () => undefined,
    (err: unknown) => err,
  );
  const elapsed = Date.now() - started;
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expect((await handle.describe()).status.name).toBe('CANCELLED');
  const { events } = await handle.fetchHistory();
  const types = (events ?? []).map((e) => e.eventType);
  // A workflow task whose completion raced a new event (UNHANDLED_COMMAND: the dial activity ended
  // as the cancellation hung up) is retried by the SDK as designed; any other failure is a bug.
  const failedTasks = (events ?? [])
    .map((e) => e.workflowTaskFailedEventAttributes)
    .filter((a) => a && a.cause !== temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND);
  expect(failedTasks).toEqual([]);
  expect(types).toContain(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED);
  return elapsed;
}

async function expectRecordedCancelled(ctx: TestContext, request: ConfirmationRequest, workflowId: string, attempt: number): Promise<void> {
  const appointment = await ctx.store.getAppointment(request.practiceId, request.appointmentId);
  expect(appointment).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMATION_CANCELLED });
  const audit = await ctx.store.listAudit({ workflowId });
  expect(audit.at(-1)).toMatchObject({ decision: 'OUTCOME', outcome: CallOutcome.CONFIRMATION_CANCELLED, attempt });
  if (attempt > 0) expect(await ctx.store.attemptOutcome(workflowId, attempt)).toBe(CallOutcome.CONFIRMATION_CANCELLED);
}

describe('Temporal cancellation of a confirmation', () => {
  it('during the call: hangs up at once, records the attempt and the confirmation, ends cancelled', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await ctx.store.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'test' });
      // Answered; the agent says nothing and the patient holds the line for 10 minutes.
      ctx.phones.script(request.phone, { kind: 'answer', hangsUpAfterMs: 600_000 });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await until(ctx, workflowId, (s) => s.phase === Phase.CALLING);
      const room = attemptRoomName(workflowId, 1);
      while ((await ctx.phones.checkCall(room)).callStatus !== 'active') await new Promise((r) => setTimeout(r, 20));

      const elapsed = await cancelAndExpectCancelled(ctx.client.workflow.getHandle(workflowId));
      expect(elapsed).toBeLessThan(10_000);
      expect(ctx.phones.hangUps).toContain(room);
      expect((await ctx.phones.checkCall(room)).callStatus).toBeUndefined();
      await expectRecordedCancelled(ctx, request, workflowId, 1);
      expect(ctx.phones.dials).toHaveLength(1);
    });
  });

  it('while the phone rings: the ringing call is ended, attempt 1 recorded cancelled', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await ctx.store.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'test' });
      ctx.phones.script(request.phone, { kind: 'ring', forMs: 60_000 });
      const { workflowId } = await ctx.api.startConfirmation(request);
      const room = attemptRoomName(workflowId, 1);
      while ((await ctx.phones.checkCall(room)).callStatus !== 'ringing') await new Promise((r) => setTimeout(r, 20));

      const elapsed = await cancelAndExpectCancelled(ctx.client.workflow.getHandle(workflowId));
      expect(elapsed).toBeLessThan(10_000);
      expect(ctx.phones.hangUps).toContain(room);
      await expectRecordedCancelled(ctx, request, workflowId, 1);
    });
  });

  it('while waiting for the calling window: never dials, recorded cancelled', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt('20:00');
      const request = sampleRequest(now.plus({ days: 3 }));
      await ctx.store.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'test' });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await until(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_WINDOW);
      await cancelAndExpectCancelled(ctx.client.workflow.getHandle(workflowId));
      await expectRecordedCancelled(ctx, request, workflowId, 0);
      expect(ctx.phones.dials).toHaveLength(0);
    });
  });

  it('while waiting for the per-number cap: never dials, recorded cancelled', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const first = sampleRequest(now.plus({ days: 3 }));
      await ctx.store.recordConsent({ practiceId: first.practiceId, phone: first.phone, granted: true, source: 'test' });
      ctx.phones.script(first.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const a = await ctx.api.startConfirmation(first);
      await until(ctx, a.workflowId, (s) => s.phase === Phase.DONE);
      // Today's call to this number is used: the second confirmation waits for tomorrow's slot.
      const second = sampleRequest(now.plus({ days: 3 }), { phone: first.phone });
      const { workflowId } = await ctx.api.startConfirmation(second);
      await until(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_CAP);
      await cancelAndExpectCancelled(ctx.client.workflow.getHandle(workflowId));
      await expectRecordedCancelled(ctx, second, workflowId, 0);
      expect(ctx.phones.dialsTo(first.phone)).toHaveLength(1);
    });
  });

  it('an outcome reported after the cancellation is rejected (the agent audits it as a late outcome)', async () => {
    await harness().withWorker(async (ctx) => {
      const now = await mondayAt('10:00');
      const request = sampleRequest(now.plus({ days: 2 }));
      await ctx.store.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'test' });
      ctx.phones.script(request.phone, { kind: 'answer', hangsUpAfterMs: 600_000 });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await until(ctx, workflowId, (s) => s.phase === Phase.CALLING);
      const handle = ctx.client.workflow.getHandle(workflowId);
      await cancelAndExpectCancelled(handle);
      const { outcomeUpdate } = await import('../../src/contracts');
      await expect(handle.executeUpdate(outcomeUpdate, { args: [{ attempt: 1, outcome: CallOutcome.CONFIRMED }] })).rejects.toThrow();
      expect((await ctx.store.getAppointment(request.practiceId, request.appointmentId))?.outcome).toBe(CallOutcome.CONFIRMATION_CANCELLED);
    });
  });
});
