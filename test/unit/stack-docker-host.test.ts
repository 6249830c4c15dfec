/**
 * The Docker host as `pulumi refresh` and `pulumi up` meet it: a stopped database container, and a host with
 * fewer CPUs than tsdb:cpus. The host's CPU count comes from lib/dockerHost.ts (the Docker CLI), replaced here.
 */
import { afterEach, describe, expect, test, vi } from "vitest";
import { committedStackConfig, NO_DOCKER_HOST, runStack } from "../fixtures/pulumiMocks";
import { DAEMON_DEFAULTED_FIELDS } from "../../lib/containerLimits";
import { classify, diffFields, refreshStoppedContainer } from "../fixtures/providerModels";
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
  const TYPE = "docker:index/container:Container";
  const deployedContainer = async () => {
    const { deployed } = await deploy({ stack: "dev", config: committedStackConfig("dev") });
    return [...deployed.resources.values()].find((r) => r.name === "tsdb-dev-timescaledb")!;
  };

  test("keeps the container (was: must_run made the provider remove it and drop it from state)", async () => {
    const container = await deployedContainer();
    expect(refreshStoppedContainer(container.state, "4.11.2")).toEqual(container.state);
    // What mustRun false avoids under 4.11.2:
    expect(refreshStoppedContainer({ ...container.state, mustRun: true }, "4.11.2")).toBe("removed");
  });

  test("a refresh of a stopped TimescaleDB container keeps it in state (v4.5 no longer deletes it), and the next up leaves it as it is", async () => {
    const container = await deployedContainer();
    const refreshed = refreshStoppedContainer(container.state, "5.2.0");
    expect(refreshed).toEqual(container.state);
    expect(classify(diffFields(TYPE, refreshed as Record<string, unknown>, container.inputs, [...DAEMON_DEFAULTED_FIELDS]))).toBe("same");
  });

  test("why mustRun stays false on 5.2.0: with must_run true, its refresh reads the stopped container's ports as empty and the next up replaces the database container", async () => {
    const container = await deployedContainer();
    const inputs = { ...container.inputs, mustRun: true };
    const refreshed = refreshStoppedContainer({ ...container.state, mustRun: true }, "5.2.0");
    expect(refreshed).not.toBe("removed");
    const diffs = diffFields(TYPE, refreshed as Record<string, unknown>, inputs, [...DAEMON_DEFAULTED_FIELDS]);
    expect(diffs.map((d) => d.field).sort()).toEqual(["mustRun", "ports"]);
    expect(classify(diffs)).toBe("replace");
  });

  test("a stopped pgAdmin container (default mustRun) is kept by the refresh and replaced, so started again, by the next up on 5.2.0", async () => {
    const { deployed } = await deploy({ stack: "dev", config: committedStackConfig("dev") });
    const pgadmin = [...deployed.resources.values()].find((r) => r.name === "tsdb-dev-pgadmin")!;
    expect(pgadmin.inputs.mustRun).toBeUndefined();
    const refreshed = refreshStoppedContainer(pgadmin.state, "5.2.0");
    expect(refreshed).not.toBe("removed");
    expect(classify(diffFields(TYPE, refreshed as Record<string, unknown>, pgadmin.inputs, [...DAEMON_DEFAULTED_FIELDS]))).toBe("replace");
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
