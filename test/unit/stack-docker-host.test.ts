/**
 * The Docker host as `pulumi refresh` and `pulumi up` meet it: a stopped database container, and a host with
 * fewer CPUs than tsdb:cpus. The host's CPU count comes from lib/dockerHost.ts (the Docker CLI), replaced here.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { committedStackConfig, NO_DOCKER_HOST, runStack } from "../fixtures/pulumiMocks";
import { refreshStoppedContainer } from "../fixtures/providerModels";
import { deploy } from "../fixtures/secondRun";

const host = vi.hoisted(() => ({ cpus: undefined as number | undefined, asked: [] as (string | undefined)[] }));
vi.mock("../../lib/dockerHost", () => ({
  dockerHostCpus: (dockerHost?: string) => {
    host.asked.push(dockerHost);
    return host.cpus;
  },
}));

afterEach(() => {
  host.cpus = undefined;
  host.asked = [];
});

const PROD_PASSWORDS = { adminPassword: "a-1", migratorPassword: "m-1", appPassword: "p-1", readonlyPassword: "r-1" };

describe("pulumi refresh with the database container stopped", () => {
  test("keeps the container (was: must_run made the provider remove it and drop it from state)", async () => {
    const { deployed } = await deploy({ stack: "dev", config: committedStackConfig("dev") });
    const container = [...deployed.resources.values()].find((r) => r.name === "tsdb-dev-timescaledb")!;
    expect(refreshStoppedContainer(container.state)).toBe("kept");
  });
});

describe("tsdb:cpus above the Docker host's CPUs", () => {
  test("is refused at preview in one line naming the setting and the host's count (was: up deleted the running database before Docker refused the new one)", async () => {
    host.cpus = 2;
    await expect(
      runStack({ stack: "prod", config: { ...committedStackConfig("prod"), ...PROD_PASSWORDS }, secretKeys: Object.keys(PROD_PASSWORDS) }),
    ).rejects.toThrow(
      "[tsdb:cpus] is 4 but the Docker host has 2 CPUs; Docker would refuse to create the container. Lower it: `pulumi config set tsdb:cpus 2` (or run on a host with 4 CPUs).",
    );
  });

  test("asks the host the docker provider is configured for, and lets enough CPUs, or an unknown count, through", async () => {
    host.cpus = 8;
    const run = await runStack({ stack: "dev", config: committedStackConfig("dev") });
    expect(run.ofType("docker:index/container:Container").length).toBeGreaterThan(0);
    expect(host.asked).toEqual([NO_DOCKER_HOST]);
    host.cpus = undefined;
    await expect(runStack({ stack: "dev", config: { ...committedStackConfig("dev"), cpus: "64" } })).resolves.toBeDefined();
  });

  test("an external stack does not ask", async () => {
    host.cpus = 1;
    await runStack({ stack: "dev", config: { mode: "external", externalHost: "db.example.com", externalAdminUser: "admin", adminPassword: "x-1" }, secretKeys: ["adminPassword"] });
    expect(host.asked).toEqual([]);
  });
});
