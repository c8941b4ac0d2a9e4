/**
 * The codec server through the real Temporal Web UI (the dev server's UI 2.42, driven by Debian's
 * headless Chromium): a confirmation started through the client API (input encrypted), its history
 * page opened by an operator whose access token the UI forwards (`passAccessToken`) → the input is
 * shown decoded; by an operator without a token → the codec refuses (401) and the UI shows the
 * workflow's summary (public, left in clear) but not the patient's data.
 *
 * What is real and what is supplied: the dev server's UI has no login, so it has no operator token.
 * `passAccessToken` is switched on through the UI's own codec settings (localStorage
 * `overrideRemoteCodecConfiguration`, as an operator would in its "Codec Server" dialog); the UI then
 * sends its preflight and `Authorization: Bearer <token>` itself — with "undefined" as the token —
 * and the test puts a real token in that header through Chromium's request interception, as a UI
 * logged in through OIDC would send it. (Setting the UI's `AuthUser` store or its `user0` login
 * cookie did not work: UI 2.42 with auth disabled resets the store at load.) The UI sends tokens
 * only to an https:// endpoint, so the codec server serves TLS here with a self-signed certificate
 * made by openssl (Chromium is told to accept it).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { DateTime } from 'luxon';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmationClient } from '../../src/client';
import { connectTestClient } from '../helpers/worker-process';
import { startCodecServer, type CodecServer } from '../../src/codec-server';
import { freePort, startTemporalDevServer, type DevServer } from '../../src/dev/temporal-dev-server';
import { resolveTool } from '../../src/dev/tools';
import { createLogger } from '../../src/logger';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

const run = promisify(execFile);
const SECRET = 'codec-ui-test-shared-secret-0123456789abcdef';
const PATIENT_NAME = 'Morgan Quillfeather';

let temporal: DevServer;
let codec: CodecServer;
let browser: Browser;
let work: string;
let workflowId: string;
let runId: string;
let appointmentId: string;
const codecLog: { status?: number; msg?: string }[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'codec-ui-'));
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(work, 'key.pem'), '-out', join(work, 'cert.pem'),
  ]);
  const uiPort = await freePort();
  const logger = createLogger('info', new Writable({ write: (chunk, _enc, done) => void (codecLog.push(JSON.parse(String(chunk)) as { status?: number }), done()) }));
  codec = await startCodecServer({
    encryptionKey: TEST_ENCRYPTION_KEY,
    allowedOrigins: [`http://127.0.0.1:${uiPort}`],
    auth: { mode: 'hs256', secret: SECRET },
    tls: { cert: readFileSync(join(work, 'cert.pem')), key: readFileSync(join(work, 'key.pem')) },
    logger,
  });
  temporal = await startTemporalDevServer({ headless: false, uiPort, extraArgs: ['--ui-codec-endpoint', codec.url] });
  const client = await connectTestClient(temporal.address);
  // No worker: the started workflow's history already holds the encrypted input and the summary.
  const api = new ConfirmationClient({ client, taskQueue: 'codec-ui-no-worker' });
  appointmentId = `ui-${Date.now().toString(36)}`;
  const zone = 'America/Chicago';
  ({ workflowId, runId } = await api.startConfirmation({
    appointmentId,
    patientId: 'pat-ui',
    patientName: PATIENT_NAME,
    phone: '+12125550177',
    patientTimeZone: zone,
    appointmentStart: DateTime.now().setZone(zone).plus({ days: 3 }).set({ hour: 10, minute: 0, second: 0, millisecond: 0 }).toISO()!,
    practiceId: 'bright-smiles',
    practiceName: 'Bright Smiles Dental',
    practiceCallbackNumber: '+13125550100',
    provider: 'Dr. Rivera',
    reason: 'cleaning',
  }));
  await client.connection.close();

  let executablePath: string;
  try {
    executablePath = resolveTool('chromium');
  } catch (err) {
    throw new Error(`${(err as Error).message} (Debian package chromium: apt-get install chromium)`, { cause: err });
  }
  browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--ignore-certificate-errors', '--disable-gpu', '--disable-dev-shm-usage'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await codec?.close();
  await temporal?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Opens the workflow's history page as an operator whose browser holds `storage`; returns the page text once `ready` shows. */
