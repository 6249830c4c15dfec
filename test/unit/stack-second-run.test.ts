/**
 * Second `pulumi up`: the program run twice per stack against the state the real providers read back
 * (test/fixtures/secondRun.ts, test/fixtures/providerModels.ts). Mocks accept anything; this harness models
 * what the providers store and when the engine updates or replaces, from their upstream source.
 *
 * Then one setting changed at a time on a deployed stack: exactly which resources update, are replaced, are
 * created or deleted, or the preview is refused. README ("Changing a setting on a running stack") carries the
 * same table.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { planSummary } from "../../providers/MigrationsProvider";
import { DAEMON_DEFAULTED_FIELDS } from "../../lib/containerLimits";
import { classify, diffFields } from "../fixtures/providerModels";
import { changesOf, DAEMON, deletesUnderRenamedRoles, deploy, type Deployment, RefusedAtPreview } from "../fixtures/secondRun";
import { committedStackConfig, type RunOptions } from "../fixtures/pulumiMocks";

const PROD_PASSWORDS = {
  adminPassword: "prod-admin-7Qx",
  migratorPassword: "prod-migrator-4Kd",
  appPassword: "prod-app-9Lm",
  readonlyPassword: "prod-readonly-2Vb",
};

const STACKS: Record<"dev" | "prod" | "external", RunOptions> = {
  dev: { stack: "dev", config: committedStackConfig("dev") },
  prod: { stack: "prod", config: { ...committedStackConfig("prod"), ...PROD_PASSWORDS }, secretKeys: Object.keys(PROD_PASSWORDS) },
  external: {
    stack: "dev",
    config: { mode: "external", externalHost: "tsdb.internal.example.com", externalAdminUser: "tsdbadmin", adminPassword: "ext-admin-Secret9" },
    secretKeys: ["adminPassword"],
  },
};

describe("a second pulumi up with the same settings changes nothing", () => {
  test.each(["dev", "prod", "external"] as const)("%s: no resource is updated or replaced", async (stack) => {
    const first = await deploy(STACKS[stack]);
    const second = await deploy(STACKS[stack], first.deployed);
    // Every custom resource was compared (a vacuous pass would compare none).
    expect(second.steps.length).toBe(first.steps.length);
    expect(second.steps.length).toBeGreaterThan(stack === "external" ? 60 : 65);
    expect(changesOf(second.steps)).toEqual({});
  });

  test("the TimescaleDB container in particular: cpus, memory swap and the healthcheck are sent as they are read back", async () => {
    const first = await deploy(STACKS.prod);
    const container = [...first.deployed.resources.values()].find((r) => r.name === "tsdb-prod-timescaledb")!;
    expect([container.inputs.cpus, container.state.cpus]).toEqual(["4.0", "4.0"]);
    expect([container.inputs.memorySwap, container.state.memorySwap]).toEqual([8192, 8192]);
    expect(container.state.healthcheck).toEqual(container.inputs.healthcheck);
    const second = await deploy(STACKS.prod, first.deployed);
    expect(second.steps.find((s) => s.name === "tsdb-prod-timescaledb")?.change).toBe("same");
  });
});


describe("on a host whose Docker daemon sets log-opts and default-ulimits", () => {
  test.each([
    ["dev", "4.11.2"],
    ["prod", "4.11.2"],
    ["external", "4.11.2"],
    ["dev", "5.2.0"],
    ["prod", "5.2.0"],
  ] as const)(
    "%s, @pulumi/docker %s: a second pulumi up replaces no container (was: every up replaced them, log_opts ForceNew read back from the daemon, upstream #873)",
    async (stack, docker) => {
      const first = await deploy({ ...STACKS[stack], daemon: DAEMON, docker });
      const second = await deploy({ ...STACKS[stack], daemon: DAEMON, docker }, first.deployed);
      expect(second.steps.length).toBe(first.steps.length);
      expect(changesOf(second.steps)).toEqual({});
      if (stack !== "external") {
        // 4.11.2 stores the daemon's values (ignored by the diff, not absent); 5.x reads them only when configured.
        const container = [...first.deployed.resources.values()].find((r) => r.name === `tsdb-${stack}-timescaledb`)!;
        expect([container.state.logOpts, container.state.ulimits]).toEqual(
          docker === "4.11.2" ? [DAEMON.logOpts, DAEMON.defaultUlimits] : [undefined, undefined],
        );
      }
    },
  );
});

describe("a stack deployed with @pulumi/docker 4.11.2, on its first pulumi up --refresh with 5.2.0", () => {
  const containerOf = (d: Deployment, stack: string) => [...d.deployed.resources.values()].find((r) => r.name === `tsdb-${stack}-timescaledb`)!;

  test.each(["dev", "prod"] as const)("%s: changes nothing: no container is replaced, so PostgreSQL keeps running", async (stack) => {
    const onV4 = await deploy({ ...STACKS[stack], daemon: DAEMON, docker: "4.11.2" });
    const onV5 = await deploy({ ...STACKS[stack], daemon: DAEMON, docker: "5.2.0" }, onV4.deployed);
    expect(onV5.steps.length).toBe(onV4.steps.length);
    expect(changesOf(onV5.steps)).toEqual({});
  });

  test("keeps the daemon's log-opts and ulimits 4.11.2 stored, which is why the containers still ignore them (without ignoreChanges that plan replaces the database container)", async () => {
    const onV4 = await deploy({ ...STACKS.dev, daemon: DAEMON, docker: "4.11.2" });
    const container = containerOf(onV4, "dev");
    const type = "docker:index/container:Container";
    expect(classify(diffFields(type, container.state, container.inputs, [...DAEMON_DEFAULTED_FIELDS]))).toBe("same");
    const unguarded = diffFields(type, container.state, container.inputs, []);
    expect(unguarded.map((d) => [d.field, d.forceNew])).toEqual([
      ["logOpts", true],
      ["ulimits", true],
    ]);
    expect(classify(unguarded)).toBe("replace");
  });

  test("an in-place update under 5.2.0 reads the stored daemon values again (they are in the prior state), so the next up changes nothing", async () => {
    const onV4 = await deploy({ ...STACKS.dev, daemon: DAEMON, docker: "4.11.2" });
    const always = { ...STACKS.dev, config: { ...STACKS.dev.config, restartPolicy: "always" }, daemon: DAEMON, docker: "5.2.0" as const };
    const updated = await deploy(always, onV4.deployed);
    expect(changesOf(updated.steps)).toEqual({ "tsdb-dev-timescaledb": "update (restart)" });
    expect(containerOf(updated, "dev").state.logOpts).toEqual(DAEMON.logOpts);
    expect(changesOf((await deploy(always, updated.deployed)).steps)).toEqual({});
  });
});

/** Changes of one setting on the deployed dev stack, as the harness measured them. */
const DEV_CHANGES: [string, string | object, Record<string, string>][] = [
  // Every container replacement also updates the guard, whose `notice` tells the preview PostgreSQL restarts.
  ["memoryMb", "4096", { "tsdb-dev-settings-guard": "update", "tsdb-dev-timescaledb": "replace (command, memory, memorySwap, shmSize)" }],
  ["cpus", "1", { "tsdb-dev-settings-guard": "update", "tsdb-dev-timescaledb": "replace (command, cpus)" }],
  ["maxConnections", "200", { "tsdb-dev-settings-guard": "update", "tsdb-dev-timescaledb": "replace (command)" }],
  ["telemetry", "true", { "tsdb-dev-settings-guard": "update", "tsdb-dev-timescaledb": "replace (command, envs)" }],
  ["restartPolicy", "always", { "tsdb-dev-timescaledb": "update (restart)" }],
  [
    "image",
    "timescale/timescaledb:2.22.1-pg17",
    // The admin hook updates the extension to the new image's TimescaleDB (ALTER EXTENSION ... UPDATE when it is
    // newer); the schema hook updates to read the new server's versions (versions.postgresMajor / timescaledb).
    {
      "tsdb-dev-extension-admin-hook": "update",
      "tsdb-dev-schema-migrations": "update",
      "tsdb-dev-settings-guard": "update",
      "tsdb-dev-timescaledb": "replace (image)",
      "tsdb-dev-timescaledb-image": "replace (name)",
    },
  ],
  [
    "port",
    "15432",
    {
      "tsdb-dev-data-sample-dataset": "update",
      "tsdb-dev-extension-admin-hook": "update",
      "tsdb-dev-provider": "update (port)",
      "tsdb-dev-schema-migrations": "update",
      "tsdb-dev-settings-guard": "update",
      "tsdb-dev-timescaledb": "replace (ports)",
    },
  ],
  ["bindAddress", "0.0.0.0", { "tsdb-dev-pgadmin": "replace (ports)", "tsdb-dev-settings-guard": "update", "tsdb-dev-timescaledb": "replace (ports)" }],
  ["protectData", "true", { "tsdb-dev-schema-migrations": "update", "tsdb-dev-settings-guard": "update" }],
  ["appPassword", "new-app-Pw1", { "tsdb-dev-app": "update (password)", "tsdb-dev-app-password": "delete" }],
  ["appConnectionLimit", "60", { "tsdb-dev-app": "update (connectionLimit)" }],
  ["pgadminEnabled", "false", { "tsdb-dev-pgadmin": "delete", "tsdb-dev-pgadmin-image": "delete", "tsdb-dev-pgadmin-password": "delete" }],
  ["pgadminImage", "dpage/pgadmin4:9.8", { "tsdb-dev-pgadmin": "replace (image)", "tsdb-dev-pgadmin-image": "replace (name)" }],
  ["pgadminPort", "5051", { "tsdb-dev-pgadmin": "replace (ports)" }],
  ["pgadminEmail", "ops@example.com", { "tsdb-dev-pgadmin": "replace (envs)" }],
  ["pgadminPassword", "new-pgadmin-Pw1", { "tsdb-dev-pgadmin": "replace (uploads)", "tsdb-dev-pgadmin-password": "delete" }],
  ["sslmode", "require", { "tsdb-dev-extension-admin-hook": "update", "tsdb-dev-provider": "update (sslmode)", "tsdb-dev-schema-migrations": "update" }],
  ["ohlcvChunkInterval", "7 days", { "tsdb-dev-schema-migrations": "update" }],
  ["tickRetention", "90 days", { "tsdb-dev-schema-migrations": "update" }],
  ["caggRefreshInterval", "30 minutes", { "tsdb-dev-schema-migrations": "update" }],
  ["datasets", [], { "tsdb-dev-data-sample-dataset": "delete" }],
  ["backupRetain", "9", {}],
];

