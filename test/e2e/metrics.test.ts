/**
 * Prometheus metrics of a real run: the worker and the agent worker as their own processes (as
 * production runs them, METRICS_PORT / TEMPORAL_METRICS_PORT set), the Temporal dev server,
 * PostgreSQL, livekit-server with Redis and the phone-network simulator. Two confirmations are
 * called (one answered, confirmed on the keypad through the agent; one busy); the three endpoints
 * are scraped over HTTP during and after the calls and parsed: the business metrics moved, no label
 * holds health data, and every metric the Grafana dashboard (deploy/grafana) queries exists.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parser as promql } from '@prometheus-io/lezer-promql';
import { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationClient } from '../../src/client';
import { CallOutcome, type ConfirmationRequest } from '../../src/contracts';
import { startAgentProcess, type AgentProcess } from '../../src/dev/agent-process';
import { createSimulatedTrunk, startLiveKitStack, stopProcess, type LiveKitStack } from '../../src/dev/livekit-stack';
import { simulatedPatientZone } from '../../src/dev/office-hours';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { freePort, startTemporalDevServer, type DevServer } from '../../src/dev/temporal-dev-server';
import { createStore } from '../../src/store';
import { e2eRequest } from '../helpers/fixtures';
import { parsePrometheusText, type Sample } from '../helpers/prometheus-text';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';
import { connectTestClient, startWorkerProcess, workerEnv } from '../helpers/worker-process';

const ROOT = join(import.meta.dirname, '../..');
const DASHBOARDS = join(ROOT, 'deploy/grafana/dashboards');
const TASK_QUEUE = 'metrics';
/** Answers and presses 1 after the agent's greeting starts; busy (tools/phone-sim/scenarios.json). */
const CONFIRMS = '+12125550113';
const BUSY = '+12125550102';

let temporal: DevServer;
let stack: LiveKitStack;
let postgres: PostgresServer;
let worker: ChildProcess;
let agent: AgentProcess;
let client: Client;
let api: ConfirmationClient;
let store: Awaited<ReturnType<typeof createStore>>;
let trunkId: string;
const ports = { worker: 0, temporal: 0, agent: 0 };
const requests: ConfirmationRequest[] = [];
const workflowIds: string[] = [];

beforeAll(async () => {
  [temporal, stack, postgres] = await Promise.all([startTemporalDevServer({ headless: true }), startLiveKitStack({ phones: true }), startPostgres()]);
  trunkId = await createSimulatedTrunk(stack);
  [ports.worker, ports.temporal, ports.agent] = [await freePort(), await freePort(), await freePort()];
  store = await createStore({ databaseUrl: postgres.url });
  [worker, agent] = await Promise.all([
    startWorkerProcess(
      workerEnv({ temporalAddress: temporal.address, taskQueue: TASK_QUEUE, stack, trunkId, databaseUrl: postgres.url }, {
        METRICS_PORT: String(ports.worker),
        TEMPORAL_METRICS_PORT: String(ports.temporal),
      }),
    ),
    startAgentProcess({
      livekit: { url: stack.url, apiKey: stack.apiKey, apiSecret: stack.apiSecret },
      temporalAddress: temporal.address,
      taskQueue: TASK_QUEUE,
      payloadEncryptionKey: TEST_ENCRYPTION_KEY,
      // Reports its capacity (the worker's channel gate reads it) and serves its metrics.
      env: { DATABASE_URL: postgres.url, METRICS_PORT: String(ports.agent) },
    }),
  ]);
  client = await connectTestClient(temporal.address);
  api = new ConfirmationClient({ client, store, taskQueue: TASK_QUEUE });
}, 600_000);

afterAll(async () => {
  await client?.connection.close();
  await store?.close();
  await Promise.all([worker && stopProcess(worker), agent?.stop()]);
  await Promise.all([temporal?.stop(), stack?.stop(), postgres?.stop()]);
});

// ------------------------------------------------------------------------------- scraping

async function scrape(port: number): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status, `GET /metrics on port ${port}`).toBe(200);
  const text = await res.text();
  return { text, samples: parsePrometheusText(text) };
}

