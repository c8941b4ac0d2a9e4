/**
 * Codec server for the Temporal Web UI (`--ui-codec-endpoint`): the browser posts encrypted payloads
 * to /decode and gets them back readable, so operators can read a confirmation's history. It holds
 * the payload key; bind it to loopback or put it behind the same auth as the UI.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { EncryptionCodec } from './codec';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const toWire = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: p.data === undefined ? undefined : Buffer.from(p.data, 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: p.data ? Buffer.from(p.data).toString('base64') : undefined,
});

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the codec server; `allowedOrigin` is the Web UI's origin (CORS). */
export async function startCodecServer(options: { encryptionKey: string; allowedOrigin: string; port?: number; host?: string }): Promise<{ url: string; server: Server }> {
  const codec = EncryptionCodec.fromSetting(options.encryptionKey);
  const server = createServer((req, res) => {
    res.setHeader('Access-Control-Allow-Origin', options.allowedOrigin);
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const op = req.url?.endsWith('/decode') ? 'decode' : req.url?.endsWith('/encode') ? 'encode' : undefined;
    if (req.method !== 'POST' || !op) return void res.writeHead(404).end();
    body(req)
      .then(async (text) => {
        const { payloads } = JSON.parse(text) as { payloads: JsonPayload[] };
        const out = await codec[op](payloads.map(toWire));
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ payloads: out.map(toJson) }));
      })
      .catch(() => res.writeHead(400).end('bad payloads'));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://${host}:${port}`, server };
}
