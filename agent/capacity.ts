/**
 * What an agent worker can serve right now, counted from its job processes themselves: each one
 * (agent/entry.ts) tells the worker over a private Unix socket when it is warm (`ready`: its model
 * loaded, waiting for a call) and when it takes a call (`busy`); its socket closes when it exits.
 * The library keeps its warm-process pool private, and its own load counts only running jobs — a
 * worker that reports free while its next process is still starting gets calls it cannot serve.
 *
 * The worker (agent/main.ts) uses the census three ways: it accepts a job only when a warm process
 * is free (else refuses at once, and livekit-server offers the job to another worker), it reports
 * load = share of its calls not servable now, and it writes its capacity to the database
 * (src/pacing/agent-capacity.ts) so the channel gate never lets more calls ring than agents can serve.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentObservation } from '../src/metrics';

/** Environment variable naming the census socket (set by the worker, inherited by its job processes). */
export const CENSUS_SOCKET_ENV = 'AGENT_CENSUS_SOCKET';
/** An accepted job whose process has not said `busy` within this long frees its reservation, in ms. */
const RESERVATION_MS = 15_000;

/** `done`: its call is over (the process only finishes its shutdown, and never takes another call). */
type ProcState = 'starting' | 'ready' | 'busy' | 'done';

export interface CensusCounts {
  /** Warm processes waiting for a call (reserved ones included). */
  ready: number;
  /** Processes running a call. */
  busy: number;
  /** Jobs accepted whose process has not started them yet. */
  reserved: number;
  /** Calls this worker could take now: min(maxCalls − busy, ready) − reserved, at least 0. */
  free: number;
  /** Jobs refused so far (no warm process free). */
  refused: number;
  /** Processes started that are not warm yet (loading their models). */
  starting: number;
}

/** The worker's side: counts its job processes. */
export class ProcessCensus {
  private readonly procs = new Map<Socket, ProcState>();
  private reservations: number[] = [];
  private refusedJobs = 0;
  private listeners: Array<() => void> = [];
  private observers: Array<(o: AgentObservation) => void> = [];

  private constructor(
    private readonly server: Server,
    readonly path: string,
    readonly maxCalls: number,
  ) {}

  /** Listens on a fresh socket and exports its path to the job processes started from now on. */
  static async start(maxCalls: number): Promise<ProcessCensus> {
    const path = join(tmpdir(), `call-campaigns-agent-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
    const server = createServer();
    const census = new ProcessCensus(server, path, maxCalls);
    server.on('connection', (socket) => census.track(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    server.unref();
    process.env[CENSUS_SOCKET_ENV] = path;
    process.once('exit', () => rmSync(path, { force: true }));
    return census;
  }

  private track(socket: Socket): void {
    this.procs.set(socket, 'starting');
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('metric ')) {
          this.observed(line.slice('metric '.length));
          continue;
        }
        if (line !== 'ready' && line !== 'busy' && line !== 'done') continue;
        if (line === 'busy' && this.procs.get(socket) !== 'busy') this.reservations.shift();
        this.procs.set(socket, line);
        this.changed();
      }
    });
    const gone = () => {
      if (this.procs.delete(socket)) this.changed();
    };
    socket.on('close', gone);
    socket.on('error', gone);
  }

  /** Called on every change (a process warm, busy or gone; a job accepted or refused). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Called with what a job process measured about its call (the worker's metrics). */
  onObservation(observer: (o: AgentObservation) => void): void {
    this.observers.push(observer);
  }

  private observed(json: string): void {
    let o: AgentObservation;
    try {
      o = JSON.parse(json) as AgentObservation;
    } catch {
      return; // advice only: a garbled line is dropped
    }
    if (typeof o?.seconds !== 'number' || (o.metric !== 'answer_to_first_audio' && o.metric !== 'outcome_ack')) return;
    for (const observer of this.observers) observer(o);
  }

  counts(): CensusCounts {
    const now = Date.now();
    this.reservations = this.reservations.filter((t) => now - t < RESERVATION_MS);
    let ready = 0;
    let busy = 0;
    let starting = 0;
    for (const state of this.procs.values()) {
      if (state === 'ready') ready += 1;
      else if (state === 'busy') busy += 1;
      else if (state === 'starting') starting += 1;
      // `done`: counted nowhere. Its call is over and its channel lease released, but the process may
      // take seconds to exit: counted as busy, it would be capacity the gate lends to the next call
      // while no warm process is free (dispatched at the dial, that call's job would be refused).
    }
    const reserved = this.reservations.length;
    const free = Math.max(0, Math.min(this.maxCalls - busy, ready) - reserved);
    return { ready, busy, reserved, free, refused: this.refusedJobs, starting };
  }

  /** Takes a warm process for a job being accepted; false (and counted as refused) when none is free. */
  tryReserve(): boolean {
    if (this.counts().free <= 0) {
      this.refusedJobs += 1;
      this.changed();
      return false;
    }
    this.reservations.push(Date.now());
    this.changed();
    return true;
  }

  /** Load as livekit-server weighs workers: 1 when no call can be taken now, else the share of calls in use. */
  load(): number {
    const c = this.counts();
    if (c.free <= 0) return 1;
    // A worker with a warm process free reports at most 0.5: livekit-server offered no jobs at all to
    // a worker reporting 0.9 (10 calls allowed, one warm process), so the share is halved — the
    // relative order between workers, which is what the server balances on, is kept.
    return (0.5 * (this.maxCalls - c.free)) / this.maxCalls;
  }

  close(): void {
    this.server.close();
    for (const socket of this.procs.keys()) socket.destroy();
    rmSync(this.path, { force: true });
  }
}

let parent: Socket | undefined;

/** A job process's side: tells the worker it is warm (`ready`) or running a call (`busy`). No-op outside a census. */
export function tellWorker(state: 'ready' | 'busy' | 'done'): void {
  send(`${state}\n`);
}

/**
 * A job process's side: hands what it measured about its call to the worker, which serves the
 * metrics (job processes come and go; one endpoint per worker). No-op outside a census.
 */
export function tellWorkerObservation(observation: AgentObservation): void {
  send(`metric ${JSON.stringify(observation)}\n`);
}

function send(line: string): void {
  const path = process.env[CENSUS_SOCKET_ENV];
  if (!path) return;
  if (!parent) {
    parent = createConnection(path);
    parent.on('error', () => undefined); // the census is advice: a call never fails for it
    parent.unref();
  }
  parent.write(line);
}
