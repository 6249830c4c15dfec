-- Audit trail for the trading tables (seed 002: "audit triggers for critical tables"): who changed
-- which row, how, and when, as jsonb snapshots of the row before and after.
-- migrate:up
CREATE TABLE audit.change_log (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  changed_at    timestamptz NOT NULL DEFAULT now(),
  table_schema  text        NOT NULL,
  table_name    text        NOT NULL,
  operation     text        NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
  -- The login role of the session, and the role it acted as (differs after SET ROLE).
  session_role  text        NOT NULL,
  acting_role   text        NOT NULL,
  transaction_id bigint     NOT NULL DEFAULT txid_current(),
  old_row       jsonb,
  new_row       jsonb
);
CREATE INDEX change_log_table_changed_at_idx ON audit.change_log (table_schema, table_name, changed_at DESC);

-- SECURITY DEFINER so that writers of audited tables need no write access to the log itself; the fixed
-- search_path keeps a caller's objects from being resolved inside the definer's rights.
CREATE FUNCTION audit.record_change() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  INSERT INTO audit.change_log (table_schema, table_name, operation, session_role, acting_role, old_row, new_row)
  VALUES (
    TG_TABLE_SCHEMA,
    TG_TABLE_NAME,
    TG_OP,
    session_user,
    -- current_user is the definer in here; the session's SET ROLE (or its login role) is the actor.
    CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END,
    CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
    CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END
  );
  RETURN NULL;
END;
$$;

-- The stack's default privileges give the app role write access to every new table. An audit log the
-- application could edit would prove nothing, so everyone but the owner keeps only what lets them read it.
DO $$
DECLARE
  grantee_name text;
BEGIN
  FOR grantee_name IN
    SELECT DISTINCT CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(acl.grantee)) END
    FROM pg_class c, aclexplode(c.relacl) AS acl
    WHERE c.oid = 'audit.change_log'::regclass
      AND acl.grantee <> c.relowner
      AND acl.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
  LOOP
    EXECUTE 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit.change_log FROM ' || grantee_name;
  END LOOP;
END;
$$;

-- migrate:down
DROP FUNCTION audit.record_change();
DROP TABLE audit.change_log;