async function openHistory(storage: Record<string, string>, ready: string, settleMs: number, token?: string): Promise<string> {
  const context = await browser.createBrowserContext();
  try {
    const page = await context.newPage();
    const pageText = () => page.evaluate('document.body.innerText') as Promise<string>;
    if (token) {
      // The UI (passAccessToken) sends `Authorization: Bearer <its operator's token>` to the codec;
      // with no login in the dev server's UI that token is "undefined", so put a real one in its place.
      await page.setRequestInterception(true);
      page.on('request', (r) => {
        const forward = r.method() === 'POST' && r.url() === `${codec.url}/decode`;
        if (forward) expect(r.headers().authorization).toMatch(/^Bearer /);
        void r.continue(forward ? { headers: { ...r.headers(), authorization: `Bearer ${token}` } } : undefined);
      });
    }
    // localStorage belongs to the UI's origin: set it there, then open the history page.
    await page.goto(`${temporal.uiUrl}/`, { waitUntil: 'domcontentloaded' });
    // Browser-side code as text: the project's TypeScript has no DOM types.
    await page.evaluate(`for (const [k, v] of Object.entries(${JSON.stringify(storage)})) localStorage.setItem(k, v)`);
    await page.goto(`${temporal.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/history`, { waitUntil: 'domcontentloaded', timeout: 90_000 });
    try {
      await page.waitForFunction(`document.body.innerText.includes(${JSON.stringify(ready)})`, { timeout: 60_000, polling: 250 });
    } catch (err) {
      // What the page did show, to see why (fictional data only).
      await page.screenshot({ path: join(tmpdir(), 'codec-web-ui-failure.png'), fullPage: true });
      const shown = (await pageText()).slice(0, 3000);
      throw new Error(`the history page never showed the expected text; codec answers ${JSON.stringify(codecLog.map((l) => [l.status, (l as { reason?: string }).reason]))}; page: ${shown}`, { cause: err });
    }
    await new Promise((r) => setTimeout(r, settleMs));
    return await pageText();
  } finally {
    await context.close();
  }
}

const codecSettings = (endpoint: string) => ({
  endpoint: JSON.stringify(endpoint),
  overrideRemoteCodecConfiguration: 'true',
  passAccessToken: 'true',
});

describe('the Web UI and the codec server', () => {
  it('shows the decoded input to an operator whose token the UI forwards; without a token the codec refuses and only the public summary shows', async () => {
    const token = await new SignJWT({ sub: 'operator-1' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));

    const withToken = await openHistory(codecSettings(codec.url), PATIENT_NAME, 0, token);
    expect(withToken).toContain(PATIENT_NAME);
    const decoded = codecLog.filter((l) => l.msg === 'codec request' && l.status === 200).length;
    expect(decoded).toBeGreaterThan(0);

    const before = codecLog.length;
    // Ready when the summary shows (readable without the codec); then give the codec calls time.
    const withoutToken = await openHistory(codecSettings(codec.url), `Confirm appointment ${appointmentId}`, 5_000);
    expect(withoutToken).toContain(`Confirm appointment ${appointmentId} for Bright Smiles Dental`);
    expect(withoutToken).not.toContain(PATIENT_NAME);
    // The input is shown as it is stored: metadata encoding "binary/encrypted" (base64) and ciphertext.
    expect(withoutToken).toContain(Buffer.from('binary/encrypted').toString('base64'));
    const refused = codecLog.slice(before).filter((l) => l.status === 401);
    expect(refused.length).toBeGreaterThan(0);
    expect(codecLog.slice(before).filter((l) => l.status === 200)).toHaveLength(0);
  }, 240_000);
});
