-- 0012: patient rights and retention (docs/privacy.md): per-organization keys for keyed hashes and
-- pseudonyms, erasure requests, legal holds, retention policies, archives, and the guarded drop of
-- an events partition. Hand-written: Drizzle has no words for the triggers, the partial index, the
-- SECURITY DEFINER function or the grants.
--
-- Nothing here holds an erased value after its erasure completes: an erasure request keeps the
-- subject's identifier only while it runs (to resume after a crash) and only its keyed hash after;
-- holds keep only keyed hashes; pseudonym mappings of a subject are deleted by its erasure.

-- One secret per organization and version (rotation adds a version and retires the previous one;
-- old versions stay so that earlier keyed hashes can still be checked).
CREATE TABLE privacy_keys (
  organization_id uuid NOT NULL REFERENCES organizations (id),
  version integer NOT NULL CHECK (version >= 1),
  secret bytea NOT NULL CHECK (octet_length(secret) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz,
  PRIMARY KEY (organization_id, version)
);
CREATE UNIQUE INDEX privacy_keys_one_active_idx ON privacy_keys (organization_id) WHERE retired_at IS NULL;

-- Which event fields are personal (erased by a subject erasure); absent = the default list.
CREATE TABLE privacy_settings (
  organization_id uuid PRIMARY KEY REFERENCES organizations (id),
  personal_fields text[] NOT NULL,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Pseudonyms shown to callers who may not see direct identifiers, so that they can filter by one
-- and a privileged caller can resolve it. Rows of a subject are deleted by its erasure.
CREATE TABLE privacy_pseudonyms (
  organization_id uuid NOT NULL,
  pseudonym text NOT NULL,
  key_version integer NOT NULL,
  value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, pseudonym)
);
CREATE INDEX privacy_pseudonyms_value_idx ON privacy_pseudonyms (organization_id, value);

-- Erasure requests (by a person, or by a retention run). `subject_value` is held only while the
-- request runs, so that a restarted process can finish it; completion clears it in the same
-- statement that records the state.
CREATE TABLE privacy_erasures (
  organization_id uuid NOT NULL,
  id uuid NOT NULL,
  subject_field text NOT NULL,
  subject_hash text NOT NULL,
  key_version integer NOT NULL,
  subject_value text,
  fields text[] NOT NULL,
  reason text NOT NULL,
  state text NOT NULL CHECK (state IN ('running', 'completed')),
  requested_by text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  events_erased bigint NOT NULL DEFAULT 0,
  batches integer NOT NULL DEFAULT 0,
  lease_owner text,
  lease_until timestamptz,
  PRIMARY KEY (organization_id, id),
  CHECK ((state = 'running') = (subject_value IS NOT NULL)),
  CHECK ((state = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX privacy_erasures_running_idx ON privacy_erasures (requested_at) WHERE state = 'running';
CREATE INDEX privacy_erasures_recent_idx ON privacy_erasures (organization_id, requested_at);

-- A completed request is final, and a subject value, once removed, never comes back.
CREATE FUNCTION privacy_erasure_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.id IS DISTINCT FROM OLD.id
     OR NEW.subject_field IS DISTINCT FROM OLD.subject_field OR NEW.subject_hash IS DISTINCT FROM OLD.subject_hash
     OR NEW.key_version IS DISTINCT FROM OLD.key_version OR NEW.fields IS DISTINCT FROM OLD.fields
     OR NEW.reason IS DISTINCT FROM OLD.reason OR NEW.requested_by IS DISTINCT FROM OLD.requested_by
     OR NEW.requested_at IS DISTINCT FROM OLD.requested_at
     OR (NEW.subject_value IS NOT NULL AND NEW.subject_value IS DISTINCT FROM OLD.subject_value)
     OR OLD.state = 'completed' THEN
    RAISE EXCEPTION 'privacy erasure requests only move forward' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER privacy_erasures_forward_only BEFORE UPDATE ON privacy_erasures FOR EACH ROW EXECUTE FUNCTION privacy_erasure_forward_only();
CREATE TRIGGER privacy_erasures_no_delete BEFORE DELETE ON privacy_erasures FOR EACH ROW EXECUTE FUNCTION audit_reject_change();

-- Legal holds: by organization, by subject (keyed hash only) or by a recorded_at range. Placing
-- and releasing are audited in the log; a hold is never deleted, only released (once).
CREATE TABLE legal_holds (
  organization_id uuid NOT NULL,
  id uuid NOT NULL,
  scope text NOT NULL CHECK (scope IN ('organization', 'subject', 'timeRange')),
  subject_field text,
  subject_hash text,
  key_version integer,
  range_from timestamptz,
  range_to timestamptz,
  reason text NOT NULL,
  placed_by text NOT NULL,
  placed_at timestamptz NOT NULL DEFAULT now(),
  released_by text,
  released_at timestamptz,
  PRIMARY KEY (organization_id, id),
  CHECK ((scope = 'subject') = (subject_hash IS NOT NULL AND key_version IS NOT NULL AND subject_field IS NOT NULL)),
  CHECK (scope <> 'timeRange' OR (range_from IS NOT NULL OR range_to IS NOT NULL)),
  CHECK ((released_at IS NULL) = (released_by IS NULL))
);
CREATE INDEX legal_holds_active_idx ON legal_holds (organization_id) WHERE released_at IS NULL;

CREATE FUNCTION legal_hold_release_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.released_at IS NOT NULL OR NEW.released_at IS NULL
     OR NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.id IS DISTINCT FROM OLD.id
     OR NEW.scope IS DISTINCT FROM OLD.scope OR NEW.subject_field IS DISTINCT FROM OLD.subject_field
     OR NEW.subject_hash IS DISTINCT FROM OLD.subject_hash OR NEW.key_version IS DISTINCT FROM OLD.key_version
     OR NEW.range_from IS DISTINCT FROM OLD.range_from OR NEW.range_to IS DISTINCT FROM OLD.range_to
     OR NEW.reason IS DISTINCT FROM OLD.reason OR NEW.placed_by IS DISTINCT FROM OLD.placed_by
     OR NEW.placed_at IS DISTINCT FROM OLD.placed_at THEN
    RAISE EXCEPTION 'legal holds may only be released, once' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER legal_holds_release_only BEFORE UPDATE ON legal_holds FOR EACH ROW EXECUTE FUNCTION legal_hold_release_only();
CREATE TRIGGER legal_holds_no_delete BEFORE DELETE ON legal_holds FOR EACH ROW EXECUTE FUNCTION audit_reject_change();

-- Retention policies per organization and data classification ('*' = every classification
-- without a policy of its own). NULL days = never.
CREATE TABLE retention_policies (
  organization_id uuid NOT NULL REFERENCES organizations (id),
  data_classification text NOT NULL,
  archive_after_days integer CHECK (archive_after_days >= 0),
  erase_after_days integer CHECK (erase_after_days >= 0),
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, data_classification)
);

-- Archives written by retention runs: a verifiable export bundle of leaves [start_leaf, end_leaf).
CREATE TABLE retention_archives (
  organization_id uuid NOT NULL,
  id uuid NOT NULL,
  start_leaf bigint NOT NULL CHECK (start_leaf >= 0),
  end_leaf bigint NOT NULL,
  events bigint NOT NULL,
  destination text NOT NULL,
  object_name text NOT NULL,
  sha256 text NOT NULL,
  bytes bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id),
  CHECK (end_leaf > start_leaf)
);
CREATE TRIGGER retention_archives_append_only BEFORE UPDATE OR DELETE ON retention_archives FOR EACH ROW EXECUTE FUNCTION audit_reject_change();

-- Per organization: every leaf below archived_through is in a recorded archive; leaves below
-- dropped_through may be gone (their partition was dropped; their tree nodes stay).
CREATE TABLE retention_state (
  organization_id uuid PRIMARY KEY,
  archived_through bigint NOT NULL DEFAULT 0 CHECK (archived_through >= 0),
  dropped_through bigint NOT NULL DEFAULT 0 CHECK (dropped_through >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (dropped_through <= archived_through)
);

CREATE FUNCTION retention_state_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.archived_through < OLD.archived_through
     OR NEW.dropped_through < OLD.dropped_through THEN
    RAISE EXCEPTION 'retention state only moves forward' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER retention_state_forward_only BEFORE UPDATE ON retention_state FOR EACH ROW EXECUTE FUNCTION retention_state_forward_only();
CREATE TRIGGER retention_state_no_delete BEFORE DELETE ON retention_state FOR EACH ROW EXECUTE FUNCTION audit_reject_change();

-- The one way an events partition goes away: detached and dropped by its owner's rights, only when
-- it is a monthly partition (never DEFAULT) whose every row is erased and lies below its
-- organization's archived_through, and no active legal hold covers the organization or the
-- month (a subject's held events are never erased, so they keep their partition anyway). Tree nodes and checkpoints are untouched, so proofs of every remaining event still
-- verify. Returns the rows dropped per organization recorded in retention_state.dropped_through.
CREATE FUNCTION audit_drop_event_partition(part text) RETURNS bigint LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  bound text;
  lo timestamptz;
  hi timestamptz;
  n bigint;
  blocked boolean;
BEGIN
  IF part !~ '^events_y[0-9]{4}m[0-9]{2}$' THEN
    RAISE EXCEPTION 'not a monthly events partition: %', part USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT pg_get_expr(c.relpartbound, c.oid) INTO bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = 'events'::regclass AND c.relname = part;
  IF bound IS NULL THEN
    RAISE EXCEPTION 'no partition % of events', part USING ERRCODE = 'undefined_table';
  END IF;
  lo := (regexp_match(bound, 'FROM \(''([^'']+)''\)'))[1]::timestamptz;
  hi := (regexp_match(bound, 'TO \(''([^'']+)''\)'))[1]::timestamptz;
  EXECUTE format(
    'SELECT EXISTS (SELECT 1 FROM %I e LEFT JOIN retention_state s ON s.organization_id = e.organization_id
       WHERE e.erased_at IS NULL OR s.organization_id IS NULL OR e.leaf_index >= s.archived_through)', part) INTO blocked;
  IF blocked THEN
    RAISE EXCEPTION 'partition % holds rows that are not archived and erased', part USING ERRCODE = 'object_in_use';
  END IF;
  EXECUTE format(
    'SELECT EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL AND h.organization_id IN (SELECT DISTINCT organization_id FROM %I)
       AND (h.scope = ''organization''
            OR (h.scope = ''timeRange'' AND coalesce(h.range_from, ''-infinity'') < $2 AND coalesce(h.range_to, ''infinity'') > $1)))', part)
    INTO blocked USING lo, hi;
  IF blocked THEN
    RAISE EXCEPTION 'a legal hold covers partition %', part USING ERRCODE = 'object_in_use';
  END IF;
  EXECUTE format(
    'UPDATE retention_state s SET dropped_through = greatest(s.dropped_through, d.hi), updated_at = now()
       FROM (SELECT organization_id, max(leaf_index) + 1 AS hi FROM %I GROUP BY organization_id) d
      WHERE s.organization_id = d.organization_id', part);
  EXECUTE format('SELECT count(*) FROM %I', part) INTO n;
  EXECUTE format('ALTER TABLE events DETACH PARTITION %I', part);
  EXECUTE format('DROP TABLE %I', part);
  RETURN n;
END;
$$;
REVOKE EXECUTE ON FUNCTION audit_drop_event_partition(text) FROM PUBLIC;

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE ON privacy_keys, privacy_settings, privacy_erasures, legal_holds, retention_policies, retention_state TO audit_runtime';
    EXECUTE 'GRANT SELECT, INSERT, DELETE ON privacy_pseudonyms TO audit_runtime';
    EXECUTE 'GRANT DELETE ON retention_policies TO audit_runtime';
    EXECUTE 'GRANT SELECT, INSERT ON retention_archives TO audit_runtime';
    EXECUTE 'GRANT EXECUTE ON FUNCTION audit_drop_event_partition(text) TO audit_runtime';
  END IF;
END;
$$;
