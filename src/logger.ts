/**
 * Logging with pino. Patient names and phone numbers never reach a log line: code logs ids only,
 * and these redaction paths are the safety net for objects that slip through.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

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

/** Builds the process logger. `destination` is for tests that read what was logged. */
export function createLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'call-campaigns' },
    redact: { paths: REDACTED_KEYS.flatMap((k) => [k, `*.${k}`]), censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
