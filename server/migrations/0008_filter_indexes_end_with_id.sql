-- 0008: every filter index ends with (recorded_at, id), the full keyset order of events.query, so a
-- filtered page is read in index order without an incremental sort over ties (a group commit gives
-- up to 1000 events the same recorded_at).
DROP INDEX IF EXISTS events_principal_idx;
DROP INDEX IF EXISTS events_action_idx;
DROP INDEX IF EXISTS events_patient_idx;
DROP INDEX IF EXISTS events_target_idx;
DROP INDEX IF EXISTS events_correlation_idx;
CREATE INDEX events_principal_idx ON events (organization_id, principal_id, recorded_at, id);
CREATE INDEX events_action_idx ON events (organization_id, action, recorded_at, id);
CREATE INDEX events_patient_idx ON events (organization_id, patient_id, recorded_at, id);
CREATE INDEX events_target_idx ON events (organization_id, target_resource_type, target_resource_id, recorded_at, id);
CREATE INDEX events_correlation_idx ON events (organization_id, correlation_id, recorded_at, id);
