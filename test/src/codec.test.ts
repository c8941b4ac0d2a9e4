import { defaultPayloadConverter } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { EncryptionCodec } from '../../src/codec';

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
});
