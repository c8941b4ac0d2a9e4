/**
 * `npm run worker`'s entry as a process of its own, configured from the environment like
 * production: for tests that kill workers (SIGKILL) or run several at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { createDataConverter } from '../../src/codec';
import type { LiveKitStack } from '../../src/dev/livekit-stack';
import { TEST_ENCRYPTION_KEY } from './workflow-harness';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Starts a worker process with `env` over this process's environment; resolves once it polls. `logFile` keeps its output. */
export async function startWorkerProcess(env: Record<string, string>, options: { logFile?: string } = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker started')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    if (options.logFile) {
      const file = options.logFile;
      child.stdout!.on('data', (d: Buffer) => appendFileSync(file, d));
      child.stderr!.on('data', (d: Buffer) => appendFileSync(file, d));
    }
    child.once('exit', (code) => reject(new Error(`worker exited (${code}): ${out.slice(-2_000)}`)));
  });
  return child;
}

/** The servers a test's worker processes use. */
export interface WorkerServers {
  temporalAddress: string;
  taskQueue: string;
  stack: Pick<LiveKitStack, 'url' | 'apiKey' | 'apiSecret'>;
  trunkId: string;
  databaseUrl: string;
}

/**
 * A worker's environment for a test's servers (the test payload key; calls on every day of the
 * week, so a test runs whatever the day), with `extra` on top.
 */
export function workerEnv(s: WorkerServers, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: s.temporalAddress,
    TEMPORAL_TASK_QUEUE: s.taskQueue,
    PAYLOAD_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    LIVEKIT_URL: s.stack.url,
    LIVEKIT_API_KEY: s.stack.apiKey,
    LIVEKIT_API_SECRET: s.stack.apiSecret,
    LIVEKIT_SIP_TRUNK_ID: s.trunkId,
    DATABASE_URL: s.databaseUrl,
    CALLING_DAYS: '1,2,3,4,5,6,7',
    ...extra,
  };
}

/** A Temporal client of `address` with the test payload key. */
export async function connectTestClient(address: string): Promise<Client> {
  return new Client({ connection: await Connection.connect({ address }), dataConverter: createDataConverter(TEST_ENCRYPTION_KEY) });
}
