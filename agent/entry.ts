/**
 * The agent's job entry point, imported by every job process of the agent worker (agent/main.ts):
 * loads the voice-activity model once per process, then runs one call per job.
 */
import { defineAgent, log as agentLog, type JobContext, type JobProcess, type VAD } from '@livekit/agents';
import * as silero from '@livekit/agents-plugin-silero';
import { Client, Connection } from '@temporalio/client';
import { createDataConverter } from '../src/codec';
import { runCall } from './call';
import { loadAgentConfig } from './config';
import { temporalReporter } from './reporter';

export default defineAgent({
  prewarm: async (proc: JobProcess) => {
    proc.userData.vad = await silero.VAD.load();
    // Tells whoever starts the worker that a warm process waits for a call (the demo, tests).
    agentLog().info({ pid: proc.pid }, 'job process ready');
  },
  entry: async (ctx: JobContext) => {
    const config = loadAgentConfig();
    const logger = agentLog();
    // Ids only in logs: names, numbers and appointments stay out.
    const log = (msg: string, fields?: Record<string, unknown>) => logger.info(fields ?? {}, msg);
    const connection = await Connection.connect({ address: config.temporal.address });
    // Shutdown callbacks run together: the connection closes only after the call's answer is kept.
    const pending: Array<() => Promise<unknown> | undefined> = [];
    ctx.addShutdownCallback(async () => {
      await Promise.allSettled(pending.map((work) => work()));
      await connection.close();
    });
    const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: createDataConverter(config.payloadEncryptionKey) });
    await runCall(ctx, {
      config,
      vad: ctx.proc.userData.vad as VAD,
      log,
      reporter: (meta) => temporalReporter({ client, workflowId: meta.workflowId, taskQueue: config.temporal.taskQueue, log }),
      keepUntilDone: (work) => pending.push(work),
    });
  },
});
