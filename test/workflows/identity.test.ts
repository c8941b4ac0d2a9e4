/**
 * Identity: every key derived from a (practice, appointment) pair — workflow id, room names, the
 * late-outcome workflow id — is injective, and confirmations started under the old, ambiguous
 * `confirm-<practice>-<appointment>` scheme are still found.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import {
  attemptRoomName,
  CallOutcome,
  confirmationWorkflowId,
  lateOutcomeWorkflowId,
  legacyConfirmationWorkflowId,
  Phase,
  SearchAttr,
} from '../../src/contracts';
import { nextLocal } from '../helpers/clock';
import { harnessPerTest, sampleRequest } from '../helpers/workflow-harness';

const harness = harnessPerTest();

describe('derived keys are injective', () => {
  const pairs: Array<[string, string]> = [
    ['bi-north', 'A7'],
    ['bi', 'north-A7'],
    ['bi-north-A7', 'x'],
    ['a_b', 'c'],
    ['a', 'b_c'],
    ['p', 'A7-a1'],
    ['p', 'A7'],
  ];

  it('workflow ids, room names and late-outcome ids differ for every different pair', () => {
    const ids = pairs.map(([p, a]) => confirmationWorkflowId(p, a));
    expect(new Set(ids).size).toBe(pairs.length);
    const rooms = ids.flatMap((id) => [1, 2, 11].map((n) => attemptRoomName(id, n)));
    expect(new Set(rooms).size).toBe(rooms.length);
    const late = ids.flatMap((id) => [1, 11].flatMap((attempt) => [CallOutcome.CONFIRMED, CallOutcome.OPTED_OUT].map((outcome) => lateOutcomeWorkflowId({ workflowId: id, attempt, outcome }))));
    expect(new Set(late).size).toBe(late.length);
    expect(confirmationWorkflowId('bi-north', 'A7')).toBe('confirm:bi-north:A7');
  });

  it('the old scheme was not: the reason for the new one', () => {
    expect(legacyConfirmationWorkflowId('bi-north', 'A7')).toBe(legacyConfirmationWorkflowId('bi', 'north-A7'));
  });
});

describe('two practices whose ids collided under the old scheme', () => {
  it('practice bi-north + A7 and practice bi + north-A7 are two confirmations, two calls', async () => {
    await harness().withWorker(async (ctx) => {
      const now = nextLocal(await harness().now(), 'America/Chicago', 1, '10:00');
      await harness().advanceTo(now);
      const one = sampleRequest(now.plus({ days: 2 }), { practiceId: 'bi-north', appointmentId: 'A7' });
      const two = sampleRequest(now.plus({ days: 2 }), { practiceId: 'bi', appointmentId: 'north-A7' });
      for (const r of [one, two]) {
        await ctx.store.recordConsent({ practiceId: r.practiceId, phone: r.phone, granted: true, source: 'test' });
        ctx.phones.script(r.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      }
      const a = await ctx.api.startConfirmation(one);
      const b = await ctx.api.startConfirmation(two);
      expect(a.created).toBe(true);
      expect(b.created).toBe(true);
      expect(a.workflowId).not.toBe(b.workflowId);
      const results = await Promise.all([ctx.api.result(a.workflowId), ctx.api.result(b.workflowId)]);
      expect(results.map((r) => r.outcome)).toEqual([CallOutcome.CONFIRMED, CallOutcome.CONFIRMED]);
      expect(new Set(ctx.phones.dials.map((d) => d.roomName)).size).toBe(2);
      expect((await ctx.store.getAppointment('bi-north', 'A7'))?.outcome).toBe(CallOutcome.CONFIRMED);
      expect((await ctx.store.getAppointment('bi', 'north-A7'))?.outcome).toBe(CallOutcome.CONFIRMED);
    });
  });
});

describe('starts under another id', () => {
  it('a direct start (another SDK, the temporal CLI) under a non-derived id fails at once, naming the id to use', async () => {
    await harness().withWorker(async (ctx) => {
      // No clock movement needed: the start is refused in the first workflow task.
      const request = sampleRequest((await harness().now()).setZone('America/Chicago').plus({ days: 2 }));
      const handle = await ctx.client.workflow.start('confirmAppointmentWorkflow', {
        workflowId: legacyConfirmationWorkflowId(request.practiceId, request.appointmentId),
        taskQueue: ctx.taskQueue,
        args: [request],
      });
      // Poll rather than await under time skipping: the failure is immediate, no timer is involved.
      for (const deadline = Date.now() + 120_000; Date.now() < deadline && (await handle.describe()).status.name === 'RUNNING'; ) await new Promise((r) => setTimeout(r, 50));
      expect((await handle.describe()).status.name).toBe('FAILED');
      const error = await handle.result().catch((err: unknown) => err);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const cause = (error as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect(cause.type).toBe('INVALID_WORKFLOW_ID');
      expect(cause.message).toContain(confirmationWorkflowId(request.practiceId, request.appointmentId));
      expect(ctx.phones.dials).toHaveLength(0);
      const { events } = await handle.fetchHistory();
      expect((events ?? []).map((e) => e.eventType)).not.toContain(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
    });
  });
});

describe('confirmations running under the old id scheme', () => {
  it('are found by start, cancel and move when their search attributes name the appointment', async () => {
    await harness().withWorker(async (ctx) => {
      const request = sampleRequest((await harness().now()).setZone('America/Chicago').plus({ days: 3 }));
      const legacyId = legacyConfirmationWorkflowId(request.practiceId, request.appointmentId);
      // Stands for a confirmation started before the id change: running, on a queue no worker serves here.
      await ctx.client.workflow.start('confirmAppointmentWorkflow', {
        workflowId: legacyId,
        taskQueue: `${ctx.taskQueue}-old`,
        args: [request],
        typedSearchAttributes: [
          { key: SearchAttr.AppointmentId, value: request.appointmentId },
          { key: SearchAttr.PracticeId, value: request.practiceId },
          { key: SearchAttr.Phase, value: Phase.PLANNING },
        ],
      });
      const started = await ctx.api.startConfirmation(request);
      expect(started).toMatchObject({ workflowId: legacyId, created: false, status: 'RUNNING' });
      expect(await ctx.api.workflowIdOf(request.practiceId, request.appointmentId)).toBe(legacyId);
      await ctx.api.cancel(request.practiceId, request.appointmentId);
      const { events } = await ctx.client.workflow.getHandle(legacyId).fetchHistory();
      expect((events ?? []).some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'appointmentCancelled')).toBe(true);
      await ctx.client.workflow.getHandle(legacyId).terminate('test over');
    });
  });

  it('an old-scheme id whose search attributes name another appointment is not taken for this one', async () => {
    await harness().withWorker(async (ctx) => {
      const start = (await harness().now()).setZone('America/Chicago').plus({ days: 3 });
      const theirs = sampleRequest(start, { practiceId: 'bi-north', appointmentId: `A${Date.now()}` });
      const ours = sampleRequest(start, { practiceId: 'bi', appointmentId: `north-${theirs.appointmentId}` });
      const legacyId = legacyConfirmationWorkflowId(theirs.practiceId, theirs.appointmentId);
      expect(legacyId).toBe(legacyConfirmationWorkflowId(ours.practiceId, ours.appointmentId));
      await ctx.client.workflow.start('confirmAppointmentWorkflow', {
        workflowId: legacyId,
        taskQueue: `${ctx.taskQueue}-old`,
        args: [theirs],
        typedSearchAttributes: [
          { key: SearchAttr.AppointmentId, value: theirs.appointmentId },
          { key: SearchAttr.PracticeId, value: theirs.practiceId },
        ],
      });
      const started = await ctx.api.startConfirmation(ours);
      expect(started).toMatchObject({ workflowId: confirmationWorkflowId(ours.practiceId, ours.appointmentId), created: true });
      await ctx.client.workflow.getHandle(started.workflowId).terminate('test over');
      await ctx.client.workflow.getHandle(legacyId).terminate('test over');
    });
  });
});
