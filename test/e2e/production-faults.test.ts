/**
 * The production shape under faults, with real processes: Temporal's own server on PostgreSQL, the
 * project's database on another PostgreSQL, two confirmation workers (`src/worker.ts`) on one task
 * queue, two voice-agent workers (`agent/main.ts`) under one agent name, livekit-server and the
 * phone-network simulator. One campaign of scripted phones (press 1, press 2, busy then press 1) lives
 * through three faults in turn:
 *   1. SIGKILL of one worker and one agent once both of each kind have taken calls;
 *   2. SIGKILL of temporal-server while confirmations wait on retry timers and calls are up, then a
 *      restart on the same databases (and ports);
 *   3. a crash-like restart (immediate shutdown, a few seconds down) of the project's PostgreSQL.
 * Then: the campaign completes; every attempt got at most one INVITE; every outcome recorded is what
 * the phone did (its key, its busy signal); every contact ends with its phone's answer; the audit log
 * holds exactly one outcome row per attempt and its decision sequence has neither gap nor duplicate;
 * no channel lease is left. Recovery times (fault → next INVITE, → next outcome recorded) are printed.
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CampaignClient } from '../../src/campaigns/client';
import { CallOutcome, CampaignState, RETRYABLE_OUTCOMES } from '../../src/contracts';
import { startAgentProcess, type AgentProcess } from '../../src/dev/agent-process';
import { readCallLog, createSimulatedTrunk, startLiveKitStack, stopProcess, type CallLogLine, type LiveKitStack } from '../../src/dev/livekit-stack';
import { METRIC_PREFIX } from '../../src/metrics';
import { simulatedPatientZone, zoneInOfficeHours } from '../../src/dev/office-hours';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import { freePort } from '../../src/dev/temporal-dev-server';
import { startTemporalServer, type TemporalServer } from '../../src/dev/temporal-server';
import { createStore, type SqlStore } from '../../src/store';
import { parsePrometheusText } from '../helpers/prometheus-text';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';
import { e2eCampaignRow } from '../helpers/fixtures';
import { connectTestClient, startWorkerProcess, workerEnv } from '../helpers/worker-process';

const PRACTICE = 'bright-smiles';
const CAMPAIGN = 'faults';
const TASK_QUEUE = 'production-faults';
const AGENT_NAME = 'faults-confirmer';
const LIMITS = { channels: 3, callsPerSecond: 2 };

type Kind = 'busy-then-confirm' | 'confirm' | 'cancel';
/** Busy ones first (earliest appointments): their retry timers are pending when the server dies. */
const KINDS: Kind[] = [...Array<Kind>(3).fill('busy-then-confirm'), ...Array<Kind>(9).fill('confirm'), ...Array<Kind>(4).fill('cancel')];
const contacts = KINDS.map((kind, i) => ({ kind, phone: `+1212555${String(300 + i).padStart(4, '0')}`, appointmentId: `fault-${i}` }));
const FINAL: Record<Kind, CallOutcome> = { 'busy-then-confirm': CallOutcome.CONFIRMED, confirm: CallOutcome.CONFIRMED, cancel: CallOutcome.CANCELLED };
const workflowIdOf = (appointmentId: string) => `confirm:${PRACTICE}:${appointmentId}`;

/** What the phone did on a call, as the outcome the workflow must have recorded for it (undefined: nothing to say). */
function outcomeOfCall(call: CallLogLine): CallOutcome | undefined {
  if (call.outcome === 'busy') return CallOutcome.BUSY;
  const keys = (call.events ?? []).filter((e) => e.what === 'press').map((e) => e.arg);
  if (keys.includes('1')) return CallOutcome.CONFIRMED;
  if (keys.includes('2')) return CallOutcome.CANCELLED;
  return undefined; // answered, but its agent died before the key: any retryable outcome will do
}

let temporalDb: PostgresServer;
let appDb: PostgresServer;
let temporal: TemporalServer;
let stack: LiveKitStack;
let store: SqlStore;
let env: Record<string, string>;
const workers: { child: ChildProcess; metricsPort: number }[] = [];
const agents: AgentProcess[] = [];

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function callsPlacedBy(metricsPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  const samples = parsePrometheusText(await res.text());
  return samples.filter((s) => s.name === `${METRIC_PREFIX}calls_placed_total`).reduce((a, s) => a + s.value, 0);
}

/** Where the test is, as it goes (a hung phase shows which). */
const t0 = Date.now();
const note = (what: string) => process.stdout.write(`production faults +${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}\n`);

const jobsTakenBy = (agent: AgentProcess) => agent.output().split('job started').length - 1;

