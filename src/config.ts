/**
 * Worker configuration from the environment, validated once at start: a bad or missing setting
 * stops the worker with a message naming every offending variable (never echoing a secret).
 */
import { z } from 'zod';
import { EncryptionCodec } from './codec';
import { TASK_QUEUE, type CallLimits } from './contracts';
import { DEFAULT_TRUNK_LIMITS } from './pacing/limits';
import { DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_WORKER_HEAP_MB, MIN_WORKER_HEAP_MB } from './worker-defaults';
import type { CallingRules } from './ports';
import { DEFAULT_CALLING_RULES, parseCallingRules } from './rules/calling-window';

/** Everything the worker needs. */
export interface WorkerConfig {
  temporal: { address: string; namespace: string; taskQueue: string };
  /** `PAYLOAD_ENCRYPTION_KEY`: payloads (health data) are sealed with it. */
  payloadEncryptionKey: string;
  /** `agentDispatch`: when the agent joins a call (LIVEKIT_AGENT_DISPATCH; see LiveKitTelephonyConfig). */
  livekit: { url: string; apiKey: string; apiSecret: string; sipTrunkId: string; agentName: string; agentDispatch: 'answer' | 'dial' };
  database: { url?: string; dataDir: string };
  rules: CallingRules;
  /** Limits inserted for the worker's trunk when the database has none (the stored row wins afterwards). */
  trunkLimits: CallLimits;
  logLevel: string;
  /** `WORKER_MAX_CACHED_WORKFLOWS`: workflows kept in the worker's cache. */
  maxCachedWorkflows: number;
  /** `WORKER_HEAP_MB`: V8 heap limit of each of the worker's threads (read by `npm run worker`, which passes it to node). */
  heapMb: number;
  /** Where the worker serves Prometheus metrics; unset: no endpoint. */
  metrics: MetricsConfig;
}

/**
 * Prometheus endpoints: `METRICS_PORT` (the business metrics, prom-client) and, on the worker,
 * `TEMPORAL_METRICS_PORT` (the Temporal SDK's own exporter). Each is off when unset. Both listen
 * on `METRICS_HOST` (default 127.0.0.1; 0.0.0.0 in a container scraped from outside).
 */
export interface MetricsConfig {
  host: string;
  port?: number;
  temporalPort?: number;
}

/** An optional TCP port setting: unset or empty is off. */
const PORT_PROBLEM = 'must be a port number (1-65535)';
export const optionalPortSchema = z.preprocess(
  (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
  z.coerce.number({ error: PORT_PROBLEM }).int(PORT_PROBLEM).min(1, PORT_PROBLEM).max(65535, PORT_PROBLEM).optional(),
);

/** `METRICS_HOST`: an address to listen on (a host name or an IP address), default 127.0.0.1. */
export const metricsHostSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9.:-]+$/, 'must be an address to listen on, e.g. 127.0.0.1 or 0.0.0.0')
  .default('127.0.0.1');

/** A configuration error listing every bad setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    // One line: every problem, each naming its variable.
    super(`invalid configuration: ${problems.join('; ')}.`);
  }
}

/** `DATABASE_URL`: a postgres:// URL, or unset / empty for the embedded database (worker and CLI alike). */
export const databaseUrlSchema = z
  .string()
  .trim()
  .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
  .optional()
  .or(z.literal('').transform(() => undefined));

const nonEmpty = (what: string) => z.string({ error: `required (${what})` }).trim().min(1, `required (${what})`);

/**
 * A `PAYLOAD_ENCRYPTION_KEY` setting: required, and a valid key list. The worker, the agent and the
 * CLI check it the same way at start (a bad key found later fails every payload). Never echoed.
 */
export function payloadKeySchema(what: string) {
  return nonEmpty(what).refine(
    (setting) => {
      try {
        EncryptionCodec.fromSetting(setting);
        return true;
      } catch {
        return false;
      }
    },
    'must be base64 of 32 bytes, or id:base64[,id:base64] with 32-byte keys',
  );
}

const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().trim().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().trim().min(1).default(TASK_QUEUE),
  PAYLOAD_ENCRYPTION_KEY: payloadKeySchema('payload encryption key: base64 of 32 bytes, or id:base64[,id:base64]'),
  LIVEKIT_URL: nonEmpty('LiveKit server URL, e.g. wss://example.livekit.cloud').pipe(
    z.url({ protocol: /^(wss?|https?)$/, error: 'must be a ws://, wss://, http:// or https:// URL' }),
  ),
  LIVEKIT_API_KEY: nonEmpty('LiveKit API key'),
  LIVEKIT_API_SECRET: nonEmpty('LiveKit API secret'),
  LIVEKIT_SIP_TRUNK_ID: nonEmpty('id of the outbound SIP trunk, e.g. ST_xxxx'),
  AGENT_NAME: z.string().trim().min(1).default('appointment-confirmer'),
  LIVEKIT_AGENT_DISPATCH: z.enum(['answer', 'dial'], { error: 'must be answer or dial' }).default('dial'),
  DATABASE_URL: databaseUrlSchema,
  PGLITE_DATA_DIR: z.string().trim().min(1).default('.data/pglite'),
  CALLING_DAYS: z.string().optional(),
  CALLING_START: z.string().optional(),
  CALLING_END: z.string().optional(),
  MAX_CALLS_PER_DAY: z.string().optional(),
  MAX_CALLS_PER_WEEK: z.string().optional(),
  CALLING_RULE_SET: z.string().optional(),
  CALLING_RULE_SET_VERSION: z.string().optional(),
  TRUNK_MAX_CHANNELS: z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(1, 'must be at least 1').default(DEFAULT_TRUNK_LIMITS.channels),
  TRUNK_MAX_CALLS_PER_SECOND: z.coerce.number({ error: 'must be a number' }).gt(0, 'must be above 0').default(DEFAULT_TRUNK_LIMITS.callsPerSecond),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(2, 'must be at least 2').default(DEFAULT_MAX_CACHED_WORKFLOWS),
  WORKER_HEAP_MB: z.coerce
    .number({ error: 'must be a whole number of MB' })
    .int('must be a whole number of MB')
    .min(MIN_WORKER_HEAP_MB, `must be at least ${MIN_WORKER_HEAP_MB}`)
    .default(DEFAULT_WORKER_HEAP_MB),
  METRICS_HOST: metricsHostSchema,
  METRICS_PORT: optionalPortSchema,
  TEMPORAL_METRICS_PORT: optionalPortSchema,
});

