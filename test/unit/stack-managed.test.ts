/**
 * An external stack on a managed service under mocks: Timescale Cloud's shape (existing `tsdb`
 * database, `tsdbadmin` that is not a superuser), verify-full with the CA given as a secret PEM, a pooler and
 * a replica. The same settings' behaviour against real servers is in test/engines/managed-service.test.ts.
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { isWrappedSecret, plain, redactSecrets, runStack, secretOf, type StackRun, valueOf } from "../fixtures/pulumiMocks";

const ROOT = path.resolve(__dirname, "../..");
const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBtestCAforTheStackUnderMocks\n-----END CERTIFICATE-----\n";
const CONFIG = {
  mode: "external",
  externalHost: "abc123.tsdb.cloud.timescale.com",
  externalPort: "34567",
  externalAdminUser: "tsdbadmin",
  adminPassword: "svc-admin-Secret9",
  database: "tsdb",
  existingDatabase: "true",
  sslmode: "verify-full",
  sslRootCert: CA_PEM,
  poolerHost: "abc123.pooler.tsdb.cloud.timescale.com",
  poolerPort: "6543",
  replicaHost: "abc123-ro.tsdb.cloud.timescale.com",
};
const CA_FILE = path.join(ROOT, ".tsdb/tls/dev-root.crt");

describe("an external stack on a managed service: existing database, non-superuser admin, verify-full, pooler, replica", () => {
  let run: StackRun;
  beforeAll(async () => {
    run = await runStack({ stack: "dev", config: CONFIG, secretKeys: ["adminPassword", "sslRootCert"] });
  });

  test("the provider connects to the existing database as a non-superuser, checking the server against the CA file", () => {
    const p = run.get("tsdb-dev-provider", "pulumi:providers:postgresql");
    expect(plain(p.inputs)).toMatchObject({
      host: "abc123.tsdb.cloud.timescale.com",
      username: "tsdbadmin",
      sslmode: "verify-full",
      sslrootcert: CA_FILE,
      superuser: "false",
      database: "tsdb",
    });
    expect([fs.readFileSync(CA_FILE, "utf8"), fs.statSync(CA_FILE).mode & 0o777]).toEqual([CA_PEM, 0o600]);
  });

  test("the database is used, not declared (nothing creates or drops it), and the extension is kept on destroy", () => {
    expect(run.ofType("postgresql:index/database:Database")).toEqual([]);
    expect(run.ofType("postgresql:index/role:Role").map((r) => r.name).sort()).toEqual(["tsdb-dev-app", "tsdb-dev-migrator", "tsdb-dev-owner", "tsdb-dev-readonly"]);
    const ext = run.get("tsdb-dev-extension-timescaledb");
    expect([plain(ext.inputs.database), ext.retainOnDelete]).toEqual(["tsdb", true]);
    // The owner gets CREATE on the service's database, which owning it gave in the container.
    expect(plain(run.get("tsdb-dev-connect-tsdb_owner").inputs)).toMatchObject({ objectType: "database", privileges: ["CREATE", "CONNECT", "TEMPORARY"], database: "tsdb" });
  });

  test("the hooks get the CA as PEM inside their secret connection; it appears nowhere in plaintext", async () => {
    const migrations = run.resources.find((r) => r.type === "pulumi-nodejs:dynamic/tsdb:SchemaMigrations")!;
    expect(isWrappedSecret(migrations.inputs.connection)).toBe(true);
    expect(plain(migrations.inputs.connection)).toMatchObject({ host: "abc123.tsdb.cloud.timescale.com", port: 34567, sslmode: "verify-full", sslrootcert: CA_PEM });
    expect(JSON.stringify(run.resources.map((r) => redactSecrets(r.inputs)))).not.toContain("MIIBtestCA");
  });

  test("outputs: app and read-only through the pooler, migrator direct, a read-only replica URL, all secret", async () => {
    const database = run.outputs.database as Record<string, unknown>;
    expect(await secretOf(database.urls)).toBe(true);
    const ca = `sslmode=verify-full&sslrootcert=${encodeURIComponent(CA_FILE)}`;
    expect(await valueOf(database.urls as object)).toEqual({
      migrator: `postgresql://tsdb_migrator:generatedtsdbdevmigratorpassword@abc123.tsdb.cloud.timescale.com:34567/tsdb?${ca}`,
      app: `postgresql://tsdb_app:generatedtsdbdevapppassword@abc123.pooler.tsdb.cloud.timescale.com:6543/tsdb?${ca}`,
      readonly: `postgresql://tsdb_readonly:generatedtsdbdevreadonlypassword@abc123.pooler.tsdb.cloud.timescale.com:6543/tsdb?${ca}`,
      replica: `postgresql://tsdb_readonly:generatedtsdbdevreadonlypassword@abc123-ro.tsdb.cloud.timescale.com:5432/tsdb?${ca}`,
    });
    expect([database.pooler, database.replica, await valueOf(database.database as string)]).toEqual([
      { host: "abc123.pooler.tsdb.cloud.timescale.com", port: 6543 },
      { host: "abc123-ro.tsdb.cloud.timescale.com", port: 5432 },
      "tsdb",
    ]);
    expect(await valueOf(run.outputs.adminUrl as string)).toBe(`postgresql://tsdbadmin:svc-admin-Secret9@abc123.tsdb.cloud.timescale.com:34567/tsdb?${ca}`);
  });
});
