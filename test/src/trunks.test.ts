/** Trunk administration against a real livekit-server: credentials never shown, bad input named. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveKitStack, type LiveKitStack } from '../../src/dev/livekit-stack';
import { trunkCredentials, Trunks } from '../../src/trunks';
import { ValidationError } from '../../src/validation';

let stack: LiveKitStack;
let trunks: Trunks;
beforeAll(async () => {
  stack = await startLiveKitStack();
  trunks = new Trunks(stack);
});
afterAll(async () => {
  await stack?.stop();
});

describe('trunks', () => {
  it('create, list (masked: the password never appears), delete', async () => {
    const created = await trunks.create({ name: 'Carrier A', address: 'sip.carrier.test', numbers: ['+13125550100'], authUsername: 'clinic-user', authPassword: 's3cret-pass' });
    expect(created).toMatchObject({ name: 'Carrier A', address: 'sip.carrier.test', numbers: ['+13125550100'], authUsername: 'cl***', authPassword: 'set' });
    const listed = await trunks.list();
    expect(listed.map((t) => t.id)).toContain(created.id);
    expect(JSON.stringify(listed)).not.toMatch(/s3cret-pass|clinic-user/);
    await trunks.delete(created.id);
    expect((await trunks.list()).map((t) => t.id)).not.toContain(created.id);
  });

  it('names every bad field', async () => {
    const err = await trunks.create({ name: '', address: 'sip://x', numbers: ['555'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const fields = (err as ValidationError).problems.map((p) => p.field);
    expect(fields).toEqual(expect.arrayContaining(['name', 'address', 'numbers.0']));
  });

  it('credentials come from the environment or a file, never arguments', async () => {
    expect(await trunkCredentials({ SIP_TRUNK_AUTH_USERNAME: 'u', SIP_TRUNK_AUTH_PASSWORD: 'p' })).toEqual({ authUsername: 'u', authPassword: 'p' });
    const dir = mkdtempSync(join(tmpdir(), 'creds-'));
    try {
      const file = join(dir, 'creds.json');
      writeFileSync(file, JSON.stringify({ authUsername: 'fu', authPassword: 'fp' }), { mode: 0o600 });
      expect(await trunkCredentials({}, file)).toEqual({ authUsername: 'fu', authPassword: 'fp' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
