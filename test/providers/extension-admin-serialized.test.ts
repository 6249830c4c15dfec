/**
 * The admin hook as Pulumi's engine runs it: components/ExtensionAdmin.ts compiled by tsc, its provider serialized
 * by @pulumi/pulumi in a plain Node process, and every call made in a fresh provider host
 * (test/fixtures/dynamicProviderHost.cjs), against native TimescaleDB 2.23.0.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { withClient } from "../../lib/db";
import { type CompiledComponent, callInFreshHost, compileComponent, type HostResult, unsecret } from "../fixtures/dynamicProviders";
import { type Engine, freePort, startTimescaleServer } from "../fixtures/engines";
import { rows } from "../fixtures/schema";
import { pretendTimescaleDbVersion } from "../fixtures/timescaleVersions";

const OLD_IMAGE = "timescale/timescaledb:2.22.1-pg17";
const NEW_IMAGE = "timescale/timescaledb:2.23.0-pg17";

function value<T>(result: HostResult | undefined): T {
  if (!result?.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result.value as T;
}
function failure(result: HostResult | undefined): string {
  if (!result || result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return result.error.message;
}

describe("the admin hook serialized by Pulumi, in a fresh provider host, on native TimescaleDB", { timeout: 240_000 }, () => {
  let server: Engine;
  let component: CompiledComponent;
  let conn: ConnectionInfo;

  async function hook(connection: ConnectionInfo, serverImage = OLD_IMAGE) {
    const line = await component.serialize("tsdb-dev-extension-admin", { connection, ownerRole: "market_owner", serverImage });
    expect(line.type).toBe("pulumi-nodejs:dynamic/tsdb:ExtensionAdmin");
    // A captured Set or Map would arrive as an object whose methods throw (test/providers/hooks-fresh-host.test.ts).
    expect(String(line.inputs.__provider)).not.toMatch(/global\.(Set|Map|WeakSet|WeakMap)\.prototype/);
    return { text: String(line.inputs.__provider), inputs: { ...line.inputs, connection: unsecret(line.inputs.connection) } as Record<string, unknown> };
  }

  beforeAll(async () => {
    [component, server] = await Promise.all([compileComponent("components/ExtensionAdmin.ts", "ExtensionAdmin"), startTimescaleServer()]);
    const url = await server.createDatabase("market");
    await withClient(url, async (c) => {
      await c.query("CREATE EXTENSION timescaledb");
      await c.query("CREATE ROLE market_owner NOLOGIN");
      await c.query("CREATE ROLE market_readonly LOGIN PASSWORD 'ro-pw'");
    });
    conn = { host: server.host, port: server.port, database: "market", user: server.user, password: server.password, sslmode: "disable" };
  }, 600_000);
  afterAll(async () => {
    component?.dispose();
    await server?.stop();
  });

  test("create restricts the job API; a second run is no change; an image bump re-runs it and updates an older extension", async () => {
    const first = await hook(conn);
    const [created] = await callInFreshHost(first.text, [{ method: "create", args: [first.inputs] }]);
    const { id, outs } = value<{ id: string; outs: Record<string, unknown> }>(created);
    expect(id).toBe("timescaledb-admin@market");
    // The admin password is only in `connection`, which the component marks secret (additionalSecretOutputs).
    expect(JSON.stringify({ ...outs, connection: undefined })).not.toContain(server.password);
    expect({ ...outs, connection: undefined }).toEqual({ ownerRole: "market_owner", serverImage: OLD_IMAGE, timescaledb: "2.23.0", updatedFrom: null, jobApi: "restricted" });
    await expect(withClient(server.urlFor("market", "market_readonly", "ro-pw"), (c) => c.query("SELECT add_job('now'::regproc, '1 hour')"))).rejects.toThrow(
      /permission denied for function add_job/,
    );

    // What the older image left: its extension version in the catalog (its library is not on this server).
    await pretendTimescaleDbVersion(server.urlFor("market"), "2.22.1");
    const bumped = await hook(conn, NEW_IMAGE);
    const [same, changed, updated] = await callInFreshHost(bumped.text, [
      { method: "diff", args: [id, outs, first.inputs] },
      { method: "diff", args: [id, outs, bumped.inputs] },
      { method: "update", args: [id, outs, bumped.inputs] },
    ]);
    expect(value(same)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    expect(value(changed)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(value<{ outs: Record<string, unknown> }>(updated).outs).toMatchObject({ serverImage: NEW_IMAGE, timescaledb: "2.23.0", updatedFrom: "2.22.1", jobApi: "restricted" });
    expect(await rows(server.urlFor("market"), "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).toEqual([{ extversion: "2.23.0" }]);
  });

  test("errors reach the engine as one line: no extension, an unreachable server, an owner role that does not exist", async () => {
    await server.createDatabase("bare");
    const bare = await hook({ ...conn, database: "bare" });
    const closed = await hook({ ...conn, port: await freePort() });
    const noOwner = await component.serialize("x", { connection: conn, ownerRole: "no_such_owner" });
    const [missing, unreachable, badRole, deleted] = await callInFreshHost(bare.text, [
      { method: "create", args: [bare.inputs] },
      { method: "create", args: [closed.inputs] },
      { method: "create", args: [{ ...noOwner.inputs, connection: unsecret(noOwner.inputs.connection) }] },
      { method: "delete", args: ["timescaledb-admin@market", { ...bare.inputs }] },
    ]);
    expect(failure(missing)).toMatch(/^the timescaledb extension is not created in database bare; create it first/);
    expect(failure(unreachable)).toMatch(/ECONNREFUSED|connect/);
    expect(failure(badRole)).toMatch(/^taking TimescaleDB's job API from PUBLIC for no_such_owner failed: role "no_such_owner" does not exist$/);
    for (const r of [missing, unreachable, badRole]) expect(failure(r)).not.toContain("\n");
    expect(deleted).toEqual({ ok: true, value: null });
  });
});