/** Outcome rows of this campaign recorded so far (through a short-lived pool: the database may be down). */
async function outcomesRecorded(): Promise<number> {
  const { rows } = await store.sql.query<{ n: string }>(`SELECT count(*) AS n FROM audit_log WHERE decision = 'OUTCOME' AND workflow_id LIKE $1`, [
    `${workflowIdOf('fault-')}%`,
  ]);
  return Number(rows[0]!.n);
}

/** Milliseconds from `at` to the first INVITE after it, and to the first outcome recorded after it. */
async function recoveryFrom(at: number): Promise<{ invite: number; outcome: number }> {
  const invites = readCallLog(stack.callLogFile!)
    .map((c) => Date.parse(c.time))
    .filter((t) => t > at);
  const { rows } = await store.sql.query<{ t: Date }>(`SELECT min(recorded_at) AS t FROM audit_log WHERE decision = 'OUTCOME' AND recorded_at > $1`, [new Date(at)]);
  return { invite: Math.min(...invites) - at, outcome: rows[0]!.t ? rows[0]!.t.getTime() - at : Number.NaN };
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'production-faults-'));
  const scenarios = join(dir, 'scenarios.json');
  const press = (key: string) => [{ press: key, after: 'agent-audio', afterMs: 1_500 }];
  // A person whose call goes silent (its agent died) hangs up after a while, as people do.
  const hangupAfterMs = 25_000;
  writeFileSync(
    scenarios,
    JSON.stringify(
      contacts.map(({ kind, phone }) =>
        kind === 'busy-then-confirm'
          ? { number: phone, sequence: ['busy', 'answer'], script: press('1'), hangupAfterMs }
          : { number: phone, behavior: 'answer', script: press(kind === 'confirm' ? '1' : '2'), hangupAfterMs },
      ),
    ),
  );
  [stack, temporalDb, appDb] = await Promise.all([startLiveKitStack({ phones: true, scenarios }), startPostgres(), startPostgres({ crashSafe: true })]);
  temporal = await startTemporalServer({ postgres: temporalDb });
  store = await createStore({ databaseUrl: appDb.url });
  const trunkId = await createSimulatedTrunk(stack);
  env = workerEnv({ temporalAddress: temporal.address, taskQueue: TASK_QUEUE, stack, trunkId, databaseUrl: appDb.url }, {
    AGENT_NAME,
    // A busy line and a call whose agent died are called again the same day.
    MAX_CALLS_PER_DAY: '5',
    MAX_CALLS_PER_WEEK: '10',
    TRUNK_MAX_CHANNELS: String(LIMITS.channels),
    TRUNK_MAX_CALLS_PER_SECOND: String(LIMITS.callsPerSecond),
    LOG_LEVEL: 'info',
  });
});

afterAll(async () => {
  await Promise.all([...workers.map((w) => stopProcess(w.child)), ...agents.map((a) => a.stop())]);
  await store?.close();
  await Promise.all([temporal?.stop(), stack?.stop()]);
  await Promise.all([temporalDb?.stop(), appDb?.stop()]);
});

