/**
 * Prometheus metrics of the confirmation worker and the agent worker (prom-client), served over
 * HTTP at `/metrics` when `METRICS_PORT` is set. Temporal's own SDK/runtime metrics are served by
 * the SDK's exporter on a port of their own (`TEMPORAL_METRICS_PORT`, worker only; see worker.ts).
 *
 * Labels are limited to the trunk id, the outcome class, the practice id and fixed words: never a
 * phone number, a name, an appointment, a workflow id or a room name (rooms embed workflow ids,
 * which embed appointment ids). Label values that do not pass {@link safeLabel} are replaced.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every business metric's name starts with this. */
export const METRIC_PREFIX = 'callcampaigns_';

/**
 * What the confirmation activities report. Injected into `createActivities(deps)`; the default is
 * {@link noopWorkerMetrics}, so code and tests that do not care are unaffected.
 */
export interface WorkerMetrics {
  /** An INVITE went out for an attempt (a dial LiveKit refused before any INVITE is not counted). */
  callPlaced(): void;
  /** The callee answered, this many seconds after the INVITE went out. */
  callAnswered(dialToAnswerSeconds: number): void;
  /**
   * A confirmation's attempt was finished: the class of its call's outcome (none when no call was
   * placed), and the confirmation's final outcome when it ended with it.
   */
  attemptFinished(practiceId: string, outcome: string | undefined, finalOutcome?: string): void;
  /** An answered call started (+1) or stopped (−1) waiting for its agent: the agents' backlog as the workers see it. */
  waitingForAgent(delta: 1 | -1): void;
  /** An answered call's agent was dispatched again (the first dispatch found no agent free). */
  agentRedispatched(): void;
}

/** Reports nothing. */
export const noopWorkerMetrics: WorkerMetrics = {
  callPlaced: () => undefined,
  callAnswered: () => undefined,
  attemptFinished: () => undefined,
  waitingForAgent: () => undefined,
  agentRedispatched: () => undefined,
};

/** The trunk's channel state, read from the database at each scrape (shared by every worker of the trunk). */
export interface TrunkChannels {
  inUse: number;
  channels: number;
  callsPerSecond: number;
}

/**
 * A label value fit to export: ids as the validation admits them (letters, digits, `._-`, up to 64
 * characters) with at most 6 digits in a row — a phone number or a date never passes. Else `other`.
 */
export function safeLabel(value: string | undefined): string {
  if (!value) return 'none';
  return /^[A-Za-z0-9._-]{1,64}$/.test(value) && !/\d{7,}/.test(value) ? value : 'other';
}

/** Seconds buckets of the latency histograms: from sub-second (audio, acknowledgements) to a minute (ringing). */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 120];

/** A registry with the process's default metrics (CPU, memory, event loop) of this process. */
export function createRegistry(process: 'worker' | 'agent'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process });
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}

/**
 * The worker's business metrics on `registry`. `trunkId` labels the trunk's metrics (a worker
 * serves one trunk); `channels` is read at each scrape (a failed read keeps the last values).
 */
