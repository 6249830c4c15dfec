import { beforeAll, describe, expect, test } from "vitest";
import { isWrappedSecret, plain, redactSecrets, runStack, secretOf, type StackRun, valueOf } from "../fixtures/pulumiMocks";

const CONFIG = {
  mode: "external",
  externalHost: "tsdb.internal.example.com",
  externalPort: "6432",
  externalAdminUser: "tsdbadmin",
  adminPassword: "ext-admin-Secret9",
};

describe("external mode", () => {
  let run: StackRun;
  beforeAll(async () => {
    run = await runStack({ stack: "dev", config: CONFIG, secretKeys: ["adminPassword"] });
  });

  test("declares no docker resources at all", () => {
    expect(run.resources.filter((r) => r.type.startsWith("docker:") || r.type.startsWith("tsdb:docker:"))).toEqual([]);
  });

  test("the provider points at the external server as a non-superuser admin with sslmode require", () => {
    const p = run.get("tsdb-dev-provider", "pulumi:providers:postgresql");
    expect(p.dependsOn).toEqual(["tsdb-dev-settings-guard"]);
    expect(isWrappedSecret(p.inputs.password)).toBe(true);
    expect(plain(p.inputs)).toEqual({
      host: "tsdb.internal.example.com",
      port: "6432",
      username: "tsdbadmin",
      password: "ext-admin-Secret9",
      sslmode: "require",
      superuser: "false",
      database: "postgres",
      connectTimeout: "15",
    });
  });

  test("declares the same roles, database, extension, schemas and privileges as docker mode", () => {
    const count = (type: string) => run.ofType(type).length;
    expect([
      count("postgresql:index/role:Role"),
      count("postgresql:index/database:Database"),
      count("postgresql:index/extension:Extension"),
      count("postgresql:index/schema:Schema"),
      count("postgresql:index/grant:Grant"),
      count("postgresql:index/defaultPrivileges:DefaultPrivileges"),
    ]).toEqual([4, 1, 1, 5, 39, 10]);
    const dbResources = run.resources.filter((r) => r.type.startsWith("postgresql:"));
    expect(new Set(dbResources.map((r) => r.provider))).toEqual(new Set(["tsdb-dev-provider"]));
    // Role passwords are still generated in dev; only the admin password comes from config.
    expect(run.ofType("random:index/randomPassword:RandomPassword").map((r) => r.name).sort()).toEqual([
      "tsdb-dev-app-password",
      "tsdb-dev-migrator-password",
      "tsdb-dev-readonly-password",
    ]);
  });

  test("outputs point other apps at the external server; URLs are secret and use sslmode require", async () => {
    const database = run.outputs.database as Record<string, unknown>;
    expect([
      database.mode,
      await valueOf(database.host as string),
      await valueOf(database.port as number),
      database.sslmode,
      database.pgadminUrl,
    ]).toEqual(["external", "tsdb.internal.example.com", 6432, "require", undefined]);
    expect(await secretOf(database.urls)).toBe(true);
    expect(((await valueOf(database.urls as object)) as Record<string, string>).readonly).toBe(
      "postgresql://market_readonly:generatedtsdbdevreadonlypassword@tsdb.internal.example.com:6432/market?sslmode=require",
    );
    expect(JSON.stringify(run.resources.map((r) => redactSecrets(r.inputs)))).not.toContain("ext-admin-Secret9");
  });
});

describe("external mode errors", () => {
  test("the admin password is required even in dev", async () => {
    const { adminPassword: _omitted, ...rest } = CONFIG;
    await expect(runStack({ stack: "dev", config: rest })).rejects.toThrow(
      "[tsdb:adminPassword] is required in external mode (the password of tsdbadmin on the server) and is not set for stack dev; set it with: pulumi config set --secret tsdb:adminPassword <value> --stack dev",
    );
  });

  test("the host is required", async () => {
    const { externalHost: _omitted, ...rest } = CONFIG;
    await expect(runStack({ stack: "dev", config: rest })).rejects.toThrow(
      '[tsdb:externalHost] is required in external mode: the server\'s host name or IP, got "".',
    );
  });
});
