-- 0001: core schema. Hand-written because Drizzle cannot express declarative partitioning or
-- triggers (docs/architecture.md §4.1); server/src/db/schema/ mirrors these tables for queries, and a
-- test checks that every column Drizzle knows exists here with the same type.

CREATE TABLE organizations (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  organization_id uuid NOT NULL REFERENCES organizations (id),
  id uuid NOT NULL,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'producer', 'auditor')),
  lookup_id text NOT NULL,
  key_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  PRIMARY KEY (organization_id, id)
);
CREATE INDEX api_keys_lookup_idx ON api_keys (lookup_id);

-- Events: range-partitioned by month on recorded_at (docs/architecture.md §4.2). The primary key must
-- contain the partition key; id is a UUIDv7 whose timestamp equals recorded_at, so a lookup by id
-- can always name its partition.
CREATE TABLE events (
  organization_id uuid NOT NULL,
  id uuid NOT NULL,
  recorded_at timestamptz(3) NOT NULL,
  leaf_index bigint NOT NULL,
  leaf_hash bytea NOT NULL,
  "timestamp" timestamptz(3),
  action text,
  status text,
  principal_id text,
  principal_type text,
  target_resource_type text,
  target_resource_id text,
  patient_id text,
  outcome_description text,
  data_classification text,
  correlation_id text,
  session_context jsonb,
  retention_policy text,
  event_version text,
  details jsonb,
  idempotency_key text,
  commitments jsonb NOT NULL,
  salts jsonb NOT NULL,
  erased_at timestamptz,
  PRIMARY KEY (organization_id, recorded_at, id)
) PARTITION BY RANGE (recorded_at);

CREATE TABLE events_default PARTITION OF events DEFAULT;

-- One index per query filter (events.query), each leading with the tenant and ending with the
-- sort key so a filtered, sorted page is an index range scan.
CREATE INDEX events_leaf_idx ON events (organization_id, leaf_index);
CREATE INDEX events_principal_idx ON events (organization_id, principal_id, recorded_at);
CREATE INDEX events_action_idx ON events (organization_id, action, recorded_at);
CREATE INDEX events_patient_idx ON events (organization_id, patient_id, recorded_at);
CREATE INDEX events_target_idx ON events (organization_id, target_resource_type, target_resource_id, recorded_at);
CREATE INDEX events_correlation_idx ON events (organization_id, correlation_id, recorded_at);
CREATE INDEX events_class_status_idx ON events (organization_id, data_classification, status, recorded_at);

CREATE TABLE ledger_heads (
  organization_id uuid PRIMARY KEY,
  size bigint NOT NULL CHECK (size >= 0),
  root_hash bytea NOT NULL,
  frontier bytea NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ledger_nodes (
  organization_id uuid NOT NULL,
  level smallint NOT NULL CHECK (level >= 0 AND level < 64),
  idx bigint NOT NULL CHECK (idx >= 0),
  hash bytea NOT NULL CHECK (octet_length(hash) = 32),
  PRIMARY KEY (organization_id, level, idx)
);

CREATE TABLE checkpoints (
  organization_id uuid NOT NULL,
  tree_size bigint NOT NULL,
  root_hash bytea NOT NULL,
  note text NOT NULL,
  key_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, tree_size)
);

CREATE TABLE signing_keys (
  key_id text PRIMARY KEY,
  name text NOT NULL,
  verifier_key text NOT NULL,
  not_before timestamptz NOT NULL,
  not_after timestamptz
);

CREATE TABLE idempotency_keys (
  organization_id uuid NOT NULL,
  key text NOT NULL,
  event_id uuid NOT NULL,
  recorded_at timestamptz(3) NOT NULL,
  leaf_index bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, key)
);
