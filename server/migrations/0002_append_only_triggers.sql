-- 0002: the ledger tables are append-only (docs/architecture.md §4.3). These triggers hold even for the
-- table owner; only a superuser who disables them can rewrite history, and the verifier and the
-- self-audit catch that.

CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit ledger table % is append-only: % rejected', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Events may only be erased: value columns set to NULL and salts removed, everything that the
-- ledger commits to (ids, time, leaf, commitments) unchanged. GDPR erasure keeps every proof valid.
CREATE FUNCTION audit_events_erasure_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  k text;
BEGIN
  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.id IS DISTINCT FROM OLD.id
     OR NEW.recorded_at IS DISTINCT FROM OLD.recorded_at OR NEW.leaf_index IS DISTINCT FROM OLD.leaf_index
     OR NEW.leaf_hash IS DISTINCT FROM OLD.leaf_hash OR NEW.commitments IS DISTINCT FROM OLD.commitments THEN
    RAISE EXCEPTION 'audit events: only erasure is allowed (committed columns changed)' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW."timestamp" IS DISTINCT FROM OLD."timestamp" AND NEW."timestamp" IS NOT NULL)
     OR (NEW.action IS DISTINCT FROM OLD.action AND NEW.action IS NOT NULL)
     OR (NEW.status IS DISTINCT FROM OLD.status AND NEW.status IS NOT NULL)
     OR (NEW.principal_id IS DISTINCT FROM OLD.principal_id AND NEW.principal_id IS NOT NULL)
     OR (NEW.principal_type IS DISTINCT FROM OLD.principal_type AND NEW.principal_type IS NOT NULL)
     OR (NEW.target_resource_type IS DISTINCT FROM OLD.target_resource_type AND NEW.target_resource_type IS NOT NULL)
     OR (NEW.target_resource_id IS DISTINCT FROM OLD.target_resource_id AND NEW.target_resource_id IS NOT NULL)
     OR (NEW.patient_id IS DISTINCT FROM OLD.patient_id AND NEW.patient_id IS NOT NULL)
     OR (NEW.outcome_description IS DISTINCT FROM OLD.outcome_description AND NEW.outcome_description IS NOT NULL)
     OR (NEW.data_classification IS DISTINCT FROM OLD.data_classification AND NEW.data_classification IS NOT NULL)
     OR (NEW.correlation_id IS DISTINCT FROM OLD.correlation_id AND NEW.correlation_id IS NOT NULL)
     OR (NEW.session_context IS DISTINCT FROM OLD.session_context AND NEW.session_context IS NOT NULL)
     OR (NEW.retention_policy IS DISTINCT FROM OLD.retention_policy AND NEW.retention_policy IS NOT NULL)
     OR (NEW.event_version IS DISTINCT FROM OLD.event_version AND NEW.event_version IS NOT NULL)
     OR (NEW.details IS DISTINCT FROM OLD.details AND NEW.details IS NOT NULL)
     OR (NEW.idempotency_key IS DISTINCT FROM OLD.idempotency_key AND NEW.idempotency_key IS NOT NULL) THEN
    RAISE EXCEPTION 'audit events: only erasure is allowed (a value may only be set to NULL)' USING ERRCODE = 'insufficient_privilege';
  END IF;
  FOR k IN SELECT jsonb_object_keys(NEW.salts) LOOP
    IF NOT (OLD.salts ? k) OR (OLD.salts -> k) IS DISTINCT FROM (NEW.salts -> k) THEN
      RAISE EXCEPTION 'audit events: only erasure is allowed (salts may only be removed)' USING ERRCODE = 'insufficient_privilege';
    END IF;
  END LOOP;
  IF OLD.erased_at IS NOT NULL AND NEW.erased_at IS DISTINCT FROM OLD.erased_at THEN
    RAISE EXCEPTION 'audit events: erased_at is immutable once set' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

-- The head only moves forward: a rollback of size is tampering.
CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.size < OLD.size THEN
    RAISE EXCEPTION 'audit ledger head may only grow (size % -> %)', OLD.size, NEW.size
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

-- A signing key's window may be closed (rotation), never reopened or rewritten.
CREATE FUNCTION audit_signing_key_close_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.name IS DISTINCT FROM OLD.name
     OR NEW.verifier_key IS DISTINCT FROM OLD.verifier_key OR NEW.not_before IS DISTINCT FROM OLD.not_before
     OR (OLD.not_after IS NOT NULL AND NEW.not_after IS DISTINCT FROM OLD.not_after) THEN
    RAISE EXCEPTION 'signing keys may only be retired' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER events_erasure_only BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION audit_events_erasure_only();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

CREATE TRIGGER ledger_nodes_append_only BEFORE UPDATE OR DELETE ON ledger_nodes FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER ledger_nodes_no_truncate BEFORE TRUNCATE ON ledger_nodes FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER idempotency_append_only BEFORE UPDATE OR DELETE ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER idempotency_no_truncate BEFORE TRUNCATE ON idempotency_keys FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER ledger_heads_forward_only BEFORE UPDATE ON ledger_heads FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER ledger_heads_no_delete BEFORE DELETE ON ledger_heads FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER ledger_heads_no_truncate BEFORE TRUNCATE ON ledger_heads FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER signing_keys_close_only BEFORE UPDATE ON signing_keys FOR EACH ROW EXECUTE FUNCTION audit_signing_key_close_only();
CREATE TRIGGER signing_keys_no_delete BEFORE DELETE ON signing_keys FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
