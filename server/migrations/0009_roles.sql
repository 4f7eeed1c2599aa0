-- 0009: the seven roles of server/src/auth/permissions.ts (owner, admin, auditor, compliance_officer,
-- developer, member, producer). Keys created before keep their role: admin, producer and auditor
-- are roles of the new table with the same grants. Which roles a key may be created with is the
-- API's rule (API_KEY_ROLES); the database only refuses names that are no role at all.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
  CHECK (role IN ('owner', 'admin', 'auditor', 'compliance_officer', 'developer', 'member', 'producer'));
