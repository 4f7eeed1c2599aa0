-- 0016: behaviour analytics (docs/analytics.md): event embeddings in a pgvector `vector(64)` column
-- with an HNSW index, the worker's catch-up cursor and per-organization anomaly thresholds.
-- Hand-written and conditional: the `vector` type exists only where the pgvector extension is
-- installed. Creating an extension is the database owner's job (the deployment's init script runs
-- CREATE EXTENSION vector as the superuser); this migration creates it only when it is available and
-- the migrating role may (PGlite, a superuser's development database). Without the extension it
-- creates nothing but the install function, every other migration and feature works, and the
-- analytics operations answer 501 naming the extension. Installing pgvector later and running
-- `SELECT audit_analytics_install();` as the migration role adds the tables then.

CREATE FUNCTION audit_analytics_install() RETURNS boolean LANGUAGE plpgsql AS $fn$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'vector') THEN
    IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector') THEN
      RETURN false;
    END IF;
    BEGIN
      CREATE EXTENSION vector;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'pgvector is available but this role may not create it: behaviour analytics stays off';
      RETURN false;
    END;
  END IF;

  -- One embedding per event, keyed like the event itself (organization first: see docs/architecture.md
  -- on distributing by organization). recorded_at lets a join reach the event's partition.
  EXECUTE $ddl$
    CREATE TABLE IF NOT EXISTS event_embeddings (
      organization_id uuid NOT NULL,
      event_id uuid NOT NULL,
      recorded_at timestamptz(3) NOT NULL,
      leaf_index bigint NOT NULL,
      version smallint NOT NULL,
      embedding vector(64) NOT NULL,
      PRIMARY KEY (organization_id, event_id)
    )$ddl$;
  EXECUTE 'CREATE INDEX IF NOT EXISTS event_embeddings_recorded_idx ON event_embeddings (organization_id, recorded_at)';
  -- Approximate k-NN by cosine distance (the vectors are unit length). pgvector's defaults (m 16,
  -- ef_construction 64); queries filter by organization with iterative index scans.
  EXECUTE 'CREATE INDEX IF NOT EXISTS event_embeddings_hnsw_idx ON event_embeddings USING hnsw (embedding vector_cosine_ops)';

  -- The worker's cursor per organization: every leaf below next_leaf_index has been embedded (and
  -- scored by the anomaly detector).
  EXECUTE $ddl$
    CREATE TABLE IF NOT EXISTS analytics_progress (
      organization_id uuid PRIMARY KEY,
      next_leaf_index bigint NOT NULL DEFAULT 0 CHECK (next_leaf_index >= 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    )$ddl$;

  -- An organization's own anomaly threshold (absent: ANALYTICS_ANOMALY_THRESHOLD).
  EXECUTE $ddl$
    CREATE TABLE IF NOT EXISTS analytics_settings (
      organization_id uuid PRIMARY KEY,
      anomaly_threshold double precision NOT NULL CHECK (anomaly_threshold > 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    )$ddl$;

  -- Embeddings are derived data: the worker writes and rewrites them, and erasure deletes them.
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON event_embeddings, analytics_progress, analytics_settings TO audit_runtime';
  END IF;
  RETURN true;
END;
$fn$;

SELECT audit_analytics_install();
