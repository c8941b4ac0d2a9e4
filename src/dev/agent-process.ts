/**
 * Starts the voice-agent worker (agent/main.ts) as its own process, as production runs it, against
 * a LiveKit server and Temporal; resolves once it has registered with LiveKit. Used by the demo and
 * the full-stack tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopProcess } from './livekit-stack';
import { freePort } from './temporal-dev-server';
import { resolveTool } from './tools';
import { serverStartDeadlineMs } from './deadlines';

export interface AgentProcess {
  child: ChildProcess;
  /** What the worker printed (last 20 kB). */
  output(): string;
  stop(): Promise<void>;
}

export interface AgentProcessOptions {
  livekit: { url: string; apiKey: string; apiSecret: string };
  temporalAddress: string;
  taskQueue: string;
  payloadEncryptionKey: string;
  agentName?: string;
  /** Extra environment (AGENT_ANSWER_TIMEOUT_SECONDS, STAFF_TRANSFER_NUMBER, …). */
  env?: Record<string, string>;
  /** Print the worker's output as it comes (the demo). */
  echo?: (line: string) => void;
  /**
   * Resolve once this many job processes are warm (AGENT_IDLE_PROCESSES, default 1): a call that
   * arrives earlier waits seconds for a process to start, and may miss the start of a greeting.
   */
  readyProcesses?: number;
}

const MAIN = fileURLToPath(new URL('../../agent/main.ts', import.meta.url));

export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentProcess> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    LIVEKIT_URL: options.livekit.url,
    LIVEKIT_API_KEY: options.livekit.apiKey,
    LIVEKIT_API_SECRET: options.livekit.apiSecret,
    TEMPORAL_ADDRESS: options.temporalAddress,
    TEMPORAL_TASK_QUEUE: options.taskQueue,
    PAYLOAD_ENCRYPTION_KEY: options.payloadEncryptionKey,
    AGENT_NAME: options.agentName ?? 'appointment-confirmer',
    AGENT_HTTP_PORT: String(await freePort()),
    ESPEAK_NG: resolveTool('espeakNg'),
    // At least info: readiness ("registered worker", "job process ready") is read from the log.
    LOG_LEVEL: ['debug', 'trace'].includes(process.env.AGENT_LOG_LEVEL ?? '') ? process.env.AGENT_LOG_LEVEL! : 'info',
    AGENT_IDLE_PROCESSES: String(options.readyProcesses ?? 1),
    // A job process that loads its model slowly on a busy machine is waited for, not restarted.
    AGENT_PROCESS_INIT_SECONDS: String(Math.round(serverStartDeadlineMs() / 1000)),
    ...options.env,
  };
  // Offline mode unless the caller asks for models.
  // A self-hosted model's endpoint settings go with it (left behind, they are a config error).
  for (const k of ['AGENT_STT', 'AGENT_LLM', 'AGENT_TTS']) {
    if (options.env?.[k]) continue;
    for (const v of [k, `${k}_BASE_URL`, `${k}_API_KEY`, ...(k === 'AGENT_TTS' ? ['AGENT_TTS_VOICE'] : [])]) delete env[v];
  }
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let pending = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
    if (!options.echo) return;
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) options.echo(line);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  process.once('exit', () => child.kill('SIGKILL'));
  const timeoutMs = serverStartDeadlineMs();
  const deadline = Date.now() + timeoutMs;
  let ready = 0;
  child.stdout.on('data', (d: Buffer) => (ready += d.toString().split('job process ready').length - 1));
  // Ready = registered, its warm processes up, and not marked full: a worker whose first process
  // warmed after its first load report (2.5 s) says `full` until the next one, and livekit-server
  // drops a dispatch that finds every worker full (the call watcher dispatches again; a test that
  // stops the watcher's worker would get no agent).
  const markedFull = () => out.lastIndexOf('marking as unavailable') > out.lastIndexOf('marking as available');
  while (!/registered worker/i.test(out) || ready < (options.readyProcesses ?? 1) || markedFull()) {
    if (child.exitCode !== null) throw new Error(`agent worker exited (${child.exitCode}): ${out.trim().slice(-3_000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`agent worker did not register with LiveKit (and warm ${options.readyProcesses ?? 1} job processes) within ${timeoutMs / 1000} s: ${out.trim().slice(-3_000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, output: () => out, stop: () => stopProcess(child, 8_000) };
}
