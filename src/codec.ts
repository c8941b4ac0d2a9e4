/**
 * Payload encryption: appointment requests carry health data (patient name, phone, appointment), so
 * every payload Temporal stores — inputs, results, Update arguments, failure messages — is sealed
 * with AES-256-GCM before it leaves the process. Workflow ids and search attributes are plaintext by
 * design, which is why none of them carries a name or a number.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
// @temporalio/proto is CommonJS: a default import works under both Node ESM and bundlers.
import proto from '@temporalio/proto';
import { FAILURE_CONVERTER_PATH } from './bundle';
import { PUBLIC_TEXT_MARK, PUBLIC_TEXT_MAX_LENGTH } from './contracts';

const { temporal } = proto;

const ENCODING = 'binary/encrypted';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

const MARK_BYTES = Buffer.from(PUBLIC_TEXT_MARK, 'utf8');
const CURRENT_DETAILS_BYTES = Buffer.from('"currentDetails"', 'utf8');
const isPublicString = (v: unknown): boolean =>
  typeof v === 'string' && v.startsWith(PUBLIC_TEXT_MARK) && v.length <= PUBLIC_TEXT_MAX_LENGTH;

/**
 * True for a payload operators may read without the codec: a `json/plain` string the project marked
 * with {@link PUBLIC_TEXT_MARK} (workflow summaries and details), or the SDK's workflow-metadata
 * query result (handler names and the current-details line) whose current details are marked or
 * empty. Everything else — inputs, results, Update arguments, failures — is encrypted.
 */
export function isPublicPayload(payload: Payload): boolean {
  const encoding = payload.metadata?.encoding;
  if (!encoding || fromUtf8.decode(encoding) !== 'json/plain' || !payload.data) return false;
  const data = Buffer.from(payload.data);
  // Cheap test first: most payloads contain neither the mark nor the metadata query's field.
  if (data.length > 64 * 1024 || (data.indexOf(MARK_BYTES) < 0 && data.indexOf(CURRENT_DETAILS_BYTES) < 0)) return false;
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8.decode(data));
  } catch {
    return false;
  }
  if (isPublicString(value)) return true;
  // `__temporal_workflow_metadata`: exactly { definition, currentDetails } (see @temporalio/workflow).
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value).sort().join(',');
  const details = (value as { currentDetails?: unknown }).currentDetails;
  return keys === 'currentDetails,definition' && (details === '' || isPublicString(details));
}

/** AES-256-GCM codec with key ids, so keys can be rotated (old payloads keep decrypting). */
export class EncryptionCodec implements PayloadCodec {
  /**
   * @param keys key id → 32-byte key; every id that may appear in stored payloads.
   * @param currentKeyId the key new payloads are sealed with.
   */
  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly currentKeyId: string,
  ) {
    for (const [id, key] of keys) {
      if (key.length !== 32) throw new Error(`payload encryption key "${id}": must be 32 bytes (got ${key.length})`);
    }
    if (!keys.has(currentKeyId)) throw new Error(`payload encryption key id "${currentKeyId}": no such key`);
  }

  /** Parses `PAYLOAD_ENCRYPTION_KEY`: `base64` or `id:base64[,id:base64…]` (the first is current). */
  static fromSetting(setting: string): EncryptionCodec {
    const keys = new Map<string, Buffer>();
    let current: string | undefined;
    for (const part of setting.split(',').map((s) => s.trim()).filter(Boolean)) {
      const [id, b64] = part.includes(':') ? (part.split(':', 2) as [string, string]) : ['default', part];
      keys.set(id, Buffer.from(b64, 'base64'));
      current ??= id;
    }
    if (current === undefined) throw new Error('PAYLOAD_ENCRYPTION_KEY: empty');
    return new EncryptionCodec(keys, current);
  }

  /** A fresh random key in the `PAYLOAD_ENCRYPTION_KEY` format. */
  static generateSetting(keyId = 'k1'): string {
    return `${keyId}:${randomBytes(32).toString('base64')}`;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentKeyId)!;
    return payloads.map((payload) => {
      // Marked summaries stay readable in the Web UI without decryption rights (no health data in them).
      if (isPublicPayload(payload)) return payload;
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: utf8.encode(ENCODING), 'encryption-key-id': utf8.encode(this.currentKeyId) },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding;
      if (!encoding || fromUtf8.decode(encoding) !== ENCODING) return payload;
      const idBytes = payload.metadata?.['encryption-key-id'];
      const keyId = idBytes ? fromUtf8.decode(idBytes) : '';
      const key = this.keys.get(keyId);
      if (!key) throw new Error(`payload sealed with unknown encryption key id "${keyId}"`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/**
 * The data converter every client, worker and replayer of this project uses: payloads and failure
 * messages are encrypted with `encryptionKey` (see {@link EncryptionCodec.fromSetting}).
 */
export function createDataConverter(encryptionKey: string): DataConverter {
  return {
    payloadCodecs: [EncryptionCodec.fromSetting(encryptionKey)],
    // Failure messages can quote inputs; encode them like payloads (by path: the workflow bundle needs it too).
    failureConverterPath: FAILURE_CONVERTER_PATH,
  };
}
