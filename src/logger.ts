/**
 * Logging with pino. Patient names and phone numbers never reach a log line: code logs ids only,
 * and two safety nets catch what slips through — redaction of keys that carry health data or
 * secrets, and {@link redact} of every string a line holds (message and fields: phone numbers,
 * dates and times, tokens, configured secrets, long values; errors by their safe message only).
 */
import { pino, type Logger, type LoggerOptions } from 'pino';
import { redact, safeMessage } from './errors';

/** Keys that carry health data or secrets anywhere they appear (top level or one level down). */
export const REDACTED_KEYS = [
  'phone',
  'patientName',
  'patientFirstName',
  'callerId',
  'password',
  'authPassword',
  'apiSecret',
  'secret',
  'token',
] as const;

/** A log argument with every string {@link redact}ed and every error reduced to its class and safe message. */
export function redactLogValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value);
  if (value instanceof Error) {
    // Frames name files and functions only: kept (bounded) for whoever debugs; the message is the safe one.
    const frames = (value.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line)).slice(0, 12).join('\n');
    return { type: value.name, message: safeMessage(value), ...(frames ? { stack: frames } : {}) };
  }
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 4) return '[object]';
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redactLogValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value).slice(0, 50)) out[k] = redactLogValue(v, depth + 1);
  return out;
}

/** Builds the process logger. `destination` is for tests that read what was logged. */
export function createLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'call-campaigns' },
    redact: { paths: REDACTED_KEYS.flatMap((k) => [k, `*.${k}`]), censor: '[redacted]' },
    hooks: {
      // Every argument of every call (the fields object, the message, format arguments).
      logMethod(args, method) {
        return method.apply(this, args.map((a) => redactLogValue(a)) as Parameters<typeof method>);
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

type TemporalLogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/**
 * The Temporal SDK's logger (`Runtime.install({ logger })`) writing into `logger`: the SDK's own
 * lines ("Activity failed" with the error, workflow `log` calls) get the same redaction as ours.
 */
export function temporalLogger(logger: Logger) {
  const log = (level: TemporalLogLevel, message: string, meta?: Record<string | symbol, unknown>) => {
    // String keys only: the SDK's timestamp is a symbol key.
    const fields = meta ? Object.fromEntries(Object.entries(meta)) : {};
    logger[PINO_LEVEL[level]]({ sdk: 'temporal', ...fields }, message);
  };
  return {
    log,
    trace: (message: string, meta?: Record<string | symbol, unknown>) => log('TRACE', message, meta),
    debug: (message: string, meta?: Record<string | symbol, unknown>) => log('DEBUG', message, meta),
    info: (message: string, meta?: Record<string | symbol, unknown>) => log('INFO', message, meta),
    warn: (message: string, meta?: Record<string | symbol, unknown>) => log('WARN', message, meta),
    error: (message: string, meta?: Record<string | symbol, unknown>) => log('ERROR', message, meta),
  };
}