describe("changing one setting on a running dev stack", () => {
  let deployed: Deployment;
  beforeAll(async () => {
    deployed = await deploy(STACKS.dev);
  });

  test.each(DEV_CHANGES)("%s -> %j", async (key, value, expected) => {
    const isSecret = key.endsWith("Password");
    const next = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, [key]: value }, secretKeys: isSecret ? [key] : [] }, deployed.deployed);
    expect(changesOf(next.steps)).toEqual(expected);
  });

  test("an interval reaches only the schema hook's recorded settings: applied migrations are not re-run", async () => {
    const next = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, ohlcvChunkInterval: "7 days" } }, deployed.deployed);
    const before = [...deployed.deployed.resources.values()].find((r) => r.name === "tsdb-dev-schema-migrations")!;
    const after = [...next.deployed.resources.values()].find((r) => r.name === "tsdb-dev-schema-migrations")!;
    expect((after.inputs.variables as Record<string, string>).ohlcvChunkInterval).toBe("7 days");
    expect(planSummary(before.state as never, after.inputs as never)).toEqual([]);
  });

  test("a replacement of the container no longer kills PostgreSQL: the old one is deleted first, with a fast shutdown and 300 s to checkpoint", async () => {
    const next = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, memoryMb: "4096" } }, deployed.deployed);
    const step = next.steps.find((s) => s.name === "tsdb-dev-timescaledb")!;
    expect(step).toMatchObject({ change: "replace", deleteBeforeReplace: true, stop: { signal: "SIGINT", timeoutSeconds: 300 } });
  });

  test("the preview says that a replacement restarts the database, naming the settings; the next up says nothing", async () => {
    const config = { ...STACKS.dev.config, memoryMb: "4096", cpus: "4" };
    const next = await deploy({ ...STACKS.dev, config }, deployed.deployed);
    const guard = [...next.deployed.resources.values()].find((r) => r.name === "tsdb-dev-settings-guard")!;
    expect(guard.inputs.notice).toBe(
      "tsdb:memoryMb, tsdb:cpus changed: the container tsdb-dev-timescaledb is replaced, which restarts PostgreSQL: a fast shutdown " +
        "(open sessions are cut; up to 300 s to write its checkpoint), then it starts again on the kept data volume.",
    );
    const unchanged = [...deployed.deployed.resources.values()].find((r) => r.name === "tsdb-dev-settings-guard")!;
    expect(unchanged.inputs.notice).toBe("");
    const after = await deploy({ ...STACKS.dev, config }, next.deployed);
    expect(changesOf(after.steps)).toEqual({});
  });

  test("restartPolicy and other in-place changes carry no restart notice", async () => {
    const next = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, restartPolicy: "always" } }, deployed.deployed);
    expect([...next.deployed.resources.values()].find((r) => r.name === "tsdb-dev-settings-guard")!.inputs.notice).toBe("");
  });

  test("renaming the database is refused at preview with one line naming the setting and what to do", async () => {
    const refused = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, database: "ticks" } }, deployed.deployed).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RefusedAtPreview);
    const reasons = (refused as RefusedAtPreview).reasons;
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^\[tsdb:database\] changed from "market" to "ticks" on the deployed stack dev: /);
    expect(reasons[0]).toContain("pulumi config set tsdb:database market --stack dev");
    expect(reasons[0]).not.toContain("\n");
  });

  test("even asked for (TSDB_ALLOW=database), a rename is refused at preview with what to do instead (was: roles renamed in place, then the old grants' deletes failed half-way)", async () => {
    const refused = await deploy(
      { ...STACKS.dev, config: { ...STACKS.dev.config, database: "ticks" }, env: { TSDB_ALLOW: "database" } },
      deployed.deployed,
    ).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RefusedAtPreview);
    const [reason] = (refused as RefusedAtPreview).reasons;
    expect(reason).toContain("not even with TSDB_ALLOW=database");
    expect(reason).toContain("tsdb data export --out bars.parquet");
    expect(reason).toContain("pulumi destroy --stack dev");
  });

  test("why: past the guard, the rename's plan deletes every grant and default privilege of the old roles under names it renames first", async () => {
    const next = await deploy(
      { ...STACKS.dev, config: { ...STACKS.dev.config, database: "ticks" }, env: { TSDB_ALLOW: "database" }, withoutGuard: true },
      deployed.deployed,
    );
    const changes = changesOf(next.steps);
    expect([changes["tsdb-dev-app"], changes["tsdb-dev-migrator"], changes["tsdb-dev-owner"]]).toEqual(["update (name)", "update (name, roles)", "update (name)"]);
    // All 46 deleted (38 grants and 8 default privileges of the access plan, lib/access.ts, named after their roles).
    const failing = deletesUnderRenamedRoles(next, deployed.deployed);
    expect(failing.length).toBe(46);
    expect(failing.every((n) => n.includes("market_"))).toBe(true);
  });

  test("flipping tsdb:timescaledb on a deployed stack is refused at preview like the database name (was: the schema hook's delete dropped every table)", async () => {
    const refused = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, timescaledb: "false" } }, deployed.deployed).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RefusedAtPreview);
    const reasons = (refused as RefusedAtPreview).reasons;
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^\[tsdb:timescaledb\] changed from true to false on the deployed stack dev: /);
    expect(reasons[0]).toContain("dropping every table with all its rows");
    expect(reasons[0]).toContain("pulumi config set tsdb:timescaledb true --stack dev");
    expect(reasons[0]).toContain("TSDB_ALLOW=timescaledb pulumi up --stack dev");
    expect(reasons[0]).not.toContain("\n");
  });

  test("asked for (TSDB_ALLOW=timescaledb), the switch replaces the schema hook and the container and drops the extension", async () => {
    const next = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, timescaledb: "false" }, env: { TSDB_ALLOW: "timescaledb" } }, deployed.deployed);
    expect(changesOf(next.steps)).toEqual({
      // Its delete changes nothing in the database (providers/ExtensionAdminProvider.ts); the extension goes.
      "tsdb-dev-extension-admin-hook": "delete",
      "tsdb-dev-extension-timescaledb": "delete",
      "tsdb-dev-owner": "update (login)",
      "tsdb-dev-schema-migrations": "replace (timescaledb)",
      "tsdb-dev-settings-guard": "update",
      "tsdb-dev-timescaledb": "replace (command)",
    });
  });

  test("changing the admin password of the container is refused at preview with the steps to do it safely", async () => {
    const refused = await deploy(
      { ...STACKS.dev, config: { ...STACKS.dev.config, adminPassword: "new-admin-Pw1" }, secretKeys: ["adminPassword"] },
      deployed.deployed,
    ).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RefusedAtPreview);
    const reasons = (refused as RefusedAtPreview).reasons;
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^\[tsdb:adminPassword\] changed on the deployed docker stack dev: /);
    expect(reasons[0]).toContain("docker exec -it tsdb-dev-timescaledb psql -U postgres -c '\\password postgres'");
    expect(reasons[0]).toContain("TSDB_ALLOW=adminPassword pulumi up --stack dev");
    expect(reasons[0]).not.toContain("new-admin-Pw1");
  });

  test("once changed in the server, TSDB_ALLOW=adminPassword lets the new password through: the container is replaced, the provider re-configured", async () => {
    const next = await deploy(
      { ...STACKS.dev, config: { ...STACKS.dev.config, adminPassword: "new-admin-Pw1" }, secretKeys: ["adminPassword"], env: { TSDB_ALLOW: "adminPassword" } },
      deployed.deployed,
    );
    expect(changesOf(next.steps)).toEqual({
      "tsdb-dev-admin-password": "delete",
      // The admin hook connects with the new password (and does its idempotent work again).
      "tsdb-dev-extension-admin-hook": "update",
      "tsdb-dev-provider": "update (password)",
      "tsdb-dev-settings-guard": "update",
      "tsdb-dev-timescaledb": "replace (uploads)",
    });
    // And the run after that is clean: the guard stored the new fingerprint.
    const after = await deploy({ ...STACKS.dev, config: { ...STACKS.dev.config, adminPassword: "new-admin-Pw1" }, secretKeys: ["adminPassword"] }, next.deployed);
    expect(changesOf(after.steps)).toEqual({});
  });
});

