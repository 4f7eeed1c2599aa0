-- 0010: closes the gaps in the append-only rules of 0002 that the append-only matrix test
-- (server/test/db/append-only-matrix.test.ts) found; 0002 is applied and checksummed, so the fixes
-- come as a new migration.
-- 1. The head could be rewritten in place: the same size with another root or frontier (a forged
--    tree) passed, since only a smaller size was refused. Root and frontier now change only when
--    the head grows.
-- 2. signing_keys had no TRUNCATE trigger: every verifier key could be removed in one statement.
-- 3. A statement trigger on a partitioned table does not fire for TRUNCATE of one partition, so
--    `TRUNCATE events_y2026m01` erased a month of events. Every partition gets its own trigger,
--    and the upkeep function adds it to each partition it creates.

CREATE OR REPLACE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.size < OLD.size THEN
    RAISE EXCEPTION 'audit ledger head may only grow (size % -> %)', OLD.size, NEW.size
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.size = OLD.size AND (NEW.root_hash IS DISTINCT FROM OLD.root_hash OR NEW.frontier IS DISTINCT FROM OLD.frontier) THEN
    RAISE EXCEPTION 'audit ledger head: root and frontier change only when the head grows (size %)', OLD.size
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER signing_keys_no_truncate BEFORE TRUNCATE ON signing_keys FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

DO $$
DECLARE
  part text;
BEGIN
  FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass LOOP
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()',
      part || '_no_truncate', part);
  END LOOP;
END;
$$;

-- As in 0006 (owner's rights, bounded), plus the TRUNCATE trigger on each new partition.
CREATE OR REPLACE FUNCTION audit_ensure_event_partitions(months_ahead integer) RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date - interval '1 month';
  last date;
  name text;
  created integer := 0;
BEGIN
  IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 36 THEN
    RAISE EXCEPTION 'months_ahead must be between 0 and 36, got %', months_ahead USING ERRCODE = 'invalid_parameter_value';
  END IF;
  last := date_trunc('month', now() AT TIME ZONE 'UTC')::date + make_interval(months => months_ahead);
  WHILE m <= last LOOP
    name := format('events_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
    IF to_regclass(name) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
          name, (m::timestamp AT TIME ZONE 'UTC'), ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()',
          name || '_no_truncate', name);
        created := created + 1;
      EXCEPTION WHEN check_violation OR invalid_object_definition THEN
        RAISE NOTICE 'partition % skipped: rows for it are in events_default', name;
      END;
    END IF;
    m := m + interval '1 month';
  END LOOP;
  RETURN created;
END;
$$;
