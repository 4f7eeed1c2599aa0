-- 0018: the FHIR `date` search parameter is AuditEvent.recorded, i.e. the event's "timestamp" (the
-- producer's time; ingest stores recordedAt there when none was sent), and `_sort=date|-date` pages
-- in ("timestamp", id) order. The partitions (by recorded_at) cannot prune on it, so without this
-- index a date-only search, or a search with no parameters, would sort every event of the tenant;
-- with it each page is an ordered index scan per partition, merged, reading count + 1 rows.
CREATE INDEX events_timestamp_idx ON events (organization_id, "timestamp", id);