describe("changing one setting on a running prod stack", () => {
  let deployed: Deployment;
  beforeAll(async () => {
    deployed = await deploy(STACKS.prod);
  });

  test("memoryMb 16384 replaces the container (PostgreSQL restarts on the kept, protected volume)", async () => {
    const next = await deploy({ ...STACKS.prod, config: { ...STACKS.prod.config, memoryMb: "16384" } }, deployed.deployed);
    expect(changesOf(next.steps)).toEqual({ "tsdb-prod-settings-guard": "update", "tsdb-prod-timescaledb": "replace (command, memory, memorySwap)" });
  });

  test("pgadminEnabled true (with its password) adds pgAdmin and touches nothing else", async () => {
    const next = await deploy(
      { ...STACKS.prod, config: { ...STACKS.prod.config, pgadminEnabled: "true", pgadminPassword: "prod-pgadmin-1Zz" }, secretKeys: [...Object.keys(PROD_PASSWORDS), "pgadminPassword"] },
      deployed.deployed,
    );
    expect(changesOf(next.steps)).toEqual({ "tsdb-prod-pgadmin": "create", "tsdb-prod-pgadmin-image": "create" });
  });

  test("a password change of a login role is an in-place ALTER ROLE", async () => {
    const next = await deploy({ ...STACKS.prod, config: { ...STACKS.prod.config, readonlyPassword: "prod-readonly-3Xc" } }, deployed.deployed);
    expect(changesOf(next.steps)).toEqual({ "tsdb-prod-readonly": "update (password)" });
  });

  test("even asked for, renaming the protected database is refused at preview, saying to unprotect it for the destroy", async () => {
    const refused = await deploy(
      { ...STACKS.prod, config: { ...STACKS.prod.config, database: "ticks" }, env: { TSDB_ALLOW: "database" } },
      deployed.deployed,
    ).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RefusedAtPreview);
    expect((refused as RefusedAtPreview).reasons[0]).toContain("pulumi config set tsdb:protectData false --stack prod");
  });
});
