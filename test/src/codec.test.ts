import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { EncryptionCodec } from '../../src/codec';
import { PUBLIC_TEXT_MARK, PUBLIC_TEXT_MAX_LENGTH, publicText } from '../../src/contracts';

const { temporal } = proto;

describe('EncryptionCodec', () => {
  it('round-trips payloads and hides their content', async () => {
    const codec = EncryptionCodec.fromSetting(EncryptionCodec.generateSetting('k1'));
    const payload = defaultPayloadConverter.toPayload({ patientName: 'Jordan Sample', phone: '+12125550123' });
    const [sealed] = await codec.encode([payload]);
    expect(Buffer.from(sealed!.data!).toString('latin1')).not.toContain('Jordan');
    const [opened] = await codec.decode([sealed!]);
    expect(defaultPayloadConverter.fromPayload(opened!)).toEqual({ patientName: 'Jordan Sample', phone: '+12125550123' });
  });

  it('decrypts with an older key after rotation, and refuses unknown keys', async () => {
    const old = EncryptionCodec.generateSetting('old');
    const fresh = EncryptionCodec.generateSetting('new');
    const [sealed] = await EncryptionCodec.fromSetting(old).encode([defaultPayloadConverter.toPayload('x')]);
    const rotated = EncryptionCodec.fromSetting(`${fresh},${old}`);
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([sealed!]))[0]!)).toBe('x');
    await expect(EncryptionCodec.fromSetting(fresh).decode([sealed!])).rejects.toThrow(/unknown encryption key id "old"/);
  });

  it('rejects keys of the wrong size', () => {
    expect(() => EncryptionCodec.fromSetting('k:AAEC')).toThrow(/must be 32 bytes/);
  });

  it('leaves only text marked public in clear: summaries and the current-details query result', async () => {
    const codec = EncryptionCodec.fromSetting(EncryptionCodec.generateSetting('k1'));
    const encoding = async (value: unknown) => Buffer.from((await codec.encode([defaultPayloadConverter.toPayload(value)]))[0]!.metadata!.encoding!).toString();
    // Readable without the codec (the Web UI without the codec server).
    expect(await encoding(publicText('Confirm appointment A-1 for Bright Smiles Dental'))).toBe('json/plain');
    expect(await encoding({ definition: { type: 'confirmAppointmentWorkflow', queryDefinitions: [] }, currentDetails: publicText('calling: attempt 1 of 3') })).toBe('json/plain');
    expect(await encoding({ definition: { type: 'confirmAppointmentWorkflow' }, currentDetails: '' })).toBe('json/plain');
    // Everything else is sealed: unmarked text, a marked value inside other data, extra fields, over-long text.
    expect(await encoding('Confirm appointment A-1')).toBe('binary/encrypted');
    expect(await encoding({ patientName: `${PUBLIC_TEXT_MARK}Jordan Sample`, phone: '+12125550123' })).toBe('binary/encrypted');
    expect(await encoding([publicText('a')])).toBe('binary/encrypted');
    expect(await encoding({ definition: {}, currentDetails: publicText('x'), patientName: 'Jordan Sample' })).toBe('binary/encrypted');
    expect(await encoding({ definition: {}, currentDetails: 'unmarked' })).toBe('binary/encrypted');
    expect(await encoding(`${PUBLIC_TEXT_MARK}${'x'.repeat(PUBLIC_TEXT_MAX_LENGTH)}`)).toBe('binary/encrypted');
    expect(publicText('y'.repeat(1000))).toHaveLength(PUBLIC_TEXT_MAX_LENGTH);
  });
});

// ------------------------------------------------------------------------------------------------
// The wire format other languages implement (README, "Starting confirmations from other languages").

