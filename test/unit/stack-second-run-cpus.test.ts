/**
 * A second `pulumi up` for every CPU count a host can have (1..128), with and without the Docker daemon's log-opts
 * and default-ulimits: the TimescaleDB container built by the component itself (as index.ts builds it, from the
 * committed stack settings with `tsdb:cpus` set), deployed twice through the second-run harness
 * (test/fixtures/secondRun.ts), whose model stores what kreuzwerker reads back. With the daemon's defaults the first
 * up runs @pulumi/docker 4.11.2 (kreuzwerker v3.9.0, which stores them) and the second 5.2.0 (v4.5.0): the upgrade of
 * a deployed stack, for every CPU count. The external stack has no container; its second run with the daemon's
 * defaults is in stack-second-run.test.ts. Slow (512 resources a run).
 */
import { describe, expect, test } from "vitest";
import { parseSettings } from "../../lib/settings";
import { committedStackConfig, type RunOptions } from "../fixtures/pulumiMocks";
import { DAEMON, deploy } from "../fixtures/secondRun";

function everyCpuCount(stack: "dev" | "prod"): RunOptions {
  const config = committedStackConfig(stack);
  return {
    stack,
    config,
    program: async () => {
      const { TimescaleDbServer } = await import("../../components/TimescaleDbServer.js");
      for (let cpus = 1; cpus <= 128; cpus++) {
        const s = parseSettings({ ...config, cpus: String(cpus) } as Record<string, unknown>, { stack, requireSecrets: false });
        new TimescaleDbServer(`tsdb-${stack}-cpus${cpus}`, {
          image: s.image, port: s.port, bindAddress: s.bindAddress, memoryMb: s.memoryMb, cpus: s.cpus, maxConnections: s.maxConnections,
          timescaledb: s.timescaledb, telemetry: s.telemetry, restartPolicy: s.restartPolicy, protectData: s.protectData, adminPassword: "pw",
        });
      }
      return {};
    },
  };
}

describe("a second pulumi up changes nothing for every CPU count from 1 to 128 (was: hosts with 10, 20, ... CPUs replaced the container each time)", () => {
  test.each([
    ["dev", "no daemon defaults", undefined, "5.2.0"],
    ["dev", "daemon log-opts and default-ulimits, deployed with @pulumi/docker 4.11.2", DAEMON, "4.11.2"],
    ["prod", "no daemon defaults", undefined, "5.2.0"],
    ["prod", "daemon log-opts and default-ulimits, deployed with @pulumi/docker 4.11.2", DAEMON, "4.11.2"],
  ] as const)("%s, %s", async (stack, _label, daemon, firstDocker) => {
    const first = await deploy({ ...everyCpuCount(stack), daemon, docker: firstDocker });
    const containers = first.run.ofType("docker:index/container:Container");
    expect(containers).toHaveLength(128);
    expect(containers.map((c) => c.inputs.cpus).slice(8, 11)).toEqual(["9.0", "10.", "11.0"]);
    const second = await deploy({ ...everyCpuCount(stack), daemon, docker: "5.2.0" }, first.deployed);
    expect(second.steps).toHaveLength(first.steps.length);
    expect(second.steps.filter((s) => s.change !== "same").map((s) => `${s.name}: ${s.change} (${s.fields.join(", ")})`)).toEqual([]);
  }, 900_000);
});
