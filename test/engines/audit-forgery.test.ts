/**
 * Nobody but the owner writes the audit trail, by any path. On PostgreSQL 17 with the
 * stack's roles and grants (lib/access.ts) and the real sql/ applied as the migrator with SET ROLE to the owner,
 * the app and read-only logins try every way in we know of; after each, audit.change_log is unchanged.
 * Then the TimescaleDB engine, where the same trick is tried by a non-superuser role.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { accessPlan, renderAccessSql } from "../../lib/access";
import { withClient } from "../../lib/db";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../fixtures/engines";
import { exec, rows, schemaRunner } from "../fixtures/schema";

const DB = "market";
const PASSWORD = "audit-test-pw";
const PLAN = accessPlan({ database: DB, migratorConnectionLimit: 5, appConnectionLimit: 50, readonlyConnectionLimit: 20, timescaledb: false });
const ACCESS = renderAccessSql(PLAN, { migrator: PASSWORD, app: PASSWORD, readonly: PASSWORD });

/** The TEMP-table trick: a table the caller owns, with a trigger calling the SECURITY DEFINER function. */
const TEMP_TABLE_TRICK = [
  `CREATE TEMP TABLE orders (client_order_id text)`,
  `CREATE TRIGGER forge AFTER INSERT ON pg_temp.orders FOR EACH ROW EXECUTE FUNCTION audit.record_change()`,
  `INSERT INTO pg_temp.orders VALUES ('forged')`,
];

describe("the audit trail on PostgreSQL 17: forging attempts by the app and read-only roles", () => {
  let server: Engine;
  let admin: string;
  let app: string;
  let readonly: string;
  let migrator: string;
  const logRows = async () => (await rows<{ n: number }>(admin, `SELECT count(*)::int AS n FROM audit.change_log`))[0]?.n;

  beforeAll(async () => {
    server = await startPostgresServer();
    await withClient(server.url, async (c) => {
      for (const statement of ACCESS.cluster) await c.query(statement);
    });
    admin = server.urlFor(DB);
    await withClient(admin, async (c) => {
      for (const statement of ACCESS.database) await c.query(statement);
    });
    migrator = server.urlFor(DB, "market_migrator", PASSWORD);
    app = server.urlFor(DB, "market_app", PASSWORD);
    readonly = server.urlFor(DB, "market_readonly", PASSWORD);
    await schemaRunner(migrator, { timescaledb: false, role: "market_owner" }).up();
    // One real change, so "unchanged" is checked against a log that is not empty.
    await exec(app, `INSERT INTO trading.orders (client_order_id, symbol, side, order_type, quantity) VALUES ('real-1', 'SPY', 'buy', 'market', 1)`);
  });
  afterAll(async () => {
    await server?.stop();
  });

  test("the app's TEMP table with a trigger calling audit.record_change() cannot write a log row", async () => {
    const before = await logRows();
    expect(before).toBe(1);
    await expect(
      withClient(app, async (c) => {
        for (const s of TEMP_TABLE_TRICK) await c.query(s);
      }),
    ).rejects.toThrow(/permission denied for function (audit\.)?record_change/);
    expect(await logRows()).toBe(before);
  });

  test("even with EXECUTE granted back, the function refuses a table its owner does not own", async () => {
    await exec(admin, `GRANT EXECUTE ON FUNCTION audit.record_change() TO market_app`);
    try {
      await expect(
        withClient(app, async (c) => {
          for (const s of TEMP_TABLE_TRICK) await c.query(s);
        }),
      ).rejects.toThrow(/audit.record_change\(\) records only tables owned by market_owner, not pg_temp_\d+\.orders/);
      expect(await logRows()).toBe(1);
    } finally {
      await exec(admin, `REVOKE EXECUTE ON FUNCTION audit.record_change() FROM market_app`);
    }
  });

  test.each([
    ["insert into the log", `INSERT INTO audit.change_log (table_schema, table_name, operation, session_role, acting_role) VALUES ('trading','orders','INSERT','x','x')`, /permission denied for table change_log/],
    ["update the log", `UPDATE audit.change_log SET acting_role = 'someone'`, /permission denied for table change_log/],
    ["delete from the log", `DELETE FROM audit.change_log`, /permission denied for table change_log/],
    ["truncate the log", `TRUNCATE audit.change_log`, /permission denied for table change_log/],
    ["call the function directly", `SELECT audit.record_change()`, /permission denied for function (audit\.)?record_change|trigger functions can only be called as triggers/],
    ["SET ROLE to the owner", `SET ROLE market_owner`, /permission denied to set role "market_owner"/],
    ["SET ROLE to the migrator", `SET ROLE market_migrator`, /permission denied to set role "market_migrator"/],
    ["SET SESSION AUTHORIZATION to the owner", `SET SESSION AUTHORIZATION market_owner`, /permission denied to set session authorization/],
    ["attach a trigger to an audited table", `CREATE TRIGGER forge AFTER INSERT ON trading.orders FOR EACH ROW EXECUTE FUNCTION audit.record_change()`, /permission denied for table orders|must be owner/],
    ["disable the audit trigger", `ALTER TABLE trading.orders DISABLE TRIGGER orders_audit`, /must be owner of table orders/],
    ["replace the function", `CREATE OR REPLACE FUNCTION audit.record_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`, /permission denied for schema audit|must be owner of function/],
    ["use the log's identity sequence", `SELECT nextval('audit.change_log_id_seq')`, /permission denied for sequence change_log_id_seq/],
    ["lock the migration history", `BEGIN; LOCK TABLE schema_migrations.applied IN EXCLUSIVE MODE`, /permission denied for schema schema_migrations/],
  ])("the app cannot %s", async (_what, statement, error) => {
    await expect(exec(app, statement)).rejects.toThrow(error);
    expect(await logRows()).toBe(1);
  });

  test.each([
    ["insert into the log", `INSERT INTO audit.change_log (table_schema, table_name, operation, session_role, acting_role) VALUES ('trading','orders','INSERT','x','x')`, /permission denied for table change_log/],
    ["make the TEMP table of the trick", TEMP_TABLE_TRICK[0] as string, /permission denied to create temporary tables/],
    ["call the function directly", `SELECT audit.record_change()`, /permission denied for function (audit\.)?record_change|trigger functions can only be called as triggers/],
    ["SET ROLE to the owner", `SET ROLE market_owner`, /permission denied to set role "market_owner"/],
    ["change an audited row (which would log it)", `UPDATE trading.orders SET quantity = 2`, /permission denied for table orders/],
  ])("the read-only role cannot %s", async (_what, statement, error) => {
    await expect(exec(readonly, statement)).rejects.toThrow(error);
    expect(await logRows()).toBe(1);
  });

  test("nobody but the owner holds EXECUTE on audit.record_change() or write on the log and the migration history", async () => {
    const grants = await rows<{ object: string; grantee: string; privilege: string }>(
      admin,
      `SELECT 'audit.record_change()' AS object, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege
         FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
        WHERE p.oid = 'audit.record_change()'::regprocedure
       UNION ALL
       SELECT c.oid::regclass::text, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type
         FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
        WHERE c.oid IN ('audit.change_log'::regclass, 'schema_migrations.applied'::regclass, 'schema_migrations.database_mode'::regclass)
          AND a.privilege_type <> 'SELECT'
        ORDER BY 1, 2, 3`,
    );
    expect(grants.length).toBeGreaterThan(0);
    expect(grants.filter((g) => g.grantee !== "market_owner")).toEqual([]);
  });

  test("re-applying the stack's grants (pulumi refresh, then up) leaves the app unable to write the log", async () => {
    // What the postgresql provider does for each Grant on up: revoke the set on ALL objects, then grant the plan's.
    await withClient(admin, async (c) => {
      for (const g of PLAN.objectGrants) {
        const kind = { table: "TABLES", sequence: "SEQUENCES", function: "FUNCTIONS" }[g.objectType];
        await c.query(`REVOKE ALL ON ALL ${kind} IN SCHEMA ${c.escapeIdentifier(g.schema)} FROM ${c.escapeIdentifier(g.role)}`);
        await c.query(`GRANT ${g.privileges.join(", ")} ON ALL ${kind} IN SCHEMA ${c.escapeIdentifier(g.schema)} TO ${c.escapeIdentifier(g.role)}`);
      }
    });
    await expect(
      exec(app, `INSERT INTO audit.change_log (table_schema, table_name, operation, session_role, acting_role) VALUES ('trading','orders','INSERT','x','x')`),
    ).rejects.toThrow(/permission denied for table change_log/);
    await expect(
      withClient(app, async (c) => {
        for (const s of TEMP_TABLE_TRICK) await c.query(s);
      }),
    ).rejects.toThrow(/permission denied for function (audit\.)?record_change/);
    expect(await logRows()).toBe(1);
  });

  test("real changes are still logged, naming the app", async () => {
    await exec(app, `UPDATE trading.orders SET quantity = 3 WHERE client_order_id = 'real-1'`);
    expect(await rows(app, `SELECT table_schema, table_name, operation, session_role FROM audit.change_log ORDER BY id`)).toEqual([
      { table_schema: "trading", table_name: "orders", operation: "INSERT", session_role: "market_app" },
      { table_schema: "trading", table_name: "orders", operation: "UPDATE", session_role: "market_app" },
    ]);
  });
});

