/**
 * Codec server for the Temporal Web UI (`codec.endpoint` / `--ui-codec-endpoint`): the browser posts
 * encrypted payloads to `/decode` and gets them back readable, so an operator with decryption rights
 * can read a confirmation's history. It holds the payload key, so every request must pass, in order:
 *   1. Host: only the configured host names (DNS rebinding: a page on another name that resolves to
 *      this server is refused);
 *   2. Origin: a browser request only from the configured Web UI origin(s) — others get 403 and no
 *      CORS headers; requests without Origin (the `temporal` CLI's `--codec-endpoint`) pass on to 3;
 *   3. authentication: `Authorization: Bearer <JWT>` (the operator's access token, which the Web UI
 *      forwards with `codec.passAccessToken`), verified against an issuer's JWKS or an HS256 shared
 *      secret, with an optional required scope; only a server started explicitly for local
 *      development skips this;
 *   4. namespace: a request naming (`X-Namespace`) a namespace other than the configured ones gets 403;
 *   5. size: bodies above the limit get 413 before they are read.
 * There is no `/encode`: the Web UI needs only `/decode` to display, and an open `/encode` would let
 * anyone who reaches it seal data under the project's key (forged inputs the worker would trust).
 * Logs name the outcome and counts only: never a token, a key or a payload.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { z } from 'zod';
import { EncryptionCodec } from './codec';

/** How requests are authenticated. */
export type CodecAuth =
  /** Tokens signed by an identity provider: keys from its JWKS URL; `iss` and `aud` must match. */
  | { mode: 'jwks'; jwksUrl: string; issuer: string; audience: string; requiredScope?: string }
  /** Tokens signed with a shared HS256 secret (small installs); `iss` / `aud` checked when set. */
  | { mode: 'hs256'; secret: string; issuer?: string; audience?: string; requiredScope?: string }
  /** No authentication: local development only (the server then binds to loopback only). */
  | { mode: 'local-development' };

/** Settings of {@link startCodecServer}. */
export interface CodecServerOptions {
  /** `PAYLOAD_ENCRYPTION_KEY` setting. */
  encryptionKey: string;
  /** Web UI origins allowed to call from a browser, exactly (`http://localhost:8080`). */
  allowedOrigins: string[];
  /** `Host` header values accepted (`name` or `name:port`). Default: localhost, 127.0.0.1 and [::1] on the port. */
  allowedHosts?: string[];
  /**
   * Temporal namespaces whose payloads this key decodes: a request naming another one (the Web UI
   * sends `X-Namespace`) gets 403. A request without the header (the `temporal` CLI) passes. Default: any.
   */
  allowedNamespaces?: string[];
  auth: CodecAuth;
  /** Largest request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Port to listen on; 0 (default) for a free one. */
  port?: number;
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /**
   * Serve HTTPS with this certificate and key (PEM). The Web UI sends the operator's token only to
   * an https:// codec endpoint: terminate TLS here, or in a proxy in front of it.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  logger?: Logger;
}

/** A running codec server. */
export interface CodecServer {
  /** `http(s)://<host>:<port>` — the codec endpoint to give the Web UI. */
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

const payloadsSchema = z.object({
  payloads: z
    .array(z.object({ metadata: z.record(z.string(), z.string()).optional(), data: z.string().optional() }))
    .max(10_000),
});
type JsonPayload = z.infer<typeof payloadsSchema>['payloads'][number];

const toWire = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: p.data === undefined ? undefined : Buffer.from(p.data, 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: p.data ? Buffer.from(p.data).toString('base64') : undefined,
});

/** A refused request: its status and a short reason (never a value from the request). */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason);
  }
}

/** Reads the body, refusing it (413) as soon as it passes `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) throw new Refusal(413, `request body larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new Refusal(413, `request body larger than ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The scopes a token grants: `scope` (space-separated, OAuth 2) or `scp` / `permissions` / `roles` arrays. */
function scopesOf(claims: JWTPayload): Set<string> {
  const out = new Set<string>();
  for (const key of ['scope', 'scp', 'permissions', 'roles']) {
    const v = claims[key];
    if (typeof v === 'string') for (const s of v.split(/\s+/)) if (s) out.add(s);
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string') out.add(s);
  }
  return out;
}

