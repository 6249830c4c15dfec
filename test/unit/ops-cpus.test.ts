/**
 * `tsdb:cpus` above the Docker host's CPU count made container creation fail in the middle of `pulumi up`
 * (prod asks for 4; this machine has 2). doctor and setup check it first: both build their checks with
 * stackPrerequisites and run checkPrerequisites.
 */
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { type CommandResult, type Probes, checkPrerequisites, cpuCheck, hasFailures, stackPrerequisites } from "../../lib/ops/prerequisites";
import { readStackSettings } from "../../lib/settings";

const ROOT = path.join(__dirname, "../..");

function probes(ncpu: CommandResult): Probes {
  return {
    nodeVersion: () => "20.20.2",
    run: async (command, args) =>
      command === "pulumi"
        ? { exitCode: 0, stdout: "v3.205.0\n", stderr: "" }
        : args.includes("{{.NCPU}}")
          ? ncpu
          : { exitCode: 0, stdout: "28.5.1\n", stderr: "" },
    bindError: async () => undefined,
    freeDiskBytes: async () => 50 * 1024 ** 3,
  };
}

describe("cpuCheck", () => {
  test.each([
    [2, 2, "ok", "tsdb:cpus 2 of the Docker host's 2"],
    [1, 8, "ok", "tsdb:cpus 1 of the Docker host's 8"],
    [4, 2, "fail", "tsdb:cpus is 4 but the Docker host has 2 CPUs; Docker would refuse to create the container"],
    [2, 1, "fail", "tsdb:cpus is 2 but the Docker host has 1 CPU; Docker would refuse to create the container"],
  ] as const)("%i requested on a %i-CPU host: %s", (requested, host, status, detail) => {
    const r = cpuCheck(requested, host);
    expect([r.status, r.detail]).toEqual([status, detail]);
    if (status === "fail") expect(r.fix).toBe(`Lower it: \`pulumi config set tsdb:cpus ${host}\` (or run on a host with ${requested} CPUs).`);
  });

  test("an unknown host CPU count warns instead of guessing", () => {
    expect(cpuCheck(4, undefined).status).toBe("warn");
  });
});

describe("doctor and setup check tsdb:cpus against the Docker host before pulumi up", () => {
  test("the prod stack's 4 CPUs fail on a 2-CPU Docker host, naming the setting and the fix", async () => {
    const options = stackPrerequisites(ROOT, readStackSettings(ROOT, "prod"), { checkPorts: false });
    expect(options.cpus).toBe(4);
    const results = await checkPrerequisites(options, probes({ exitCode: 0, stdout: "2\n", stderr: "" }));
    const cpus = results.filter((r) => r.name === "CPUs");
    expect(cpus.map((r) => [r.status, r.detail])).toEqual([["fail", "tsdb:cpus is 4 but the Docker host has 2 CPUs; Docker would refuse to create the container"]]);
    expect(hasFailures(results)).toBe(true);
  });

  test("the dev stack's 2 CPUs pass on that host", async () => {
    const results = await checkPrerequisites(stackPrerequisites(ROOT, readStackSettings(ROOT, "dev"), { checkPorts: false }), probes({ exitCode: 0, stdout: "2\n", stderr: "" }));
    expect(results.filter((r) => r.name === "CPUs").map((r) => r.status)).toEqual(["ok"]);
  });

  test("external mode runs no container, so there is no CPU check", () => {
    const settings = { ...readStackSettings(ROOT, "dev"), mode: "external" as const };
    expect(stackPrerequisites(ROOT, settings, { checkPorts: false }).cpus).toBeUndefined();
  });
});
