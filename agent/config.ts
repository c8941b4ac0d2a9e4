/**
 * The agent worker's configuration, from the environment. Errors name the variable and never echo
 * a secret. With no cloud model settings the agent runs offline: spoken answers (PocketSphinx and an
 * intent matcher) and the keypad, espeak-ng speech and Silero voice-activity detection.
 */
import { z } from 'zod';
import { TASK_QUEUE } from '../src/contracts';
import { ConfigError, metricsHostSchema, optionalPortSchema, payloadKeySchema } from '../src/config';
import { parseModelSpec, type ModelSpec } from './models';

export interface AgentConfig {
  livekit: { url: string; apiKey: string; apiSecret: string };
  agentName: string;
  temporal: { address: string; namespace: string; taskQueue: string };
  payloadEncryptionKey: string;
  /**
   * `offline`: PocketSphinx + intent matcher + keypad, espeak-ng, Silero; `cloud`: the STT/LLM/TTS below, each a LiveKit Inference
   * model string or an OpenAI-compatible endpoint (self-hosted; see agent/models.ts).
   */
  mode: 'offline' | 'cloud';
  models?: { stt: ModelSpec; llm: ModelSpec; tts: ModelSpec };
  /**
   * E.164 number "0 / a person" transfers to (cold SIP transfer, REFER); with {@link warmTransfer}
   * it is the fallback when the front desk does not take the call. Unset (and no warm transfer): the
   * agent offers a call back.
   */
  transferNumber?: string;
  /**
   * Warm transfer (`STAFF_WARM_TRANSFER_NUMBER`): the agent puts the patient on hold, dials the front
   * desk into a consultation room, tells staff who is calling and why, and connects the patient once
   * staff press 1. Staff who do not answer, press 2, or decide nothing: the cold transfer to
   * {@link transferNumber} if set, else a call back (RESCHEDULE_REQUESTED with a note).
   */
  warmTransfer?: WarmTransferConfig;
  /** Idle job processes kept warm (each loads the VAD model). */
  idleProcesses: number;
  /** espeak-ng binary for offline speech. */
  espeakBin: string;
  /**
   * Offline mode only: spoken answers through PocketSphinx and the intent matcher (agent/offline-stt.ts,
   * agent/intent-llm.ts) besides the keypad; unset (`AGENT_OFFLINE_SPEECH=off`): the keypad alone.
   */
  offlineSpeech?: { bin: string; modelDir: string };
  /**
   * Seconds of quiet after each prompt before the agent asks again: counted while nobody speaks and
   * no words of the patient's are still being recognized (agent/quiet.ts). Default 8.
   */
  answerTimeoutSeconds: number;
  /**
   * Calls one worker takes at once. It takes a call only when a warm job process is free for it
   * (never queues one behind a process still starting), and reports its load as the share of these
   * calls it cannot take now (not the machine's CPU, which it may share).
   */
  maxCalls: number;
  /**
   * Seconds a new job process may take to start (load the voice-activity model) before the library
   * gives up on it and starts another. The library's 10 s is not enough on a busy host. Default 60.
   */
  processInitSeconds: number;
  /**
   * Where the worker reports its capacity (the confirmation workers' database: DATABASE_URL, or the
   * embedded PGLITE_DATA_DIR); unset: it reports nowhere, and dials are bounded by the trunk alone.
   */
  database?: { url?: string; dataDir?: string };
  /** `METRICS_HOST` / `METRICS_PORT`: where the worker serves its Prometheus metrics; no port: no endpoint. */
  metrics: { host: string; port?: number };
}

/** Settings of the warm transfer to the front desk (see {@link AgentConfig.warmTransfer}). */
export interface WarmTransferConfig {
  /** E.164 number of the front desk's phone. */
  staffNumber: string;
  /** LiveKit outbound SIP trunk the front desk is dialed through (an id; its credentials stay in LiveKit). */
  sipTrunkId: string;
  /** How long the front desk's phone rings before the fallback, in seconds (`STAFF_RING_SECONDS`, default 20). */
  ringSeconds: number;
  /** How long staff have to press 1 or 2 after they answer, in seconds (`STAFF_DECIDE_SECONDS`, default 30). */
  decideSeconds: number;
}

const nonEmpty = (what: string) => z.string({ error: `required (${what})` }).trim().min(1, `required (${what})`);

