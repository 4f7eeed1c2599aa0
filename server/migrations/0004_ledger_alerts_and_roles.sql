-- 0004: self-audit alert records, and the grants of the two PostgreSQL roles (docs/verification.md
-- "Database roles"). Hand-written: Drizzle has no words for triggers, grants or conditional DDL.

-- What the continuous self-audit (and the witness check) found wrong, one row per distinct finding.
-- Append-only like the ledger itself, so an intruder cannot quietly clear the evidence.
CREATE TABLE ledger_alerts (
  organization_id uuid NOT NULL,
  id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL CHECK (kind IN ('leaf', 'checkpoint', 'bundle', 'node', 'head', 'witness')),
  leaf_index bigint,
  tree_size bigint,
  reason text NOT NULL,
  PRIMARY KEY (organization_id, id)
);
CREATE INDEX ledger_alerts_recent_idx ON ledger_alerts (organization_id, created_at);
CREATE TRIGGER ledger_alerts_append_only BEFORE UPDATE OR DELETE ON ledger_alerts FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER ledger_alerts_no_truncate BEFORE TRUNCATE ON ledger_alerts FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

-- Roles. The migration role (owner of every table: DDL, partition maintenance, retention by
-- detaching whole partitions) and the runtime role (what api and worker pods log in as) are
-- created by the operator, not here: creating roles needs cluster-wide rights. When a role named
-- audit_runtime exists, it gets exactly what the server needs and nothing more: no DDL, no
-- TRUNCATE, no DELETE anywhere, and UPDATE only where a trigger narrows it to the allowed change
-- (event erasure, the head moving forward, a key being retired, an API key being revoked).
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM audit_runtime';
    EXECUTE 'GRANT USAGE ON SCHEMA public TO audit_runtime';
    EXECUTE 'GRANT SELECT, INSERT ON organizations, api_keys, events, ledger_heads, ledger_nodes, checkpoints, signing_keys, idempotency_keys, ledger_alerts TO audit_runtime';
    EXECUTE 'GRANT SELECT ON schema_migrations TO audit_runtime';
    EXECUTE 'GRANT UPDATE (revoked_at) ON api_keys TO audit_runtime';
    EXECUTE 'GRANT UPDATE ON events, ledger_heads TO audit_runtime';
    EXECUTE 'GRANT UPDATE (not_after) ON signing_keys TO audit_runtime';
  END IF;
END;
$$;
