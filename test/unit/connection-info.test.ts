/**
 * lib/postgres/connectionInfo.ts: every URL and host the project builds. IPv6 bind addresses (`tsdb:bindAddress: ::1`, which
 * settings accept) produced `postgresql://u:p@::1:5432/...`, which Node's URL parser rejects.
 */
import { describe, expect, test } from "vitest";
import { connectionUrl, bareHost, httpUrl, reachableHost, urlHost } from "../../lib/postgres/connectionInfo";
import { connectionFromUrl } from "../../lib/ops/stackOutputs";

const info = (host: string) => ({ host, port: 5432, database: "market", user: "market_app", password: "p@ss:w/rd", sslmode: "disable" });

describe("connectionUrl builds URLs Node's URL parser accepts, for every host form", () => {
  test.each([
    ["127.0.0.1", "postgresql://market_app:p%40ss%3Aw%2Frd@127.0.0.1:5432/market?sslmode=disable", "127.0.0.1"],
    ["::1", "postgresql://market_app:p%40ss%3Aw%2Frd@[::1]:5432/market?sslmode=disable", "[::1]"],
    ["fd00::5", "postgresql://market_app:p%40ss%3Aw%2Frd@[fd00::5]:5432/market?sslmode=disable", "[fd00::5]"],
    ["db.internal.example.com", "postgresql://market_app:p%40ss%3Aw%2Frd@db.internal.example.com:5432/market?sslmode=disable", "db.internal.example.com"],
  ])("%s", (host, url, hostname) => {
    expect(connectionUrl(info(host))).toBe(url);
    const parsed = new URL(connectionUrl(info(host)));
    expect([parsed.hostname, parsed.port, decodeURIComponent(parsed.password)]).toEqual([hostname, "5432", "p@ss:w/rd"]);
  });

  test("node-postgres (the loader child, doctor) reads the bracketed URL back to the bare host", async () => {
    const { parse } = await import("pg-connection-string");
    expect(parse(connectionUrl(info("::1")))).toMatchObject({ host: "::1", port: "5432", database: "market", user: "market_app", password: "p@ss:w/rd" });
  });

  test("a URL round-trips through connectionFromUrl to the bare host", () => {
    for (const host of ["127.0.0.1", "::1", "fd00::5", "db.example.com"]) {
      const read = connectionFromUrl(connectionUrl(info(host)), {});
      expect({ ...read, password: read.password }).toEqual({ ...info(host), fromConnectionString: true });
    }
  });
});

describe("hosts", () => {
  test.each([
    ["0.0.0.0", "127.0.0.1"],
    ["::", "::1"],
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["192.168.1.20", "192.168.1.20"],
  ])("a port published on %s is reached at %s", (bind, host) => {
    expect(reachableHost(bind)).toBe(host);
  });

  test.each([
    ["::1", "[::1]"],
    ["[::1]", "[::1]"],
    ["10.0.0.1", "10.0.0.1"],
    ["db", "db"],
  ])("urlHost(%s) is %s", (host, expected) => {
    expect(urlHost(host)).toBe(expected);
  });

  test.each([
    ["[::1]", "::1"],
    ["127.0.0.1", "127.0.0.1"],
    ["db.example.com", "db.example.com"],
  ])("bareHost(%s) is %s", (hostname, expected) => {
    expect(bareHost(hostname)).toBe(expected);
  });

  test("pgAdmin's URL brackets IPv6 too", () => {
    expect(httpUrl("::1", 5050)).toBe("http://[::1]:5050");
    expect(new URL(httpUrl("::1", 5050)).port).toBe("5050");
    expect(httpUrl("127.0.0.1", 5050)).toBe("http://127.0.0.1:5050");
  });
});
