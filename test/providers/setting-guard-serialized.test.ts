/**
 * The setting guard as Pulumi's engine runs it: serialized from tsc output in a plain Node process, loaded as
 * the dynamic-provider host loads it, and its `check` called with the deployed and the new inputs. A refusal is
 * a check failure, which stops `pulumi preview` and `pulumi up` before any step.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type CompiledComponent, compileComponent, loadSerializedProvider, unsecret } from "../fixtures/dynamicProviders";

describe("the setting guard serialized from tsc output in plain Node", () => {
  let component: CompiledComponent;
  beforeAll(async () => {
    component = await compileComponent("components/SettingGuard.ts", "SettingGuard");
  });
  afterAll(() => component?.dispose());

  const context = { stack: "dev", mode: "docker", containerName: "tsdb-dev-timescaledb", protectData: false };

  test("refuses a database rename (even allowed) and an admin password change (unless allowed), and never holds the password", async () => {
    const deployed = await component.serialize("g", { database: "market", timescaledb: true, adminPassword: "old-Pw", allow: [], context });
    expect(deployed.type).toBe("pulumi-nodejs:dynamic/tsdb:SettingGuard");
    const provider = loadSerializedProvider(String(deployed.inputs.__provider));
    const olds = { ...deployed.inputs, watched: unsecret(deployed.inputs.watched) };
    expect(JSON.stringify(olds)).not.toContain("old-Pw");

    const renamed = await component.serialize("g", { database: "ticks", timescaledb: true, adminPassword: "new-Pw", allow: [], context });
    const refused = await provider.check!(olds, { ...renamed.inputs, watched: unsecret(renamed.inputs.watched) });
    expect(refused.failures?.map((f) => f.reason.slice(0, 60))).toEqual([
      '[tsdb:database] changed from "market" to "ticks" on the depl',
      "[tsdb:adminPassword] changed on the deployed docker stack de",
    ]);

    const allowed = await component.serialize("g", { database: "ticks", timescaledb: true, adminPassword: "new-Pw", allow: ["database", "adminPassword"], context });
    const accepted = await provider.check!(olds, { ...allowed.inputs, watched: unsecret(allowed.inputs.watched) });
    expect((accepted.failures ?? []).map((f) => f.reason.slice(0, 16))).toEqual(["[tsdb:database] "]);

    const unchanged = await component.serialize("g", { database: "market", timescaledb: true, adminPassword: "old-Pw", allow: [], context });
    expect((await provider.check!(olds, { ...unchanged.inputs, watched: unsecret(unchanged.inputs.watched) })).failures ?? []).toEqual([]);
  }, 240_000);

  test("the first deployment (no old inputs) is never refused", async () => {
    const line = await component.serialize("g", { database: "market", timescaledb: true, adminPassword: "pw", allow: [], context });
    const provider = loadSerializedProvider(String(line.inputs.__provider));
    expect((await provider.check!({}, { ...line.inputs, watched: unsecret(line.inputs.watched) })).failures ?? []).toEqual([]);
  });
});
