/**
 * The codec server against direct HTTP requests: only an authenticated request from the Web UI's
 * origin, to the configured host, within the size limit, gets decoded payloads. Tokens are real
 * JWTs: RS256 ones verified through an identity provider's JWKS document (served over HTTP, as a
 * provider publishes it) and HS256 ones with a shared secret.
 */
import { spawn } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { defaultPayloadConverter } from '@temporalio/common';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptionCodec } from '../../src/codec';
import { startCodecServer, type CodecServer } from '../../src/codec-server';
import { loadCodecServerConfig } from '../../src/codec-server-main';
import { freePort } from '../../src/dev/temporal-dev-server';
import { createLogger } from '../../src/logger';

const KEY = EncryptionCodec.generateSetting('k1');
const UI = 'http://localhost:8080';
const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'temporal-ui';
const HS_SECRET = 'a-shared-secret-of-at-least-32-characters!';
const PATIENT = { patientName: 'Jordan Quill', phone: '+12125550142' };

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with full control of Host and Origin (fetch forbids setting Host). */
function send(server: CodecServer, options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, method: options.method ?? 'POST', path: options.path ?? '/decode', headers: { Host: `localhost:${server.port}`, ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    // The server may close an oversized upload early: the status already arrived.
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

let idp: Server;
let jwksUrl: string;
let signingKey: CryptoKey;
let otherKey: CryptoKey;
let sealedBody: string;
const logLines: string[] = [];
let jwksServer: CodecServer;
let hsServer: CodecServer;
let devServer: CodecServer;

const token = (claims: Record<string, unknown> = {}, options: { key?: CryptoKey; issuer?: string; audience?: string; expires?: string } = {}) =>
  new SignJWT({ sub: 'operator-1', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expires ?? '5m')
    .sign(options.key ?? signingKey);

const json = (auth?: string, extra: Record<string, string> = {}) => ({
  'Content-Type': 'application/json',
  Origin: UI,
  ...(auth ? { Authorization: `Bearer ${auth}` } : {}),
  ...extra,
});

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('RS256')).privateKey;
  // The provider's JWKS: the public half of its signing key.
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }] });
  idp = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(jwks));
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/.well-known/jwks.json`;

  const [sealed] = await EncryptionCodec.fromSetting(KEY).encode([defaultPayloadConverter.toPayload(PATIENT)]);
  sealedBody = JSON.stringify({
    payloads: [{ metadata: Object.fromEntries(Object.entries(sealed!.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])), data: Buffer.from(sealed!.data!).toString('base64') }],
  });

  const logger = createLogger('info', new Writable({ write: (chunk, _enc, done) => void (logLines.push(String(chunk)), done()) }));
  jwksServer = await startCodecServer({ encryptionKey: KEY, allowedOrigins: [UI], allowedNamespaces: ['default'], auth: { mode: 'jwks', jwksUrl, issuer: ISSUER, audience: AUDIENCE }, maxBodyBytes: 64 * 1024, logger });
  hsServer = await startCodecServer({ encryptionKey: KEY, allowedOrigins: [UI], auth: { mode: 'hs256', secret: HS_SECRET, requiredScope: 'codec:decode' }, logger });
  devServer = await startCodecServer({ encryptionKey: KEY, allowedOrigins: [UI], auth: { mode: 'local-development' }, logger });
});

afterAll(async () => {
  await Promise.all([jwksServer?.close(), hsServer?.close(), devServer?.close()]);
  await new Promise((r) => idp?.close(r));
});

const decodedPatient = (reply: Reply) => {
  const { payloads } = JSON.parse(reply.body) as { payloads: { metadata: Record<string, string>; data: string }[] };
  return JSON.parse(Buffer.from(payloads[0]!.data, 'base64').toString('utf8')) as unknown;
};

describe('codec server: who gets decoded payloads', () => {
  it('decodes for a valid token from the Web UI origin, with CORS for that origin only and no caching', async () => {
    const reply = await send(jwksServer, { headers: json(await token(), { 'X-Namespace': 'default' }), body: sealedBody });
    expect(reply.status).toBe(200);
    expect(decodedPatient(reply)).toEqual(PATIENT);
    expect(reply.headers['access-control-allow-origin']).toBe(UI);
    expect(reply.headers['cache-control']).toBe('no-store');
  });

  it('refuses a request without a token (401), as a plain curl would send it', async () => {
    const reply = await send(jwksServer, { headers: { 'Content-Type': 'application/json' }, body: sealedBody });
    expect(reply.status).toBe(401);
    expect(reply.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(reply.body).not.toContain('Jordan');
  });

  it('refuses tokens signed by another key, expired, for another audience or issuer (401)', async () => {
    for (const bad of [
      await token({}, { key: otherKey }),
      await token({}, { expires: '-5m' }),
      await token({}, { audience: 'someone-else' }),
      await token({}, { issuer: 'https://evil.example/' }),
      'not-a-jwt',
    ]) {
      const reply = await send(jwksServer, { headers: json(bad), body: sealedBody });
      expect(reply.status).toBe(401);
      expect(reply.body).not.toContain(bad);
    }
  });

  it('refuses a browser request from another origin (403) and sends it no CORS headers, preflight included', async () => {
    const other = { Origin: 'http://evil.example' };
    const post = await send(jwksServer, { headers: { ...json(await token()), ...other }, body: sealedBody });
    expect(post.status).toBe(403);
    expect(post.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await send(jwksServer, { method: 'OPTIONS', headers: { ...other, 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.status).toBe(403);
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers the Web UI preflight: POST with Authorization, Content-Type and X-Namespace, credentials allowed', async () => {
    const reply = await send(jwksServer, {
      method: 'OPTIONS',
      headers: { Origin: UI, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,x-namespace' },
    });
    expect(reply.status).toBe(204);
    expect(reply.headers['access-control-allow-origin']).toBe(UI);
    expect(reply.headers['access-control-allow-credentials']).toBe('true');
    expect(String(reply.headers['access-control-allow-headers']).toLowerCase()).toBe('authorization, content-type, x-namespace');
  });

  it('decodes only for its namespace: another X-Namespace gets 403 with a valid token; no header (the temporal CLI) passes', async () => {
    const other = await send(jwksServer, { headers: json(await token(), { 'X-Namespace': 'another-practice' }), body: sealedBody });
    expect(other.status).toBe(403);
    expect(other.body).toMatch(/namespace not served/);
    expect(other.body).not.toContain('Jordan');
    expect((await send(jwksServer, { headers: json(await token()), body: sealedBody })).status).toBe(200);
  });

  it('refuses another Host (DNS rebinding) with a valid token (403)', async () => {
    const reply = await send(jwksServer, { headers: { ...json(await token()), Host: `rebind.evil.example:${jwksServer.port}` }, body: sealedBody });
    expect(reply.status).toBe(403);
    expect(reply.body).not.toContain('Jordan');
  });

  it('refuses an oversized body (413), whether declared or streamed', async () => {
    const big = JSON.stringify({ payloads: [{ data: 'A'.repeat(100 * 1024) }] });
    // Without Content-Length the body is sent chunked: counted as it streams.
    const streamed = await send(jwksServer, { headers: json(await token()), body: big });
    expect(streamed.status).toBe(413);
    const declared = await send(jwksServer, { headers: json(await token(), { 'Content-Length': String(Buffer.byteLength(big)) }), body: big });
    expect(declared.status).toBe(413);
    // Within the limit it decodes.
    expect((await send(jwksServer, { headers: json(await token()), body: sealedBody })).status).toBe(200);
  });

  it('has no /encode (404), even with a valid token', async () => {
    const reply = await send(jwksServer, { path: '/encode', headers: json(await token()), body: JSON.stringify({ payloads: [] }) });
    expect(reply.status).toBe(404);
  });

  it('refuses malformed bodies (400) without quoting them', async () => {
    const reply = await send(jwksServer, { headers: json(await token()), body: '{"payloads": "Jordan Quill"}' });
    expect(reply.status).toBe(400);
    expect(reply.body).not.toContain('Jordan');
  });

  it('HS256 shared secret: decodes with the scope, 403 without it, 401 with another secret', async () => {
    const sign = (secret: string, scope?: string) =>
      new SignJWT(scope ? { scope } : {}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    const ok = await send(hsServer, { headers: json(await sign(HS_SECRET, 'openid codec:decode')), body: sealedBody });
    expect(ok.status).toBe(200);
    expect(decodedPatient(ok)).toEqual(PATIENT);
    expect((await send(hsServer, { headers: json(await sign(HS_SECRET, 'openid')), body: sealedBody })).status).toBe(403);
    expect((await send(hsServer, { headers: json(await sign('another-secret-of-at-least-32-characters')), body: sealedBody })).status).toBe(401);
  });

  it('local development: no token, but Host and Origin are still checked', async () => {
    expect((await send(devServer, { headers: { 'Content-Type': 'application/json', Origin: UI }, body: sealedBody })).status).toBe(200);
    expect((await send(devServer, { headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' }, body: sealedBody })).status).toBe(403);
    expect((await send(devServer, { headers: { 'Content-Type': 'application/json', Host: 'evil.example' }, body: sealedBody })).status).toBe(403);
    await expect(startCodecServer({ encryptionKey: KEY, allowedOrigins: [UI], auth: { mode: 'local-development' }, host: '0.0.0.0' })).rejects.toThrow(/loopback only/);
  });

  it('logs outcomes only: no token, no secret, no payload', async () => {
    const joined = logLines.join('');
    expect(joined).toContain('codec request');
    expect(joined).toContain('codec request refused');
    for (const leak of ['Jordan', '5550142', 'eyJ', HS_SECRET, KEY.split(':')[1]!]) expect(joined).not.toContain(leak);
  });
});

describe('codec server configuration (npm run codec-server)', () => {
  const base = { PAYLOAD_ENCRYPTION_KEY: KEY, CODEC_ALLOWED_ORIGINS: UI };

  it('refuses to start without authentication unless told it runs for local development', () => {
    expect(() => loadCodecServerConfig(base)).toThrow(/authentication: not configured; set CODEC_AUTH_JWKS_URL .* or CODEC_LOCAL_DEVELOPMENT=true/);
    expect(loadCodecServerConfig({ ...base, CODEC_LOCAL_DEVELOPMENT: 'true' }).auth).toEqual({ mode: 'local-development' });
    expect(() => loadCodecServerConfig({ ...base, CODEC_LOCAL_DEVELOPMENT: 'true', CODEC_SERVER_HOST: '0.0.0.0' })).toThrow(/CODEC_SERVER_HOST: .*loopback only/);
  });

  it('reads JWKS and shared-secret settings, with defaults (port 8081, 1 MiB), naming each bad variable without echoing secrets', () => {
    const jwks = loadCodecServerConfig({ ...base, CODEC_AUTH_JWKS_URL: 'https://idp.example.test/jwks', CODEC_AUTH_ISSUER: ISSUER, CODEC_AUTH_AUDIENCE: AUDIENCE });
    expect(jwks).toMatchObject({ port: 8081, host: '127.0.0.1', maxBodyBytes: 1024 * 1024, allowedOrigins: [UI], allowedNamespaces: ['default'], auth: { mode: 'jwks', issuer: ISSUER, audience: AUDIENCE } });
    expect(loadCodecServerConfig({ ...base, CODEC_AUTH_HS256_SECRET: HS_SECRET, TEMPORAL_NAMESPACE: 'clinic' }).allowedNamespaces).toEqual(['clinic']);
    expect(loadCodecServerConfig({ ...base, CODEC_AUTH_HS256_SECRET: HS_SECRET, CODEC_ALLOWED_NAMESPACES: 'a, b' }).allowedNamespaces).toEqual(['a', 'b']);
    expect(() => loadCodecServerConfig({ ...base, CODEC_AUTH_JWKS_URL: 'https://idp.example.test/jwks' })).toThrow(/CODEC_AUTH_ISSUER: required.*CODEC_AUTH_AUDIENCE: required/);
    const short = 'too-short-secret';
    let message = '';
    try {
      loadCodecServerConfig({ ...base, CODEC_AUTH_HS256_SECRET: short });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/CODEC_AUTH_HS256_SECRET: must be at least 32 characters/);
    expect(message).not.toContain(short);
    expect(() => loadCodecServerConfig({ PAYLOAD_ENCRYPTION_KEY: KEY, CODEC_AUTH_HS256_SECRET: HS_SECRET })).toThrow(/CODEC_ALLOWED_ORIGINS: required/);
    expect(() => loadCodecServerConfig({ ...base, CODEC_ALLOWED_ORIGINS: 'http://localhost:8080/path', CODEC_AUTH_HS256_SECRET: HS_SECRET })).toThrow(/CODEC_ALLOWED_ORIGINS: each must be an origin/);
  });
});

describe('npm run codec-server (the entry point, as a process)', () => {
  const TSX = createRequire(import.meta.url).resolve('tsx');
  const MAIN = join(import.meta.dirname, '../../src/codec-server-main.ts');
  /** Runs the entry point until it exits or `until` matches its output; returns what it printed. */
  const start = (env: Record<string, string>, until?: RegExp) =>
    new Promise<{ code: number | null; out: string; kill: () => void }>((resolve) => {
      const child = spawn(process.execPath, ['--import', TSX, MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const kill = () => child.kill('SIGTERM');
      const seen = (d: Buffer) => {
        out += d.toString();
        if (until?.test(out)) resolve({ code: null, out, kill });
      };
      child.stdout.on('data', seen);
      child.stderr.on('data', seen);
      child.on('exit', (code) => resolve({ code, out, kill }));
    });

  it('refuses to start without authentication: exit 2, one sentence naming the settings, no key echoed', async () => {
    const { code, out } = await start({ PAYLOAD_ENCRYPTION_KEY: KEY, CODEC_ALLOWED_ORIGINS: UI });
    expect(code).toBe(2);
    expect(out).toMatch(/^codec-server: invalid configuration: authentication: not configured; set CODEC_AUTH_JWKS_URL/);
    expect(out).not.toContain(KEY.split(':')[1]!);
    expect(out).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('starts with a shared secret and decodes for a valid token only', async () => {
    const port = String(await freePort());
    const server = await start({ PAYLOAD_ENCRYPTION_KEY: KEY, CODEC_ALLOWED_ORIGINS: UI, CODEC_AUTH_HS256_SECRET: HS_SECRET, CODEC_SERVER_PORT: port }, /codec server listening/);
    try {
      expect(server.code).toBeNull();
      expect(server.out).not.toContain(HS_SECRET);
      const target = { port: Number(port) } as CodecServer;
      const valid = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(HS_SECRET));
      expect((await send(target, { headers: json(valid), body: sealedBody })).status).toBe(200);
      expect((await send(target, { headers: json(), body: sealedBody })).status).toBe(401);
    } finally {
      server.kill();
    }
  });
});
