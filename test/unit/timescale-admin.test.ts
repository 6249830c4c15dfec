import { describe, expect, test } from "vitest";
import { compareVersions, updateNeeded } from "../../lib/postgres/timescaleAdmin";

describe("when the admin hook updates TimescaleDB", () => {
  test.each([
    ["2.23.0", "2.22.1", 1],
    ["2.22.1", "2.23.0", -1],
    ["2.23.0", "2.23.0", 0],
    ["2.10.0", "2.9.3", 1],
    ["2.23", "2.23.0", 0],
    ["2.24.0-rc1", "2.24.0", -1],
    ["2.24.0-dev", "2.23.0", 1],
    ["2.24.0-rc2", "2.24.0-rc1", 1],
  ])("compareVersions(%s, %s) = %i", (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
  });

  test.each([
    [{ installed: "2.22.1", available: "2.23.0" }, true],
    [{ installed: "2.23.0", available: "2.23.0" }, false],
    [{ installed: "2.9.3", available: "2.10.0" }, true],
  ])("installed %o: update %s", (versions, expected) => {
    expect(updateNeeded(versions, "market")).toBe(expected);
  });

  test.each([
    [{ installed: null, available: "2.23.0" }, /^the timescaledb extension is not created in database market; create it first/],
    [{ installed: "2.23.0", available: null }, /^the server has no TimescaleDB \(pg_available_extensions lists no timescaledb\), but database market uses version 2\.23\.0/],
    [{ installed: "2.24.0", available: "2.23.0" }, /^database market has TimescaleDB 2\.24\.0, newer than the server's 2\.23\.0: an extension cannot be downgraded/],
    [{ installed: "2.23.0", available: "latest" }, /^not a TimescaleDB version: "latest"$/],
  ])("%o is refused with one line", (versions, message) => {
    expect(() => updateNeeded(versions, "market")).toThrow(message);
  });
});
