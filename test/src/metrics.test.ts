/**
 * The metrics module's parts on their own: label values that could hold health data are never
 * exported, the trunk's channel gauges are read at each scrape (and survive a failed read), the
 * endpoint serves /metrics only, and what an agent's job process measures reaches its worker over
 * the real census socket. (The whole path, with real calls, is test/e2e/metrics.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createConnection } from 'node:net';
import { ProcessCensus, tellWorkerObservation } from '../../agent/capacity';
import { createAgentMetrics, createRegistry, createWorkerMetrics, safeLabel, serveMetrics, type AgentObservation } from '../../src/metrics';
import { parsePrometheusText } from '../helpers/prometheus-text';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const value = (text: string, name: string, labels: Record<string, string> = {}) =>
  parsePrometheusText(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);

describe('metrics', () => {
  it('label values: ids pass; phone numbers, dates, workflow ids and free text become "other"', () => {
    for (const ok of ['ST_abc123', 'bright-smiles', 'CONFIRMED', 'acknowledged', 'practice.7']) expect(safeLabel(ok)).toBe(ok);
    for (const bad of ['+12125550113', '12125550113', '2031-04-05T09:30', 'confirm:bright-smiles:A-1', 'Jordan Sample', 'a'.repeat(65), 'x20310405']) {
      expect(safeLabel(bad), bad).toBe('other');
    }
    expect(safeLabel(undefined)).toBe('none');
  });

  it('the worker metrics count calls and outcomes by class, and read the trunk channels at each scrape', async () => {
    const registry = createRegistry('worker');
    let channels: { inUse: number; channels: number; callsPerSecond: number } | Error = { inUse: 3, channels: 10, callsPerSecond: 5 };
    const m = createWorkerMetrics(registry, 'ST_trunk', async () => {
      if (channels instanceof Error) throw channels;
      return channels;
    });
    let text = await registry.metrics();
    expect(value(text, 'callcampaigns_calls_placed_total', { trunk: 'ST_trunk' })).toBe(0);
    expect(value(text, 'callcampaigns_trunk_channels_in_use', { trunk: 'ST_trunk' })).toBe(3);
    m.callPlaced();
    m.callPlaced();
    m.callAnswered(1.5);
    m.callAnswered(Number.NaN); // counted as answered, not observed
    m.attemptFinished('bright-smiles', 'CONFIRMED', 'CONFIRMED');
    m.attemptFinished('bright-smiles', undefined, 'OPTED_OUT'); // no call placed (on the do-not-call list)
    m.attemptFinished('+12125550113', 'BUSY');
    m.waitingForAgent(1);
    await new Promise((r) => setTimeout(r, 600)); // the channel read is shared for 0.5 s
    channels = new Error('database away');
    text = await registry.metrics();
    expect(value(text, 'callcampaigns_calls_placed_total')).toBe(2);
    expect(value(text, 'callcampaigns_calls_answered_total')).toBe(2);
    expect(value(text, 'callcampaigns_dial_to_answer_seconds_count')).toBe(1);
    expect(value(text, 'callcampaigns_call_outcomes_total', { practice: 'bright-smiles', outcome: 'CONFIRMED' })).toBe(1);
    expect(value(text, 'callcampaigns_call_outcomes_total', { practice: 'other', outcome: 'BUSY' })).toBe(1);
    expect(value(text, 'callcampaigns_call_outcomes_total')).toBe(2);
    expect(value(text, 'callcampaigns_confirmation_outcomes_total', { outcome: 'OPTED_OUT' })).toBe(1);
    expect(value(text, 'callcampaigns_calls_waiting_for_agent')).toBe(1);
    // A failed read keeps the last values.
    expect(value(text, 'callcampaigns_trunk_channels_in_use', { trunk: 'ST_trunk' })).toBe(3);
    expect(value(text, 'callcampaigns_trunk_channels_limit', { trunk: 'ST_trunk' })).toBe(10);
    expect(text).not.toContain('12125550113');
  });

  it('the endpoint serves /metrics and nothing else', async () => {
    const registry = createRegistry('worker');
    createWorkerMetrics(registry, 'ST_trunk');
    const server = await serveMetrics(registry, '127.0.0.1', 0);
    closers.push(() => server.close());
    const ok = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await ok.text()).toContain('callcampaigns_calls_placed_total{trunk="ST_trunk",process="worker"} 0');
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
    await expect(serveMetrics(registry, '127.0.0.1', server.port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('what a job process measures reaches its worker over the census socket; garbled lines are dropped', async () => {
    const census = await ProcessCensus.start(4);
    closers.push(() => census.close());
    const registry = createRegistry('agent');
    const metrics = createAgentMetrics(registry, census);
    const seen: AgentObservation[] = [];
    census.onObservation((o) => {
      seen.push(o);
      metrics.observe(o);
    });
    tellWorkerObservation({ metric: 'answer_to_first_audio', seconds: 0.8 });
    tellWorkerObservation({ metric: 'outcome_ack', outcome: 'CONFIRMED', result: 'acknowledged', seconds: 0.12 });
    tellWorkerObservation({ metric: 'nonsense', seconds: 1 } as unknown as AgentObservation);
    await expect.poll(() => seen.length).toBe(2);
    metrics.job('refused');
    const text = await registry.metrics();
    expect(value(text, 'callcampaigns_answer_to_first_audio_seconds_count')).toBe(1);
    expect(value(text, 'callcampaigns_outcome_ack_seconds_sum', { outcome: 'CONFIRMED', result: 'acknowledged' })).toBeCloseTo(0.12);
    expect(value(text, 'callcampaigns_agent_max_calls')).toBe(4);
    expect(value(text, 'callcampaigns_agent_jobs_total', { result: 'refused' })).toBe(1);
    expect(value(text, 'callcampaigns_agent_jobs_total', { result: 'accepted' })).toBe(0);
  });

  it('a job process whose call is over (`done`) stops counting as capacity before it exits', async () => {
    const census = await ProcessCensus.start(2);
    closers.push(() => census.close());
    // Two job processes, as agent/entry.ts speaks to the census over its socket.
    const procs = [createConnection(census.path), createConnection(census.path)];
    closers.push(() => procs.forEach((p) => p.destroy()));
    procs[0]!.write('ready\nbusy\n');
    procs[1]!.write('ready\n');
    await expect.poll(() => census.counts()).toMatchObject({ busy: 1, ready: 1, free: 1 });
    // The first call ended (busy line, rung out): the process is still shutting down, its socket open.
    procs[0]!.write('done\n');
    await expect.poll(() => census.counts()).toMatchObject({ busy: 0, ready: 1, free: 1 });
    // Capacity as reported to the gate: calls in progress + warm processes, the finished one in neither.
    const c = census.counts();
    expect(c.busy + c.ready).toBe(1);
  });
});