const root = fileURLToPath(new URL('../..', import.meta.url));
const vector = JSON.parse(readFileSync(`${root}schemas/codec-test-vector.json`, 'utf8')) as {
  key: string;
  keyId: string;
  setting: string;
  payload: { metadata: Record<string, string>; data: string };
  payloadProtobuf: string;
  nonce: string;
  encoded: { metadata: Record<string, string>; data: string };
};
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('payload codec wire format', () => {
  it('opens the published test vector, and the layout is nonce ‖ AES-256-GCM ciphertext ‖ 16-byte tag of the serialized Payload', async () => {
    const sealed = {
      metadata: Object.fromEntries(Object.entries(vector.encoded.metadata).map(([k, v]) => [k, utf8(v)])),
      data: Buffer.from(vector.encoded.data, 'hex'),
    };
    const [opened] = await EncryptionCodec.fromSetting(vector.setting).decode([sealed]);
    expect(Buffer.from(temporal.api.common.v1.Payload.encode(opened!).finish()).toString('hex')).toBe(vector.payloadProtobuf);
    expect(defaultPayloadConverter.fromPayload(opened!)).toEqual(JSON.parse(vector.payload.data));
    // Sealing the same Payload with the vector's nonce by the documented recipe gives the same bytes.
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(vector.key, 'base64'), Buffer.from(vector.nonce, 'hex'));
    const plain = Buffer.from(vector.payloadProtobuf, 'hex');
    expect(Buffer.concat([Buffer.from(vector.nonce, 'hex'), cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString('hex')).toBe(vector.encoded.data);
    // What the codec itself writes has the same metadata and layout (with a fresh nonce).
    const [fresh] = await EncryptionCodec.fromSetting(vector.setting).encode([opened!]);
    expect(Object.fromEntries(Object.entries(fresh!.metadata!).map(([k, v]) => [k, new TextDecoder().decode(v)]))).toEqual(vector.encoded.metadata);
    expect(fresh!.data!.length).toBe(12 + plain.length + 16);
  });

  it('the README documents the wire format with the test vector', () => {
    const readme = readFileSync(`${root}README.md`, 'utf8');
    for (const needle of ['binary/encrypted', 'encryption-key-id', vector.encoded.data, vector.payloadProtobuf, 'schemas/confirmation-request.schema.json']) {
      expect(readme).toContain(needle);
    }
  });

  const python = spawnSync('python3', ['-c', 'import cryptography.hazmat.primitives.ciphers.aead'], { encoding: 'utf8' });
  const pythonReady = python.status === 0;
  it.skipIf(!pythonReady)('interoperates with the Temporal Python SDK sample codec (AES-GCM, key id in metadata), both ways', async () => {
    const script = `${root}test/interop/python_codec.py`;
    const runPython = (request: object) => {
      const out = spawnSync('python3', [script], { input: JSON.stringify(request), encoding: 'utf8' });
      expect(out.status, out.stderr).toBe(0);
      return JSON.parse(out.stdout) as { metadata: Record<string, string>; data?: string; value?: unknown };
    };
    const request = { appointmentId: 'A-1042', patientName: 'Jordan Sample', phone: '+12125550123' };
    const codec = EncryptionCodec.fromSetting(vector.setting);

    // Python seals, the project's codec opens.
    const fromPython = runPython({ op: 'encode', key: vector.key, keyId: vector.keyId, value: request });
    const [opened] = await codec.decode([
      {
        metadata: Object.fromEntries(Object.entries(fromPython.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
        data: Buffer.from(fromPython.data!, 'base64'),
      },
    ]);
    expect(defaultPayloadConverter.fromPayload(opened!)).toEqual(request);

    // The project's codec seals, Python opens.
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload(request)]);
    const fromNode = runPython({
      op: 'decode',
      key: vector.key,
      keyId: vector.keyId,
      metadata: Object.fromEntries(Object.entries(sealed!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      data: Buffer.from(sealed!.data!).toString('base64'),
    });
    expect(fromNode.value).toEqual(request);
    expect(Buffer.from(fromNode.metadata.encoding!, 'base64').toString()).toBe('json/plain');
  });
});
