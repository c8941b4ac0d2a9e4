/**
 * The worker process of `npm run bench:campaign` (scripts/bench-campaign.ts starts it as a child so
 * that its peak RSS is its own): the production worker (createConfirmationWorker with the campaign
 * activities and the channel gate of the trunk) on PostgreSQL, dialing scripted phones that ring and
 * hold the line for a short random time. Records when each INVITE was sent and when its line went
 * down, and samples the gate (waiters, live leases, calls up) every 100 ms; reports them to the
 * parent over IPC when told to stop. Ids and times only: nothing of a contact leaves this process.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { ConfirmationClient } from '../src/client';
import { createDataConverter } from '../src/codec';
import {
  CallCheckState,
  CallOutcome,
  DialFailureType,
  outcomeUpdate,
  SIP_PARTICIPANT_IDENTITY,
  type CallCheckResult,
  type DialInput,
  type DialResult,
} from '../src/contracts';
import { createLogger } from '../src/logger';
import { ChannelBroker, liveLeaseCount } from '../src/pacing';
import { DialError, type CallingRules, type Telephony } from '../src/ports';
import { createStore } from '../src/store';
import { createConfirmationWorker } from '../src/worker-factory';

export interface BenchWorkerConfig {
  temporalAddress: string;
  databaseUrl: string;
  payloadEncryptionKey: string;
  taskQueue: string;
  trunkId: string;
  channels: number;
  callsPerSecond: number;
  rules: CallingRules;
  /** Ringing before the answer (or the failure), ms. */
  ringMs: [number, number];
  /** Answered: the conversation until the agent's verdict, ms. */
  talkMs: [number, number];
  /** The worker's workflow cache (default: the worker factory's). */
  maxCachedWorkflows?: number;
}

/** Messages to the parent. */
export type BenchWorkerMessage =
  | { ready: true }
  | {
      stats: {
        /** [INVITE sent, line down] per dial, ms since the epoch. */
        calls: [number, number][];
        /** [t, waiters of this process, live leases of the trunk, calls up] every 100 ms. */
        samples: [number, number, number, number][];
        /** Outcome updates the scripted agent sent that Temporal refused (should be 0). */
        agentErrors: number;
        /** VmHWM: the whole life of the process, bundling the workflows at start included. */
        peakRssMb: number;
        /** RSS of the idle worker 3 s after it started (bundle loaded, polling). */
        idleRssMb: number;
        /** Most RSS sampled while the campaign ran (after the worker started). */
        sampledMaxRssMb: number;
        /** V8 heap used and external memory when the sampled RSS peaked (the rest is native: the SDK core, buffers). */
        atMax: { heapMb: number; externalMb: number };
      };
    };

/** What a number's phone does: 80 % confirm, 5 % reschedule, 3 % cancel, 7 % busy then confirm on the retry, 5 % never answer (deterministic per number). */
function phoneBehaviour(phone: string): 'confirm' | 'reschedule' | 'cancel' | 'busyThenConfirm' | 'noAnswer' {
  let h = 2166136261;
  for (const c of phone) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  const n = h % 100;
  if (n < 80) return 'confirm';
  if (n < 85) return 'reschedule';
  if (n < 88) return 'cancel';
  if (n < 95) return 'busyThenConfirm';
  return 'noAnswer';
}

const between = ([a, b]: [number, number]) => a + Math.random() * (b - a);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Scripted phones behind the production Telephony port; the agent's verdict goes through the real Update. */
class BenchPhones implements Telephony {
  readonly calls: [number, number][] = [];
  up = 0;
  agentErrors = 0;
  private readonly rooms = new Map<string, { status: string; started: number; ended?: boolean }>();
  private readonly dialed = new Map<string, number>();

  constructor(
    private readonly client: Client,
    private readonly config: BenchWorkerConfig,
  ) {}

  private lineDown(roomName: string): void {
    const room = this.rooms.get(roomName);
    if (!room || room.ended) return;
    room.ended = true;
    this.up -= 1;
    this.calls.push([room.started, Date.now()]);
  }

  async dial(input: DialInput): Promise<DialResult> {
    const started = Date.now();
    const room = { status: 'ringing', started };
    this.rooms.set(input.roomName, room);
    this.up += 1;
    const tries = (this.dialed.get(input.phone) ?? 0) + 1;
    this.dialed.set(input.phone, tries);
    const behaviour = phoneBehaviour(input.phone);
    await sleep(between(this.config.ringMs));
    if (behaviour === 'noAnswer' || (behaviour === 'busyThenConfirm' && tries === 1)) {
      this.lineDown(input.roomName);
      this.rooms.delete(input.roomName);
      if (behaviour === 'noAnswer') throw new DialError(DialFailureType.NO_ANSWER, 'sip request timed out', 408, 'Request Timeout');
      throw new DialError(DialFailureType.BUSY, 'SIP call failed: 486 Busy Here', 486, 'Busy Here');
    }
    room.status = 'active';
    const outcome =
      behaviour === 'reschedule' ? CallOutcome.RESCHEDULE_REQUESTED : behaviour === 'cancel' ? CallOutcome.CANCELLED : CallOutcome.CONFIRMED;
    // The agent talks, reports its verdict through the Update, says goodbye and hangs up.
    setTimeout(() => {
      void this.client.workflow
        .getHandle(input.workflowId)
        .executeUpdate(outcomeUpdate, { args: [{ attempt: input.attempt, outcome, ...(outcome === CallOutcome.RESCHEDULE_REQUESTED ? { detail: { reschedulePreference: 'a morning next week' } } : {}) }] })
        .catch(() => (this.agentErrors += 1))
        .finally(() => {
          room.status = 'hangup';
          this.lineDown(input.roomName);
        });
    }, between(this.config.talkMs));
    return { answered: true, participantIdentity: SIP_PARTICIPANT_IDENTITY, sipCallId: `SCL_${input.roomName}`, answeredAt: new Date().toISOString() };
  }