/** Calling-rule fields and the variables they come from, so errors name the variable. */
const RULE_VARS: Record<string, string> = {
  days: 'CALLING_DAYS',
  start: 'CALLING_START',
  end: 'CALLING_END',
  maxCallsPerDay: 'MAX_CALLS_PER_DAY',
  maxCallsPerWeek: 'MAX_CALLS_PER_WEEK',
  ruleSet: 'CALLING_RULE_SET',
  ruleSetVersion: 'CALLING_RULE_SET_VERSION',
};

/** Reads and validates the worker configuration; throws {@link ConfigError} naming every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env): WorkerConfig {
  const problems: string[] = [];
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
  }
  let rules: CallingRules = DEFAULT_CALLING_RULES;
  try {
    rules = callingRulesFromEnv(env);
  } catch (err) {
    problems.push(...String((err as Error).message).split('\n').filter(Boolean));
  }
  if (parsed.success && parsed.data.METRICS_PORT !== undefined && parsed.data.METRICS_PORT === parsed.data.TEMPORAL_METRICS_PORT) {
    problems.push('TEMPORAL_METRICS_PORT: must differ from METRICS_PORT (two endpoints, one port each)');
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const e = parsed.data;
  return {
    temporal: { address: e.TEMPORAL_ADDRESS, namespace: e.TEMPORAL_NAMESPACE, taskQueue: e.TEMPORAL_TASK_QUEUE },
    payloadEncryptionKey: e.PAYLOAD_ENCRYPTION_KEY,
    livekit: {
      url: e.LIVEKIT_URL,
      apiKey: e.LIVEKIT_API_KEY,
      apiSecret: e.LIVEKIT_API_SECRET,
      sipTrunkId: e.LIVEKIT_SIP_TRUNK_ID,
      agentName: e.AGENT_NAME,
      agentDispatch: e.LIVEKIT_AGENT_DISPATCH,
    },
    database: { url: e.DATABASE_URL, dataDir: e.PGLITE_DATA_DIR },
    rules,
    trunkLimits: { channels: e.TRUNK_MAX_CHANNELS, callsPerSecond: e.TRUNK_MAX_CALLS_PER_SECOND },
    logLevel: e.LOG_LEVEL,
    maxCachedWorkflows: e.WORKER_MAX_CACHED_WORKFLOWS,
    heapMb: e.WORKER_HEAP_MB,
    metrics: { host: e.METRICS_HOST, port: e.METRICS_PORT, temporalPort: e.TEMPORAL_METRICS_PORT },
  };
}

/** Calling rules from `CALLING_*` / `MAX_CALLS_*` variables over the defaults. Errors name the variable. */
export function callingRulesFromEnv(env: Record<string, string | undefined>): CallingRules {
  const raw: Record<string, unknown> = { ...DEFAULT_CALLING_RULES };
  if (env.CALLING_DAYS !== undefined) raw.days = env.CALLING_DAYS.split(',').map((d) => Number(d.trim()));
  if (env.CALLING_START !== undefined) raw.start = env.CALLING_START.trim();
  if (env.CALLING_END !== undefined) raw.end = env.CALLING_END.trim();
  if (env.MAX_CALLS_PER_DAY !== undefined) raw.maxCallsPerDay = Number(env.MAX_CALLS_PER_DAY);
  if (env.MAX_CALLS_PER_WEEK !== undefined) raw.maxCallsPerWeek = Number(env.MAX_CALLS_PER_WEEK);
  if (env.CALLING_RULE_SET !== undefined) raw.ruleSet = env.CALLING_RULE_SET;
  if (env.CALLING_RULE_SET_VERSION !== undefined) raw.ruleSetVersion = env.CALLING_RULE_SET_VERSION;
  try {
    return parseCallingRules(raw);
  } catch (err) {
    // Messages start with the field name; name the variable instead.
    const lines = String((err as Error).message)
      .split('\n')
      .map((line) => line.replace(/^\s*-?\s*/, ''))
      .filter(Boolean)
      .map((line) => {
        const field = Object.keys(RULE_VARS).find((f) => line.startsWith(`${f}:`) || line.startsWith(`${f}.`) || line.startsWith(`${f}[`));
        return field ? `${RULE_VARS[field]}${line.slice(field.length).replace(/^[.[][^:]*/, '')}` : line;
      });
    throw new Error(lines.join('\n'), { cause: err });
  }
}
