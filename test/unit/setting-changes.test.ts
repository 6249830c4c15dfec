/**
 * lib/settingChanges.ts: which setting changes the guard refuses at preview, and how the user asks for one.
 */
import { describe, expect, test } from "vitest";
import { allowedChanges, refusedChanges } from "../../lib/settingChanges";
import { committedStackConfig, runStack } from "../fixtures/pulumiMocks";

const docker = { stack: "dev", mode: "docker" as const, containerName: "tsdb-dev-timescaledb", protectData: false };

describe("refusedChanges", () => {
  test.each([
    ["nothing deployed yet", undefined, { database: "ticks", adminPassword: "b" }, [], docker, []],
    ["unchanged", { database: "market", adminPassword: "a" }, { database: "market", adminPassword: "a" }, [], docker, []],
    ["database renamed", { database: "market" }, { database: "ticks" }, [], docker, ["database"]],
    ["database renamed, even allowed (pulumi up cannot rename it)", { database: "market" }, { database: "ticks" }, ["database"], docker, ["database"]],
    ["docker admin password changed", { adminPassword: "a" }, { adminPassword: "b" }, [], docker, ["adminPassword"]],
    ["external admin password changed (only the provider re-configures)", { adminPassword: "a" }, { adminPassword: "b" }, [], { ...docker, mode: "external" as const }, []],
    ["both, one allowed", { database: "market", adminPassword: "a" }, { database: "ticks", adminPassword: "b" }, ["adminPassword"], docker, ["database"]],
    ["timescaledb switched off", { timescaledb: "true" }, { timescaledb: "false" }, [], docker, ["timescaledb"]],
    ["timescaledb switched on, external", { timescaledb: "false" }, { timescaledb: "true" }, [], { ...docker, mode: "external" as const }, ["timescaledb"]],
    ["timescaledb switched, allowed", { timescaledb: "true" }, { timescaledb: "false" }, ["timescaledb"], docker, []],
    ["timescaledb not yet watched (a guard deployed before it was)", { database: "market" }, { database: "market", timescaledb: "false" }, [], docker, []],
  ])("%s", (_label, olds, news, allow, context, refused) => {
    const reasons = refusedChanges(olds, news, allow, context);
    expect(reasons.map((r) => /^\[tsdb:(\w+)\]/.exec(r)?.[1])).toEqual(refused);
  });

  test("with protectData the timescaledb message says the revert would be refused and how to switch", () => {
    const [reason] = refusedChanges({ timescaledb: "true" }, { timescaledb: "false" }, [], { ...docker, protectData: true });
    expect(reason).toContain("which tsdb:protectData=true refuses");
    expect(reason).toContain("tsdb data export --out bars.parquet");
  });

  test("with protectData the database message says to unprotect before the destroy", () => {
    const [reason] = refusedChanges({ database: "market" }, { database: "ticks" }, [], { ...docker, protectData: true });
    expect(reason).toContain("pulumi config set tsdb:protectData false --stack dev");
  });
});

describe("TSDB_ALLOW", () => {
  test.each([
    [undefined, []],
    ["database", ["database"]],
    ["database, adminPassword", ["database", "adminPassword"]],
  ])("%j -> %j", (value, expected) => {
    expect(allowedChanges({ TSDB_ALLOW: value })).toEqual(expected);
  });

  test("an unknown name fails the preview with one line naming it and what is allowed", async () => {
    expect(() => allowedChanges({ TSDB_ALLOW: "everything" })).toThrow('[TSDB_ALLOW] names "everything", which is not a guarded setting; allowed: database, adminPassword, timescaledb.');
    await expect(runStack({ stack: "dev", config: committedStackConfig("dev"), env: { TSDB_ALLOW: "everything" } })).rejects.toThrow(/^\[TSDB_ALLOW\] names "everything"/);
  });
});