/** Sum of the samples of `name` whose labels include `match` (NaN when there are none: the metric is missing). */
function total(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  const found = samples.filter((m) => m.name === name && Object.entries(match).every(([k, v]) => m.labels[k] === v));
  return found.length === 0 ? Number.NaN : found.reduce((sum, m) => sum + m.value, 0);
}

/** Observations of a histogram. */
const count = (samples: Sample[], name: string, match: Record<string, string> = {}) => total(samples, `${name}_count`, match);

async function confirm(tag: string, phone: string): Promise<string> {
  const request = e2eRequest(`metrics-${tag}`, phone);
  requests.push(request);
  await api.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'metrics test' });
  await api.recordTimeZoneOverride(simulatedPatientZone(request.practiceId, phone, request.patientTimeZone));
  const { workflowId } = await api.startConfirmation(request);
  workflowIds.push(workflowId);
  return workflowId;
}

// ------------------------------------------------------------------------------- the dashboard

/** Every PromQL query of every dashboard, with Grafana's variables replaced so the query parses. */
function dashboardQueries(): { dashboard: string; title: string; expr: string }[] {
  const out: { dashboard: string; title: string; expr: string }[] = [];
  const visit = (dashboard: string, panels: { title?: string; targets?: { expr?: string }[]; panels?: unknown[] }[]) => {
    for (const panel of panels) {
      for (const t of panel.targets ?? []) if (t.expr) out.push({ dashboard, title: panel.title ?? '', expr: t.expr });
      if (panel.panels) visit(dashboard, panel.panels as typeof panels);
    }
  };
  for (const file of readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'))) {
    const json = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as { panels: Parameters<typeof visit>[1] };
    visit(file, json.panels);
  }
  return out;
}

/** Metric names a PromQL expression selects (parsed with Prometheus's own grammar); throws on a syntax error. */
function metricsOf(expr: string): string[] {
  const query = expr.replace(/\$__(rate_interval|interval|range)/g, '5m').replace(/\$\{?\w+\}?/g, 'x');
  const tree = promql.parse(query);
  const names: string[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`not valid PromQL at ${cursor.from}: ${expr}`);
    if (cursor.name === 'Identifier' && cursor.node.parent?.name === 'VectorSelector') names.push(query.slice(cursor.from, cursor.to));
  } while (cursor.next());
  return names;
}

// ------------------------------------------------------------------------------- the test

