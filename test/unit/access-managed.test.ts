import { describe, expect, test } from "vitest";
import { accessPlan, renderAccessSql } from "../../lib/access";

const plan = accessPlan({
  database: "tsdb",
  migratorConnectionLimit: 5,
  appConnectionLimit: 50,
  readonlyConnectionLimit: 20,
  timescaledb: true,
  existingDatabase: true,
});
const sql = renderAccessSql(plan, { migrator: "m", app: "a", readonly: "r" }, { adminIsSuperuser: false });

describe("the access plan on a managed service: existing database, CREATEROLE-only admin", () => {
  test("the database is not created; the owner gets on it what owning it gave", () => {
    expect(sql.cluster.filter((s) => s.startsWith("CREATE DATABASE"))).toEqual([]);
    expect(sql.cluster).toContain('GRANT CREATE, CONNECT, TEMPORARY ON DATABASE "tsdb" TO "tsdb_owner"');
  });

  test("statements acting for a role are wrapped in a temporary membership, as the provider's withRolesGranted does", () => {
    expect(sql.database.slice(0, 3)).toEqual([
      'GRANT "tsdb_owner" TO CURRENT_USER',
      'CREATE SCHEMA IF NOT EXISTS "market_data" AUTHORIZATION "tsdb_owner"',
      'REVOKE "tsdb_owner" FROM CURRENT_USER',
    ]);
    const migratorDefaults = sql.database.findIndex((s) => s.startsWith('ALTER DEFAULT PRIVILEGES FOR ROLE "tsdb_migrator"'));
    expect(sql.database.slice(migratorDefaults - 1, migratorDefaults + 2)).toEqual([
      'GRANT "tsdb_migrator" TO CURRENT_USER',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "tsdb_migrator" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "tsdb_app"',
      'REVOKE "tsdb_migrator" FROM CURRENT_USER',
    ]);
    // The PUBLIC revoke on `public` needs no membership: the database owner (the admin) owns that schema.
    expect(sql.database).toContain('REVOKE ALL PRIVILEGES ON SCHEMA "public" FROM PUBLIC');
    expect(sql.database.filter((s) => s.startsWith("GRANT \"") && s.endsWith("TO CURRENT_USER")).length).toBe(
      sql.database.filter((s) => s.startsWith("REVOKE \"") && s.endsWith("FROM CURRENT_USER")).length,
    );
  });

  test("for a superuser admin nothing is wrapped", () => {
    const asSuperuser = renderAccessSql(plan, { migrator: "m", app: "a", readonly: "r" });
    expect(asSuperuser.database.filter((s) => s.includes("CURRENT_USER"))).toEqual([]);
  });
});
