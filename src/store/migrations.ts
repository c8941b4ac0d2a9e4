/**
 * Versioned schema migrations, applied in order at start. Never edit a released migration: add one.
 */
import type { Sql } from './sql';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'consent, do-not-call, appointments, attempt ledger, audit',
    sql: `
      CREATE TABLE consent (
        practice_id text NOT NULL,
        phone text NOT NULL,
        patient_id text,
        granted boolean NOT NULL,
        source text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (practice_id, phone)
      );

      CREATE TABLE do_not_call (
        phone text PRIMARY KEY,
        reason text NOT NULL,
        source text NOT NULL,
        added_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE appointments (
        practice_id text NOT NULL,
        appointment_id text NOT NULL,
        patient_id text NOT NULL,
        phone text NOT NULL,
        time_zone text NOT NULL,
        starts_at timestamptz NOT NULL,
        workflow_id text NOT NULL,
        status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DONE')),
        outcome text,
        outcome_detail jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (practice_id, appointment_id)
      );
      CREATE INDEX appointments_pending_by_phone ON appointments (phone) WHERE status = 'PENDING';

      -- One row per call placed (reserved), across all workflows: the caps count these.
      CREATE TABLE attempt_ledger (
        workflow_id text NOT NULL,
        attempt integer NOT NULL,
        appointment_id text NOT NULL,
        phone text NOT NULL,
        placed_at timestamptz NOT NULL,
        local_date date NOT NULL,
        outcome text,
        sip_status_code integer,
        PRIMARY KEY (workflow_id, attempt)
      );
      CREATE INDEX attempt_ledger_by_phone ON attempt_ledger (phone, placed_at);

      -- Compliance record of every decision; kept longer than Temporal keeps histories.
      CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        workflow_id text NOT NULL,
        run_id text NOT NULL,
        appointment_id text NOT NULL,
        practice_id text NOT NULL,
        phone text NOT NULL,
        attempt integer NOT NULL,
        decided_at timestamptz NOT NULL,
        decided_at_local text NOT NULL,
        time_zone text NOT NULL,
        time_zone_source text NOT NULL,
        rule_set text NOT NULL,
        rule_set_version text NOT NULL,
        consent_state text,
        day_count integer,
        week_count integer,
        decision text NOT NULL,
        outcome text,
        sip_status_code integer,
        sip_status text,
        detail jsonb,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX audit_log_by_workflow ON audit_log (workflow_id, id);
      CREATE INDEX audit_log_by_appointment ON audit_log (appointment_id, id);

      -- Append-only, enforced by the database and not just by the application.
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
      END;
      $$;
      CREATE TRIGGER audit_log_no_update_delete
        BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
      CREATE TRIGGER audit_log_no_truncate
        BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
    `,
  },
];

/** Lock id serialising migrations across processes (PostgreSQL advisory lock). */
const MIGRATION_LOCK = 4_711_042;

/** Applies pending migrations, each in its own transaction; safe when several processes start at once. */
export async function migrate(sql: Sql): Promise<number[]> {
  const applied: number[] = [];
  await sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => Number(r.version)));
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
  });
  return applied;
}