describe('Prometheus metrics of the worker and the agent worker', () => {
  it('the dashboard queries are valid PromQL and name metrics', () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(8);
    for (const q of queries) expect(metricsOf(q.expr).length, `${q.dashboard} "${q.title}": ${q.expr}`).toBeGreaterThan(0);
    expect(() => metricsOf('sum(rate(foo[5m])')).toThrow(/not valid PromQL/); // the check would see a broken query
  });

  it('two real calls move the business metrics; no label holds health data; every dashboard metric exists', async () => {
    const worker = async () => (await scrape(ports.worker)).samples;
    const agentSamples = async () => (await scrape(ports.agent)).samples;
    // Exposed from the start at 0 (rate() needs a series before the first call).
    expect(total(await worker(), 'callcampaigns_calls_placed_total', { trunk: trunkId })).toBe(0);

    const confirmed = await confirm('yes', CONFIRMS);
    // During the call: the trunk's channel is held, the agent runs the call.
    await expect.poll(async () => total(await worker(), 'callcampaigns_trunk_channels_in_use', { trunk: trunkId }), { timeout: 90_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => total(await agentSamples(), 'callcampaigns_agent_calls_in_progress'), { timeout: 60_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    const busy = await confirm('busy', BUSY);
    expect((await api.result(confirmed)).outcome).toBe(CallOutcome.CONFIRMED);
    expect((await api.result(busy)).outcome).not.toBe(CallOutcome.CONFIRMED);

    // The agent's job process relays its observations over the census socket: wait for them.
    await expect.poll(async () => count(await agentSamples(), 'callcampaigns_outcome_ack_seconds'), { timeout: 30_000, interval: 250 }).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => total(await worker(), 'callcampaigns_trunk_channels_in_use', { trunk: trunkId }), { timeout: 60_000, interval: 500 }).toBe(0);
    const [w, t, a] = await Promise.all([scrape(ports.worker), scrape(ports.temporal), scrape(ports.agent)]);

    // Worker: calls placed and answered, dial → answer, outcomes by class, the trunk's limits.
    expect(total(w.samples, 'callcampaigns_calls_placed_total', { trunk: trunkId })).toBe(2);
    expect(total(w.samples, 'callcampaigns_calls_answered_total', { trunk: trunkId })).toBe(1);
    expect(count(w.samples, 'callcampaigns_dial_to_answer_seconds', { trunk: trunkId })).toBe(1);
    expect(total(w.samples, 'callcampaigns_call_outcomes_total', { practice: 'bright-smiles', outcome: CallOutcome.CONFIRMED })).toBe(1);
    expect(total(w.samples, 'callcampaigns_confirmation_outcomes_total', { outcome: CallOutcome.CONFIRMED })).toBe(1);
    expect(total(w.samples, 'callcampaigns_call_outcomes_total')).toBe(2);
    expect(total(w.samples, 'callcampaigns_trunk_channels_limit', { trunk: trunkId })).toBeGreaterThanOrEqual(1);
    expect(total(w.samples, 'callcampaigns_trunk_calls_per_second_limit', { trunk: trunkId })).toBeGreaterThan(0);
    expect(total(w.samples, 'callcampaigns_calls_waiting_for_agent', { trunk: trunkId })).toBe(0);
    // Agent: capacity, answer → first audio, the outcome's acknowledgement.
    expect(total(a.samples, 'callcampaigns_agent_max_calls')).toBe(10);
    expect(total(a.samples, 'callcampaigns_agent_jobs_total', { result: 'accepted' })).toBeGreaterThanOrEqual(1);
    expect(count(a.samples, 'callcampaigns_answer_to_first_audio_seconds')).toBe(1);
    const acks = a.samples.filter((m) => m.name === 'callcampaigns_outcome_ack_seconds_count').map((m) => [m.labels, m.value]);
    expect(acks).toEqual([[{ outcome: CallOutcome.CONFIRMED, result: 'acknowledged', process: 'agent' }, 1]]);
    // Temporal SDK: the worker's tasks were served and counted.
    expect(total(t.samples, 'temporal_workflow_completed_total')).toBeGreaterThanOrEqual(2);
    expect(count(t.samples, 'temporal_activity_execution_latency')).toBeGreaterThanOrEqual(1);

    const seconds = (samples: Sample[], name: string) => total(samples, `${name}_sum`).toFixed(2);
    process.stdout.write(
      `dial → answer ${seconds(w.samples, 'callcampaigns_dial_to_answer_seconds')} s; answer → first audio ${seconds(a.samples, 'callcampaigns_answer_to_first_audio_seconds')} s; ` +
        `outcome acknowledged in ${seconds(a.samples, 'callcampaigns_outcome_ack_seconds')} s\n`,
    );

    // No health data in any label or anywhere in the text: numbers, names, appointment ids and
    // times, workflow ids (and so room names, which embed them).
    const never = [
      CONFIRMS,
      BUSY,
      ...[CONFIRMS, BUSY].flatMap((p) => [p.slice(1), p.slice(2)]),
      ...requests.flatMap((r) => [r.patientName, r.appointmentId, r.patientId, r.appointmentStart.slice(0, 16)]),
      ...workflowIds,
    ];
    for (const [endpoint, { text, samples }] of Object.entries({ worker: w, temporal: t, agent: a })) {
      for (const value of never) expect(text.includes(value), `${endpoint} endpoint exposes ${value}`).toBe(false);
      for (const m of samples) {
        for (const v of Object.values(m.labels)) expect(v, `${endpoint} ${m.name} label value`).not.toMatch(/\d{7,}|confirm[:-]/);
      }
    }

    // Every metric the dashboard queries is exposed by one of the endpoints (with series, not only a HELP line).
    const exposed = new Set([w, t, a].flatMap((e) => e.samples.map((m) => m.name)));
    const missing = dashboardQueries().flatMap((q) => metricsOf(q.expr).filter((n) => !exposed.has(n)).map((n) => `${q.dashboard} "${q.title}": ${n}`));
    expect(missing, `exposed: ${[...exposed].filter((n) => !/nodejs|_bucket$/.test(n)).sort().join(' ')}`).toEqual([]);
  });
});
