/**
 * The called party's real local time, on the time-skipping server: a confirmation waits until the
 * calling window is open in the request's zone and in the number's own zones; an override recorded
 * by the practice makes the override's zone alone count (audited).
 */
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallOutcome, Phase, PlanDecision } from '../../src/contracts';
import { createHarness, mondayAt, sampleRequest, untilStatus, type Harness, type TestContext } from '../helpers/workflow-harness';

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.teardown();
});

/** Confirms `phone` given with `zone`, starting now; returns the first dial as wall clocks of `zones`, and the plan audit rows. */
async function firstDial(ctx: TestContext, phone: string, zone: string, start: DateTime, zones: string[]) {
  const request = sampleRequest(start.setZone(zone).plus({ days: 2 }).set({ hour: 10, minute: 0 }), { phone, patientTimeZone: zone });
  await ctx.store.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'test' });
  ctx.phones.script(phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
  const { workflowId } = await ctx.api.startConfirmation(request);
  const result = await ctx.api.result(workflowId);
  expect(result.outcome).toBe(CallOutcome.CONFIRMED);
  const dialed = DateTime.fromISO(result.attempts[0]!.dialedAt);
  const plans = (await ctx.store.listAudit({ workflowId })).filter((r) => r.decision !== 'OUTCOME');
  return { local: zones.map((z) => dialed.setZone(z).toFormat('ccc HH:mm')), plans };
}

describe("calls in the called party's local time", () => {
  // Chronological order: the test server's clock only moves forward.
  it('a Hawaii (808) number given with America/New_York is called at 09:00 HST (14:00 EST), not 09:00 EST = 04:00 HST', async () => {
    const start = await mondayAt(h, '08:00', 'America/New_York');
    const { local, plans } = await h.withWorker((ctx) => firstDial(ctx, '+18085550131', 'America/New_York', start, ['America/New_York', 'Pacific/Honolulu']));
    expect(local).toEqual(['Mon 14:00', 'Mon 09:00']);
    // One wait, straight to the window open in both zones (not to 09:00 EST first).
    expect(plans.map((p) => p.decision)).toEqual([PlanDecision.WAIT_WINDOW, PlanDecision.DIAL]);
    expect(plans[0]!.timeZones).toMatchObject({ openedBy: 'Pacific/Honolulu', checked: [{ zone: 'America/New_York' }, { zone: 'Pacific/Honolulu' }] });
    expect(plans[1]!.timeZones).toMatchObject({ closedBy: 'America/New_York' });
  });

  it('a Guam (671) number given with America/Chicago is called at 17:00 CST = 09:00 ChST the next day, not 01:00 in Guam', async () => {
    const start = await mondayAt(h, '08:00', 'America/Chicago');
    const { local } = await h.withWorker((ctx) => firstDial(ctx, '+16715550132', 'America/Chicago', start, ['America/Chicago', 'Pacific/Guam']));
    expect(local).toEqual(['Mon 17:00', 'Tue 09:00']);
  });

  it('a number in the request zone is called as before, at 09:00 local', async () => {
    const start = await mondayAt(h, '08:00', 'America/Chicago');
    const { local, plans } = await h.withWorker((ctx) => firstDial(ctx, '+13125550133', 'America/Chicago', start, ['America/Chicago']));
    expect(local).toEqual(['Mon 09:00']);
    expect(plans.at(-1)!.timeZones).toMatchObject({ checked: [{ zone: 'America/Chicago', sources: ['request', 'number'] }] });
  });

  it('an override (the patient kept a Hawaii number after moving to New York) is called at 09:00 EST, audited', async () => {
    const start = await mondayAt(h, '08:00', 'America/New_York');
    const phone = '+18085550134';
    const { local, plans, overrideId } = await h.withWorker(async (ctx) => {
      const overrideId = await ctx.api.recordTimeZoneOverride({ practiceId: 'bright-smiles', phone, zone: 'America/New_York', reason: 'moved, kept the number', actor: 'front-desk' });
      return { ...(await firstDial(ctx, phone, 'America/New_York', start, ['America/New_York', 'Pacific/Honolulu'])), overrideId };
    });
    expect(local).toEqual(['Mon 09:00', 'Mon 04:00']);
    expect(plans.at(-1)).toMatchObject({
      decision: PlanDecision.DIAL,
      timeZone: 'America/New_York',
      timeZoneSource: expect.stringMatching(new RegExp(`^override #${overrideId}; `)),
      timeZones: { overrideId, checked: [{ zone: 'America/New_York', sources: ['override'] }] },
    });
  });

  it('an override recorded while the confirmation waits for the old zone\'s window: it plans again at once and calls in the override\'s window', async () => {
    // An 808 number given with America/New_York waits for 09:00 HST (14:00 EST). At 09:30 EST the
    // practice records that the patient lives in New York: the call goes at 09:30 EST, not 14:00.
    const start = await mondayAt(h, '08:00', 'America/New_York');
    const phone = '+18085550135';
    const { dialed, plans } = await h.withWorker(async (ctx) => {
      const request = sampleRequest(start.plus({ days: 2 }).set({ hour: 10, minute: 0 }), { phone, patientTimeZone: 'America/New_York' });
      await ctx.store.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'test' });
      ctx.phones.script(phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      await untilStatus(ctx, workflowId, (s) => s.phase === Phase.WAITING_FOR_WINDOW);
      await h.advanceTo(start.set({ hour: 9, minute: 30 }));
      await ctx.api.recordTimeZoneOverride({ practiceId: request.practiceId, phone, zone: 'America/New_York', reason: 'lives in New York', actor: 'front-desk' });
      const result = await ctx.api.result(workflowId);
      expect(result.outcome).toBe(CallOutcome.CONFIRMED);
      return { dialed: DateTime.fromISO(result.attempts[0]!.dialedAt).setZone('America/New_York'), plans: (await ctx.store.listAudit({ workflowId })).filter((r) => r.decision !== 'OUTCOME') };
    });
    expect(dialed.toFormat('ccc HH:mm')).toBe('Mon 09:30');
    expect(plans.map((p) => p.decision)).toEqual([PlanDecision.WAIT_WINDOW, PlanDecision.DIAL]);
    expect(plans[1]!.timeZones).toMatchObject({ checked: [{ zone: 'America/New_York', sources: ['override'] }] });
  });
});
