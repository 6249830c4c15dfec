/**
 * `tsdb:bindAddress: ::1` (which settings accept) produced `postgresql://u:p@::1:5432/...` in the role URLs,
 * `adminUrl` and the dataset hook's DATABASE_URL, which Node's URL parser rejects. Every URL now brackets the
 * IPv6 host, and hosts handed to clients stay bare.
 */
import { describe, expect, test } from "vitest";
import { loaderDatabaseUrl } from "../../providers/DatasetProvider";
import { libpqHostPort, postgresqlProviderDsn } from "../fixtures/providerModels";
import { committedStackConfig, plain, type RunOptions, runStack, valueOf } from "../fixtures/pulumiMocks";
import { changesOf, deploy } from "../fixtures/secondRun";

/** Host and port as the postgresql provider's driver finds them in the DSN the provider builds from its inputs. */
async function providerHostPort(options: RunOptions): Promise<{ host: string; port: string }> {
  const run = await runStack(options);
  const inputs = plain(run.ofType("pulumi:providers:postgresql")[0]!.inputs) as Record<string, unknown>;
  const dsn = postgresqlProviderDsn({
    host: String(inputs.host), port: Number(inputs.port), username: String(inputs.username), password: String(inputs.password),
    database: String(inputs.database), sslmode: String(inputs.sslmode),
  });
  return libpqHostPort(dsn);
}

describe("a dev stack published on ::1", () => {
  test("every URL the stack exports parses, with the bracketed host and the right port", async () => {
    const run = await runStack({ stack: "dev", config: { ...committedStackConfig("dev"), bindAddress: "::1" } });
    const database = run.outputs.database as Record<string, unknown>;
    const urls = (await valueOf(database.urls as object)) as Record<string, string>;
    const all = { ...urls, adminUrl: await valueOf(run.outputs.adminUrl as string), pgadminUrl: await valueOf(database.pgadminUrl as string) };
    expect(Object.keys(all).sort()).toEqual(["adminUrl", "app", "migrator", "pgadminUrl", "readonly"]);
    const parsed = Object.fromEntries(
      Object.entries(all).map(([k, u]) => {
        try {
          const url = new URL(u);
          return [k, `${url.hostname}:${url.port}`];
        } catch {
          return [k, `unparseable: ${u.replace(/:[^:@/]+@/, ":***@")}`];
        }
      }),
    );
    expect(parsed).toEqual({ adminUrl: "[::1]:5432", app: "[::1]:5432", migrator: "[::1]:5432", readonly: "[::1]:5432", pgadminUrl: "[::1]:5050" });
    expect(await valueOf(database.host as string)).toBe("::1");
  });

  test("the hooks get the bare address (node-postgres takes it without brackets), the postgresql provider the bracketed one", async () => {
    const run = await runStack({ stack: "dev", config: { ...committedStackConfig("dev"), bindAddress: "::1" } });
    // It puts the host into a URL as given (postgresql/config.go connStr): see the next describe.
    expect(plain(run.get("tsdb-dev-provider", "pulumi:providers:postgresql").inputs.host)).toBe("[::1]");
    for (const hook of run.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/tsdb:") && r.inputs.connection)) {
      expect((plain(hook.inputs.connection) as { host: string }).host).toBe("::1");
    }
    expect(run.get("tsdb-dev-timescaledb", "docker:index/container:Container").inputs.ports).toEqual([{ internal: 5432, external: 5432, ip: "::1", protocol: "tcp" }]);
  });
});

describe("the postgresql provider on an IPv6 address", () => {
  test("the provider's own URL rule: a bare IPv6 host cannot be split from its port", () => {
    const dsn = postgresqlProviderDsn({ host: "::1", port: 5432, username: "postgres", password: "pw", database: "postgres", sslmode: "disable" });
    expect(dsn).toBe("postgres://postgres:pw@::1:5432/postgres?sslmode=disable");
    expect(() => libpqHostPort(dsn)).toThrow("address ::1:5432: too many colons in address");
  });

  test.each([
    ["docker, bindAddress ::1", { ...committedStackConfig("dev"), bindAddress: "::1" }, "::1", "5432"],
    ["docker, bindAddress :: (reached on ::1)", { ...committedStackConfig("dev"), bindAddress: "::" }, "::1", "5432"],
    ["docker, bindAddress 127.0.0.1", committedStackConfig("dev"), "127.0.0.1", "5432"],
    [
      "external, fd00::5",
      { mode: "external", externalHost: "fd00::5", externalPort: "6432", externalAdminUser: "tsdbadmin", adminPassword: "ext-admin-Secret9" },
      "fd00::5",
      "6432",
    ],
  ])("%s: every postgresql resource reaches the server (was: 'too many colons in address')", async (_label, config, host, port) => {
    expect(await providerHostPort({ stack: "dev", config, secretKeys: ["adminPassword"] })).toEqual({ host, port });
  });
});

describe("IP canonicalisation", () => {
  test("a non-canonical IPv6 spelling is published as Docker reports it back, so a second up changes nothing", async () => {
    const options = { stack: "dev", config: { ...committedStackConfig("dev"), bindAddress: "0:0:0:0:0:0:0:1" } };
    const first = await deploy(options);
    expect(first.run.get("tsdb-dev-timescaledb", "docker:index/container:Container").inputs.ports).toEqual([{ internal: 5432, external: 5432, ip: "::1", protocol: "tcp" }]);
    expect(changesOf((await deploy(options, first.deployed)).steps)).toEqual({});
  });
});

describe("the dataset hook's DATABASE_URL", () => {
  test("brackets an IPv6 host, so the loader child can parse it", () => {
    const url = new URL(loaderDatabaseUrl({ host: "::1", port: 5432, database: "market", user: "market_app", password: "p:w@", sslmode: "disable" }));
    expect([url.hostname, url.port, decodeURIComponent(url.password), url.pathname]).toEqual(["[::1]", "5432", "p:w@", "/market"]);
  });
});
