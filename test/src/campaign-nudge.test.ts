import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/logger';
import { CAMPAIGN_NUDGE_MS, throttledPerCampaign } from '../../src/worker-factory';

describe('signalling ended confirmations to their campaign', () => {
  afterEach(() => vi.useRealTimers());

  it('the first at once, the ends within the interval in one trailing signal, each campaign on its own', async () => {
    vi.useFakeTimers();
    const sent: string[] = [];
    const nudge = throttledPerCampaign(async (practiceId, campaignId) => void sent.push(`${practiceId}/${campaignId}`), createLogger('silent'));
    await nudge('p', 'a');
    expect(sent).toEqual(['p/a']);
    // Five more ends of campaign a within the interval, one of campaign b.
    for (let i = 0; i < 5; i += 1) await nudge('p', 'a');
    await nudge('p', 'b');
    expect(sent).toEqual(['p/a', 'p/b']);
    await vi.advanceTimersByTimeAsync(CAMPAIGN_NUDGE_MS);
    expect(sent).toEqual(['p/a', 'p/b', 'p/a']);
    // Quiet for an interval: the next end is signalled at once again.
    await vi.advanceTimersByTimeAsync(CAMPAIGN_NUDGE_MS);
    await nudge('p', 'a');
    expect(sent).toEqual(['p/a', 'p/b', 'p/a', 'p/a']);
  });

  it('a failed trailing signal is logged, not thrown (the campaign counts on its own timer too)', async () => {
    vi.useFakeTimers();
    const warnings: string[] = [];
    const logger = createLogger('silent');
    logger.warn = ((_: unknown, msg: string) => void warnings.push(msg)) as typeof logger.warn;
    let calls = 0;
    const nudge = throttledPerCampaign(async () => {
      calls += 1;
      if (calls > 1) throw new Error('unavailable');
    }, logger);
    await nudge('p', 'a');
    await nudge('p', 'a');
    await vi.advanceTimersByTimeAsync(CAMPAIGN_NUDGE_MS);
    expect(calls).toBe(2);
    expect(warnings).toEqual(['could not tell the campaign']);
  });
});
