/**
 * The calling window across daylight-saving changes, on the time-skipping server: the call goes out
 * at 09:00 patient wall-clock time whatever the UTC offset did overnight.
 */
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallOutcome } from '../../src/contracts';
import { nextDstChange } from '../helpers/clock';
import { createHarness, sampleRequest, type Harness } from '../helpers/workflow-harness';

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.teardown();
});

const EVERY_DAY = { days: [1, 2, 3, 4, 5, 6, 7] };

/** Starts at 20:00 the evening before `day` in `zone`; returns the first dial as the patient's clock and UTC. */
async function dialAfterEvening(zone: string, day: DateTime): Promise<{ local: string; utc: string }> {
  const evening = day.setZone(zone).minus({ days: 1 }).set({ hour: 20, minute: 0, second: 0, millisecond: 0 });
  await h.advanceTo(evening);
  return h.withWorker(
    async (ctx) => {
      const request = sampleRequest(day.setZone(zone).plus({ days: 1 }).set({ hour: 15, minute: 0 }));
      await ctx.store.recordConsent({ practiceId: request.practiceId, phone: request.phone, granted: true, source: 'test' });
      ctx.phones.script(request.phone, { kind: 'answer', agentReports: CallOutcome.CONFIRMED });
      const { workflowId } = await ctx.api.startConfirmation(request);
      const result = await ctx.api.result(workflowId);
      expect(result.outcome).toBe(CallOutcome.CONFIRMED);
      const dialed = DateTime.fromISO(result.attempts[0]!.dialedAt, { zone: 'utc' });
      return { local: dialed.setZone(zone).toFormat('yyyy-LL-dd HH:mm'), utc: dialed.toFormat("HH:mm'Z'") };
    },
    { rules: EVERY_DAY },
  );
}

describe('calling window across DST changes', () => {
  // Chronological order: the test server's clock only moves forward.
  it('America/New_York fall-back day: 09:00 EST is 14:00Z (it was 13:00Z the day before)', async () => {
    const day = nextDstChange(await h.now(), 'America/New_York', 'fall-back');
    const dial = await dialAfterEvening('America/New_York', day);
    expect(dial).toEqual({ local: `${day.toFormat('yyyy-LL-dd')} 09:00`, utc: '14:00Z' });
  });

  it('Asia/Kolkata (no DST): 09:00 IST is always 03:30Z', async () => {
    const day = (await h.now()).setZone('Asia/Kolkata').plus({ days: 2 }).startOf('day');
    const dial = await dialAfterEvening('Asia/Kolkata', day);
    expect(dial).toEqual({ local: `${day.toFormat('yyyy-LL-dd')} 09:00`, utc: '03:30Z' });
  });

  it('America/New_York spring-forward day: 09:00 EDT is 13:00Z (it was 14:00Z the day before)', async () => {
    const day = nextDstChange(await h.now(), 'America/New_York', 'spring-forward');
    const dial = await dialAfterEvening('America/New_York', day);
    expect(dial).toEqual({ local: `${day.toFormat('yyyy-LL-dd')} 09:00`, utc: '13:00Z' });
  });
});
