/**
 * The agent's job entry point, imported by every job process of the agent worker (agent/main.ts):
 * loads the voice-activity model once per process, then runs one call per job.
 */
import { defineAgent, log as agentLog, type JobContext, type JobProcess, type VAD } from '@livekit/agents';
import * as silero from '@livekit/agents-plugin-silero';
import { Client, Connection } from '@temporalio/client';
import { createDataConverter } from '../src/codec';
import { runCall } from './call';
import { tellWorker, tellWorkerObservation } from './capacity';
import { loadAgentConfig } from './config';
import { offlineModels } from './models';
import { temporalReporter } from './reporter';

export default defineAgent({
  prewarm: async (proc: JobProcess) => {
    proc.userData.vad = await silero.VAD.load();
    // Connected before the call: the answer's path to the patient carries no connection set-up.
    const config = loadAgentConfig();
    // The offline recognizer's language model is built now, not on the patient's first answer.
    try {
      void offlineModels(config)?.stt.languageModelFiles;
    } catch (err) {
      // Reported again at the first answer it would have decoded (the keypad still works).
      agentLog().warn({ error: (err as Error).message }, 'offline language model not built');
    }
    const connecting = Connection.connect({ address: config.temporal.address });
    connecting.catch(() => undefined); // tried again at the call
    proc.userData.temporal = connecting;
    // Tells the worker (its capacity census) and whoever starts it (the demo, tests) that a warm process waits for a call.
    tellWorker('ready');
    agentLog().info({ pid: proc.pid }, 'job process ready');
  },
  entry: async (ctx: JobContext) => {
    tellWorker('busy');
    const config = loadAgentConfig();
    const logger = agentLog();
    // Ids only in logs: names, numbers and appointments stay out.
    const log = (msg: string, fields?: Record<string, unknown>) => logger.info(fields ?? {}, msg);
    const warm = ctx.proc.userData.temporal as Promise<Connection> | undefined;
    const connection = await (warm ?? Promise.reject(new Error('not warm'))).catch(() => Connection.connect({ address: config.temporal.address }));
    // Shutdown callbacks run together: the connection closes only after the call's answer is kept.
    const pending: Array<() => Promise<unknown> | undefined> = [];
    ctx.addShutdownCallback(async () => {
      await Promise.allSettled(pending.map((work) => work()));
      await connection.close();
    });
    const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: createDataConverter(config.payloadEncryptionKey) });
    // The call is over when runCall returns (its answer may still be settling): the worker stops
    // counting this process as capacity now, not when it exits.
    await runCall(ctx, {
      config,
      vad: ctx.proc.userData.vad as VAD,
      log,
      reporter: (meta) =>
        temporalReporter({
          client,
          workflowId: meta.workflowId,
          taskQueue: config.temporal.taskQueue,
          log,
          // The worker serves the metrics: job processes come and go.
          onSettled: (outcome, result, seconds) => tellWorkerObservation({ metric: 'outcome_ack', outcome, result, seconds }),
        }),
      onFirstAudio: (seconds) => tellWorkerObservation({ metric: 'answer_to_first_audio', seconds }),
      keepUntilDone: (work) => pending.push(work),
    }).finally(() => tellWorker('done'));
  },
});
