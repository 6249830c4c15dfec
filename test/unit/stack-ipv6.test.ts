/**
 * `tsdb:bindAddress: ::1` (which settings accept) produced `postgresql://u:p@::1:5432/...` in the role URLs,
 * `adminUrl` and the dataset hook's DATABASE_URL, which Node's URL parser rejects. Every URL now brackets the
 * IPv6 host, and hosts handed to clients stay bare.
 */
import { describe, expect, test } from "vitest";
import { loaderDatabaseUrl } from "../../providers/DatasetProvider";
import { committedStackConfig, plain, runStack, valueOf } from "../fixtures/pulumiMocks";

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

  test("the provider and the hooks get the bare address (libpq and node-postgres take it without brackets)", async () => {
    const run = await runStack({ stack: "dev", config: { ...committedStackConfig("dev"), bindAddress: "::1" } });
    expect(plain(run.get("tsdb-dev-provider", "pulumi:providers:postgresql").inputs.host)).toBe("::1");
    for (const hook of run.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/tsdb:") && r.inputs.connection)) {
      expect((plain(hook.inputs.connection) as { host: string }).host).toBe("::1");
    }
    expect(run.get("tsdb-dev-timescaledb", "docker:index/container:Container").inputs.ports).toEqual([{ internal: 5432, external: 5432, ip: "::1", protocol: "tcp" }]);
  });
});

describe("the dataset hook's DATABASE_URL", () => {
  test("brackets an IPv6 host, so the loader child can parse it", () => {
    const url = new URL(loaderDatabaseUrl({ host: "::1", port: 5432, database: "market", user: "market_app", password: "p:w@", sslmode: "disable" }));
    expect([url.hostname, url.port, decodeURIComponent(url.password), url.pathname]).toEqual(["[::1]", "5432", "p:w@", "/market"]);
  });
});
