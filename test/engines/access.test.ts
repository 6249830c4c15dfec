import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { accessPlan, renderAccessSql } from "../../lib/access";
import { withClient } from "../../lib/db";
import { type Engine, startPostgresServer } from "../fixtures/engines";

// A quote and a backslash prove passwords reach CREATE ROLE as escaped literals.
const PASSWORDS = { migrator: "mig'pw\\1", app: "app-pw-2", readonly: "ro-pw-3" };

describe("the access plan applied to PostgreSQL 17", () => {
  let pg: Engine;
  const as = (role: keyof typeof PASSWORDS, database = "market") => pg.urlFor(database, `market_${role}`, PASSWORDS[role]);

  beforeAll(async () => {
    pg = await startPostgresServer();
    const sql = renderAccessSql(
      accessPlan({ database: "market", migratorConnectionLimit: 5, appConnectionLimit: 50, readonlyConnectionLimit: 20, timescaledb: true }),
      PASSWORDS,
    );
    await withClient(pg.url, async (c) => {
      for (const statement of sql.cluster) await c.query(statement);
    });
    await withClient(pg.urlFor("market"), async (c) => {
      for (const statement of sql.database) await c.query(statement);
    });
    // What a migration does: SET ROLE to the owner, then create objects.
    await withClient(as("migrator"), async (c) => {
      await c.query("SET ROLE market_owner");
      await c.query("CREATE TABLE market_data.bars (id bigserial PRIMARY KEY, symbol text NOT NULL, close numeric NOT NULL)");
      await c.query("CREATE FUNCTION market_data.double_it(x numeric) RETURNS numeric LANGUAGE sql AS 'SELECT x * 2'");
      await c.query("RESET ROLE");
      // Created without SET ROLE: the migrator's own default privileges still cover it.
      await c.query("CREATE TABLE research.notes (id bigserial PRIMARY KEY, body text)");
    });
  });
  afterAll(async () => {
    await pg?.stop();
  });

  test("objects created by the migrator under SET ROLE belong to the owner", async () => {
    const owner = await withClient(pg.urlFor("market"), async (c) =>
      (await c.query("SELECT tableowner FROM pg_tables WHERE schemaname = 'market_data' AND tablename = 'bars'")).rows[0].tableowner,
    );
    expect(owner).toBe("market_owner");
  });

  test("the app role can select, insert, update and delete bars and use their sequence and functions", async () => {
    const result = await withClient(as("app"), async (c) => {
      await c.query("INSERT INTO market_data.bars (symbol, close) VALUES ('SPY', 500.25), ('QQQ', 430.10)");
      await c.query("UPDATE market_data.bars SET close = 501.00 WHERE symbol = 'SPY'");
      await c.query("DELETE FROM market_data.bars WHERE symbol = 'QQQ'");
      await c.query("INSERT INTO research.notes (body) VALUES ('ok')");
      await c.query("CREATE TEMP TABLE scratch (x int)");
      return (await c.query("SELECT symbol, close::text, market_data.double_it(close)::text AS doubled FROM market_data.bars")).rows;
    });
    expect(result).toEqual([{ symbol: "SPY", close: "501.00", doubled: "1002.00" }]);
  });

  test.each([
    ["create a table", "CREATE TABLE market_data.mine (x int)", /permission denied for schema market_data/],
    ["alter a table", "ALTER TABLE market_data.bars ADD COLUMN note text", /must be owner of table bars/],
    ["drop a table", "DROP TABLE market_data.bars", /must be owner of table bars/],
    ["truncate a table", "TRUNCATE market_data.bars", /permission denied for table bars/],
    ["create in the public schema", "CREATE TABLE public.mine (x int)", /permission denied for schema public/],
  ])("the app role cannot %s", async (_what, statement, error) => {
    await expect(withClient(as("app"), (c) => c.query(statement))).rejects.toThrow(error);
  });

  test("the read-only role can only read", async () => {
    const rows = await withClient(as("readonly"), async (c) => (await c.query("SELECT count(*)::int AS n FROM research.notes")).rows);
    expect(rows).toEqual([{ n: 1 }]);
    await expect(withClient(as("readonly"), (c) => c.query("INSERT INTO market_data.bars (symbol, close) VALUES ('X', 1)"))).rejects.toThrow(
      /permission denied for table bars/,
    );
    await expect(withClient(as("readonly"), (c) => c.query("UPDATE research.notes SET body = 'x'"))).rejects.toThrow(
      /permission denied for table notes/,
    );
    await expect(withClient(as("readonly"), (c) => c.query("CREATE TEMP TABLE t (x int)"))).rejects.toThrow(
      /permission denied to create temporary tables in database "market"/,
    );
  });

  test("a fresh login role without grants cannot connect: PUBLIC has nothing on the database", async () => {
    await withClient(pg.url, (c) => c.query("CREATE ROLE stranger LOGIN PASSWORD 'stranger-pw'"));
    await expect(withClient(pg.urlFor("market", "stranger", "stranger-pw"), (c) => c.query("SELECT 1"))).rejects.toThrow(
      /permission denied for database "market"/,
    );
    const publicRights = await withClient(pg.urlFor("market"), async (c) =>
      (
        await c.query(
          `SELECT has_database_privilege('stranger', 'market', 'CONNECT') AS connect,
                  has_database_privilege('stranger', 'market', 'TEMPORARY') AS temp,
                  has_schema_privilege('stranger', 'market_data', 'USAGE') AS market_data_usage,
                  has_schema_privilege('stranger', 'public', 'CREATE') AS public_create,
                  has_schema_privilege('stranger', 'public', 'USAGE') AS public_usage`,
        )
      ).rows[0],
    );
    // USAGE on public stays so every role can call extension functions (time_bucket) installed there.
    expect(publicRights).toEqual({
      connect: false,
      temp: false,
      market_data_usage: false,
      public_create: false,
      public_usage: true,
    });
  });

  test("roles have the planned login flags, connection limits and membership", async () => {
    const rows = await withClient(pg.url, async (c) =>
      (
        await c.query(
          `SELECT rolname, rolcanlogin, rolconnlimit, rolsuper,
                  ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid) AS member_of
             FROM pg_roles r WHERE rolname LIKE 'market\\_%' ORDER BY rolname`,
        )
      ).rows,
    );
    expect(rows).toEqual([
      { rolname: "market_app", rolcanlogin: true, rolconnlimit: 50, rolsuper: false, member_of: [] },
      { rolname: "market_migrator", rolcanlogin: true, rolconnlimit: 5, rolsuper: false, member_of: ["market_owner"] },
      // LOGIN for TimescaleDB's background jobs (docs/SCHEMA.md), but see the next test: no password.
      { rolname: "market_owner", rolcanlogin: true, rolconnlimit: -1, rolsuper: false, member_of: [] },
      { rolname: "market_readonly", rolcanlogin: true, rolconnlimit: 20, rolsuper: false, member_of: [] },
    ]);
  });

  test("the owner role has no password, so nobody can log in as it", async () => {
    const hasPassword = await withClient(pg.url, async (c) =>
      (await c.query("SELECT rolpassword IS NOT NULL AS has FROM pg_authid WHERE rolname = 'market_owner'")).rows[0].has,
    );
    expect(hasPassword).toBe(false);
    await expect(withClient(pg.urlFor("market", "market_owner", "anything"), (c) => c.query("SELECT 1"))).rejects.toThrow(
      /password authentication failed for user "market_owner"/,
    );
  });

  test("without TimescaleDB the owner is NOLOGIN", async () => {
    const sql = renderAccessSql(
      accessPlan({ database: "plain", migratorConnectionLimit: 1, appConnectionLimit: 2, readonlyConnectionLimit: 3, timescaledb: false }),
      { migrator: "m", app: "a", readonly: "r" },
    );
    expect(sql.cluster[0]).toBe('CREATE ROLE "plain_owner" NOLOGIN INHERIT CONNECTION LIMIT -1');
    await withClient(pg.url, async (c) => {
      for (const statement of sql.cluster) await c.query(statement);
      await c.query("ALTER ROLE plain_owner PASSWORD 'owner-pw'");
    });
    await expect(withClient(pg.urlFor("plain", "plain_owner", "owner-pw"), (c) => c.query("SELECT 1"))).rejects.toThrow(
      /role "plain_owner" is not permitted to log in/,
    );
  });
});
