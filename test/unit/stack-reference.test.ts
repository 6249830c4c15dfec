/**
 * sdk/TsdbStackReference under Pulumi mocks: a StackReference is a resource read, so the mock answers it with
 * the referenced stack's outputs, as the engine would (the `database` output marked secret).
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, test } from "vitest";
import { TsdbStackReference, validateDatabaseOutput } from "../../sdk/TsdbStackReference";

const DATABASE = {
  mode: "docker",
  host: "127.0.0.1",
  port: 5433,
  database: "market",
  sslmode: "disable",
  users: { migrator: "market_migrator", app: "market_app", readonly: "market_readonly" },
  urls: {
    migrator: "postgresql://market_migrator:m@127.0.0.1:5433/market?sslmode=disable",
    app: "postgresql://market_app:s%3Acret@127.0.0.1:5433/market?sslmode=disable",
    readonly: "postgresql://market_readonly:r@127.0.0.1:5433/market?sslmode=disable",
  },
  pgadminUrl: "http://127.0.0.1:5050",
  versions: { image: "timescale/timescaledb:2.23.0-pg17", postgresMajor: 17, timescaledb: "2.23.0" },
};

/** An external stack with a pooler and a replica: app and readonly URLs go through the pooler. */
const MANAGED = {
  ...DATABASE,
  mode: "external",
  host: "db.example.com",
  port: 5432,
  sslmode: "verify-full",
  urls: {
    migrator: "postgresql://market_migrator:m@db.example.com:5432/market?sslmode=verify-full",
    app: "postgresql://market_app:a@pool.example.com:6432/market?sslmode=verify-full",
    readonly: "postgresql://market_readonly:r@pool.example.com:6432/market?sslmode=verify-full",
    replica: "postgresql://market_readonly:r@replica.example.com:5432/market?sslmode=verify-full",
  },
  pooler: { host: "pool.example.com", port: 6432 },
  replica: { host: "replica.example.com", port: 5432 },
  pgadminUrl: undefined,
  versions: { image: null, postgresMajor: 17, timescaledb: "2.23.0" },
};

const reads: { type: string; name: string; id?: string; inputs: Record<string, unknown> }[] = [];

function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        reads.push({ type: args.type, name: args.name, id: args.id, inputs: args.inputs as Record<string, unknown> });
        if (args.type !== "pulumi:pulumi:StackReference") throw new Error(`unexpected resource ${args.type}`);
        const stack = String(args.inputs.name);
        const database = stack.endsWith("/cloud") ? MANAGED : DATABASE;
        return { id: stack, state: { name: stack, outputs: { database }, secretOutputNames: ["database"] } };
      },
      call(args) {
        throw new Error(`unmocked provider function ${args.token}`);
      },
    },
    "consumer",
    "dev",
    false,
  );
});

describe("TsdbStackReference", () => {
  test("reads the named stack through one StackReference", async () => {
    const ref = new TsdbStackReference("market-db", { stack: "organization/tsdb/dev" });
    await valueOf(ref.host);
    expect(reads.filter((r) => r.name === "market-db")).toEqual([
      { type: "pulumi:pulumi:StackReference", name: "market-db", id: "organization/tsdb/dev", inputs: { name: "organization/tsdb/dev" } },
    ]);
  });

  test("plain facts come back typed and not secret", async () => {
    const ref = new TsdbStackReference("facts", { stack: "organization/tsdb/dev" });
    expect(await valueOf(ref.host)).toBe("127.0.0.1");
    expect(await valueOf(ref.port)).toBe(5433);
    expect(await valueOf(ref.databaseName)).toBe("market");
    expect(await valueOf(ref.sslmode)).toBe("disable");
    expect(await valueOf(ref.mode)).toBe("docker");
    expect(await valueOf(ref.versions)).toEqual({ image: "timescale/timescaledb:2.23.0-pg17", postgresMajor: 17, timescaledb: "2.23.0" });
    expect(await valueOf(ref.pgadminUrl)).toBe("http://127.0.0.1:5050");
    expect(await valueOf(ref.user("readonly"))).toBe("market_readonly");
    for (const o of [ref.host, ref.port, ref.databaseName, ref.user("app")] as pulumi.Output<unknown>[]) expect(await pulumi.isSecret(o)).toBe(false);
  });

  test("url(role) and connection(role) carry the password and stay secret", async () => {
    const ref = new TsdbStackReference("secrets", { stack: "organization/tsdb/dev" });
    expect(await valueOf(ref.url("app"))).toBe(DATABASE.urls.app);
    expect(await pulumi.isSecret(ref.url("app"))).toBe(true);
    expect(await valueOf(ref.connection("app"))).toEqual({
      host: "127.0.0.1",
      port: 5433,
      database: "market",
      user: "market_app",
      password: "s:cret",
      sslmode: "disable",
    });
    expect(await pulumi.isSecret(ref.connection("app"))).toBe(true);
    expect(await pulumi.isSecret(ref.database)).toBe(true);
  });

  test("an unknown role is refused when asked for", () => {
    const ref = new TsdbStackReference("roles", { stack: "organization/tsdb/dev" });
    expect(() => ref.url("admin" as never)).toThrow('TsdbStackReference: role must be one of migrator, app, readonly, got "admin".');
  });

  test("an incomplete database output fails naming the stack and every missing field", () => {
    expect(() => validateDatabaseOutput({ host: "h", urls: { app: "postgresql://a@h/db" } }, "organization/tsdb/broken")).toThrow(
      'Stack organization/tsdb/broken: output "database" lacks mode ("docker" or "external"), port (number), database (string), sslmode (string), users (an object with migrator, app, readonly), urls.migrator (a postgresql:// URL), urls.readonly (a postgresql:// URL), versions (an object); is it a tsdb stack, deployed with `pulumi up`?',
    );
    expect(validateDatabaseOutput(DATABASE, "organization/tsdb/dev")).toEqual(DATABASE);
  });
});

describe("TsdbStackReference on a managed stack with a pooler and a replica", () => {
  test("connection(role) follows the role's URL: app through the pooler, migrator direct; the replica URL stays secret", async () => {
    const ref = new TsdbStackReference("cloud", { stack: "organization/tsdb/cloud" });
    expect(await valueOf(ref.connection("app"))).toMatchObject({ host: "pool.example.com", port: 6432, user: "market_app" });
    expect(await valueOf(ref.connection("migrator"))).toMatchObject({ host: "db.example.com", port: 5432, user: "market_migrator" });
    expect(await valueOf(ref.pooler)).toEqual({ host: "pool.example.com", port: 6432 });
    expect(await valueOf(ref.replica)).toEqual({ host: "replica.example.com", port: 5432 });
    expect(await pulumi.isSecret(ref.pooler)).toBe(false);
    expect(await valueOf(ref.replicaUrl)).toBe(MANAGED.urls.replica);
    expect(await pulumi.isSecret(ref.replicaUrl)).toBe(true);
  });

  test("a docker stack has no pooler, no replica and no replica URL", async () => {
    const ref = new TsdbStackReference("plain", { stack: "organization/tsdb/dev" });
    expect(await valueOf(ref.pooler)).toBeNull();
    expect(await valueOf(ref.replica)).toBeNull();
    expect(await valueOf(ref.replicaUrl)).toBeUndefined();
  });
});
