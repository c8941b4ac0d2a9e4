/**
 * `npm run codec-server`: the codec server for the Temporal Web UI (see src/codec-server.ts),
 * configured from the environment like the worker. It refuses to start without authentication
 * unless `CODEC_LOCAL_DEVELOPMENT=true` says it runs for local development (then loopback only).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, payloadKeySchema } from './config';
import { DEFAULT_MAX_BODY_BYTES, startCodecServer, type CodecAuth, type CodecServerOptions } from './codec-server';
import { errorCode, exitWithError, UserError } from './errors';
import { createLogger } from './logger';

/** The codec server's settings, read from the environment. */
export interface CodecServerConfig extends Omit<CodecServerOptions, 'logger'> {
  port: number;
  host: string;
  logLevel: string;
}

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const optional = z.string().trim().optional().transform((v) => (v ? v : undefined));
const originSchema = z.string().regex(/^https?:\/\/[^/\s]+$/, 'each must be an origin: scheme://host[:port], no path');

const envSchema = z.object({
  PAYLOAD_ENCRYPTION_KEY: payloadKeySchema('payload encryption key: base64 of 32 bytes, or id:base64[,id:base64]'),
  CODEC_SERVER_PORT: z.coerce.number({ error: 'must be a port number' }).int('must be a port number').min(0, 'must be a port number').max(65535, 'must be a port number').default(8081),
  CODEC_SERVER_HOST: z.string().trim().min(1).default('127.0.0.1'),
  CODEC_ALLOWED_ORIGINS: z
    .string({ error: 'required: the Web UI origin(s), comma-separated, e.g. http://localhost:8080' })
    .transform(list)
    .pipe(z.array(originSchema).min(1, 'required: the Web UI origin(s), comma-separated, e.g. http://localhost:8080')),
  CODEC_ALLOWED_HOSTS: optional.transform((v) => (v ? list(v) : undefined)),
  // The namespace the worker writes to, unless told otherwise: the key decodes that one's payloads.
  CODEC_ALLOWED_NAMESPACES: optional.transform((v) => (v ? list(v) : undefined)),
  TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
  CODEC_AUTH_JWKS_URL: optional.pipe(z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of the identity provider\'s JWKS' }).optional()),
  CODEC_AUTH_ISSUER: optional,
  CODEC_AUTH_AUDIENCE: optional,
  CODEC_AUTH_HS256_SECRET: optional.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  CODEC_AUTH_REQUIRED_SCOPE: optional,
  CODEC_LOCAL_DEVELOPMENT: z.enum(['true', 'false', ''], { error: 'must be true or false' }).optional(),
  CODEC_TLS_CERT_FILE: optional,
  CODEC_TLS_KEY_FILE: optional,
  CODEC_MAX_BODY_BYTES: z.coerce.number({ error: 'must be a whole number of bytes' }).int('must be a whole number of bytes').min(1024, 'must be at least 1024').default(DEFAULT_MAX_BODY_BYTES),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Reads and validates the codec server's settings; throws a {@link ConfigError} naming every problem. */
