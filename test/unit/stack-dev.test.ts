import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import {
  committedStackConfig,
  isWrappedSecret,
  plain,
  redactSecrets,
  runStack,
  secretOf,
  type StackRun,
  valueOf,
} from "../fixtures/pulumiMocks";

const T = {
  network: "docker:index/network:Network",
  volume: "docker:index/volume:Volume",
  image: "docker:index/remoteImage:RemoteImage",
  container: "docker:index/container:Container",
  password: "random:index/randomPassword:RandomPassword",
  provider: "pulumi:providers:postgresql",
  role: "postgresql:index/role:Role",
  database: "postgresql:index/database:Database",
  extension: "postgresql:index/extension:Extension",
  schema: "postgresql:index/schema:Schema",
  grant: "postgresql:index/grant:Grant",
  defaults: "postgresql:index/defaultPrivileges:DefaultPrivileges",
};

// Generated passwords as the mock RandomPassword returns them.
const GENERATED = [
  "generatedtsdbdevadminpassword",
  "generatedtsdbdevpgadminpassword",
  "generatedtsdbdevmigratorpassword",
  "generatedtsdbdevapppassword",
  "generatedtsdbdevreadonlypassword",
];

describe("dev stack (Pulumi.dev.yaml only)", () => {
  let run: StackRun;
  beforeAll(async () => {
    run = await runStack({ stack: "dev", config: committedStackConfig("dev") });
  });

  test("declares network, volume, both containers, provider, four roles, database, extension, five schemas, grants and default privileges", () => {
    const count = (type: string) => run.ofType(type).length;
    expect({
      network: count(T.network),
      volume: count(T.volume),
      image: count(T.image),
      container: count(T.container),
      password: count(T.password),
      provider: count(T.provider),
      role: count(T.role),
      database: count(T.database),
      extension: count(T.extension),
      schema: count(T.schema),
      grant: count(T.grant),
      defaults: count(T.defaults),
    }).toEqual({
      network: 1,
      volume: 1,
      image: 2,
      container: 2,
      password: 5,
      provider: 1,
      role: 4,
      database: 1,
      extension: 1,
      schema: 5,
      // 2 PUBLIC + 3 database + 10 schema usage + 25 object grants
      grant: 39, // 38, and CONNECT for pg_monitor (issue 21 item 5)
      // (owner, migrator) x (app: table, sequence, function; readonly: table, sequence)
      defaults: 10,
    });
    expect(run.resources.filter((r) => !r.custom).map((r) => r.type).sort()).toEqual([
      "pulumi:pulumi:Stack",
      "tsdb:docker:PgAdmin",
      "tsdb:docker:TimescaleDbServer",
      "tsdb:hooks:ExtensionAdmin",
      "tsdb:hooks:MarketDataLoad",
      "tsdb:hooks:SchemaMigrations",
      "tsdb:hooks:SettingGuard",
      "tsdb:postgres:DatabaseAccess",
    ]);
  });

  test("the migrations hook runs after the database, extension, schemas, roles and grants, as the migrator acting as the owner", () => {
    const hook = run.get("tsdb-dev-schema-migrations", "pulumi-nodejs:dynamic/tsdb:SchemaMigrations");
    // Every database object the stack declares (they reach the container through the provider's dependsOn).
    const ready = run.resources.filter((r) => r.type.startsWith("postgresql:")).map((r) => r.name);
    expect(hook.dependsOn.slice().sort()).toEqual([...ready, "tsdb-dev-extension-admin-hook"].sort());
    expect(isWrappedSecret(hook.inputs.connection)).toBe(true);
    expect(plain(hook.inputs.connection)).toMatchObject({ user: "market_migrator", database: "market", host: "127.0.0.1", port: 5432, sslmode: "disable" });
    expect(hook.inputs.role).toBe("market_owner");
    expect(hook.inputs.timescaledb).toBe(true);
    expect(hook.inputs.names).toEqual(fs.readdirSync(path.join(__dirname, "../../sql")).filter((f) => f.endsWith(".sql")).sort());
  });

  test("the admin hook runs as the admin after the extension, roles and grants, before the migrations, and re-runs on an image bump", () => {
    const hook = run.get("tsdb-dev-extension-admin-hook", "pulumi-nodejs:dynamic/tsdb:ExtensionAdmin");
    const ready = run.resources.filter((r) => r.type.startsWith("postgresql:")).map((r) => r.name);
    expect(hook.dependsOn.slice().sort()).toEqual(ready.slice().sort());
    expect(ready).toContain("tsdb-dev-extension-timescaledb");
    expect(isWrappedSecret(hook.inputs.connection)).toBe(true);
    expect(plain(hook.inputs.connection)).toMatchObject({ user: "postgres", database: "market", host: "127.0.0.1", port: 5432, sslmode: "disable" });
    expect([hook.inputs.ownerRole, hook.inputs.serverImage]).toEqual(["market_owner", "timescale/timescaledb:2.23.0-pg17"]);
  });

  test("the bundled sample loads after the migrations, as the app role, keyed by its content checksum", () => {
    const loads = run.ofType("pulumi-nodejs:dynamic/tsdb:MarketDataLoad");
    expect(loads).toHaveLength(1);
    const load = loads[0]!;
    expect(load.dependsOn).toEqual(["tsdb-dev-schema"]);
    expect(isWrappedSecret(load.inputs.connection)).toBe(true);
    expect(plain(load.inputs.connection)).toMatchObject({ user: "market_app", database: "market" });
    expect(load.inputs.checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test("images are the pinned ones and kept locally", () => {
    expect(run.ofType(T.image).map((r) => r.inputs).sort((a, b) => String(a.name).localeCompare(String(b.name)))).toEqual([
      { name: "dpage/pgadmin4:9.9", keepLocally: true },
      { name: "timescale/timescaledb:2.23.0-pg17", keepLocally: true },
    ]);
  });

  test("the TimescaleDB container publishes 5432 on 127.0.0.1 only, is healthchecked over TCP and waited for", () => {
    const c = run.get("tsdb-dev-timescaledb", T.container).inputs;
    expect(c.ports).toEqual([{ internal: 5432, external: 5432, ip: "127.0.0.1", protocol: "tcp" }]);
    expect(c.healthcheck).toEqual({
      tests: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"],
      interval: "5s",
      timeout: "5s",
      retries: 12,
      startPeriod: "30s",
    });
    expect([c.wait, c.waitTimeout, c.restart, c.memory, c.memorySwap, c.cpus, c.shmSize]).toEqual([true, 180, "unless-stopped", 2048, 2048, "2.0", 512]);
    expect(c.networksAdvanced).toEqual([{ name: "tsdb-dev-net", aliases: ["timescaledb"] }]);
    expect(c.volumes).toEqual([{ volumeName: "tsdb-dev-data", containerPath: "/var/lib/postgresql/data" }]);
  });

  test("PostgreSQL settings are derived from 2048 MB and 2 CPUs, and telemetry is off", () => {
    const c = run.get("tsdb-dev-timescaledb", T.container).inputs;
    expect(c.command).toEqual([
      "postgres",
      "-c", "shared_buffers=512MB",
      "-c", "effective_cache_size=1536MB",
      "-c", "maintenance_work_mem=256MB",
      "-c", "work_mem=2621kB",
      "-c", "max_connections=100",
      "-c", "max_worker_processes=13",
      "-c", "max_parallel_workers_per_gather=1",
      "-c", "max_parallel_workers=2",
      "-c", "timescaledb.max_background_workers=8",
      "-c", "timescaledb.telemetry_level=off",
    ]);
    expect(plain(c.envs)).toEqual([
      "POSTGRES_PASSWORD_FILE=/etc/tsdb/postgres-password",
      "POSTGRES_USER=postgres",
      "TIMESCALEDB_TELEMETRY=off",
      "NO_TS_TUNE=true",
    ]);
  });

  test("the superuser password reaches the image as a file, never in the environment `docker inspect` shows", () => {
    const c = run.get("tsdb-dev-timescaledb", T.container).inputs;
    expect(JSON.stringify(plain(c.envs))).not.toContain("generatedtsdbdevadminpassword");
    expect(isWrappedSecret(c.uploads)).toBe(true);
    expect(plain(c.uploads)).toEqual([{ file: "/etc/tsdb/postgres-password", content: "generatedtsdbdevadminpassword" }]);
  });

  test("the dev data volume is named and not protected", () => {
    const v = run.get("tsdb-dev-data", T.volume);
    expect([v.inputs.name, v.protect, v.retainOnDelete]).toEqual(["tsdb-dev-data", false, false]);
  });

  test("the provider waits for the healthy container and the setting guard", () => {
    const p = run.get("tsdb-dev-provider", T.provider);
    expect(p.dependsOn).toEqual(["tsdb-dev-timescaledb", "tsdb-dev-settings-guard"]);
    expect(run.get("tsdb-dev-timescaledb", T.container).inputs.wait).toBe(true);
    expect(isWrappedSecret(p.inputs.password)).toBe(true);
    // Provider inputs reach the engine as strings.
    expect(plain(p.inputs)).toEqual({
      host: "127.0.0.1",
      port: "5432",
      username: "postgres",
      password: "generatedtsdbdevadminpassword",
      sslmode: "disable",
      superuser: "true",
      database: "postgres",
      connectTimeout: "15",
    });
  });

  test("every database resource goes through that provider", () => {
    const dbResources = run.resources.filter((r) => r.type.startsWith("postgresql:"));
    expect(dbResources).toHaveLength(4 + 1 + 1 + 5 + 39 + 10);
    expect(new Set(dbResources.map((r) => r.provider))).toEqual(new Set(["tsdb-dev-provider"]));
  });

  test("roles: owner without password (LOGIN only for TimescaleDB's jobs), migrator member of owner, app and readonly with secret passwords and connection limits", () => {
    const roles = Object.fromEntries(run.ofType(T.role).map((r) => [r.name, r.inputs]));
    expect(redactSecrets(roles)).toEqual({
      "tsdb-dev-owner": { name: "market_owner", login: true, inherit: true, connectionLimit: -1 },
      "tsdb-dev-migrator": {
        name: "market_migrator",
        login: true,
        inherit: true,
        connectionLimit: 5,
        password: "[secret]",
        roles: ["market_owner"],
      },
      "tsdb-dev-app": { name: "market_app", login: true, inherit: true, connectionLimit: 50, password: "[secret]" },
      "tsdb-dev-readonly": { name: "market_readonly", login: true, inherit: true, connectionLimit: 20, password: "[secret]" },
    });
    expect(run.ofType(T.password).map((r) => r.inputs)).toEqual(Array(5).fill({ length: 32, special: false }));
  });

  test("the database is owned by the owner role and gets the timescaledb extension; schemas belong to the owner", () => {
    expect(run.get("tsdb-dev-database", T.database).inputs).toEqual({ name: "market", owner: "market_owner" });
    expect(run.ofType(T.extension).map((r) => r.inputs)).toEqual([{ name: "timescaledb", database: "market" }]);
    expect(run.ofType(T.schema).map((r) => [r.inputs.name, r.inputs.owner, r.inputs.dropCascade])).toEqual([
      ["market_data", "market_owner", false],
      ["reference_data", "market_owner", false],
      ["trading", "market_owner", false],
      ["research", "market_owner", false],
      ["audit", "market_owner", false],
    ]);
  });

  test("PUBLIC gets nothing on the database and only USAGE on the public schema", () => {
    const publicGrants = run.ofType(T.grant).filter((g) => g.inputs.role === "public").map((g) => g.inputs);
    expect(publicGrants).toEqual([
      { database: "market", role: "public", objectType: "database", privileges: [] },
      { database: "market", role: "public", objectType: "schema", schema: "public", privileges: ["USAGE"] },
    ]);
  });

  test("app may read and write data (only read the audit trail), readonly may only read, in every schema", () => {
    const grants = run.ofType(T.grant).map((g) => g.inputs);
    const on = (role: string, objectType: string, schema?: string) =>
      grants.find((g) => g.role === role && g.objectType === objectType && g.schema === schema)?.privileges;
    expect(on("market_app", "database")).toEqual(["CONNECT", "TEMPORARY"]);
    expect(on("market_readonly", "database")).toEqual(["CONNECT"]);
    expect(on("market_migrator", "database")).toEqual(["CONNECT", "TEMPORARY"]);
    for (const schema of ["market_data", "reference_data", "trading", "research", "audit"]) {
      expect([on("market_app", "schema", schema), on("market_readonly", "schema", schema)]).toEqual([["USAGE"], ["USAGE"]]);
      const audit = schema === "audit";
      expect(on("market_app", "table", schema)).toEqual(audit ? ["SELECT"] : ["SELECT", "INSERT", "UPDATE", "DELETE"]);
      expect(on("market_app", "sequence", schema)).toEqual(audit ? undefined : ["USAGE", "SELECT"]);
      expect(on("market_app", "function", schema)).toEqual(audit ? undefined : ["EXECUTE"]);
      expect(on("market_readonly", "table", schema)).toEqual(["SELECT"]);
      expect(on("market_readonly", "sequence", schema)).toEqual(["SELECT"]);
      expect(on("market_readonly", "function", schema)).toBeUndefined();
    }
  });

  test("default privileges cover tables the owner or the migrator create later", () => {
    const defaults = run.ofType(T.defaults).map((d) => `${d.inputs.owner} ${d.inputs.objectType} -> ${d.inputs.role}: ${(d.inputs.privileges as string[]).join(",")}`);
    expect(defaults.sort()).toEqual(
      [
        "market_migrator function -> market_app: EXECUTE",
        "market_migrator sequence -> market_app: USAGE,SELECT",
        "market_migrator sequence -> market_readonly: SELECT",
        "market_migrator table -> market_app: SELECT,INSERT,UPDATE,DELETE",
        "market_migrator table -> market_readonly: SELECT",
        "market_owner function -> market_app: EXECUTE",
        "market_owner sequence -> market_app: USAGE,SELECT",
        "market_owner sequence -> market_readonly: SELECT",
        "market_owner table -> market_app: SELECT,INSERT,UPDATE,DELETE",
        "market_owner table -> market_readonly: SELECT",
      ].sort(),
    );
  });

  test("pgAdmin joins the network on 127.0.0.1:5050 with the server pre-registered, no password in servers.json, and its login password as a file, not in its environment", () => {
    const c = run.get("tsdb-dev-pgadmin", T.container);
    expect(c.dependsOn).toEqual(["tsdb-dev-timescaledb"]);
    expect(c.inputs.ports).toEqual([{ internal: 80, external: 5050, ip: "127.0.0.1", protocol: "tcp" }]);
    expect(c.inputs.networksAdvanced).toEqual([{ name: "tsdb-dev-net" }]);
    expect(isWrappedSecret(c.inputs.uploads)).toBe(true);
    const uploads = plain(c.inputs.uploads) as { file: string; content: string }[];
    expect(uploads.map((u) => u.file)).toEqual(["/pgadmin4/servers.json", "/etc/tsdb/pgadmin-password"]);
    expect(uploads[1]!.content).toBe("generatedtsdbdevpgadminpassword");
    expect(JSON.parse(uploads[0]!.content)).toEqual({
      Servers: {
        "1": {
          Name: "market (TimescaleDB)",
          Group: "tsdb",
          Host: "timescaledb",
          Port: 5432,
          MaintenanceDB: "market",
          Username: "market_migrator",
          SSLMode: "prefer",
          ConnectionTimeout: 10,
        },
      },
    });
    expect(uploads[0]!.content).not.toMatch(/password/i);
    expect(isWrappedSecret(c.inputs.envs)).toBe(true);
    expect(plain(c.inputs.envs)).toEqual([
      "PGADMIN_DEFAULT_EMAIL=admin@example.com",
      "PGADMIN_DEFAULT_PASSWORD_FILE=/etc/tsdb/pgadmin-password",
      "PGADMIN_SERVER_JSON_FILE=/pgadmin4/servers.json",
      "PGADMIN_CONFIG_UPGRADE_CHECK_ENABLED=False",
      "PGADMIN_DISABLE_POSTFIX=true",
    ]);
    // What `docker inspect` shows of any container: no password in any container's environment.
    for (const container of run.resources.filter((r) => r.type === T.container)) {
      expect(JSON.stringify(plain(container.inputs.envs))).not.toMatch(/generated\w*password/);
    }
  });

  test("no password appears in any resource input outside a secret", () => {
    const readable = JSON.stringify(run.resources.map((r) => redactSecrets(r.inputs)));
    for (const password of GENERATED) expect(readable).not.toContain(password);
  });

  test("the database output: plain connection details, secret URLs, pgAdmin URL and versions", async () => {
    const database = run.outputs.database as Record<string, unknown>;
    expect(await secretOf(database.urls)).toBe(true);
    for (const key of ["host", "port", "database"]) expect(await secretOf(database[key])).toBe(false);
    expect(await valueOf(database.urls as object)).toEqual({
      migrator: "postgresql://market_migrator:generatedtsdbdevmigratorpassword@127.0.0.1:5432/market?sslmode=disable",
      app: "postgresql://market_app:generatedtsdbdevapppassword@127.0.0.1:5432/market?sslmode=disable",
      readonly: "postgresql://market_readonly:generatedtsdbdevreadonlypassword@127.0.0.1:5432/market?sslmode=disable",
    });
    expect({
      mode: database.mode,
      host: await valueOf(database.host as string),
      port: await valueOf(database.port as number),
      database: await valueOf(database.database as string),
      sslmode: database.sslmode,
      users: database.users,
      pgadminUrl: await valueOf(database.pgadminUrl as string),
      versions: await valueOf(database.versions as object),
    }).toEqual({
      mode: "docker",
      host: "127.0.0.1",
      port: 5432,
      database: "market",
      sslmode: "disable",
      users: { migrator: "market_migrator", app: "market_app", readonly: "market_readonly" },
      pgadminUrl: "http://127.0.0.1:5050",
      versions: { image: "timescale/timescaledb:2.23.0-pg17", postgresMajor: 17, timescaledb: "2.23.0" },
    });
  });
});

describe("dev stack with overrides", () => {
  test("memory and CPUs drive the PostgreSQL settings; another bind address and port are honoured", async () => {
    const run = await runStack({
      stack: "dev",
      config: { memoryMb: "8192", cpus: "4", port: "15432", bindAddress: "0.0.0.0", pgadminEnabled: "false", telemetry: "true" },
    });
    const c = run.get("tsdb-dev-timescaledb", T.container).inputs;
    expect(c.command).toEqual([
      "postgres",
      "-c", "shared_buffers=2GB",
      "-c", "effective_cache_size=6GB",
      "-c", "maintenance_work_mem=1GB",
      "-c", "work_mem=5242kB",
      "-c", "max_connections=100",
      "-c", "max_worker_processes=15",
      "-c", "max_parallel_workers_per_gather=2",
      "-c", "max_parallel_workers=4",
      "-c", "timescaledb.max_background_workers=8",
    ]);
    expect(c.ports).toEqual([{ internal: 5432, external: 15432, ip: "0.0.0.0", protocol: "tcp" }]);
    expect((plain(c.envs) as string[])[2]).toBe("TIMESCALEDB_TELEMETRY=basic");
    expect(run.ofType(T.container).map((r) => r.name)).toEqual(["tsdb-dev-timescaledb"]);
    const database = run.outputs.database as Record<string, unknown>;
    expect([await valueOf(database.host as string), await valueOf(database.port as number), database.pgadminUrl]).toEqual([
      "127.0.0.1",
      15432,
      undefined,
    ]);
  });

  test("configured role passwords are used instead of generated ones, and stay secret", async () => {
    const run = await runStack({
      stack: "dev",
      config: { appPassword: "app-Secret'1" },
      secretKeys: ["appPassword"],
    });
    expect(run.ofType(T.password).map((r) => r.name).sort()).toEqual([
      "tsdb-dev-admin-password",
      "tsdb-dev-migrator-password",
      "tsdb-dev-pgadmin-password",
      "tsdb-dev-readonly-password",
    ]);
    const app = run.get("tsdb-dev-app", T.role);
    expect(isWrappedSecret(app.inputs.password)).toBe(true);
    expect(plain(app.inputs.password)).toBe("app-Secret'1");
    expect(JSON.stringify(run.resources.map((r) => redactSecrets(r.inputs)))).not.toContain("app-Secret'1");
    const urls = await valueOf((run.outputs.database as { urls: object }).urls);
    expect((urls as { app: string }).app).toBe("postgresql://market_app:app-Secret'1@127.0.0.1:5432/market?sslmode=disable");
  });

  test("adminUrl, for restores, is the container superuser's URL and is secret", async () => {
    const run = await runStack({ stack: "dev", config: committedStackConfig("dev") });
    expect(await secretOf(run.outputs.adminUrl)).toBe(true);
    expect(await valueOf(run.outputs.adminUrl as string)).toBe(
      "postgresql://postgres:generatedtsdbdevadminpassword@127.0.0.1:5432/postgres?sslmode=disable",
    );
  });

  test("vanilla mode creates no extension and a NOLOGIN owner", async () => {
    const run = await runStack({ stack: "dev", config: { timescaledb: "false" } });
    expect(run.ofType(T.extension)).toEqual([]);
    expect(run.ofType("pulumi-nodejs:dynamic/tsdb:ExtensionAdmin")).toEqual([]);
    expect(run.get("tsdb-dev-owner", T.role).inputs.login).toBe(false);
    expect(await valueOf((run.outputs.database as { versions: object }).versions)).toEqual({
      image: "timescale/timescaledb:2.23.0-pg17",
      postgresMajor: 17,
      timescaledb: null,
    });
  });
});

describe("config errors fail the preview with one message", () => {
  test.each([
    [{ port: "70000" }, '[tsdb:port] must be an integer port from 1 to 65535, got "70000".'],
    [
      { ohlcvChunkInterval: "7 dais" },
      '[tsdb:ohlcvChunkInterval] must be a PostgreSQL interval such as "7 days" (a number and one of microsecond, millisecond, second, minute, hour, day, week, month, year), from 1 hour to 10 years, got "7 dais".',
    ],
    [{ memoryMb: "-1024" }, '[tsdb:memoryMb] must be an integer number of MB, at least 512, got "-1024".'],
    [{ bindAddress: "my-laptop" }, '[tsdb:bindAddress] must be an IP address such as "127.0.0.1" or "0.0.0.0", got "my-laptop".'],
  ])("%j", async (config, message) => {
    await expect(runStack({ stack: "dev", config })).rejects.toThrow(message);
  });
});
