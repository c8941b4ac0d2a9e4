/** The last line of defence: whatever an entry point prints is scrubbed of secrets and tokens, even at debug level. */
import { describe, expect, it } from 'vitest';
import { describeForUser, liveKitError, scrub, UserError } from '../../src/errors';

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