describe('the production shape under faults: two workers and two agents, Temporal server and database restarts', () => {
  it('a campaign survives a worker and an agent SIGKILLed, temporal-server SIGKILLed and restarted, its database restarted', async () => {
    const began = Date.now();
    const startWorker = async () => {
      const metricsPort = await freePort();
      const logDir = process.env.CALL_CAMPAIGNS_LOG_DIR;
      const logFile = logDir ? join(logDir, `worker-${workers.length}-${metricsPort}.log`) : undefined;
      const child = await startWorkerProcess({ ...env, METRICS_PORT: String(metricsPort) }, logFile ? { logFile } : {});
      workers.push({ child, metricsPort });
    };
    let agentsStarted = 0;
    const startAgent = async () => {
      const log = `agent-${(agentsStarted += 1)}.log`;
      agents.push(
        await startAgentProcess({
          livekit: { url: stack.url, apiKey: stack.apiKey, apiSecret: stack.apiSecret },
          temporalAddress: temporal.address,
          taskQueue: TASK_QUEUE,
          payloadEncryptionKey: TEST_ENCRYPTION_KEY,
          agentName: AGENT_NAME,
          ...(process.env.CALL_CAMPAIGNS_LOG_DIR ? { echo: (line: string) => appendFileSync(join(process.env.CALL_CAMPAIGNS_LOG_DIR!, log), `${line}\n`) } : {}),
        }),
      );
    };
    await Promise.all([startWorker(), startWorker(), startAgent(), startAgent()]);
    note('two workers and two agents up');

    const client = await connectTestClient(temporal.address);
    const campaigns = new CampaignClient({ client, sql: store.sql, taskQueue: TASK_QUEUE });
    const zone = zoneInOfficeHours(10, 17);
    for (const { phone } of contacts) await store.recordConsent({ practiceId: PRACTICE, phone, granted: true, source: 'e2e' });
    for (const { phone } of contacts) await store.recordTimeZoneOverride(simulatedPatientZone(PRACTICE, phone, zone));
    const { report } = await campaigns.start(
      {
        practiceId: PRACTICE,
        practiceName: 'Bright Smiles Dental',
        practiceCallbackNumber: '+13125550100',
        campaignId: CAMPAIGN,
        limits: { channels: 10, callsPerSecond: 10 },
        // A busy line is tried again after 30 s: timers pending across the server's death. A call
        // whose agent is killed (NO_OUTCOME) has a third attempt.
        policy: { maxAttempts: 3, initialBackoffSeconds: 30, backoffMultiplier: 1, maxCallDurationSeconds: 60 },
      },
      {
        rows: contacts.map(({ phone, appointmentId }, i) => e2eCampaignRow(appointmentId, phone, i, zone)),
      },
    );
    expect(report.added).toBe(contacts.length);
    note('campaign started');
    const watch = setInterval(() => {
      void campaigns.status(PRACTICE, CAMPAIGN).then(
        (v) => note(JSON.stringify(v.progress)),
        (err: Error) => note(`status: ${err.message}`),
      );
    }, 15_000);

    // Fault 1: once both workers have placed calls and both agents taken them, one of each dies.
    const spread = await poll('calls spread over both workers and both agents', 180_000, async () => {
      const placed = await Promise.all(workers.map((w) => callsPlacedBy(w.metricsPort)));
      const jobs = agents.map(jobsTakenBy);
      return placed.every((n) => n > 0) && jobs.every((n) => n > 0) ? { placed, jobs } : undefined;
    });
    const processKilledAt = Date.now();
    workers[0]!.child.kill('SIGKILL');
    agents[0]!.child.kill('SIGKILL');
    note(`worker and agent SIGKILLed (calls placed per worker ${spread.placed.join('/')}, jobs per agent ${spread.jobs.join('/')})`);

    // Fault 2: with busy lines waiting on their retry timers, temporal-server dies; restarted at once.
    await poll('a busy line waiting on its retry timer, and more outcomes', 180_000, async () => {
      const { rows } = await store.sql.query(
        `SELECT 1 FROM audit_log a WHERE decision = 'OUTCOME' AND outcome = 'BUSY' AND workflow_id LIKE $1
           AND NOT EXISTS (SELECT 1 FROM audit_log b WHERE b.workflow_id = a.workflow_id AND b.decision = 'OUTCOME' AND b.attempt > a.attempt) LIMIT 1`,
        [`${workflowIdOf('fault-')}%`],
      );
      return rows.length > 0 && (await outcomesRecorded()) >= 5 ? true : undefined;
    });
    const serverKilledAt = Date.now();
    await temporal.kill();
    await temporal.restart();
    const serverBackMs = Date.now() - serverKilledAt;
    note(`temporal-server SIGKILLed and restarted (${serverBackMs} ms)`);

    // Fault 3: the project's PostgreSQL crashes (immediate shutdown), stays down 3 s, comes back.
    const outcomesBefore = await outcomesRecorded();
    await poll('two outcomes recorded after the server restart', 180_000, async () => ((await outcomesRecorded()) >= outcomesBefore + 2 ? true : undefined));
    const dbRestartedAt = Date.now();
    await appDb.restart({ mode: 'immediate', downMs: 3_000 });
    const dbBackMs = Date.now() - dbRestartedAt;
    note(`project PostgreSQL restarted (${dbBackMs} ms)`);

    const summary = await campaigns.result(PRACTICE, CAMPAIGN).finally(() => clearInterval(watch));
    const finishedMs = Date.now() - began;
    expect(summary.state).toBe(CampaignState.COMPLETED);
    expect(summary.total).toBe(contacts.length);

    // At most one INVITE per attempt (room).
    const calls = readCallLog(stack.callLogFile!).filter((c) => c.room.startsWith(workflowIdOf('fault-')));
    expect(new Set(calls.map((c) => c.room)).size).toBe(calls.length);

    // Every attempt's outcome, as audited, is what its phone did; every contact ends with its phone's answer.
    const { rows: outcomes } = await store.sql.query<{ workflow_id: string; attempt: number; outcome: string; n: string }>(
      `SELECT workflow_id, attempt, min(outcome) AS outcome, count(*) AS n FROM audit_log WHERE decision = 'OUTCOME' AND workflow_id LIKE $1 GROUP BY workflow_id, attempt`,
      [`${workflowIdOf('fault-')}%`],
    );
    for (const row of outcomes) expect(Number(row.n), `${row.workflow_id} attempt ${row.attempt}: outcome rows`).toBe(1);
    const audited = new Map(outcomes.map((r) => [`${r.workflow_id}-a${r.attempt}`, r.outcome]));
    for (const call of calls) {
      const expected = outcomeOfCall(call);
      const recorded = audited.get(call.room);
      expect(recorded, `${call.room}: no outcome recorded`).toBeDefined();
      // A call up when its agent was SIGKILLed may have lost the key with the agent: then it is retried.
      const hitByTheKill = Date.parse(call.time) <= processKilledAt && Date.parse(call.endedAt) >= processKilledAt;
      if (hitByTheKill && recorded !== expected) expect(RETRYABLE_OUTCOMES.has(recorded as CallOutcome), `${call.room}: ${recorded}`).toBe(true);
      else if (expected) expect(recorded, `${call.room}: the phone's ${call.outcome} call`).toBe(expected);
    }
    for (const { kind, appointmentId } of contacts) {
      const appointment = await store.getAppointment(PRACTICE, appointmentId);
      // A contact whose phone never gave its answer on any call (no agent spoke to it in time on a
      // loaded machine, around the kills) ends NO_OUTCOME once its attempts run out: not a lost
      // outcome — every answer a phone gave was recorded (checked above).
      const answered = calls.some((c) => c.room.startsWith(`${workflowIdOf(appointmentId)}-a`) && outcomeOfCall(c) === FINAL[kind]);
      // (The last call's log line may still be unwritten: its phone is up when the campaign ends.)
      expect(appointment, appointmentId).toMatchObject({ status: 'DONE' });
      expect(answered ? [FINAL[kind]] : [FINAL[kind], CallOutcome.NO_OUTCOME], appointmentId).toContain(appointment!.outcome);
      // The busy ones were called at least twice: their timer fired (across the restart for some).
      if (kind === 'busy-then-confirm') expect(calls.filter((c) => c.room.startsWith(`${workflowIdOf(appointmentId)}-a`)).length).toBeGreaterThanOrEqual(2);
    }

    // The audit log lost and duplicated nothing: per run, its decision sequence runs 1..n without a gap.
    const { rows: seqs } = await store.sql.query<{ key: string }>(`SELECT idempotency_key AS key FROM audit_log WHERE workflow_id LIKE $1`, [`${workflowIdOf('fault-')}%`]);
    const byRun = new Map<string, number[]>();
    for (const { key } of seqs) {
      const at = key.lastIndexOf('/');
      byRun.set(key.slice(0, at), [...(byRun.get(key.slice(0, at)) ?? []), Number(key.slice(at + 1))]);
    }
    expect(byRun.size).toBe(contacts.length);
    for (const [run, numbers] of byRun) expect(numbers.sort((a, b) => a - b), run).toEqual(numbers.map((_, i) => i + 1));

    // No channel leaked: the last call's lease goes when its line is down (the agent's goodbye, at most
    // the 10-s hang-up grace after the outcome); the killed worker's expired long ago (60-s TTL).
    await poll('every channel lease released', 30_000, async () => {
      const { rows: live } = await store.sql.query<{ n: string }>(`SELECT count(*) AS n FROM channel_leases WHERE expires_at > now()`);
      return Number(live[0]!.n) === 0 ? true : undefined;
    });

    const [afterProcesses, afterServer, afterDb] = await Promise.all([processKilledAt, serverKilledAt, dbRestartedAt].map(recoveryFrom));
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    process.stdout.write(
      `production faults: ${contacts.length} contacts, ${calls.length} INVITEs, campaign done in ${s(finishedMs)}; before the kill, calls placed per worker ${spread.placed.join('/')}, jobs per agent ${spread.jobs.join('/')}\n` +
        `  worker + agent SIGKILL → next INVITE ${s(afterProcesses!.invite)}, next outcome ${s(afterProcesses!.outcome)}\n` +
        `  temporal-server SIGKILL → frontend answers again ${s(serverBackMs)}, next INVITE ${s(afterServer!.invite)}, next outcome ${s(afterServer!.outcome)}\n` +
        `  PostgreSQL (project) immediate restart, 3 s down → accepting again ${s(dbBackMs)}, next INVITE ${s(afterDb!.invite)}, next outcome ${s(afterDb!.outcome)}\n`,
    );
    await client.connection.close();
    // Three faults and their recoveries on a loaded 2-core machine: longer than the suite's default.
  }, 600_000);
});
