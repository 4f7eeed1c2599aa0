-- 0013: per-organization settings of the compliance reports (server/src/reports/). One row per
-- organization that changed its disclosure rule (which events an accounting of disclosures under
-- HIPAA §164.528 lists); an organization without a row uses the default rule. The rule is a JSON
-- object validated by the API (server/src/reports/disclosure-rule.ts). Hand-written like the others.
CREATE TABLE report_settings (
  organization_id uuid PRIMARY KEY REFERENCES organizations (id),
  disclosure_rule jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL
);

-- The runtime role reads and changes the settings (they are configuration, not log: every change
-- is itself appended to the organization's log by the API).
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_runtime') THEN
    GRANT SELECT, INSERT, UPDATE ON report_settings TO audit_runtime;
  END IF;
END
$$;
