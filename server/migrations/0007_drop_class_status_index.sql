-- 0007: drop the (data_classification, status) index. Both columns have a handful of values and
-- most events share them (PHI, success), so for "newest 50 matching" the planner's best path is the
-- primary key in recorded_at order with a filter; with IN lists the composite index forced it to
-- collect and sort most of the tenant's rows instead (bench/ingest.ts at 1M events: p50 349 ms for
-- this shape, 6–16 ms for the selective filters). One fewer index also makes every append cheaper.
DROP INDEX IF EXISTS events_class_status_idx;
