/** The last line of defence: whatever an entry point prints is scrubbed of secrets and tokens, even at debug level. */
import { describe, expect, it } from 'vitest';
import { describeForUser, liveKitError, redact, safeMessage, scrub, UserError } from '../../src/errors';

const env = {
  LIVEKIT_API_SECRET: 'livekit-secret-0123456789',
  PAYLOAD_ENCRYPTION_KEY: 'k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k0:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=',
  DATABASE_URL: 'postgres://app:p%40ss-word@db.internal:5432/calls',
  SIP_TRUNK_AUTH_PASSWORD: 'trunk-pass',
};
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJ2aWRlbyI6e30sInNpcCI6eyJhZG1pbiI6dHJ1ZX19.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('scrub', () => {
  it('removes configured secrets, each key of a key list, URL passwords and signed tokens', () => {
    const text = `secret ${env.LIVEKIT_API_SECRET} key ${env.PAYLOAD_ENCRYPTION_KEY.split(',')[1]!.slice(3)} url postgres://app:p@ss-word@db/x and postgresql://u:other@h/db token ${TOKEN} trunk trunk-pass`;
    const out = scrub(text, env);
    for (const secret of [env.LIVEKIT_API_SECRET, 'ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=', 'p@ss-word', 'other', TOKEN, 'trunk-pass']) expect(out).not.toContain(secret);
    expect(out).toContain('postgresql://u:[redacted]@h/db');
  });
});

describe('describeForUser', () => {
  it('known errors print their message; others a generic sentence; debug adds the stack, still scrubbed', () => {
    expect(describeForUser(new UserError('DATABASE_URL: cannot reach it.', 3), { env })).toEqual({ message: 'DATABASE_URL: cannot reach it.', exitCode: 3 });
    const server = Object.assign(new Error(`invalid token: ${TOKEN}, error: go-jose/go-jose: error in cryptographic primitive`), { status: 401, code: 'unauthenticated' });
    const plain = describeForUser(server, { env });
    expect(plain).toEqual({ message: 'unexpected failure (unauthenticated); rerun with LOG_LEVEL=debug to see the details.', exitCode: 1 });
    const debug = describeForUser(server, { env, debug: true });
    expect(debug.message).toMatch(/\n\s+at /);
    expect(debug.message).not.toContain(TOKEN);
  });

  it('a refused LiveKit token is blamed on the key and secret, never the URL, and its text is not repeated', () => {
    const server = Object.assign(new Error(`invalid token: ${TOKEN}`), { status: 401, code: 'unauthenticated' });
    const err = liveKitError(server, 'wss://x.livekit.cloud');
    expect(err.message).toMatch(/^LIVEKIT_API_KEY \/ LIVEKIT_API_SECRET: /);
    expect(err.message).not.toMatch(/LIVEKIT_URL|eyJ/);
  });
});

describe('redact', () => {
  it('leaves what a person needs: addresses, ports, ids, counts, documented examples', () => {
    for (const text of [
      'TEMPORAL_ADDRESS: cannot reach a Temporal server at 127.0.0.1:7233 (ECONNREFUSED); start it or set TEMPORAL_ADDRESS.',
      'appointmentStart: not an ISO 8601 time with offset (e.g. 2026-12-01T10:30:00-06:00)',
      'STAFF_TRANSFER_NUMBER: must be an E.164 number like +13125550100',
      'no confirmation with workflow id confirm:bright-smiles:A-1732949234 (check the id)',
      'SIP call failed: 486 Busy Here (resource_exhausted)',
      'appointmentStart: must be at most 366 days ahead',
    ]) {
      expect(redact(text, { env: {} })).toBe(text);
    }
  });

  it('replaces numbers, times, SIP URIs, tokens and long values, and bounds the length', () => {
    expect(redact('call to +1 (212) 555-0147 at 2031-04-05T09:30:17-05:00 via sip:12125550147@carrier failed', { env: {} })).toBe(
      'call to [phone] at [time] via sip:[redacted] failed',
    );
    expect(redact(`digits 12125550147. token ${TOKEN}`, { env: {} })).toBe('digits [phone]. token [token]');
    const long = redact(`x ${'y'.repeat(1_000)} ${'z '.repeat(2_000)}`, { env: {} });
    expect(long).toMatch(/^x \[long value\] z z/);
    expect(long.length).toBeLessThan(700);
  });
});

describe('safeMessage', () => {
  it('drops what a library quotes, keeps the rest (and our own messages whole)', () => {
    let parseError: Error | undefined;
    try {
      JSON.parse('Jordan Quinn, +12125550147');
    } catch (err) {
      parseError = err as Error;
    }
    expect(safeMessage(parseError)).not.toMatch(/Jordan|Quinn|2125550147/);
    expect(safeMessage(new Error(`invalid input syntax for type timestamp: "Jordan"; can't store it`))).toBe(`invalid input syntax for type timestamp: "…"; can't store it`);
    expect(safeMessage(new UserError('LIVEKIT_SIP_TRUNK_ID: outbound trunk "ST_x" does not exist.'))).toBe('LIVEKIT_SIP_TRUNK_ID: outbound trunk "ST_x" does not exist.');
  });
});
