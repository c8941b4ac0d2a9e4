/**
 * The store against both databases it supports: embedded PGlite and a real PostgreSQL 15 server
 * started once for this file. One suite, both backends.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallOutcome, ConsentState, Phase, PlanDecision } from '../../src/contracts';
import { startPostgres, type PostgresServer } from '../../src/dev/postgres';
import type { AuditEntry } from '../../src/ports';
import { createStore, MIGRATIONS, SqlStore } from '../../src/store';
import { migrate } from '../../src/store/migrations';
import { openPglite, openPostgres, type Sql } from '../../src/store/sql';

let postgres: PostgresServer;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});

/** A fresh, empty PostgreSQL database on the test server. */
let databases = 0;
async function freshDatabase(): Promise<string> {
  const name = `fresh_${(databases += 1)}`;
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return postgres.url.replace(/\/postgres$/, `/${name}`);
}

/** Fictional numbers only (NPA-555-0100…0199), a new one each call. */
const AREA_CODES = ['212', '312', '415', '646', '718', '202', '305', '617', '713', '206'];
let numbers = 0;
function newPhone(): string {
  const n = numbers++;
  return `+1${AREA_CODES[Math.floor(n / 100) % AREA_CODES.length]}5550${String(100 + (n % 100))}`;
}

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

const count = async (sql: Sql, text: string, params: unknown[]) => Number((await sql.query<{ n: unknown }>(text, params)).rows[0]!.n);

interface Backend {
  /** A store on this backend's shared database. */
  open(): Promise<SqlStore>;
  /** A second store on the same database, as another process would have (PostgreSQL: its own pool). */
  another(store: SqlStore): Promise<SqlStore | undefined>;
  /** A raw connection to a fresh, empty database. */
  fresh(): Promise<Sql>;
}

const backends: [string, Backend][] = [
  [
    'pglite',
    {
      open: () => createStore({}),
      another: async () => undefined, // in-memory PGlite is one connection in this process
      fresh: () => openPglite(),
    },
  ],
  [
    // The forecast's throwaway database: in memory on its own thread, reached over its socket.
    'pglite on its own thread',
    {
      open: () => createStore({ embedded: 'thread' }),
      another: async () => undefined,
      fresh: () => openPglite(),
    },
  ],
  [
    'postgres',
    {
      open: () => createStore({ databaseUrl: postgres.url }),
      another: () => createStore({ databaseUrl: postgres.url }),
      fresh: async () => openPostgres(await freshDatabase()),
    },
  ],
];

