/**
 * A second `pulumi up` for every CPU count a host can have (1..128), with and without the Docker daemon's log-opts
 * and default-ulimits: the TimescaleDB container built by the component itself (as index.ts builds it, from the
 * committed stack settings with `tsdb:cpus` set), deployed twice through the second-run harness
 * (test/fixtures/secondRun.ts), whose model stores what kreuzwerker v3.9 reads back. The external stack has no
 * container; its second run with the daemon's defaults is in stack-second-run.test.ts. Slow (512 resources a run).
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
    ["dev", "no daemon defaults", undefined],
    ["dev", "daemon log-opts and default-ulimits", DAEMON],
    ["prod", "no daemon defaults", undefined],
    ["prod", "daemon log-opts and default-ulimits", DAEMON],
  ] as const)("%s, %s", async (stack, _label, daemon) => {
    const first = await deploy({ ...everyCpuCount(stack), daemon });
    const containers = first.run.ofType("docker:index/container:Container");
    expect(containers).toHaveLength(128);
    expect(containers.map((c) => c.inputs.cpus).slice(8, 11)).toEqual(["9.0", "10.", "11.0"]);
    const second = await deploy({ ...everyCpuCount(stack), daemon }, first.deployed);
    expect(second.steps).toHaveLength(first.steps.length);
    expect(second.steps.filter((s) => s.change !== "same").map((s) => `${s.name}: ${s.change} (${s.fields.join(", ")})`)).toEqual([]);
  }, 900_000);
});