export function loadCodecServerConfig(env: Record<string, string | undefined> = process.env): CodecServerConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`));
  const e = parsed.data;
  const problems: string[] = [];
  const scope = e.CODEC_AUTH_REQUIRED_SCOPE;
  let auth: CodecAuth | undefined;
  if (e.CODEC_AUTH_JWKS_URL && e.CODEC_AUTH_HS256_SECRET) problems.push('CODEC_AUTH_JWKS_URL and CODEC_AUTH_HS256_SECRET: set one, not both');
  else if (e.CODEC_AUTH_JWKS_URL) {
    if (!e.CODEC_AUTH_ISSUER) problems.push('CODEC_AUTH_ISSUER: required with CODEC_AUTH_JWKS_URL (the identity provider\'s issuer, the tokens\' iss)');
    if (!e.CODEC_AUTH_AUDIENCE) problems.push('CODEC_AUTH_AUDIENCE: required with CODEC_AUTH_JWKS_URL (the tokens\' aud, e.g. the Web UI\'s client id)');
    auth = { mode: 'jwks', jwksUrl: e.CODEC_AUTH_JWKS_URL, issuer: e.CODEC_AUTH_ISSUER ?? '', audience: e.CODEC_AUTH_AUDIENCE ?? '', requiredScope: scope };
  } else if (e.CODEC_AUTH_HS256_SECRET) {
    auth = { mode: 'hs256', secret: e.CODEC_AUTH_HS256_SECRET, issuer: e.CODEC_AUTH_ISSUER, audience: e.CODEC_AUTH_AUDIENCE, requiredScope: scope };
  }
  if (e.CODEC_LOCAL_DEVELOPMENT === 'true') {
    if (auth) problems.push('CODEC_LOCAL_DEVELOPMENT: true turns authentication off; unset it or the CODEC_AUTH_* settings');
    else if (!['127.0.0.1', '::1', 'localhost'].includes(e.CODEC_SERVER_HOST)) {
      problems.push('CODEC_SERVER_HOST: without authentication (CODEC_LOCAL_DEVELOPMENT=true) the codec server binds to loopback only (127.0.0.1, ::1 or localhost)');
    }
    auth = { mode: 'local-development' };
  }
  if (!auth) {
    problems.push(
      'authentication: not configured; set CODEC_AUTH_JWKS_URL with CODEC_AUTH_ISSUER and CODEC_AUTH_AUDIENCE (tokens of your identity provider), or CODEC_AUTH_HS256_SECRET (a shared secret), or CODEC_LOCAL_DEVELOPMENT=true for a loopback-only development server',
    );
  }
  let tls: CodecServerConfig['tls'];
  if (Boolean(e.CODEC_TLS_CERT_FILE) !== Boolean(e.CODEC_TLS_KEY_FILE)) problems.push('CODEC_TLS_CERT_FILE and CODEC_TLS_KEY_FILE: set both (PEM files) or neither');
  else if (e.CODEC_TLS_CERT_FILE && e.CODEC_TLS_KEY_FILE) {
    try {
      tls = { cert: readFileSync(e.CODEC_TLS_CERT_FILE), key: readFileSync(e.CODEC_TLS_KEY_FILE) };
    } catch (err) {
      problems.push(`CODEC_TLS_CERT_FILE / CODEC_TLS_KEY_FILE: cannot read the files (${errorCode(err)})`);
    }
  }
  if (problems.length > 0 || !auth) throw new ConfigError(problems);
  return {
    encryptionKey: e.PAYLOAD_ENCRYPTION_KEY,
    port: e.CODEC_SERVER_PORT,
    host: e.CODEC_SERVER_HOST,
    allowedOrigins: e.CODEC_ALLOWED_ORIGINS,
    allowedHosts: e.CODEC_ALLOWED_HOSTS,
    allowedNamespaces: e.CODEC_ALLOWED_NAMESPACES ?? [e.TEMPORAL_NAMESPACE],
    auth,
    maxBodyBytes: e.CODEC_MAX_BODY_BYTES,
    ...(tls ? { tls } : {}),
    logLevel: e.LOG_LEVEL,
  };
}

async function main(): Promise<void> {
  const config = loadCodecServerConfig();
  const logger = createLogger(config.logLevel);
  const server = await startCodecServer({ ...config, logger }).catch((err: unknown) => {
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new UserError(`CODEC_SERVER_PORT / CODEC_SERVER_HOST: cannot listen on ${config.host}:${config.port} (${code}); pick a free port or an address of this machine.`, 3, { cause: err });
    }
    throw err;
  });
  logger.info(
    { url: server.url, tls: Boolean(config.tls), auth: config.auth.mode, allowedOrigins: config.allowedOrigins, allowedHosts: config.allowedHosts ?? 'localhost, 127.0.0.1 and [::1] on the port', maxBodyBytes: config.maxBodyBytes },
    'codec server listening',
  );
  if (config.auth.mode === 'local-development') logger.warn('codec server: no authentication (CODEC_LOCAL_DEVELOPMENT=true): any local process can decrypt');
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

// Run only as the entry point (the config loader is imported by tests).
if (process.argv[1] && /codec-server-main\.[cm]?[tj]s$/.test(process.argv[1])) {
  main().catch((err: unknown) => exitWithError('codec-server', err, { secrets: [process.env.CODEC_AUTH_HS256_SECRET ?? ''] }));
}
