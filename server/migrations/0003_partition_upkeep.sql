-- 0003: monthly partitions of events, created ahead by the migration and by the worker
-- (docs/architecture.md §4.2). Idempotent; a month whose rows already sit in the DEFAULT partition is
-- skipped with a notice rather than failing the whole upkeep.
CREATE FUNCTION audit_ensure_event_partitions(months_ahead integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date - interval '1 month';
  last date := date_trunc('month', now() AT TIME ZONE 'UTC')::date + make_interval(months => months_ahead);
  name text;
  created integer := 0;
BEGIN
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

SELECT audit_ensure_event_partitions(3);
