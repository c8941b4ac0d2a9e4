/**
 * The store against both databases it supports: embedded PGlite and a real PostgreSQL server
 * started by this suite.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallOutcome, ConsentState, PlanDecision } from '../../src/contracts';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import type { AuditEntry, ConfirmationStore } from '../../src/ports';
import { createStore } from '../../src/store';

let postgres: PostgresServer;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

let seq = 0;
const audit = (overrides: Partial<AuditEntry> = {}): AuditEntry => ({
  idempotencyKey: `key-${(seq += 1)}`,
  workflowId: 'wf-1',
  runId: 'run-1',
  appointmentId: 'A-1',
  practiceId: 'p1',
  phone: '+12125550123',
  attempt: 1,
  decidedAt: new Date('2026-11-30T16:00:00Z'),
  decidedAtLocal: '2026-11-30T10:00:00-06:00',
  timeZone: 'America/Chicago',
  timeZoneSource: 'request; tzdata 2025c',
  ruleSet: 'US-TCPA-HEALTHCARE',
  ruleSetVersion: '2026-11-24',
  consentState: ConsentState.GRANTED,
  dayCount: 1,
  weekCount: 1,
  decision: PlanDecision.DIAL,
  outcome: null,
  sipStatusCode: null,
  sipStatus: null,
  detail: { deadline: '2026-12-01T14:00:00Z' },
  ...overrides,
});

const backends: [string, () => Promise<ConfirmationStore>][] = [
  ['pglite', () => createStore({})],
  ['postgres', async () => createStore({ databaseUrl: postgres.url })],
];


describe.each(backends)('%s store', (kind, open) => {
  let store: ConfirmationStore;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it('applies migrations idempotently', async () => {
    await store.migrate();
    await store.migrate();
  });

  it('consent: missing, granted, revoked; the do-not-call list wins', async () => {
    const phone = `+121255501${kind === 'pglite' ? '10' : '11'}`;
    expect(await store.consentState('p1', phone)).toBe(ConsentState.MISSING);
    await store.recordConsent({ practiceId: 'p1', phone, granted: true, source: 'form' });
    expect(await store.consentState('p1', phone)).toBe(ConsentState.GRANTED);
    expect(await store.consentState('p2', phone)).toBe(ConsentState.MISSING);
    await store.recordConsent({ practiceId: 'p1', phone, granted: false, source: 'phone call' });
    expect(await store.consentState('p1', phone)).toBe(ConsentState.REVOKED);
    await store.recordConsent({ practiceId: 'p1', phone, granted: true, source: 'form' });
    await store.addDoNotCall(phone, 'sms', 'STOP');
    await store.addDoNotCall(phone, 'api', 'again');
    expect(await store.consentState('p1', phone)).toBe(ConsentState.DO_NOT_CALL);
    expect(await store.consentState('p2', phone)).toBe(ConsentState.DO_NOT_CALL);
  });

  it('appointments: register, find running confirmations of a number, write back', async () => {
    const phone = `+121255501${kind === 'pglite' ? '20' : '21'}`;
    const base = { practiceId: 'p1', patientId: 'P-1', phone, patientTimeZone: 'America/Chicago', appointmentStart: '2026-12-01T10:00:00-06:00' };
    await store.registerConfirmation({ ...base, appointmentId: 'A-10', workflowId: 'confirm-p1-A-10' });
    await store.registerConfirmation({ ...base, appointmentId: 'A-11', workflowId: 'confirm-p1-A-11' });
    await store.registerConfirmation({ ...base, appointmentId: 'A-11', workflowId: 'confirm-p1-A-11', appointmentStart: '2026-12-02T10:00:00-06:00' });
    expect(await store.activeWorkflowIdsForPhone(phone)).toEqual(['confirm-p1-A-10', 'confirm-p1-A-11']);
    await store.writeBack('p1', 'A-10', CallOutcome.RESCHEDULE_REQUESTED, { reschedulePreference: 'Friday' });
    expect(await store.activeWorkflowIdsForPhone(phone)).toEqual(['confirm-p1-A-11']);
    expect(await store.getAppointment('p1', 'A-10')).toMatchObject({ status: 'DONE', outcome: CallOutcome.RESCHEDULE_REQUESTED, outcomeDetail: { reschedulePreference: 'Friday' } });
    expect((await store.getAppointment('p1', 'A-11'))?.startsAt.toISOString()).toBe('2026-12-02T16:00:00.000Z');
  });

  it('caps: one call per patient-local day, three per rolling week, idempotent per attempt', async () => {
    const phone = `+121255501${kind === 'pglite' ? '30' : '31'}`;
    const reserve = (workflowId: string, attempt: number, at: string, localDate: string) =>
      store.reserveAttempt({ workflowId, attempt, appointmentId: 'A', phone, at: new Date(at), localDate, maxCallsPerDay: 1, maxCallsPerWeek: 3 });
    expect(await reserve('w1', 1, '2026-11-30T16:00:00Z', '2026-11-30')).toMatchObject({ reserved: true, dayCount: 1, weekCount: 1 });
    expect(await reserve('w1', 1, '2026-11-30T16:00:00Z', '2026-11-30')).toMatchObject({ reserved: true, dayCount: 1, weekCount: 1 });
    expect(await reserve('w2', 1, '2026-11-30T18:00:00Z', '2026-11-30')).toMatchObject({ reserved: false, dayCount: 1 });
    expect(await reserve('w2', 1, '2026-12-01T16:00:00Z', '2026-12-01')).toMatchObject({ reserved: true, weekCount: 2 });
    expect(await reserve('w3', 1, '2026-12-02T16:00:00Z', '2026-12-02')).toMatchObject({ reserved: true, weekCount: 3 });
    const full = await reserve('w4', 1, '2026-12-03T16:00:00Z', '2026-12-03');
    expect(full).toMatchObject({ reserved: false, dayCount: 0, weekCount: 3 });
    expect(full.oldestInWeek?.toISOString()).toBe('2026-11-30T16:00:00.000Z');
    // A week after the oldest call, a slot opens.
    expect(await reserve('w4', 1, '2026-12-07T16:00:01Z', '2026-12-07')).toMatchObject({ reserved: true, weekCount: 3 });
    await store.recordAttemptOutcome('w4', 1, CallOutcome.BUSY, 486);
  });

  it('cap race: concurrent reservations for the last slot — exactly one wins, every round', async () => {
    const other = await open();
    try {
      for (let round = 0; round < 20; round += 1) {
        const phone = `+1646555${String(100 + round).padStart(4, '0')}`.replace('55501', '55501');
        const reserve = (s: ConfirmationStore, workflowId: string) =>
          s.reserveAttempt({ workflowId, attempt: 1, appointmentId: 'A', phone: `${phone}-${kind}`, at: new Date('2026-11-30T16:00:00Z'), localDate: '2026-11-30', maxCallsPerDay: 1, maxCallsPerWeek: 3 });
        // On PostgreSQL two pools (two processes' worth of connections); on PGlite, concurrent calls.
        const racers = kind === 'postgres' ? [reserve(store, `a${round}`), reserve(other, `b${round}`), reserve(store, `c${round}`)] : [reserve(store, `a${round}`), reserve(store, `b${round}`), reserve(store, `c${round}`)];
        const results = await Promise.all(racers);
        expect(results.filter((r) => r.reserved)).toHaveLength(1);
      }
    } finally {
      await other.close();
    }
  });

  it('audit: append once per idempotency key, list in order; the database refuses updates and deletes', async () => {
    const first = audit({ workflowId: `wf-${kind}` });
    await store.appendAudit(first);
    await store.appendAudit(first);
    await store.appendAudit(audit({ workflowId: `wf-${kind}`, decision: 'OUTCOME', outcome: CallOutcome.CONFIRMED, sipStatusCode: 200, consentState: null, dayCount: null, weekCount: null }));
    const rows = await store.listAudit({ workflowId: `wf-${kind}` });
    expect(rows.map((r) => r.decision)).toEqual([PlanDecision.DIAL, 'OUTCOME']);
    expect(rows[0]).toMatchObject({ timeZone: 'America/Chicago', ruleSet: 'US-TCPA-HEALTHCARE', consentState: 'GRANTED', dayCount: 1, detail: { deadline: '2026-12-01T14:00:00Z' } });
    expect(rows[0]!.decidedAt.toISOString()).toBe('2026-11-30T16:00:00.000Z');
    const sql = (store as unknown as { sql: { query: (t: string) => Promise<unknown> } }).sql;
    await expect(sql.query(`UPDATE audit_log SET outcome = 'CANCELLED'`)).rejects.toThrow(/append-only/);
    await expect(sql.query(`DELETE FROM audit_log`)).rejects.toThrow(/append-only/);
    await expect(sql.query(`TRUNCATE audit_log`)).rejects.toThrow(/append-only/);
    expect(await store.listAudit({ workflowId: `wf-${kind}` })).toHaveLength(2);
  });
});

describe('PGlite data directory', () => {
  it('survives close and reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pglite-'));
    try {
      const first = await createStore({ dataDir: dir });
      await first.addDoNotCall('+12125550199', 'test', 'persisted');
      await first.close();
      const second = await createStore({ dataDir: dir });
      expect(await second.consentState('p1', '+12125550199')).toBe(ConsentState.DO_NOT_CALL);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('configuration errors', () => {
  it('an unreachable PostgreSQL fails at start with the reason', async () => {
    await expect(createStore({ databaseUrl: 'postgres://app@127.0.0.1:1/none' })).rejects.toThrow(/ECONNREFUSED|connect/);
  });
});
