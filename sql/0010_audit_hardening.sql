-- Nobody but the owner writes the audit trail, by any path (issue 9, item 7). 0002 left audit.record_change()
-- executable by PUBLIC (PostgreSQL's default for functions) and by the app (the stack granted EXECUTE on every
-- function), and the function recorded whatever table fired it: the app could make a TEMP table named
-- "orders", attach a trigger calling it, and write log rows under the owner's rights.
-- Now: EXECUTE belongs to the owner alone (creating a trigger needs EXECUTE on its function; a trigger that
-- exists keeps firing for every writer, because PostgreSQL checks EXECUTE only when the trigger is created),
-- and the function itself refuses to record a table its owner does not own, or a temporary one, so even a
-- re-granted EXECUTE writes nothing. The runner's history tables get the same treatment: only the owner may
-- write them, which is also what makes the migration lock (LOCK ... IN EXCLUSIVE MODE on
-- schema_migrations.applied) impossible to take for the app and read-only roles.
-- migrate:up
CREATE OR REPLACE FUNCTION audit.record_change() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  -- current_user is the definer (the owner) in here. Only its own, permanent tables are audited tables:
  -- nobody else can attach a trigger to those (TRIGGER is never granted), so a row here is a real change.
  IF NOT EXISTS (
    SELECT 1 FROM pg_class c
     WHERE c.oid = TG_RELID AND c.relowner = (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user)
       AND c.relpersistence = 'p'
  ) THEN
    RAISE EXCEPTION 'audit.record_change() records only tables owned by %, not %.%', current_user, TG_TABLE_SCHEMA, TG_TABLE_NAME
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO audit.change_log (table_schema, table_name, operation, session_role, acting_role, old_row, new_row)
  VALUES (
    TG_TABLE_SCHEMA,
    TG_TABLE_NAME,
    TG_OP,
    session_user,
    -- The session's SET ROLE (or its login role) is the actor.
    CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END,
    CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
    CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END
  );
  RETURN NULL;
END;
$$;

-- Revoke from PUBLIC and from every role but the owner whatever they hold: EXECUTE on the function, any
-- write on the log, its sequence and the migration history.
DO $$
DECLARE
  target record;
BEGIN
  FOR target IN
    SELECT DISTINCT 'FUNCTION audit.record_change()' AS object, 'EXECUTE' AS privileges,
           CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(acl.grantee)) END AS grantee
      FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS acl
     WHERE p.oid = 'audit.record_change()'::regprocedure AND acl.grantee <> p.proowner
    UNION
    SELECT DISTINCT 'TABLE ' || c.oid::regclass::text, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER',
           CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(acl.grantee)) END
      FROM pg_class c, aclexplode(c.relacl) AS acl
     WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(ARRAY['audit.change_log', 'schema_migrations.applied', 'schema_migrations.database_mode']) AS t)
       AND acl.grantee <> c.relowner
       AND acl.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
    UNION
    -- The log's identity sequence: nextval would burn ids, leaving gaps that look like deleted entries.
    SELECT DISTINCT 'SEQUENCE audit.change_log_id_seq', 'USAGE, UPDATE',
           CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(acl.grantee)) END
      FROM pg_class c, aclexplode(c.relacl) AS acl
     WHERE c.oid = 'audit.change_log_id_seq'::regclass AND acl.grantee <> c.relowner
       AND acl.privilege_type IN ('USAGE', 'UPDATE')
  LOOP
    EXECUTE format('REVOKE %s ON %s FROM %s', target.privileges, target.object, target.grantee);
  END LOOP;
END;
$$;

-- migrate:down
-- Back to 0002's function and PUBLIC's EXECUTE; the history tables keep their narrower rights (nothing
-- needs them wider).
CREATE OR REPLACE FUNCTION audit.record_change() RETURNS trigger
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
    CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END,
    CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
    CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END
  );
  RETURN NULL;
END;
$$;
GRANT EXECUTE ON FUNCTION audit.record_change() TO PUBLIC;
