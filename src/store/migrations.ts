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
  {
    version: 7,
    name: 'one round trip each: reserving an attempt against the caps, taking a call slot',
    sql: `
      -- An attempt's reservation in the ledger against the number's daily and weekly caps, in one
      -- statement instead of a transaction of five (the planning activity's path to every call).
      -- Serialised per number by an advisory lock: under READ COMMITTED each statement after the
      -- lock sees every reservation committed before the lock was granted, so two racers for the
      -- last slot queue and the second counts the first one's row. A retried activity finds its
      -- reservation: the first result, no second row. other_number: the attempt is reserved for
      -- another number (nothing is returned about it).
      CREATE FUNCTION reserve_attempt(
        p_workflow_id text, p_attempt integer, p_appointment_id text, p_phone text,
        p_at timestamptz, p_local_date date, p_max_per_day integer, p_max_per_week integer,
        OUT reserved boolean, OUT other_number boolean, OUT day_count integer, OUT week_count integer, OUT oldest_in_week timestamptz
      ) LANGUAGE plpgsql AS $$
      DECLARE
        found_row attempt_ledger%ROWTYPE;
        existing boolean;
        v_at timestamptz := p_at;
        v_date date := p_local_date;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_phone, 0));
        SELECT * INTO found_row FROM attempt_ledger WHERE workflow_id = p_workflow_id AND attempt = p_attempt;
        existing := FOUND;
        other_number := existing AND found_row.phone <> p_phone;
        IF other_number THEN
          reserved := false;
          RETURN;
        END IF;
        IF existing THEN
          v_at := found_row.placed_at;
          v_date := found_row.local_date;
        END IF;
        -- A week is 168 hours (not 7 calendar days in the session's zone).
        SELECT count(*) FILTER (WHERE l.local_date = v_date),
               count(*) FILTER (WHERE l.placed_at > v_at - interval '168 hours' AND l.placed_at <= v_at),
               min(l.placed_at) FILTER (WHERE l.placed_at > v_at - interval '168 hours' AND l.placed_at <= v_at)
          INTO day_count, week_count, oldest_in_week
          FROM attempt_ledger l WHERE l.phone = p_phone;
        IF existing THEN
          reserved := true;
          day_count := coalesce(found_row.day_count, day_count);
          week_count := coalesce(found_row.week_count, week_count);
          RETURN;
        END IF;
        IF day_count >= p_max_per_day OR week_count >= p_max_per_week THEN
          reserved := false;
          RETURN;
        END IF;
        day_count := day_count + 1;
        week_count := week_count + 1;
        oldest_in_week := coalesce(oldest_in_week, p_at);
        INSERT INTO attempt_ledger (workflow_id, attempt, appointment_id, phone, placed_at, local_date, day_count, week_count)
        VALUES (p_workflow_id, p_attempt, p_appointment_id, p_phone, p_at, p_local_date, day_count, week_count);
        reserved := true;
      END $$;

      -- A calls-per-second slot of the trunk (and of the campaign, when given), in one statement
      -- instead of a transaction of seven (every INVITE waits for it). Rows locked trunk first, then
      -- campaign, like before (the grant tick locks the trunk only): slot takers never deadlock.
      -- t = max(the database's clock once the locks are held, the trunk's next slot), to the
      -- millisecond above; the trunk's next moves p_slots intervals past t, the campaign's too. When
      -- the campaign's next slot is later than t, nothing is taken (retry_in_ms says when to come
      -- back): a call waiting for its campaign must not hold the trunk's slots. Interval:
      -- (1000 + p_lateness_ms) / (rate × p_clock_scale) ms. Times come back as epoch milliseconds,
      -- with the function's own start and end on the database's clock, so the caller can place the
      -- slot on its clock from the round trip less the time spent in here (lock waits included).
      CREATE FUNCTION take_call_slot(
        p_trunk_id text, p_practice_id text, p_campaign_id text, p_slots integer,
        p_clock_scale double precision, p_lateness_ms double precision,
        OUT has_trunk boolean, OUT taken boolean, OUT slot_ms double precision, OUT now_ms double precision,
        OUT started_ms double precision, OUT ended_ms double precision, OUT retry_in_ms double precision,
        OUT trunk_interval_ms double precision, OUT campaign_interval_ms double precision
      ) LANGUAGE plpgsql AS $$
      DECLARE
        trunk record;
        campaign record;
        db_now timestamptz;
        slot timestamptz;
      BEGIN
        started_ms := extract(epoch FROM clock_timestamp())::double precision * 1000;
        SELECT max_calls_per_second AS rate, next_call_at AS next INTO trunk FROM trunk_limits WHERE trunk_id = p_trunk_id FOR UPDATE;
        has_trunk := FOUND;
        IF NOT has_trunk THEN
          taken := false;
          RETURN;
        END IF;
        db_now := clock_timestamp();
        slot := greatest(db_now, trunk.next);
        IF date_trunc('milliseconds', slot) < slot THEN slot := date_trunc('milliseconds', slot) + interval '1 millisecond'; END IF;
        now_ms := extract(epoch FROM db_now)::double precision * 1000;
        trunk_interval_ms := (1000 + p_lateness_ms) / (trunk.rate * p_clock_scale);
        IF p_campaign_id IS NOT NULL THEN
          SELECT max_calls_per_second AS rate, next_call_at AS next INTO campaign FROM campaigns
            WHERE practice_id = p_practice_id AND campaign_id = p_campaign_id FOR UPDATE;
          IF FOUND THEN
            IF campaign.next > slot THEN
              taken := false;
              retry_in_ms := ceil(extract(epoch FROM campaign.next - db_now)::double precision * 1000);
              ended_ms := extract(epoch FROM clock_timestamp())::double precision * 1000;
              RETURN;
            END IF;
            campaign_interval_ms := (1000 + p_lateness_ms) / (campaign.rate * p_clock_scale);
            UPDATE campaigns SET next_call_at = slot + (p_slots * campaign_interval_ms) * interval '1 millisecond'
              WHERE practice_id = p_practice_id AND campaign_id = p_campaign_id;
          END IF;
        END IF;
        UPDATE trunk_limits SET next_call_at = slot + (p_slots * trunk_interval_ms) * interval '1 millisecond' WHERE trunk_id = p_trunk_id;
        taken := true;
        slot_ms := extract(epoch FROM slot)::double precision * 1000;
        ended_ms := extract(epoch FROM clock_timestamp())::double precision * 1000;
      END $$;
    `,
  },
  {
    version: 8,
    name: 'the channel grant tick in one statement',
    sql: `
      -- One grant tick of a trunk's channel gate (src/pacing/grant-tick.ts), in one statement: the
      -- trunk's row is locked for the statement alone, never across round trips to a client (on the
      -- embedded database a transaction holds the whole database for its length). In order: sweep
      -- (optional), the caller's waiter rows written, the leases in use counted, the agent's room
      -- (agent_workers; an advisory lock per agent name), the free channels granted — extra legs
      -- first (they need no agent), then calls by the fair-share rule of src/pacing/fair-share.ts
      -- (fewest in use per practice first, ties by the soonest deadline, then first come, then
      -- holder; a campaign never above its channels) — and the caller's watched holders reported
      -- as leased or refused (cancelled campaign).
      CREATE FUNCTION grant_tick(
        p_trunk_id text,
        p_holders text[], p_practices text[], p_campaigns text[], p_deadlines timestamptz[],
        p_watch text[], p_sweep boolean,
        p_lease_ttl_ms double precision, p_waiter_ttl_ms double precision, p_keep_expired_ms double precision,
        p_running text, p_cancelled text,
        OUT o_has_trunk boolean, OUT o_channels integer, OUT o_in_use integer,
        OUT o_granted text[], OUT o_leased text[], OUT o_cancelled text[],
        OUT o_agent_name text, OUT o_agent_capacity integer, OUT o_agent_in_use integer
      ) LANGUAGE plpgsql AS $$
      DECLARE
        v_agent text;
        channel_free integer;
        agent_free integer; -- NULL: no agent bound
        calls_free integer;
        legs integer := 0;
        r record;
        w_count integer; w_capacity integer; w_active integer; w_ready integer; agent_leases integer;
        pr_name text[] := '{}'; pr_used integer[] := '{}';
        cu_key text[] := '{}'; cu_used integer[] := '{}';
        cr_key text[] := '{}'; cr_room integer[] := '{}';
        c_holder text[] := '{}'; c_practice text[] := '{}'; c_key text[] := '{}';
        c_deadline timestamptz[] := '{}'; c_enqueued timestamptz[] := '{}'; c_taken boolean[] := '{}';
        n integer := 0;
        i integer; best integer; best_used integer; used_i integer; idx integer; k text;
      BEGIN
        o_granted := '{}'; o_leased := '{}'; o_cancelled := '{}'; o_in_use := 0;
        SELECT t.max_channels, t.agent_name INTO o_channels, v_agent FROM trunk_limits t WHERE t.trunk_id = p_trunk_id FOR UPDATE;
        o_has_trunk := FOUND;
        IF NOT o_has_trunk THEN RETURN; END IF;
        IF p_sweep THEN
          DELETE FROM channel_leases l WHERE l.trunk_id = p_trunk_id AND l.expires_at < now() - p_keep_expired_ms * interval '1 millisecond';
          DELETE FROM channel_waiters w WHERE w.trunk_id = p_trunk_id AND w.alive_until < now();
        END IF;
        IF cardinality(p_holders) > 0 THEN
          -- A holder with a live lease is not waiting any more (granted by another process's tick).
          INSERT INTO channel_waiters AS w (holder, trunk_id, practice_id, campaign_id, deadline, alive_until)
          SELECT u.holder, p_trunk_id, u.practice_id, u.campaign_id, u.deadline, now() + p_waiter_ttl_ms * interval '1 millisecond'
          FROM unnest(p_holders, p_practices, p_campaigns, p_deadlines) AS u (holder, practice_id, campaign_id, deadline)
          WHERE NOT EXISTS (SELECT 1 FROM channel_leases l WHERE l.holder = u.holder AND l.expires_at > now())
          ON CONFLICT (holder) DO UPDATE SET alive_until = EXCLUDED.alive_until, deadline = EXCLUDED.deadline;
        END IF;
        -- Leases in use, per practice and per campaign.
        FOR r IN SELECT l.practice_id, l.campaign_id, count(*)::integer AS used FROM channel_leases l
                 WHERE l.trunk_id = p_trunk_id AND l.expires_at > now() GROUP BY l.practice_id, l.campaign_id LOOP
          o_in_use := o_in_use + r.used;
          idx := array_position(pr_name, r.practice_id);
          IF idx IS NULL THEN
            pr_name := pr_name || r.practice_id;
            pr_used := pr_used || r.used;
          ELSE
            pr_used[idx] := pr_used[idx] + r.used;
          END IF;
          IF r.campaign_id IS NOT NULL THEN
            cu_key := cu_key || (r.practice_id || E'\\x1f' || r.campaign_id);
            cu_used := cu_used || r.used;
          END IF;
        END LOOP;
        -- Dials never outrun the agents: the leases of every trunk naming the agent stay within the
        -- capacity its live workers report (extra legs are served by their call's agent: not counted).
        IF v_agent IS NOT NULL THEN
          PERFORM pg_advisory_xact_lock(hashtext('agent-capacity:' || v_agent));
          SELECT count(*), COALESCE(sum(a.capacity), 0), COALESCE(sum(a.active_calls), 0), COALESCE(sum(a.ready_processes), 0)
            INTO w_count, w_capacity, w_active, w_ready
            FROM agent_workers a WHERE a.agent_name = v_agent AND a.expires_at > now();
          IF w_count > 0 THEN
            SELECT count(*) INTO agent_leases FROM channel_leases l JOIN trunk_limits t ON t.trunk_id = l.trunk_id
              WHERE t.agent_name = v_agent AND l.expires_at > now() AND NOT (l.holder ~ '/staff#a[0-9]+$');
            -- A new call needs a warm process; leases without a call in progress yet each take one.
            o_agent_name := v_agent;
            o_agent_capacity := greatest(0, least(w_capacity, agent_leases + w_ready - greatest(0, agent_leases - w_active)));
            o_agent_in_use := agent_leases;
            agent_free := o_agent_capacity - agent_leases;
          END IF;
        END IF;
        channel_free := o_channels - o_in_use;
        calls_free := least(channel_free, COALESCE(agent_free, channel_free));
        IF channel_free > 0 AND (calls_free > 0 OR agent_free IS NOT NULL) THEN
          -- Per (practice, campaign), its soonest eligible waiters: as many calls as could be granted,
          -- and extra legs up to the free channels.
          FOR r IN SELECT * FROM (
                     SELECT w.holder, w.practice_id, w.campaign_id, w.deadline, w.enqueued_at, c.max_channels,
                            (w.holder ~ '/staff#a[0-9]+$') AS leg,
                            row_number() OVER (PARTITION BY w.practice_id, w.campaign_id, (w.holder ~ '/staff#a[0-9]+$')
                                               ORDER BY w.deadline, w.enqueued_at, w.holder COLLATE "C") AS rn
                     FROM channel_waiters w
                     LEFT JOIN campaigns c ON c.practice_id = w.practice_id AND c.campaign_id = w.campaign_id
                     WHERE w.trunk_id = p_trunk_id AND w.alive_until >= now() AND (c.state IS NULL OR c.state = p_running)
                   ) ranked
                   WHERE ranked.rn <= CASE WHEN ranked.leg THEN channel_free ELSE greatest(calls_free, 0) END LOOP
            IF r.leg THEN
              IF legs < channel_free THEN
                o_granted := o_granted || r.holder;
                legs := legs + 1;
              END IF;
              CONTINUE;
            END IF;
            n := n + 1;
            c_holder[n] := r.holder;
            c_practice[n] := r.practice_id;
            c_deadline[n] := r.deadline;
            c_enqueued[n] := r.enqueued_at;
            c_taken[n] := false;
            k := NULL;
            IF r.campaign_id IS NOT NULL AND r.max_channels IS NOT NULL THEN
              k := r.practice_id || E'\\x1f' || r.campaign_id;
              IF array_position(cr_key, k) IS NULL THEN
                idx := array_position(cu_key, k);
                cr_key := cr_key || k;
                cr_room := cr_room || (r.max_channels - COALESCE(cu_used[idx], 0));
              END IF;
            END IF;
            c_key[n] := k;
          END LOOP;
          calls_free := least(channel_free - legs, COALESCE(agent_free, channel_free));
          WHILE calls_free > 0 LOOP
            best := NULL;
            FOR i IN 1..n LOOP
              CONTINUE WHEN c_taken[i];
              -- A full campaign's waiters wait on.
              IF c_key[i] IS NOT NULL AND cr_room[array_position(cr_key, c_key[i])] <= 0 THEN CONTINUE; END IF;
              idx := array_position(pr_name, c_practice[i]);
              used_i := CASE WHEN idx IS NULL THEN 0 ELSE pr_used[idx] END;
              IF best IS NULL OR used_i < best_used
                 OR (used_i = best_used AND (c_deadline[i], c_enqueued[i], c_holder[i] COLLATE "C") < (c_deadline[best], c_enqueued[best], c_holder[best] COLLATE "C")) THEN
                best := i;
                best_used := used_i;
              END IF;
            END LOOP;
            EXIT WHEN best IS NULL;
            c_taken[best] := true;
            o_granted := o_granted || c_holder[best];
            calls_free := calls_free - 1;
            idx := array_position(pr_name, c_practice[best]);
            IF idx IS NULL THEN
              pr_name := pr_name || c_practice[best];
              pr_used := pr_used || 1;
            ELSE
              pr_used[idx] := pr_used[idx] + 1;
            END IF;
            IF c_key[best] IS NOT NULL THEN
              idx := array_position(cr_key, c_key[best]);
              cr_room[idx] := cr_room[idx] - 1;
            END IF;
          END LOOP;
          IF cardinality(o_granted) > 0 THEN
            -- The waiters become leases in one statement.
            WITH moved AS (DELETE FROM channel_waiters w WHERE w.holder = ANY(o_granted) RETURNING w.holder, w.trunk_id, w.practice_id, w.campaign_id, w.deadline)
            INSERT INTO channel_leases AS l (holder, trunk_id, practice_id, campaign_id, deadline, granted_at, expires_at)
            SELECT m.holder, m.trunk_id, m.practice_id, m.campaign_id, m.deadline, now(), now() + p_lease_ttl_ms * interval '1 millisecond' FROM moved m
            ON CONFLICT (holder) DO UPDATE SET trunk_id = EXCLUDED.trunk_id, practice_id = EXCLUDED.practice_id,
              campaign_id = EXCLUDED.campaign_id, deadline = EXCLUDED.deadline, granted_at = EXCLUDED.granted_at, expires_at = EXCLUDED.expires_at;
            o_in_use := o_in_use + cardinality(o_granted);
            IF o_agent_name IS NOT NULL THEN o_agent_in_use := o_agent_in_use + cardinality(o_granted) - legs; END IF;
          END IF;
        END IF;
        IF cardinality(p_watch) > 0 THEN
          SELECT COALESCE(array_agg(l.holder), '{}') INTO o_leased FROM channel_leases l WHERE l.holder = ANY(p_watch) AND l.expires_at > now();
          SELECT COALESCE(array_agg(w.holder), '{}') INTO o_cancelled FROM channel_waiters w
            JOIN campaigns c ON c.practice_id = w.practice_id AND c.campaign_id = w.campaign_id
            WHERE w.holder = ANY(p_watch) AND c.state = p_cancelled;
          IF cardinality(o_cancelled) > 0 THEN
            DELETE FROM channel_waiters w WHERE w.holder = ANY(o_cancelled);
          END IF;
        END IF;
      END $$;
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