/** Verifies a bearer token per `auth`; throws a {@link Refusal} (401 / 403) saying what is wrong, never quoting the token. */
function authenticator(auth: CodecAuth): (header: string | undefined) => Promise<void> {
  if (auth.mode === 'local-development') return async () => undefined;
  const key: JWTVerifyGetKey | Uint8Array =
    auth.mode === 'jwks' ? createRemoteJWKSet(new URL(auth.jwksUrl)) : new TextEncoder().encode(auth.secret);
  const options = {
    issuer: auth.issuer,
    audience: auth.audience,
    algorithms: auth.mode === 'hs256' ? ['HS256'] : undefined,
    clockTolerance: 30,
  };
  const challenge = { 'WWW-Authenticate': 'Bearer realm="codec"' };
  return async (header) => {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (!token) throw new Refusal(401, 'missing bearer token (Authorization header)', challenge);
    let claims: JWTPayload;
    try {
      // jose compares HMAC signatures in constant time and checks exp / nbf / iss / aud.
      claims = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERR_JWT_INVALID';
      throw new Refusal(401, `token refused (${code})`, challenge);
    }
    if (auth.requiredScope && !scopesOf(claims).has(auth.requiredScope)) {
      throw new Refusal(403, `token lacks the required scope`);
    }
  };
}

/** Starts the codec server. */
export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  const codec = EncryptionCodec.fromSetting(options.encryptionKey);
  const bindHost = options.host ?? '127.0.0.1';
  if (options.auth.mode === 'local-development' && !LOOPBACK.has(bindHost)) {
    throw new Error('codec server: without authentication (local development) it binds to loopback only (127.0.0.1, ::1 or localhost)');
  }
  const origins = new Set(options.allowedOrigins.map((o) => o.replace(/\/+$/, '').toLowerCase()));
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const authenticate = authenticator(options.auth);
  let hosts = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase()));
  const namespaces = options.allowedNamespaces && options.allowedNamespaces.length > 0 ? new Set(options.allowedNamespaces) : undefined;
  const log = options.logger;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<{ payloads?: number }> => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!hosts.has(host)) throw new Refusal(403, 'Host header not allowed');
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!origins.has(origin.toLowerCase())) throw new Refusal(403, 'Origin not allowed');
      // CORS only for the allowed origin, on every answer (errors too, so the UI can show them).
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'OPTIONS') {
      if (path !== '/decode') throw new Refusal(404, 'not found (this codec server only decodes)');
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type, X-Namespace',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return {};
    }
    if (path !== '/decode') throw new Refusal(404, 'not found (this codec server only decodes)');
    if (req.method !== 'POST') throw new Refusal(405, 'only POST', { Allow: 'POST, OPTIONS' });
    await authenticate(req.headers.authorization);
    const namespace = req.headers['x-namespace'];
    if (namespaces && namespace !== undefined && !namespaces.has(String(namespace))) throw new Refusal(403, 'namespace not served by this codec server (X-Namespace)');
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new Refusal(415, 'Content-Type must be application/json');
    const text = (await readBody(req, maxBody)).toString('utf8');
    let parsed: z.infer<typeof payloadsSchema>;
    try {
      parsed = payloadsSchema.parse(JSON.parse(text));
    } catch {
      throw new Refusal(400, 'body must be JSON {"payloads": [{"metadata": {...}, "data": "<base64>"}]}');
    }
    let out: Payload[];
    try {
      out = await codec.decode(parsed.payloads.map(toWire));
    } catch {
      throw new Refusal(422, 'a payload could not be decrypted (unknown key id or damaged data)');
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ payloads: out.map(toJson) }));
    return { payloads: out.length };
  };

  const listener: RequestListener = (req, res) => {
    const started = Date.now();
    handle(req, res).then(
      ({ payloads }) => log?.info({ method: req.method, status: res.statusCode, payloads, ms: Date.now() - started }, 'codec request'),
      (err: unknown) => {
        const refusal = err instanceof Refusal ? err : new Refusal(500, 'internal error');
        if (!(err instanceof Refusal)) log?.error({ errName: (err as Error)?.name }, 'codec server error');
        log?.warn({ method: req.method, status: refusal.status, reason: refusal.reason }, 'codec request refused');
        if (res.headersSent) return void res.destroy();
        res.writeHead(refusal.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'close', ...refusal.headers });
        res.end(`${refusal.reason}\n`);
        // An oversized body is not read to its end: drop the connection once the answer is sent.
        if (refusal.status === 413) res.once('finish', () => req.destroy());
      },
    );
  };
  const server: Server = options.tls ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, listener) : createServer(listener);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, bindHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  if (hosts.size === 0) hosts = new Set(['localhost', '127.0.0.1', '[::1]'].map((h) => `${h}:${port}`));
  const urlHost = bindHost.includes(':') ? `[${bindHost}]` : bindHost === '0.0.0.0' ? '127.0.0.1' : bindHost;
  return {
    url: `${options.tls ? 'https' : 'http'}://${urlHost}:${port}`,
    port,
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