export function createWorkerMetrics(registry: Registry, trunkId: string, channels?: () => Promise<TrunkChannels>): WorkerMetrics {
  const trunk = safeLabel(trunkId);
  const placed = new Counter({ name: `${METRIC_PREFIX}calls_placed_total`, help: 'Calls placed (an INVITE sent) by this worker.', labelNames: ['trunk'], registers: [registry] });
  const answered = new Counter({ name: `${METRIC_PREFIX}calls_answered_total`, help: 'Calls answered.', labelNames: ['trunk'], registers: [registry] });
  const dialToAnswer = new Histogram({
    name: `${METRIC_PREFIX}dial_to_answer_seconds`,
    help: 'From the INVITE to the answer, in seconds.',
    labelNames: ['trunk'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const outcomes = new Counter({
    name: `${METRIC_PREFIX}call_outcomes_total`,
    help: 'Outcomes of call attempts, by class (an activity retried after its write may count twice).',
    labelNames: ['practice', 'outcome'],
    registers: [registry],
  });
  const finals = new Counter({
    name: `${METRIC_PREFIX}confirmation_outcomes_total`,
    help: 'Final outcomes of confirmations, by class.',
    labelNames: ['practice', 'outcome'],
    registers: [registry],
  });
  const waiting = new Gauge({
    name: `${METRIC_PREFIX}calls_waiting_for_agent`,
    help: "Answered calls of this worker whose agent has not joined yet (the agents' backlog).",
    labelNames: ['trunk'],
    registers: [registry],
  });
  const redispatches = new Counter({ name: `${METRIC_PREFIX}agent_redispatches_total`, help: 'Agents dispatched again to an answered call.', labelNames: ['trunk'], registers: [registry] });
  // One database read per scrape, shared by the three gauges (prom-client collects each on its own).
  let reading: Promise<void> | undefined;
  const read = (): Promise<void> =>
    (reading ??= (channels ? channels() : Promise.reject(new Error('no reader')))
      .then((c) => {
        inUse.set({ trunk }, c.inUse);
        limit.set({ trunk }, c.channels);
        cps.set({ trunk }, c.callsPerSecond);
      })
      .catch(() => undefined) // the database away: the last values stay (the worker's log says why)
      .finally(() => setTimeout(() => (reading = undefined), 500).unref()));
  const gauge = (name: string, help: string) =>
    new Gauge({ name: `${METRIC_PREFIX}${name}`, help, labelNames: ['trunk'], registers: [registry], ...(channels ? { collect: read } : {}) });
  const inUse = gauge('trunk_channels_in_use', "Channels of the trunk held by calls (live leases, every worker's).");
  const limit = gauge('trunk_channels_limit', 'Channels the trunk allows.');
  const cps = gauge('trunk_calls_per_second_limit', 'Calls per second the trunk allows.');
  // Series exist from the start (at 0): rate() and the dashboard see the trunk before its first call.
  waiting.set({ trunk }, 0);
  for (const c of [placed, answered, redispatches]) c.inc({ trunk }, 0);
  return {
    callPlaced: () => placed.inc({ trunk }),
    callAnswered: (seconds) => {
      answered.inc({ trunk });
      if (Number.isFinite(seconds) && seconds >= 0) dialToAnswer.observe({ trunk }, seconds);
    },
    attemptFinished: (practiceId, outcome, finalOutcome) => {
      const practice = safeLabel(practiceId);
      if (outcome) outcomes.inc({ practice, outcome: safeLabel(outcome) });
      if (finalOutcome) finals.inc({ practice, outcome: safeLabel(finalOutcome) });
    },
    waitingForAgent: (delta) => waiting.inc({ trunk }, delta),
    agentRedispatched: () => redispatches.inc({ trunk }),
  };
}

/** What the agent worker's census counts, read at each scrape. */
export interface AgentCensusView {
  maxCalls: number;
  counts(): { ready: number; busy: number; reserved: number; free: number; starting: number };
}

/** What an agent's job process measured about one call (relayed to its worker over the census socket). */
export type AgentObservation =
  | { metric: 'answer_to_first_audio'; seconds: number }
  | { metric: 'outcome_ack'; seconds: number; outcome: string; result: 'acknowledged' | 'late' | 'invalid' };

/** The agent worker's business metrics on `registry`; returns what records jobs and observations. */
export function createAgentMetrics(registry: Registry, census: AgentCensusView) {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name: `${METRIC_PREFIX}${name}`,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('agent_max_calls', 'Calls this agent worker takes at once (AGENT_MAX_CALLS).', () => census.maxCalls);
  gauge('agent_calls_in_progress', 'Calls this agent worker is running.', () => census.counts().busy);
  gauge('agent_free_calls', 'Calls this agent worker can take now (warm job processes free, within AGENT_MAX_CALLS).', () => census.counts().free);
  gauge('agent_ready_processes', 'Warm job processes waiting for a call.', () => census.counts().ready);
  gauge('agent_starting_processes', 'Job processes still starting (loading their models).', () => census.counts().starting);
  gauge('agent_accepted_jobs_waiting', 'Jobs accepted whose process has not started the call yet (the agent-side backlog).', () => census.counts().reserved);
  const jobs = new Counter({ name: `${METRIC_PREFIX}agent_jobs_total`, help: 'Jobs offered to this agent worker, by what it did.', labelNames: ['result'], registers: [registry] });
  const firstAudio = new Histogram({
    name: `${METRIC_PREFIX}answer_to_first_audio_seconds`,
    help: "From the callee's answer (as the agent saw it) to the agent's first audio, in seconds.",
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const ack = new Histogram({
    name: `${METRIC_PREFIX}outcome_ack_seconds`,
    help: "From the agent's report of an outcome to the workflow's acknowledgement (or its audit as late), in seconds.",
    labelNames: ['outcome', 'result'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  jobs.inc({ result: 'accepted' }, 0);
  jobs.inc({ result: 'refused' }, 0);
  return {
    job: (result: 'accepted' | 'refused') => jobs.inc({ result }),
    observe(o: AgentObservation): void {
      if (!Number.isFinite(o.seconds) || o.seconds < 0) return;
      if (o.metric === 'answer_to_first_audio') firstAudio.observe(o.seconds);
      else ack.observe({ outcome: safeLabel(o.outcome), result: safeLabel(o.result) }, o.seconds);
    },
  };
}

/** Serves `registry` at `/metrics` on host:port (port 0: any free one). */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end('metrics could not be collected\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