const schema = z.object({
  LIVEKIT_URL: nonEmpty('LiveKit server URL').pipe(z.url({ protocol: /^(wss?|https?)$/, error: 'must be a ws://, wss://, http:// or https:// URL' })),
  LIVEKIT_API_KEY: nonEmpty('LiveKit API key'),
  LIVEKIT_API_SECRET: nonEmpty('LiveKit API secret'),
  AGENT_NAME: z.string().trim().min(1).default('appointment-confirmer'),
  TEMPORAL_ADDRESS: z.string().trim().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().trim().min(1).default(TASK_QUEUE),
  PAYLOAD_ENCRYPTION_KEY: payloadKeySchema("payload encryption key, the same as the worker's"),
  AGENT_STT: z.string().trim().optional(),
  AGENT_LLM: z.string().trim().optional(),
  AGENT_TTS: z.string().trim().optional(),
  STAFF_TRANSFER_NUMBER: z.string().trim().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number like +13125550100').optional(),
  STAFF_WARM_TRANSFER_NUMBER: z.string().trim().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number like +13125550100').optional(),
  LIVEKIT_SIP_TRUNK_ID: z.string().trim().min(1).optional(),
  STAFF_RING_SECONDS: z.coerce.number().int('must be a whole number of seconds').min(5, 'must be at least 5 seconds').max(120, 'must be at most 120 seconds').default(20),
  STAFF_DECIDE_SECONDS: z.coerce.number().int('must be a whole number of seconds').min(5, 'must be at least 5 seconds').max(300, 'must be at most 300 seconds').default(30),
  AGENT_IDLE_PROCESSES: z.coerce.number().int('must be a whole number').min(0).max(16).default(1),
  ESPEAK_NG: z.string().trim().min(1).default('espeak-ng'),
  AGENT_OFFLINE_SPEECH: z.enum(['on', 'off'], { error: 'must be on or off' }).default('on'),
  POCKETSPHINX: z.string().trim().min(1).default('pocketsphinx_continuous'),
  POCKETSPHINX_MODEL_DIR: z.string().trim().min(1).default('/usr/share/pocketsphinx/model/en-us'),
  AGENT_ANSWER_TIMEOUT_SECONDS: z.coerce.number().positive('must be a positive number of seconds').default(8),
  AGENT_MAX_CALLS: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').default(10),
  DATABASE_URL: z.string().trim().min(1).optional(),
  PGLITE_DATA_DIR: z.string().trim().min(1).optional(),
  AGENT_PROCESS_INIT_SECONDS: z.coerce.number().positive('must be a positive number of seconds').max(600, 'must be at most 600 seconds').default(60),
  METRICS_HOST: metricsHostSchema,
  METRICS_PORT: optionalPortSchema,
});

/** Reads the agent's configuration; throws a {@link ConfigError} naming every bad variable. */
export function loadAgentConfig(env: Record<string, string | undefined> = process.env): AgentConfig {
  const parsed = schema.safeParse(env);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`);
  const stt = parseModelSpec('STT', env);
  const llm = parseModelSpec('LLM', env);
  const tts = parseModelSpec('TTS', env);
  problems.push(...stt.problems, ...llm.problems, ...tts.problems);
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  // Each of the three may be a LiveKit Inference string or a self-hosted endpoint, in any mix; but
  // the offline parts (keypad, espeak-ng) do not combine with a language model, so it is all or none.
  const models = [e.AGENT_STT, e.AGENT_LLM, e.AGENT_TTS];
  if (models.some(Boolean) && !models.every(Boolean)) {
    throw new ConfigError(['AGENT_STT, AGENT_LLM, AGENT_TTS: set all three for cloud mode, or none for offline mode']);
  }
  if (e.STAFF_WARM_TRANSFER_NUMBER && !e.LIVEKIT_SIP_TRUNK_ID) {
    throw new ConfigError(['LIVEKIT_SIP_TRUNK_ID: required with STAFF_WARM_TRANSFER_NUMBER (the outbound SIP trunk the front desk is dialed through; the id the worker uses)']);
  }
  return {
    livekit: { url: e.LIVEKIT_URL, apiKey: e.LIVEKIT_API_KEY, apiSecret: e.LIVEKIT_API_SECRET },
    agentName: e.AGENT_NAME,
    temporal: { address: e.TEMPORAL_ADDRESS, namespace: e.TEMPORAL_NAMESPACE, taskQueue: e.TEMPORAL_TASK_QUEUE },
    payloadEncryptionKey: e.PAYLOAD_ENCRYPTION_KEY,
    mode: e.AGENT_LLM ? 'cloud' : 'offline',
    models: e.AGENT_LLM ? { stt: stt.spec!, llm: llm.spec!, tts: tts.spec! } : undefined,
    transferNumber: e.STAFF_TRANSFER_NUMBER,
    warmTransfer: e.STAFF_WARM_TRANSFER_NUMBER
      ? { staffNumber: e.STAFF_WARM_TRANSFER_NUMBER, sipTrunkId: e.LIVEKIT_SIP_TRUNK_ID!, ringSeconds: e.STAFF_RING_SECONDS, decideSeconds: e.STAFF_DECIDE_SECONDS }
      : undefined,
    idleProcesses: e.AGENT_IDLE_PROCESSES,
    espeakBin: e.ESPEAK_NG,
    offlineSpeech: !e.AGENT_LLM && e.AGENT_OFFLINE_SPEECH === 'on' ? { bin: e.POCKETSPHINX, modelDir: e.POCKETSPHINX_MODEL_DIR } : undefined,
    answerTimeoutSeconds: e.AGENT_ANSWER_TIMEOUT_SECONDS,
    maxCalls: e.AGENT_MAX_CALLS,
    processInitSeconds: e.AGENT_PROCESS_INIT_SECONDS,
    database: e.DATABASE_URL ? { url: e.DATABASE_URL } : e.PGLITE_DATA_DIR ? { dataDir: e.PGLITE_DATA_DIR } : undefined,
    metrics: { host: e.METRICS_HOST, port: e.METRICS_PORT },
  };
}
