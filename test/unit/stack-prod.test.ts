import { beforeAll, describe, expect, test } from "vitest";
import { committedStackConfig, isWrappedSecret, plain, redactSecrets, runStack, secretOf, type StackRun, valueOf } from "../fixtures/pulumiMocks";

const PASSWORDS = {
  adminPassword: "prod-admin-7Qx",
  migratorPassword: "prod-migrator-4Kd",
  appPassword: "prod-app-9Lm",
  readonlyPassword: "prod-readonly-2Vb",
};

describe("prod stack (Pulumi.prod.yaml plus its secrets)", () => {
  let run: StackRun;
  beforeAll(async () => {
    run = await runStack({
      stack: "prod",
      config: { ...committedStackConfig("prod"), ...PASSWORDS },
      secretKeys: Object.keys(PASSWORDS),
    });
  });

  test("declares no pgAdmin and generates no password", () => {
    expect(run.ofType("docker:index/container:Container").map((r) => r.name)).toEqual(["tsdb-prod-timescaledb"]);
    expect(run.resources.some((r) => r.type === "tsdb:docker:PgAdmin")).toBe(false);
    expect(run.ofType("random:index/randomPassword:RandomPassword")).toEqual([]);
    expect((run.outputs.database as Record<string, unknown>).pgadminUrl).toBeUndefined();
  });

  test("the data volume and the database are protected and retained on delete", () => {
    const volume = run.get("tsdb-prod-data", "docker:index/volume:Volume");
    expect([volume.inputs.name, volume.protect, volume.retainOnDelete]).toEqual(["tsdb-prod-data", true, true]);
    const database = run.get("tsdb-prod-database", "postgresql:index/database:Database");
    expect([database.protect, database.retainOnDelete]).toEqual([true, true]);
    expect(run.ofType("postgresql:index/schema:Schema").every((s) => s.protect && s.retainOnDelete)).toBe(true);
  });

  test("the container is sized for prod: 8192 MB, 4 CPUs, settings to match, still on 127.0.0.1", () => {
    const c = run.get("tsdb-prod-timescaledb", "docker:index/container:Container").inputs;
    expect([c.memory, c.memorySwap, c.cpus]).toEqual([8192, 8192, "4.0"]);
    expect(c.command).toContain("shared_buffers=2GB");
    expect(c.command).toContain("work_mem=5242kB");
    expect(c.command).toContain("max_worker_processes=15");
    expect(c.ports).toEqual([{ internal: 5432, external: 5432, ip: "127.0.0.1", protocol: "tcp" }]);
  });

  test("roles use the configured secret passwords and prod connection limits", () => {
    const roles = Object.fromEntries(
      run.ofType("postgresql:index/role:Role").map((r) => [r.inputs.name, [r.inputs.connectionLimit, plain(r.inputs.password)]]),
    );
    expect(roles).toEqual({
      market_owner: [-1, undefined],
      market_migrator: [5, "prod-migrator-4Kd"],
      market_app: [100, "prod-app-9Lm"],
      market_readonly: [50, "prod-readonly-2Vb"],
    });
    const withPassword = run.ofType("postgresql:index/role:Role").filter((r) => r.inputs.name !== "market_owner");
    expect(withPassword.map((r) => isWrappedSecret(r.inputs.password))).toEqual([true, true, true]);
  });

  test("no configured password is readable outside a secret, in inputs or outputs", async () => {
    const readable = JSON.stringify(run.resources.map((r) => redactSecrets(r.inputs)));
    for (const password of Object.values(PASSWORDS)) expect(readable).not.toContain(password);
    const database = run.outputs.database as Record<string, unknown>;
    expect(await secretOf(database.urls)).toBe(true);
    const urls = (await valueOf(database.urls as object)) as Record<string, string>;
    expect(urls.app).toBe("postgresql://market_app:prod-app-9Lm@127.0.0.1:5432/market?sslmode=disable");
    const plainParts = { ...database, urls: undefined };
    const resolved = JSON.stringify(
      await Promise.all(Object.values(plainParts).map((v) => (v === undefined ? v : valueOf(v as object)))),
    );
    for (const password of Object.values(PASSWORDS)) expect(resolved).not.toContain(password);
  });
});

describe("prod refuses to run without its secrets", () => {
  test("a missing password names the key and the exact command", async () => {
    const { appPassword: _omitted, ...others } = PASSWORDS;
    await expect(
      runStack({ stack: "prod", config: { ...committedStackConfig("prod"), ...others }, secretKeys: Object.keys(others) }),
    ).rejects.toThrow(
      "[tsdb:appPassword] is required when tsdb:generatePasswords is false and is not set for stack prod; set it with: pulumi config set --secret tsdb:appPassword <value> --stack prod",
    );
  });

  test("with no secrets at all, every missing one is listed", async () => {
    await expect(runStack({ stack: "prod", config: committedStackConfig("prod") })).rejects.toThrow(
      /tsdb:adminPassword.*\n.*tsdb:migratorPassword.*\n.*tsdb:appPassword.*\n.*tsdb:readonlyPassword/,
    );
  });

  test("enabling pgAdmin in prod also requires its password", async () => {
    await expect(
      runStack({ stack: "prod", config: { ...committedStackConfig("prod"), ...PASSWORDS, pgadminEnabled: "true" } }),
    ).rejects.toThrow("pulumi config set --secret tsdb:pgadminPassword <value> --stack prod");
  });
});
