import { describe, expect, test } from "vitest";
import { accessPlan, renderAccessSql } from "../../lib/access";

const plan = accessPlan({ database: "market", migratorConnectionLimit: 5, appConnectionLimit: 50, readonlyConnectionLimit: 20, timescaledb: true });

describe("renderAccessSql", () => {
  test("creates the roles, the database and its grants on the cluster, quoting identifiers and passwords", () => {
    const sql = renderAccessSql(plan, { migrator: "it's\\here", app: "app", readonly: "ro" });
    expect(sql.cluster).toEqual([
      'CREATE ROLE "market_owner" LOGIN INHERIT CONNECTION LIMIT -1',
      `CREATE ROLE "market_migrator" LOGIN INHERIT PASSWORD E'it''s\\\\here' CONNECTION LIMIT 5`,
      "CREATE ROLE \"market_app\" LOGIN INHERIT PASSWORD 'app' CONNECTION LIMIT 50",
      "CREATE ROLE \"market_readonly\" LOGIN INHERIT PASSWORD 'ro' CONNECTION LIMIT 20",
      'GRANT "market_owner" TO "market_migrator"',
      'CREATE DATABASE "market" OWNER "market_owner"',
      'REVOKE ALL PRIVILEGES ON DATABASE "market" FROM PUBLIC',
      'GRANT CONNECT, TEMPORARY ON DATABASE "market" TO "market_migrator"',
      'GRANT CONNECT, TEMPORARY ON DATABASE "market" TO "market_app"',
      'GRANT CONNECT ON DATABASE "market" TO "market_readonly"',
      'GRANT CONNECT ON DATABASE "market" TO "pg_monitor"',
    ]);
  });

  test("inside the database: schemas, PUBLIC limited to USAGE on public, grants and default privileges", () => {
    const sql = renderAccessSql(plan, { migrator: "m", app: "a", readonly: "r" });
    expect(sql.database.slice(0, 7)).toEqual([
      'CREATE SCHEMA IF NOT EXISTS "market_data" AUTHORIZATION "market_owner"',
      'CREATE SCHEMA IF NOT EXISTS "reference_data" AUTHORIZATION "market_owner"',
      'CREATE SCHEMA IF NOT EXISTS "trading" AUTHORIZATION "market_owner"',
      'CREATE SCHEMA IF NOT EXISTS "research" AUTHORIZATION "market_owner"',
      'CREATE SCHEMA IF NOT EXISTS "audit" AUTHORIZATION "market_owner"',
      'REVOKE ALL PRIVILEGES ON SCHEMA "public" FROM PUBLIC',
      'GRANT USAGE ON SCHEMA "public" TO PUBLIC',
    ]);
    expect(sql.database).toContain('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "market_data" TO "market_app"');
    expect(sql.database).toContain('GRANT SELECT ON ALL TABLES IN SCHEMA "audit" TO "market_readonly"');
    expect(sql.database).toContain(
      'ALTER DEFAULT PRIVILEGES FOR ROLE "market_migrator" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "market_app"',
    );
    expect(sql.database).toHaveLength(5 + 2 + 10 + 23 + 10);
  });

  test("a LOGIN role without a password is an error naming the role", () => {
    expect(() => renderAccessSql(plan, { migrator: "m", app: "a" })).toThrow("no password given for LOGIN role market_readonly");
  });
});

describe("accessPlan", () => {
  test("the app may only read in audit: SELECT on its tables, and no write, sequence or function rights there", () => {
    const inAudit = plan.objectGrants.filter((g) => g.schema === "audit" && g.role === "market_app");
    expect(inAudit).toEqual([{ role: "market_app", schema: "audit", objectType: "table", privileges: ["SELECT"] }]);
    const sql = renderAccessSql(plan, { migrator: "m", app: "a", readonly: "r" }).database;
    expect(sql.filter((s) => s.includes('IN SCHEMA "audit" TO "market_app"'))).toEqual([
      'GRANT SELECT ON ALL TABLES IN SCHEMA "audit" TO "market_app"',
    ]);
  });

  test("in the data schemas the app keeps read and write", () => {
    for (const schema of ["market_data", "reference_data", "trading", "research"]) {
      expect(plan.objectGrants.filter((g) => g.schema === schema && g.role === "market_app").map((g) => [g.objectType, g.privileges])).toEqual([
        ["table", ["SELECT", "INSERT", "UPDATE", "DELETE"]],
        ["sequence", ["USAGE", "SELECT"]],
        ["function", ["EXECUTE"]],
      ]);
    }
  });
});
