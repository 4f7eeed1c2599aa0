-- 0015: security alerts (docs/alerts.md). Hand-written: a partial unique index (one open alert per
-- detector and subject) and conditional grants.

-- One row per alert. An alert is open while `active` or `acknowledged`; a detector that fires again
-- for the same subject adds to the open alert (count, event ids) instead of opening another. Rows
-- change (lifecycle, count): every change is also appended to the organization's log, which is the
-- tamper-evident record; this table is the working copy the API reads.
CREATE TABLE security_alerts (
  organization_id uuid NOT NULL,
  id uuid NOT NULL,
  detector text NOT NULL,
  subject text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  status text NOT NULL CHECK (status IN ('active', 'acknowledged', 'resolved', 'dismissed')),
  title text NOT NULL,
  count integer NOT NULL DEFAULT 1 CHECK (count >= 1),
  event_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  context jsonb NOT NULL DEFAULT '{}'::jsonb,
  first_seen_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  acknowledged_at timestamptz,
  acknowledged_by text,
  closed_at timestamptz,
  closed_by text,
  note text,
  PRIMARY KEY (organization_id, id)
);
CREATE UNIQUE INDEX security_alerts_one_open_idx ON security_alerts (organization_id, detector, subject)
  WHERE status IN ('active', 'acknowledged');
CREATE INDEX security_alerts_recent_idx ON security_alerts (organization_id, last_seen_at DESC, id DESC);

-- Per-organization detector settings: the time zone of off-hours and threshold overrides (JSON
-- object per detector; absent keys take the defaults of docs/alerts.md).
CREATE TABLE alert_settings (
  organization_id uuid PRIMARY KEY,
  time_zone text NOT NULL DEFAULT 'UTC',
  thresholds jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    GRANT SELECT, INSERT, UPDATE ON security_alerts, alert_settings TO audit_runtime;
  END IF;
END $$;