describe("the audit trail on TimescaleDB: the TEMP-table trick by a non-superuser role", () => {
  let tsdb: Engine;
  beforeAll(async () => {
    tsdb = await startTimescaleEngine();
    await schemaRunner(tsdb.url, { timescaledb: true }).up();
  });
  afterAll(async () => {
    await tsdb?.stop();
  });

  test("a role with TEMP and USAGE on audit cannot write the log through a trigger on its TEMP table", async () => {
    await withClient(tsdb.url, async (c) => {
      await c.query(`CREATE ROLE forger NOLOGIN`);
      await c.query(`GRANT USAGE ON SCHEMA audit TO forger`);
      await c.query(`GRANT SELECT ON audit.change_log TO forger`);
      await c.query(`GRANT TEMPORARY ON DATABASE postgres TO forger`);
      await c.query(`SET ROLE forger`);
      const attempt = async () => {
        await c.query("SAVEPOINT s");
        try {
          for (const s of TEMP_TABLE_TRICK) await c.query(s);
          return "written";
        } catch (err) {
          return (err as Error).message;
        } finally {
          await c.query("ROLLBACK TO SAVEPOINT s");
        }
      };
      await c.query("BEGIN");
      expect(await attempt()).toMatch(/permission denied for function (audit\.)?record_change/);
      await c.query("RESET ROLE");
      await c.query(`GRANT EXECUTE ON FUNCTION audit.record_change() TO forger`);
      await c.query(`SET ROLE forger`);
      expect(await attempt()).toMatch(/records only tables owned by postgres/);
      await c.query("ROLLBACK");
      await c.query("RESET ROLE");
      expect((await c.query(`SELECT count(*)::int AS n FROM audit.change_log`)).rows).toEqual([{ n: 0 }]);
    });
  });
});
