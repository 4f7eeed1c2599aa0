-- 0014: delivery to SIEMs and webhooks (docs/delivery.md). Destinations per organization (HTTPS
-- webhook, syslog over TLS, Splunk HEC) with their secret sealed (AES-256-GCM under
-- DELIVERY_SECRET_KEY; never returned by the API), the delivery cursor of each destination (the
-- first leaf not yet delivered and the batch in flight, so a retry resends the same batch with the
-- same id), an outbox of alerts and replayed batches delivered before the cursor moves on, and the
-- dead letters of batches that used up their attempts. Hand-written like the others.
CREATE TABLE delivery_destinations (
  organization_id uuid NOT NULL REFERENCES organizations (id),
  id uuid NOT NULL,
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('webhook', 'syslog', 'splunk_hec')),
  url text NOT NULL,
  carries text NOT NULL DEFAULT 'all' CHECK (carries IN ('all', 'events', 'alerts')),
  options jsonb NOT NULL DEFAULT '{}',
  secret_sealed bytea,
  secret_version integer NOT NULL DEFAULT 0,
  previous_secret_sealed bytea,
  previous_secret_until timestamptz,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, id)
);

CREATE TABLE delivery_state (
  organization_id uuid NOT NULL,
  destination_id uuid NOT NULL,
  next_leaf bigint NOT NULL,
  inflight_end bigint,
  delivered_batches bigint NOT NULL DEFAULT 0,
  last_delivered_at timestamptz,
  last_error text,
  PRIMARY KEY (organization_id, destination_id),
  FOREIGN KEY (organization_id, destination_id) REFERENCES delivery_destinations (organization_id, id) ON DELETE CASCADE
);

CREATE TABLE delivery_outbox (
  organization_id uuid NOT NULL,
  destination_id uuid NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('events', 'alert')),
  first_leaf bigint,
  end_leaf bigint,
  payload jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, destination_id, seq),
  FOREIGN KEY (organization_id, destination_id) REFERENCES delivery_destinations (organization_id, id) ON DELETE CASCADE
);

CREATE TABLE delivery_dead_letters (
  organization_id uuid NOT NULL,
  destination_id uuid NOT NULL,
  id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('events', 'alert')),
  first_leaf bigint,
  end_leaf bigint,
  payload jsonb,
  error text NOT NULL,
  attempts integer NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, destination_id, id),
  FOREIGN KEY (organization_id, destination_id) REFERENCES delivery_destinations (organization_id, id) ON DELETE CASCADE
);

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON delivery_destinations, delivery_state, delivery_outbox, delivery_dead_letters TO audit_runtime';
  END IF;
END;
$$;
