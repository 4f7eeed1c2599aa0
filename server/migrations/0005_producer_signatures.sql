-- 0005: optional producer signatures (docs/verification.md "Producer signatures"). A producer may
-- sign its event (Ed25519 over the RFC 8785 JCS of the event as sent, without the signature) with
-- a key registered for its organization; the server verifies it on ingest and stores it beside the
-- event. It is not a committed field: the leaf format of docs/ledger-spec.md §5 is unchanged, and the
-- verifier checks the signature separately against the committed values.

CREATE TABLE producer_keys (
  organization_id uuid NOT NULL REFERENCES organizations (id),
  key_id text NOT NULL,
  name text NOT NULL,
  public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  PRIMARY KEY (organization_id, key_id)
);

-- Keys may be revoked once, never rewritten or removed: old signatures must stay checkable.
CREATE FUNCTION audit_producer_key_revoke_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.key_id IS DISTINCT FROM OLD.key_id
     OR NEW.name IS DISTINCT FROM OLD.name OR NEW.public_key IS DISTINCT FROM OLD.public_key
     OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at) THEN
    RAISE EXCEPTION 'producer keys may only be revoked' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER producer_keys_revoke_only BEFORE UPDATE ON producer_keys FOR EACH ROW EXECUTE FUNCTION audit_producer_key_revoke_only();
CREATE TRIGGER producer_keys_no_delete BEFORE DELETE ON producer_keys FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER producer_keys_no_truncate BEFORE TRUNCATE ON producer_keys FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

ALTER TABLE events ADD COLUMN producer_key_id text, ADD COLUMN producer_signature text;

-- The erasure trigger of 0002 predates these columns: a second trigger keeps them immutable.
CREATE FUNCTION audit_events_signature_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.producer_key_id IS DISTINCT FROM OLD.producer_key_id OR NEW.producer_signature IS DISTINCT FROM OLD.producer_signature THEN
    RAISE EXCEPTION 'audit events: producer signatures are immutable' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER events_signature_immutable BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION audit_events_signature_immutable();

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    EXECUTE 'GRANT SELECT, INSERT ON producer_keys TO audit_runtime';
    EXECUTE 'GRANT UPDATE (revoked_at) ON producer_keys TO audit_runtime';
  END IF;
END;
$$;
