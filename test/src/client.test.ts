/**
 * The client API refuses bad input before anything reaches Temporal or the database (real PGlite):
 * every field of every call has a type and a bound, and messages never quote the value.
 */
import type { Client } from '@temporalio/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfirmationClient } from '../../src/client';
import type { ConfirmationStore } from '../../src/ports';
import { createStore } from '../../src/store';
import { ValidationError } from '../../src/validation';

const PHONE = '+12125550123';
const HUGE = 'x'.repeat(10 * 1024 * 1024);
let store: ConfirmationStore;
let api: ConfirmationClient;

beforeEach(async () => {
  store = await createStore({});
  // No Temporal call is reached by a refused request: a client that is never used stands in for it.
  api = new ConfirmationClient({ client: {} as Client, store });
});
afterEach(async () => {
  await store.close();
});

async function refusal(call: Promise<unknown>): Promise<string> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  const message = (err as Error).message;
  expect(message.length).toBeLessThan(300);
  return message;
}

describe('ConfirmationClient refuses bad input before it is stored', () => {
  it('consent: granted "no" (a string), a 10 MB source, unknown fields — the append-only table stays empty', async () => {
    const input = { practiceId: 'bright-smiles', phone: PHONE, granted: 'no', source: HUGE, note: 'x' } as never;
    expect(await refusal(api.recordConsent(input))).toBe(
      'granted: must be true or false (consent given, or withdrawn); source: must be at most 200 characters; (consent): unknown field(s): note',
    );
    expect(await store.consentState('bright-smiles', PHONE)).toBe('MISSING');
    await api.recordConsent({ practiceId: 'bright-smiles', phone: PHONE, granted: true, source: 'intake form' });
    expect(await store.consentState('bright-smiles', PHONE)).toBe('GRANTED');
  });

  it('opt-out: a 10 MB source never reaches the do-not-call list', async () => {
    expect(await refusal(api.optOut(PHONE, HUGE))).toBe('source: must be at most 200 characters');
    expect(await store.consentState('bright-smiles', PHONE)).toBe('MISSING');
    expect(await refusal(api.optOut(HUGE))).toBe('phone: must be at most 16 characters');
  });

  it('start, move, status: a 10 MB value or a year-9999 appointment is refused with a short message', async () => {
    expect(await refusal(api.startConfirmation(HUGE))).toBe('(request): must be an object (a ConfirmationRequest)');
    expect(await refusal(api.moveAppointment('bright-smiles', 'A-1', '9999-12-01T10:00:00-06:00'))).toBe(
      'appointmentStart: must be at most 366 days ahead (confirmations are for upcoming appointments)',
    );
    expect(await refusal(api.moveAppointment('bright-smiles', 'A-1', HUGE))).toBe('appointmentStart: must be at most 40 characters');
    expect(await refusal(api.getStatus(HUGE))).toBe('workflowId: must be at most 255 characters');
    expect(await refusal(api.result('has spaces'))).toBe('workflowId: must be printable ASCII without spaces');
  });
});