describe.each(backends)('%s store', (kind, backend) => {
  let store: SqlStore;
  beforeAll(async () => {
    store = await backend.open();
  });
  afterAll(async () => {
    await store?.close();
  });

  describe('migrations', () => {
    it('are recorded with their checksums and re-apply as no-ops', async () => {
      expect(store.kind).toBe(kind.split(' ')[0]);
      await store.migrate();
      await store.migrate();
      const { rows } = await store.sql.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
      expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.checksum))).toBe(true);
    });

    it('upgrade a database at version 1 with data in it', async () => {
      const sql = await backend.fresh();
      try {
        expect(await migrate(sql, MIGRATIONS.slice(0, 1))).toEqual([1]);
        await sql.query(`INSERT INTO consent (practice_id, phone, granted, source) VALUES ('p1', '+12125550150', true, 'v1')`);
        await sql.query(
          `INSERT INTO attempt_ledger (workflow_id, attempt, appointment_id, phone, placed_at, local_date)
           VALUES ('old', 1, 'A', '+12125550150', '2026-11-30T16:00:00Z', '2026-11-30')`,
        );
        // Version 1 applied before checksums were recorded.
        await sql.query('ALTER TABLE schema_migrations DROP COLUMN checksum');
        const upgraded = new SqlStore(sql);
        await upgraded.migrate();
        expect(await count(sql, 'SELECT count(*) AS n FROM schema_migrations WHERE checksum IS NOT NULL', [])).toBe(MIGRATIONS.length);
        expect(await upgraded.consentState('p1', '+12125550150')).toBe(ConsentState.GRANTED);
        await upgraded.recordConsent({ practiceId: 'p1', phone: '+12125550150', granted: false, source: 'v2' });
        expect(await upgraded.consentState('p1', '+12125550150')).toBe(ConsentState.REVOKED);
        // A row reserved before the counts were stored: its repetition is counted afresh.
        const again = await upgraded.reserveAttempt({ workflowId: 'old', attempt: 1, appointmentId: 'A', phone: '+12125550150', at: new Date('2026-11-30T16:00:00Z'), localDate: '2026-11-30', maxCallsPerDay: 1, maxCallsPerWeek: 3 });
        expect(again).toEqual({ reserved: true, dayCount: 1, weekCount: 1 });
      } finally {
        await sql.close();
      }
    });

    it('refuse to start when an applied migration changed, applying nothing', async () => {
      const edited = MIGRATIONS.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- edited` } : m));
      const added = { version: 1_000, name: 'never applied', sql: 'CREATE TABLE never_applied (x int)' };
      await expect(migrate(store.sql, [...edited, added])).rejects.toThrow(/migration 1 .* changed after it was applied: add a new migration/);
      expect(await count(store.sql, `SELECT count(*) AS n FROM schema_migrations WHERE version = 1000`, [])).toBe(0);
      await expect(migrate(store.sql, [added, ...MIGRATIONS])).rejects.toThrow(/strictly increasing/);
    });
  });

  it('consent: missing, granted, revoked, per practice; the do-not-call list wins everywhere', async () => {
    const phone = newPhone();
    expect(await store.consentState('p1', phone)).toBe(ConsentState.MISSING);
    await store.recordConsent({ practiceId: 'p1', phone, patientId: 'P-1', granted: true, source: 'intake form' });
    expect(await store.consentState('p1', phone)).toBe(ConsentState.GRANTED);
    expect(await store.consentState('p2', phone)).toBe(ConsentState.MISSING);
    await store.recordConsent({ practiceId: 'p1', phone, granted: false, source: 'phone call' });
    expect(await store.consentState('p1', phone)).toBe(ConsentState.REVOKED);
    await store.recordConsent({ practiceId: 'p1', phone, granted: true, source: 'intake form' });
    expect(await store.consentState('p1', phone)).toBe(ConsentState.GRANTED);
    // Every record is kept, in order.
    const { rows } = await store.sql.query<{ granted: boolean; source: string }>('SELECT granted, source FROM consent WHERE phone = $1 ORDER BY id', [phone]);
    expect(rows).toEqual([
      { granted: true, source: 'intake form' },
      { granted: false, source: 'phone call' },
      { granted: true, source: 'intake form' },
    ]);
    await store.addDoNotCall(phone, 'sms', 'STOP');
    expect(await store.consentState('p1', phone)).toBe(ConsentState.DO_NOT_CALL);
    expect(await store.consentState('p2', phone)).toBe(ConsentState.DO_NOT_CALL);
    // Consent granted after the opt-out does not override the do-not-call list.
    await store.recordConsent({ practiceId: 'p1', phone, granted: true, source: 'intake form' });
    expect(await store.consentState('p1', phone)).toBe(ConsentState.DO_NOT_CALL);
  });

  it('consent records are append-only in the database', async () => {
    const phone = newPhone();
    await store.recordConsent({ practiceId: 'p1', phone, granted: true, source: 'form' });
    await expect(store.sql.query('UPDATE consent SET granted = false WHERE phone = $1', [phone])).rejects.toThrow(/consent is append-only: UPDATE refused/);
    await expect(store.sql.query('DELETE FROM consent WHERE phone = $1', [phone])).rejects.toThrow(/append-only: DELETE refused/);
    expect(await store.consentState('p1', phone)).toBe(ConsentState.GRANTED);
  });

  it('do-not-call: idempotent, keeps the first entry', async () => {
    const phone = newPhone();
    await store.addDoNotCall(phone, 'sms', 'STOP');
    await store.addDoNotCall(phone, 'api', 'again');
    const { rows } = await store.sql.query<{ source: string; reason: string; added_at: Date }>('SELECT source, reason, added_at FROM do_not_call WHERE phone = $1', [phone]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ source: 'sms', reason: 'STOP' });
    expect(rows[0]!.added_at).toBeInstanceOf(Date);
  });

  it('appointments: register, find the running confirmations of a number, write back', async () => {
    const phone = newPhone();
    const base = { practiceId: 'p1', patientId: 'P-1', phone, patientTimeZone: 'America/Chicago', appointmentStart: '2026-12-01T10:00:00-06:00' };
    const id = (n: number) => `A-${kind}-${n}`;
    expect(await store.activeWorkflowIdsForPhone(phone)).toEqual([]);
    await store.registerConfirmation({ ...base, appointmentId: id(10), workflowId: `confirm-p1-${id(10)}` });
    await store.registerConfirmation({ ...base, appointmentId: id(11), workflowId: `confirm-p1-${id(11)}` });
    // Registered again after a move: updated, still one row.
    await store.registerConfirmation({ ...base, appointmentId: id(11), workflowId: `confirm-p1-${id(11)}`, appointmentStart: '2026-12-02T10:00:00-06:00' });
    await store.registerConfirmation({ ...base, phone: newPhone(), appointmentId: id(12), workflowId: `confirm-p1-${id(12)}` });
    expect(await store.activeWorkflowIdsForPhone(phone)).toEqual([`confirm-p1-${id(10)}`, `confirm-p1-${id(11)}`]);
    expect(await store.getAppointment('p1', id(11))).toEqual({
      practiceId: 'p1',
      appointmentId: id(11),
      patientId: 'P-1',
      phone,
      timeZone: 'America/Chicago',
      startsAt: new Date('2026-12-02T16:00:00.000Z'),
      workflowId: `confirm-p1-${id(11)}`,
      status: 'PENDING',
      outcome: null,
      outcomeDetail: null,
    });

    await store.writeBack('p1', id(10), CallOutcome.RESCHEDULE_REQUESTED, { reschedulePreference: 'Friday morning' });
    expect(await store.activeWorkflowIdsForPhone(phone)).toEqual([`confirm-p1-${id(11)}`]);
    expect(await store.getAppointment('p1', id(10))).toMatchObject({ status: 'DONE', outcome: CallOutcome.RESCHEDULE_REQUESTED, outcomeDetail: { reschedulePreference: 'Friday morning' } });
    await store.writeBack('p1', id(11), CallOutcome.CONFIRMED);
    expect(await store.getAppointment('p1', id(11))).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED, outcomeDetail: null });
    expect(await store.activeWorkflowIdsForPhone(phone)).toEqual([]);
    expect(await store.getAppointment('p1', 'nope')).toBeUndefined();

    // Registered again after the outcome (a late, retried planning activity): the outcome stays.
    await store.registerConfirmation({ ...base, appointmentId: id(10), workflowId: `confirm-p1-${id(10)}` });
    expect(await store.getAppointment('p1', id(10))).toMatchObject({ status: 'DONE', outcome: CallOutcome.RESCHEDULE_REQUESTED });
    expect(await store.activeWorkflowIdsForPhone(phone)).toEqual([]);
  });

  describe('caps', () => {
    const reserver = (phone: string, limits = { maxCallsPerDay: 1, maxCallsPerWeek: 3 }) =>
      (workflowId: string, attempt: number, at: string, localDate: string, s: SqlStore = store) =>
        // Workflow ids are unique per number, so the tests' ledgers never share a (workflow, attempt).
        s.reserveAttempt({ workflowId: `${phone}/${workflowId}`, attempt, appointmentId: 'A', phone, at: new Date(at), localDate, ...limits });
    const ledgerRows = (phone: string) => count(store.sql, 'SELECT count(*) AS n FROM attempt_ledger WHERE phone = $1', [phone]);

    it('one call per patient-local day, counted across workflows', async () => {
      const phone = newPhone();
      const reserve = reserver(phone);
      expect(await reserve('w1', 1, '2026-11-30T15:00:00Z', '2026-11-30')).toEqual({ reserved: true, dayCount: 1, weekCount: 1 });
      // Same local day (another workflow, later that day): refused; the week is not full.
      expect(await reserve('w2', 1, '2026-12-01T05:00:00Z', '2026-11-30')).toEqual({ reserved: false, dayCount: 1, weekCount: 1 });
      // Next local day, even 2 h later in UTC terms.
      expect(await reserve('w2', 1, '2026-12-01T06:00:00Z', '2026-12-01')).toEqual({ reserved: true, dayCount: 1, weekCount: 2 });
      expect(await ledgerRows(phone)).toBe(2);
    });

    it('three calls per rolling 7 days; a full week reports its oldest call', async () => {
      const phone = newPhone();
      const reserve = reserver(phone);
      expect(await reserve('w1', 1, '2026-11-30T16:00:00Z', '2026-11-30')).toMatchObject({ reserved: true, weekCount: 1 });
      expect(await reserve('w1', 2, '2026-12-01T16:00:00Z', '2026-12-01')).toMatchObject({ reserved: true, weekCount: 2 });
      const third = await reserve('w2', 1, '2026-12-02T16:00:00Z', '2026-12-02');
      expect(third).toMatchObject({ reserved: true, dayCount: 1, weekCount: 3 });
      expect(third.oldestInWeek?.toISOString()).toBe('2026-11-30T16:00:00.000Z');
      const full = await reserve('w3', 1, '2026-12-03T16:00:00Z', '2026-12-03');
      expect(full).toMatchObject({ reserved: false, dayCount: 0, weekCount: 3 });
      expect(full.oldestInWeek?.toISOString()).toBe('2026-11-30T16:00:00.000Z');
      // One millisecond before the oldest call is 7 days old: still full.
      const almost = await reserve('w3', 1, '2026-12-07T15:59:59.999Z', '2026-12-07');
      expect(almost).toMatchObject({ reserved: false, weekCount: 3 });
      // Exactly 7 days after the oldest call it leaves the window (at − 7 days, at]: a slot opens.
      const opened = await reserve('w3', 1, '2026-12-07T16:00:00Z', '2026-12-07');
      expect(opened).toMatchObject({ reserved: true, dayCount: 1, weekCount: 3 });
      expect(opened.oldestInWeek?.toISOString()).toBe('2026-12-01T16:00:00.000Z');
      expect(await ledgerRows(phone)).toBe(4);
    });

    it('idempotent per (workflow, attempt): the first result again, no second row', async () => {
      const phone = newPhone();
      const reserve = reserver(phone, { maxCallsPerDay: 2, maxCallsPerWeek: 3 });
      const first = await reserve('w1', 1, '2026-11-30T16:00:00Z', '2026-11-30');
      expect(first).toEqual({ reserved: true, dayCount: 1, weekCount: 1 });
      expect(await reserve('w2', 1, '2026-11-30T17:00:00Z', '2026-11-30')).toEqual({ reserved: true, dayCount: 2, weekCount: 2 });
      // The retried activity of w1 attempt 1 (even on a later clock): same answer as the first time.
      expect(await reserve('w1', 1, '2026-11-30T18:00:00Z', '2026-11-30')).toEqual(first);
      // Also when the caps are full by now.
      expect(await reserve('w3', 1, '2026-11-30T18:00:00Z', '2026-11-30')).toMatchObject({ reserved: false, dayCount: 2 });
      expect(await reserve('w2', 1, '2026-11-30T17:00:00Z', '2026-11-30')).toEqual({ reserved: true, dayCount: 2, weekCount: 2 });
      expect(await ledgerRows(phone)).toBe(2);
      // The same (workflow, attempt) for another number is refused, naming no number, and adds nothing.
      const other = newPhone();
      const wrong = store.reserveAttempt({ workflowId: `${phone}/w1`, attempt: 1, appointmentId: 'A', phone: other, at: new Date('2026-11-30T19:00:00Z'), localDate: '2026-11-30', maxCallsPerDay: 2, maxCallsPerWeek: 3 });
      await expect(wrong).rejects.toThrow(/attempt 1 of .* is reserved for another number/);
      await expect(wrong).rejects.not.toThrow(other);
      expect(await ledgerRows(other)).toBe(0);
    });

    it('records and reads back the outcome of a reserved attempt', async () => {
      const phone = newPhone();
      await store.reserveAttempt({ workflowId: `wf-out-${kind}`, attempt: 1, appointmentId: 'A', phone, at: new Date('2026-11-30T16:00:00Z'), localDate: '2026-11-30', maxCallsPerDay: 1, maxCallsPerWeek: 3 });
      expect(await store.attemptOutcome(`wf-out-${kind}`, 1)).toBeNull();
      expect(await store.attemptOutcome(`wf-out-${kind}`, 2)).toBeNull();
      await store.recordAttemptOutcome(`wf-out-${kind}`, 1, CallOutcome.BUSY, 486);
      expect(await store.attemptOutcome(`wf-out-${kind}`, 1)).toBe(CallOutcome.BUSY);
      const { rows } = await store.sql.query<{ sip_status_code: number; outcome_at: Date }>('SELECT sip_status_code, outcome_at FROM attempt_ledger WHERE workflow_id = $1', [`wf-out-${kind}`]);
      expect(rows[0]!.sip_status_code).toBe(486);
      expect(rows[0]!.outcome_at).toBeInstanceOf(Date);
    });

    it('race for the last slot of a number: exactly one of the racers wins, every round', async () => {
      // On PostgreSQL the racers use two stores with their own pools (two processes' worth of
      // connections); on PGlite they are concurrent calls on the one store.
      const other = await backend.another(store);
      try {
        const stores = other ? [store, other] : [store];
        for (let round = 0; round < 20; round += 1) {
          const phone = newPhone();
          const reserve = reserver(phone);
          // The week is at 2 of 3: the next call on a new day takes the last slot.
          await reserve(`pre-a-${round}`, 1, '2026-11-28T16:00:00Z', '2026-11-28');
          await reserve(`pre-b-${round}`, 1, '2026-11-29T16:00:00Z', '2026-11-29');
          const racers = Array.from({ length: 6 }, (_, i) =>
            reserve(`racer-${round}-${i}`, 1, '2026-11-30T16:00:00Z', '2026-11-30', stores[i % stores.length]),
          );
          const results = await Promise.all(racers);
          expect(results.filter((r) => r.reserved)).toHaveLength(1);
          for (const lost of results.filter((r) => !r.reserved)) {
            expect(lost).toMatchObject({ dayCount: 1, weekCount: 3 });
            expect(lost.oldestInWeek?.toISOString()).toBe('2026-11-28T16:00:00.000Z');
          }
          expect(await ledgerRows(phone)).toBe(3);
        }
      } finally {
        await other?.close();
      }
    });

    it('race of the same attempt against itself: both reserved, one row', async () => {
      const other = await backend.another(store);
      try {
        const stores = other ? [store, other] : [store];
        for (let round = 0; round < 10; round += 1) {
          const phone = newPhone();
          const reserve = reserver(phone);
          const results = await Promise.all([0, 1, 2, 3].map((i) => reserve(`same-${round}`, 1, '2026-11-30T16:00:00Z', '2026-11-30', stores[i % stores.length])));
          expect(results).toEqual(Array(4).fill({ reserved: true, dayCount: 1, weekCount: 1 }));
          expect(await ledgerRows(phone)).toBe(1);
        }
      } finally {
        await other?.close();
      }
    });
  });

  it('audit: appended once per idempotency key, listed oldest first, filtered', async () => {
    const workflowId = `wf-audit-${kind}`;
    const first = audit({ workflowId, appointmentId: `A-audit-${kind}` });
    await store.appendAudit(first);
    await store.appendAudit(first);
    await store.appendAudit({ ...first, decision: PlanDecision.EXPIRED }); // same key, different content: still a no-op
    await store.appendAudit(
      audit({ workflowId, appointmentId: `A-audit-${kind}`, decision: 'OUTCOME', outcome: CallOutcome.BUSY, sipStatusCode: 486, sipStatus: 'Busy Here', consentState: null, dayCount: null, weekCount: null, detail: null }),
    );
    await store.appendAudit(audit({ workflowId: `${workflowId}-other`, appointmentId: `A-audit-${kind}-other` }));

    const rows = await store.listAudit({ workflowId });
    expect(rows.map((r) => r.decision)).toEqual([PlanDecision.DIAL, 'OUTCOME']);
    expect(rows[0]!.id).toBeLessThan(rows[1]!.id);
    const { id, ...stored } = rows[0]!;
    expect(typeof id).toBe('number');
    expect(stored).toEqual(first);
    expect(rows[1]).toMatchObject({ outcome: CallOutcome.BUSY, sipStatusCode: 486, sipStatus: 'Busy Here', consentState: null, dayCount: null, weekCount: null, detail: null });
    expect(await store.listAudit({ appointmentId: `A-audit-${kind}` })).toHaveLength(2);
    expect(await store.listAudit({ workflowId, appointmentId: `A-audit-${kind}-other` })).toHaveLength(0);
    expect((await store.listAudit()).length).toBeGreaterThanOrEqual(3);
  });

  it('audit with a phase change: the row and the appointment\'s phase in one statement; a write-back marks it done', async () => {
    const appointmentId = `A-phase-${kind}`;
    const workflowId = `confirm-p1-${appointmentId}`;
    await store.registerConfirmation({ practiceId: 'p1', appointmentId, workflowId, patientId: 'P-1', phone: newPhone(), patientTimeZone: 'America/Chicago', appointmentStart: '2026-12-01T10:00:00-06:00' });
    const phaseOf = async () => (await store.sql.query<{ phase: string | null; next_call_at: Date | null }>(`SELECT phase, next_call_at FROM appointments WHERE appointment_id = $1`, [appointmentId])).rows[0];
    const waitUntil = new Date('2026-11-30T15:00:00Z');
    await store.appendAudit(audit({ workflowId, appointmentId, idempotencyKey: `${workflowId}/r/1` }), { phase: Phase.WAITING_FOR_WINDOW, nextCallAt: waitUntil });
    expect(await phaseOf()).toEqual({ phase: Phase.WAITING_FOR_WINDOW, next_call_at: waitUntil });
    // A retried activity: the row is not appended twice, the phase is written again.
    await store.appendAudit(audit({ workflowId, appointmentId, idempotencyKey: `${workflowId}/r/1` }), { phase: Phase.CALLING });
    expect(await phaseOf()).toEqual({ phase: Phase.CALLING, next_call_at: null });
    expect(await store.listAudit({ workflowId })).toHaveLength(1);
    await store.writeBack('p1', appointmentId, CallOutcome.CONFIRMED);
    expect(await phaseOf()).toEqual({ phase: Phase.DONE, next_call_at: null });
  });

  it('calling facts: consent and the override in force, in one read', async () => {
    const phone = newPhone();
    expect(await store.callingFacts('p1', phone)).toEqual({ consent: ConsentState.MISSING, override: undefined });
    await store.recordConsent({ practiceId: 'p1', phone, granted: true, source: 'test' });
    await store.recordTimeZoneOverride({ practiceId: 'p1', phone, zone: 'America/Denver', reason: 'moved', actor: 'desk' });
    expect(await store.callingFacts('p1', phone)).toMatchObject({ consent: ConsentState.GRANTED, override: { zone: 'America/Denver', reason: 'moved', actor: 'desk' } });
    expect(await store.callingFacts('p2', phone)).toEqual({ consent: ConsentState.MISSING, override: undefined });
    await store.recordTimeZoneOverride({ practiceId: 'p1', phone, zone: null, reason: 'withdrawn', actor: 'desk' });
    await store.addDoNotCall(phone, 'test', 'asked');
    expect(await store.callingFacts('p1', phone)).toEqual({ consent: ConsentState.DO_NOT_CALL, override: undefined });
  });

  it('audit rows: the database refuses UPDATE, DELETE and TRUNCATE', async () => {
    const workflowId = `wf-immutable-${kind}`;
    await store.appendAudit(audit({ workflowId }));
    await expect(store.sql.query(`UPDATE audit_log SET outcome = 'CANCELLED' WHERE workflow_id = $1`, [workflowId])).rejects.toThrow(/audit_log is append-only: UPDATE refused/);
    await expect(store.sql.query(`DELETE FROM audit_log WHERE workflow_id = $1`, [workflowId])).rejects.toThrow(/audit_log is append-only: DELETE refused/);
    await expect(store.sql.query(`TRUNCATE audit_log`)).rejects.toThrow(/append-only: TRUNCATE refused/);
    // Also inside a transaction, which rolls back as a whole.
    await expect(
      store.sql.transaction(async (tx) => {
        await tx.query(`INSERT INTO do_not_call (phone, reason, source) VALUES ('+12125550198', 'x', 'y')`);
        await tx.query(`DELETE FROM audit_log WHERE workflow_id = $1`, [workflowId]);
      }),
    ).rejects.toThrow(/append-only/);
    expect(await store.consentState('p1', '+12125550198')).toBe(ConsentState.MISSING);
    expect(await store.listAudit({ workflowId })).toMatchObject([{ decision: PlanDecision.DIAL, outcome: null }]);
  });
});

describe('postgres only', () => {
  it('several processes starting at once on a new database: migrated once, all start', async () => {
    const url = await freshDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => createStore({ databaseUrl: url })));
    try {
      const versions = (await stores[0]!.sql.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => Number(r.version));
      expect(versions).toEqual(MIGRATIONS.map((m) => m.version));
      await Promise.all(stores.map((s) => s.migrate()));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('an unreachable server fails at start with the reason', async () => {
    await expect(createStore({ databaseUrl: 'postgres://app@127.0.0.1:1/none' })).rejects.toThrow(/ECONNREFUSED|connect/);
  });

  it('startPostgres says to run `npm run setup` when the binaries are missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-pg-'));
    const saved = process.env.PG_BIN_DIR;
    process.env.PG_BIN_DIR = empty;
    try {
      await expect(startPostgres()).rejects.toThrow(/npm run setup/);
    } finally {
      if (saved === undefined) delete process.env.PG_BIN_DIR;
      else process.env.PG_BIN_DIR = saved;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('PGlite data directory', () => {
  it('survives close and reopen, is migrated once, and has one owner (a second opener goes through it)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pglite-'));
    const dir = join(root, 'db');
    try {
      const first = await createStore({ dataDir: dir });
      await first.addDoNotCall('+12125550199', 'test', 'persisted');
      await first.recordConsent({ practiceId: 'p1', phone: '+12125550188', granted: true, source: 'test' });
      // PGlite has no locking of its own: the first opener owns the directory, a second one is its client.
      const again = await createStore({ dataDir: dir });
      expect(await again.consentState('p1', '+12125550199')).toBe(ConsentState.DO_NOT_CALL);
      await again.close();
      await first.close();
      expect(existsSync(`${dir}.lock`)).toBe(false);
      // A lock left behind by a process that died is taken over (pids this high are never in use).
      writeFileSync(`${dir}.lock`, '2147483646');
      const second = await createStore({ dataDir: dir });
      try {
        expect(await second.consentState('p1', '+12125550199')).toBe(ConsentState.DO_NOT_CALL);
        expect(await second.consentState('p1', '+12125550188')).toBe(ConsentState.GRANTED);
        expect(await count(second.sql, 'SELECT count(*) AS n FROM schema_migrations', [])).toBe(MIGRATIONS.length);
      } finally {
        await second.close();
      }
      expect(existsSync(`${dir}.lock`)).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
