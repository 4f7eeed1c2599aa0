-- 0017: the ledger outbox (docs/jobs.md "Ledger outbox"). A process that holds no signing key (a
-- worker given only verifier keys) cannot sign the checkpoint an append needs: it writes the events
-- it would append here instead, in the transaction of the change they record, and a process that
-- holds the key (an api replica) appends them through the normal ingest path and deletes each row
-- in the append's own transaction. Not a ledger table: rows are claimed, deleted once appended, and
-- set aside (failed_at, error_code) when the event can never be appended.
CREATE TABLE ledger_outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES organizations (id),
  -- Who enqueued it (`worker:retention`, `worker:privacy`, `worker:alerts`): for operators.
  source text NOT NULL,
  -- The event as the service would have appended it (an EventInput). NULL only for a set-aside row
  -- whose values a subject erasure removed.
  event jsonb,
  -- The event's idempotency key when it has one: a retried run does not enqueue the same event twice.
  dedupe_key text,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- A drainer's claim: the row is its own until claimed_until (a crashed drainer's rows come back).
  claimed_by uuid,
  claimed_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  -- Set aside: the event failed validation or the database refused it; never drained again.
  failed_at timestamptz,
  error_code text,
  UNIQUE (organization_id, dedupe_key),
  CHECK (event IS NOT NULL OR failed_at IS NOT NULL),
  CHECK ((failed_at IS NULL) = (error_code IS NULL))
);
CREATE INDEX ledger_outbox_pending_idx ON ledger_outbox (id) WHERE failed_at IS NULL;

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON ledger_outbox TO audit_runtime;
  END IF;
END $$;