  async checkCall(roomName: string): Promise<CallCheckResult> {
    const status = this.rooms.get(roomName)?.status;
    const answered = status === 'active' || status === 'hangup';
    return { state: answered ? CallCheckState.ANSWERED : CallCheckState.NOT_CONNECTED, callStatus: status };
  }

  async hangUp(roomName: string): Promise<void> {
    this.lineDown(roomName);
    this.rooms.delete(roomName);
  }
}

/** One line of the memory trace (BENCH_MEM_TRACE=<file>): RSS, peak, V8 heap of this thread, external, threads. */
function memLine(phase: string): string {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  const m = process.memoryUsage();
  const mb = (x: number) => Math.round(x / 2 ** 20);
  return `${JSON.stringify({ t: Date.now(), phase, rss: Math.round(kb('VmRSS')), hwm: Math.round(kb('VmHWM')), heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers), threads: kb('Threads') * 1024 })}\n`;
}
const memTrace = process.env.BENCH_MEM_TRACE;
const trace = (phase: string) => {
  if (memTrace) appendFileSync(memTrace, memLine(phase));
};

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

async function main(): Promise<void> {
  // From the environment, not argv: the bench's (throwaway) payload key stays out of `ps`.
  const config = JSON.parse(process.env.BENCH_WORKER_CONFIG!) as BenchWorkerConfig;
  const send = (m: BenchWorkerMessage) => process.send!(m);
  trace('imports');
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const store = await createStore({ databaseUrl: config.databaseUrl });
  const client = new Client({ connection: await Connection.connect({ address: config.temporalAddress }), dataConverter: createDataConverter(config.payloadEncryptionKey) });
  const api = new ConfirmationClient({ client, store, taskQueue: config.taskQueue });
  const phones = new BenchPhones(client, config);
  const pacing = await ChannelBroker.start(store.sql, config.trunkId, { limits: { channels: config.channels, callsPerSecond: config.callsPerSecond } });
  const worker = await createConfirmationWorker({
    connection: await NativeConnection.connect({ address: config.temporalAddress }),
    taskQueue: config.taskQueue,
    payloadEncryptionKey: config.payloadEncryptionKey,
    store,
    telephony: phones,
    rules: config.rules,
    logger: createLogger('silent'),
    onOptOut: async (phone, except) => void (await api.stopConfirmationsOf(phone, except)),
    pacing,
    campaigns: { sql: store.sql, client, confirmations: api },
    maxCachedWorkflows: config.maxCachedWorkflows,
  });
  trace('worker created');
  const running = worker.run();
  await sleep(3_000);
  const idleRssMb = process.memoryUsage().rss / 2 ** 20;
  trace('idle after start');
  const traceTimer = setInterval(() => trace('campaign'), 10_000);

  const samples: [number, number, number, number][] = [];
  let sampledMaxRssMb = 0;
  let atMax = { heapMb: 0, externalMb: 0 };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const t = Date.now();
      const leases = await liveLeaseCount(store.sql, config.trunkId).catch(() => -1);
      samples.push([t, pacing.waiting, leases, phones.up]);
      const m = process.memoryUsage();
      if (m.rss / 2 ** 20 > sampledMaxRssMb) {
        sampledMaxRssMb = m.rss / 2 ** 20;
        atMax = { heapMb: m.heapUsed / 2 ** 20, externalMb: m.external / 2 ** 20 };
      }
      await sleep(Math.max(0, 100 - (Date.now() - t)));
    }
  })();

  // The parent is gone (killed): so is this worker.
  process.once('disconnect', () => process.exit(1));
  process.on('message', (m: { stop?: boolean }) => {
    if (!m.stop) return;
    void (async () => {
      sampling = false;
      clearInterval(traceTimer);
      await sampler;
      send({ stats: { calls: phones.calls, samples, agentErrors: phones.agentErrors, peakRssMb: peakRssMb(), idleRssMb, sampledMaxRssMb, atMax } });
      worker.shutdown();
      await running.catch(() => undefined);
      pacing.close();
      await store.close();
      process.exit(0);
    })();
  });
  send({ ready: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
