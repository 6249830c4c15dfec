/**
 * Issue 21.2: a connection's password stays out of logs and stack traces. As node-postgres does for its Client,
 * the objects lib/postgres makes from a connection string or for a client carry `password` non-enumerable: it
 * reaches the server (the field reads as before) but not JSON.stringify, util.inspect, a spread, or an error that
 * a failed connection throws with the connection object attached.
 */
import * as util from "node:util";
import { describe, expect, test } from "vitest";
import { clientConfig, connectionConfig, withClient, withSettings } from "../../lib/postgres/client";
import { connectionWith, urlParts } from "../../lib/postgres/connectionInfo";
import { resolveConnection } from "../../lib/postgres/connectionString";
import { freePort } from "../fixtures/engines";

const PASSWORD = "pw-Zq81-never-shown";

/** Every way an object commonly ends up in a log. */
function renderings(value: unknown): string[] {
  return [JSON.stringify(value) ?? "", util.inspect(value, { depth: 10 }), String(value), `${Object.keys(value as object)}`];
}

describe("a connection's password is readable but never rendered", () => {
  const url = `postgresql://app:${PASSWORD}@db.example.com:6432/market?sslmode=disable`;

  test.each([
    ["a URL read as libpq reads it", () => resolveConnection(url, {})],
    ["key=value pairs", () => resolveConnection(`host=db.example.com user=app password=${PASSWORD} dbname=market sslmode=disable`, {})],
    ["PGPASSWORD", () => resolveConnection("host=db.example.com user=app dbname=market sslmode=disable", { PGPASSWORD: PASSWORD })],
    ["a copy for another database (connectionWith)", () => connectionWith(resolveConnection(url, {}), { database: "postgres" })],
    ["node-postgres settings (clientConfig)", () => clientConfig(resolveConnection(url, {}))],
    ["node-postgres settings from a string (connectionConfig)", () => connectionConfig(url)],
    ["settings with a timeout laid over them (withSettings)", () => withSettings(connectionConfig(url), { connectionTimeoutMillis: 5 })],
    ["a stack output's URL read back (urlParts)", () => urlParts(url)],
  ])("%s: .password works, JSON / util.inspect / String / Object.keys do not show it", (_what, make) => {
    const value = make() as { password?: unknown };
    expect(value.password).toBe(PASSWORD);
    for (const text of renderings(value)) expect(text).not.toContain(PASSWORD);
    expect({ ...value }).not.toHaveProperty("password");
  });

  test("a copy may change the password and keeps the new one hidden", () => {
    const copy = connectionWith(resolveConnection(url, {}), { user: "other", password: "second-secret" });
    expect(copy).toMatchObject({ user: "other", host: "db.example.com", database: "market" });
    expect(copy.password).toBe("second-secret");
    expect(JSON.stringify(copy)).not.toContain("second-secret");
  });

  test("a failed connection's error, with the connection and its settings attached, never shows the password", async () => {
    const port = await freePort(); // nothing listens there: the connection is refused
    const info = resolveConnection(`postgresql://app:${PASSWORD}@127.0.0.1:${port}/market?sslmode=disable`, {});
    const err = (await withClient(info, async () => undefined).then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { connection?: unknown; config?: unknown };
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/ECONNREFUSED/);
    err.connection = info;
    err.config = clientConfig(info);
    const wrapped = new Error(`tsdb db status: ${err.message}`, { cause: err });
    for (const text of [...renderings(err), ...renderings(wrapped), err.stack ?? "", util.inspect(wrapped, { depth: 10, showHidden: false })]) {
      expect(text).not.toContain(PASSWORD);
    }
  });
});
