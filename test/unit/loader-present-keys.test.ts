/**
 * The pieces of the key-filtered re-load that decide, without the database, whether a row is
 * already there with the same values, and the fast timestamp text every COPY line carries.
 */
import { describe, expect, test } from "vitest";
import { canonicalNumeric, canonicalValues, indexOfTime } from "../../lib/loader/presentKeys";
import { microsToSql } from "../../lib/loader/timestamps";

describe("canonicalNumeric: equal numbers compare equal as text, as trim_scale prints them", () => {
  test.each([
    ["10.50", "10.5"],
    ["10.5", "10.5"],
    ["010", "10"],
    ["100", "100"],
    ["+3.000", "3"],
    ["0.0", "0"],
    ["-0.00", "0"],
    [".5", "0.5"],
    ["5.", "5"],
    ["-12.340", "-12.34"],
    ["0.0000000000000001", "0.0000000000000001"],
    ["185.000000000000000001", "185.000000000000000001"],
  ])("%s -> %s", (text, canonical) => {
    expect(canonicalNumeric(text)).toBe(canonical);
  });

  test.each(["1e3", "", ".", "+", "1,5", "NaN", " 1"])("%j is left to the server (undefined)", (text) => {
    expect(canonicalNumeric(text)).toBeUndefined();
  });
});

test("canonicalValues joins open..adj_close; a missing adj_close is empty, a non-plain value makes the row 'different'", () => {
  expect(canonicalValues(["10.50", "11", "9.0", "10.25", "0100", null])).toBe("10.5,11,9,10.25,100,");
  expect(canonicalValues(["10", "11", "9", "10", "0", ""])).toBe("10,11,9,10,0,");
  expect(canonicalValues(["10", "11", "9", "10", "0", "5.10"])).toBe("10,11,9,10,0,5.1");
  expect(canonicalValues(["1e1", "11", "9", "10", "0", null])).toBeUndefined();
});

test("indexOfTime finds each present time and only those", () => {
  const times = Float64Array.from([10, 20, 30, 40, 50]);
  expect([10, 20, 30, 40, 50].map((t) => indexOfTime(times, t))).toEqual([0, 1, 2, 3, 4]);
  expect([5, 15, 55].map((t) => indexOfTime(times, t))).toEqual([-1, -1, -1]);
  expect(indexOfTime(new Float64Array(0), 10)).toBe(-1);
});

describe("microsToSql (formatted without a Date per row) prints what the Date-based form printed", () => {
  const viaDate = (micros: number) => {
    const ms = Math.floor(micros / 1000);
    const us = micros - ms * 1000;
    const iso = new Date(ms).toISOString();
    const text = `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(us).padStart(3, "0")}+00`;
    // A whole second goes without its fraction.
    return text.replace(".000000+00", "+00");
  };
  const edges = [
    Date.UTC(1800, 0, 1) * 1000,
    Date.UTC(2200, 0, 1) * 1000 - 1,
    0,
    -1,
    86_400_000_000 - 1,
    Date.UTC(1969, 11, 31, 23, 59, 59, 999) * 1000 + 999,
    Date.UTC(2024, 1, 29, 12, 34, 56, 789) * 1000 + 12,
  ];
  test.each(edges)("%d", (micros) => {
    expect(microsToSql(micros)).toBe(viaDate(micros));
  });

  test("a whole second is written without a fraction, any other with all six digits", () => {
    expect(microsToSql(Date.UTC(2024, 0, 2, 14, 30) * 1000)).toBe("2024-01-02 14:30:00+00");
    expect(microsToSql(Date.UTC(2024, 0, 2, 14, 30) * 1000 + 500_000)).toBe("2024-01-02 14:30:00.500000+00");
  });

  test("10,000 times spread over 1800..2200, in and out of order", () => {
    let seed = 1;
    const lo = Date.UTC(1800, 0, 1) * 1000;
    const span = Date.UTC(2200, 0, 1) * 1000 - lo;
    const times = Array.from({ length: 10_000 }, () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return lo + Math.floor((seed / 2_147_483_648) * span);
    });
    const wrong = times.filter((t) => microsToSql(t) !== viaDate(t));
    expect(times).toHaveLength(10_000);
    expect(wrong).toEqual([]);
  });
});
