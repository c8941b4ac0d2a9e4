/**
 * Versioned schema migrations, applied in order at start. Never edit a released migration: add one
 * (the runner records each migration's checksum and refuses to start when an applied one changed).
 * The SQL must run on PostgreSQL 15 and on PGlite (PostgreSQL 18).
 */
import { createHash } from 'node:crypto';
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
  {
    version: 2,
    name: 'consent history, reservation counts in the ledger',
    sql: `
      -- Consent is evidence: keep every grant and revocation; the practice's latest record wins.
      ALTER TABLE consent DROP CONSTRAINT consent_pkey;
      ALTER TABLE consent ADD COLUMN id bigserial;
      ALTER TABLE consent ADD CONSTRAINT consent_pkey PRIMARY KEY (id);
      CREATE INDEX consent_latest ON consent (practice_id, phone, id DESC);

      CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
      END;
      $$;
      CREATE TRIGGER consent_no_update_delete
        BEFORE UPDATE OR DELETE ON consent
        FOR EACH ROW EXECUTE FUNCTION append_only();
      CREATE TRIGGER consent_no_truncate
        BEFORE TRUNCATE ON consent
        FOR EACH STATEMENT EXECUTE FUNCTION append_only();

      -- The counts a reservation returned (itself included), so a repeated reservation of the same
      -- attempt returns the first result. NULL on rows reserved before this migration.
      ALTER TABLE attempt_ledger ADD COLUMN day_count integer, ADD COLUMN week_count integer;
      ALTER TABLE attempt_ledger ADD COLUMN outcome_at timestamptz;
    `,
  },
  {
    version: 3,
    name: 'campaigns: settings, contacts, control audit; confirmation phase per appointment',
    sql: `
      -- One row per campaign. State and limits mirror the campaign workflow (which writes them):
      -- the channel gate reads them here, in every worker process.
      CREATE TABLE campaigns (
        practice_id text NOT NULL,
        campaign_id text NOT NULL,
        workflow_id text NOT NULL UNIQUE,
        practice_name text NOT NULL,
        practice_callback_number text NOT NULL,
        state text NOT NULL DEFAULT 'RUNNING' CHECK (state IN ('RUNNING', 'PAUSED', 'CANCELLED', 'COMPLETED')),
        max_channels integer NOT NULL CHECK (max_channels > 0),
        max_calls_per_second double precision NOT NULL CHECK (max_calls_per_second > 0),
        -- Earliest instant the campaign's next call may start (its calls-per-second pacing).
        next_call_at timestamptz,
        policy jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (practice_id, campaign_id)
      );

      -- Contacts of a campaign: the imported rows (health data; never in workflow histories but the
      -- confirmation's own encrypted input).
      CREATE TABLE campaign_contacts (
        practice_id text NOT NULL,
        campaign_id text NOT NULL,
        appointment_id text NOT NULL,
        patient_id text NOT NULL,
        patient_name text NOT NULL,
        phone text NOT NULL,
        patient_time_zone text NOT NULL,
        -- As imported (ISO 8601 with the practice's offset), and as an instant for ordering.
        appointment_start text NOT NULL,
        starts_at timestamptz NOT NULL,
        provider text NOT NULL,
        reason text NOT NULL,
        practice_callback_number text,
        -- Line of the row in the file that first imported it (null for rows sent through the API).
        source_line integer,
        status text NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED', 'STARTED', 'SKIPPED', 'CANCELLED')),
        -- Why a SKIPPED row was not called (another campaign or a single start confirms it).
        skip_reason text,
        workflow_id text NOT NULL,
        imported_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        PRIMARY KEY (practice_id, campaign_id, appointment_id),
        FOREIGN KEY (practice_id, campaign_id) REFERENCES campaigns (practice_id, campaign_id)
      );
      CREATE INDEX campaign_contacts_queue ON campaign_contacts (practice_id, campaign_id, starts_at, appointment_id) WHERE status = 'QUEUED';
      CREATE INDEX campaign_contacts_by_workflow ON campaign_contacts (workflow_id);

      -- Who changed a campaign, when: start, pause, resume, cancel, limits, rows added, completion.
      CREATE TABLE campaign_events (
        id bigserial PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        practice_id text NOT NULL,
        campaign_id text NOT NULL,
        action text NOT NULL,
        actor text NOT NULL,
        reason text,
        at timestamptz NOT NULL,
        detail jsonb,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX campaign_events_by_campaign ON campaign_events (practice_id, campaign_id, id);
      CREATE TRIGGER campaign_events_no_update_delete
        BEFORE UPDATE OR DELETE ON campaign_events
        FOR EACH ROW EXECUTE FUNCTION append_only();
      CREATE TRIGGER campaign_events_no_truncate
        BEFORE TRUNCATE ON campaign_events
        FOR EACH STATEMENT EXECUTE FUNCTION append_only();

      -- Where each confirmation stands, for progress without reading histories: written by the
      -- planning and finishing activities. NULL on rows from before this migration.
      ALTER TABLE appointments ADD COLUMN campaign_id text, ADD COLUMN phase text, ADD COLUMN next_call_at timestamptz;
      CREATE INDEX appointments_by_campaign ON appointments (practice_id, campaign_id) WHERE campaign_id IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'pacing: trunk limits, channel waiters and leases',
    sql: `
      -- Limits of each outbound trunk, shared by every worker process. A worker inserts its trunk's
      -- row from its config when there is none; from then on this row is the source of truth
      -- (changed through the API/CLI, read at every grant tick).
      CREATE TABLE trunk_limits (
        trunk_id text PRIMARY KEY,
        max_channels integer NOT NULL CHECK (max_channels > 0),
        max_calls_per_second double precision NOT NULL CHECK (max_calls_per_second > 0),
        -- Earliest instant the trunk's next call may start (its calls-per-second pacing).
        next_call_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      -- Attempts waiting for a channel. holder = '<workflow id>#a<attempt>'. Kept alive by the
      -- waiting process (alive_until); a row nobody refreshes is dropped by the next grant tick.
      CREATE TABLE channel_waiters (
        holder text PRIMARY KEY,
        trunk_id text NOT NULL,
        practice_id text NOT NULL,
        -- With practice_id, the campaign (campaigns' key); NULL for a single confirmation.
        campaign_id text,
        deadline timestamptz NOT NULL,
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        alive_until timestamptz NOT NULL
      );
      CREATE INDEX channel_waiters_queue ON channel_waiters (trunk_id, practice_id, campaign_id, deadline);

      -- Channels leased to attempts: one row per call that is (or is about to be) up. A lease counts
      -- while expires_at is in the future; the process holding the call renews it. Expired rows stay
      -- a while (an attempt whose dial starts late finds what it was granted) and are then deleted.
      CREATE TABLE channel_leases (
        holder text PRIMARY KEY,
        trunk_id text NOT NULL,
        practice_id text NOT NULL,
        campaign_id text,
        deadline timestamptz NOT NULL,
        granted_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX channel_leases_by_trunk ON channel_leases (trunk_id, expires_at);
      CREATE INDEX channel_leases_by_campaign ON channel_leases (practice_id, campaign_id, expires_at) WHERE campaign_id IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'agent capacity: agent workers report what they can serve; trunks name their agent',
    sql: `
      -- One row per running voice-agent worker (agent/main.ts), written by its heartbeat. capacity =
      -- min(max calls, calls in progress + warm job processes ready for a call); a row counts while
      -- expires_at is in the future (a killed worker's row stops counting within seconds).
      CREATE TABLE agent_workers (
        worker_id text PRIMARY KEY,
        agent_name text NOT NULL,
        max_calls integer NOT NULL CHECK (max_calls >= 0),
        active_calls integer NOT NULL CHECK (active_calls >= 0),
        ready_processes integer NOT NULL CHECK (ready_processes >= 0),
        capacity integer NOT NULL CHECK (capacity >= 0),
        -- Answered calls this worker was asked to serve and refused (no warm process): a backlog sign.
        refused_jobs integer NOT NULL DEFAULT 0,
        reported_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX agent_workers_by_name ON agent_workers (agent_name, expires_at);

      -- The agent dispatched to the trunk's calls (the worker's AGENT_NAME): the grant tick bounds the
      -- channels in use by that agent's live capacity. NULL: no bound (scripted phones, no agent).
      ALTER TABLE trunk_limits ADD COLUMN agent_name text;
    `,
  },
  {
    version: 6,
    name: "time zones: the zones each decision checked; overrides of a number's zones",
    sql: `
      -- The zones a planning decision checked the calling window in (request, number, override) and
      -- which decided (a TimeZoneCheck). NULL on rows from before this migration and on outcome rows.
      ALTER TABLE audit_log ADD COLUMN time_zones jsonb;

      -- A practice's statement that the patient of a number lives in another zone than the number's
      -- own (kept number after a move): while in force, the window is checked in this zone alone.
      -- Evidence like consent: append-only; the latest row per practice and number counts, and a row
      -- with a NULL zone withdraws the override.
      CREATE TABLE time_zone_overrides (
        id bigserial PRIMARY KEY,
        practice_id text NOT NULL,
        phone text NOT NULL,
        zone text,
        reason text NOT NULL,
        actor text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX time_zone_overrides_latest ON time_zone_overrides (practice_id, phone, id DESC);
      CREATE TRIGGER time_zone_overrides_no_update_delete
        BEFORE UPDATE OR DELETE ON time_zone_overrides
        FOR EACH ROW EXECUTE FUNCTION append_only();
      CREATE TRIGGER time_zone_overrides_no_truncate
        BEFORE TRUNCATE ON time_zone_overrides
        FOR EACH STATEMENT EXECUTE FUNCTION append_only();
    `,
  },
];

/** Lock id serialising migrations across processes (PostgreSQL advisory lock). */
const MIGRATION_LOCK = 4_711_042;

/** SHA-256 of a migration's SQL, recorded when applied. */
export function checksum(m: Migration): string {
  return createHash('sha256').update(m.sql).digest('hex');
}

/**
 * Applies pending migrations in one transaction and returns the versions applied. Safe when several
 * processes start at once: they queue on an advisory lock, and the later ones find nothing to do.
 * Throws, applying nothing, when an applied migration's SQL changed since.
 */
export async function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  migrations.forEach((m, i) => {
    if (!Number.isInteger(m.version) || (i > 0 && m.version <= migrations[i - 1]!.version)) {
      throw new Error(`migrations must have strictly increasing integer versions (at ${m.version})`);
    }
  });
  const applied: number[] = [];
  await sql.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    await tx.query('ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text');
    const { rows } = await tx.query<{ version: number; checksum: string | null }>('SELECT version, checksum FROM schema_migrations');
    const done = new Map(rows.map((r) => [Number(r.version), r.checksum]));
    for (const m of migrations) {
      const sum = checksum(m);
      if (done.has(m.version)) {
        const recorded = done.get(m.version);
        if (recorded === null) {
          // Applied before checksums were recorded: record it now.
          await tx.query('UPDATE schema_migrations SET checksum = $2 WHERE version = $1', [m.version, sum]);
        } else if (recorded !== sum) {
          throw new Error(`migration ${m.version} (${m.name}) changed after it was applied: add a new migration instead`);
        }
        continue;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, sum]);
      applied.push(m.version);
    }
  });
  return applied;
}
