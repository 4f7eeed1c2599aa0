-- 0006: the worker logs in as the runtime role, which has no DDL rights, yet must create monthly
-- partitions ahead (docs/architecture.md §4.2). The upkeep function therefore runs with its owner's rights
-- (the migration role), may only be called by the runtime role, and bounds how far ahead it goes,
-- so the one DDL path the runtime role has cannot be used to flood the catalog.
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

REVOKE EXECUTE ON FUNCTION audit_ensure_event_partitions(integer) FROM PUBLIC;
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    EXECUTE 'GRANT EXECUTE ON FUNCTION audit_ensure_event_partitions(integer) TO audit_runtime';
  END IF;
END;
$$;
