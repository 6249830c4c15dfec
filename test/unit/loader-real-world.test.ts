/**
 * Shapes of real-world market data files, on fixtures generated here in the same
 * shapes as backtrader, MetaTrader, Kibot, Stooq, Dukascopy and Binance files (no third-party file is copied).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { BINANCE_KLINE_COLUMNS, COLUMN_ALIASES, matchPathPattern, resolveColumns } from "../../lib/loader/columnMapping";
import { loadRequestFromFlags, parseLoadRequest, toLoadOptions } from "../../lib/loader/loadRequest";
import { type BarText, checkBar, normalizeTimeframe } from "../../lib/loader/rowValidation";
import { parseSettings } from "../../lib/settings";
import { openCsv } from "../../lib/loader/sources/csv";
import { combineDateTime, parseTimestamp } from "../../lib/loader/timestamps";

const micros = (iso: string) => Date.parse(iso) * 1000;

function tmpFile(name: string, content: string | Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-rw-"));
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

async function readAll(file: string, options: Parameters<typeof openCsv>[1] = {}) {
  const source = await openCsv(file, options);
  const rows: unknown[][] = [];
  for await (const b of source.batches()) rows.push(...b);
  await source.close();
  return { columns: source.columns, rows };
}

describe("separate date and time columns", () => {
  test("Date,Time headers resolve to a date column and a time-of-day column", () => {
    const idx = resolveColumns(["Date", "Time", "Open", "High", "Low", "Close", "Volume", "OpenInterest"]);
    expect(idx).toMatchObject({ date: 0, time: 1, open: 2, volume: 6 });
    // MetaTrader and Stooq write names in angle brackets.
    expect(resolveColumns(["<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>"])).toMatchObject({
      date: 0, time: 1, open: 2, high: 3, low: 4, close: 5, volume: 7,
    });
  });

  test.each([
    ["2006-01-02", "23:59:59", "2006-01-02T23:59:59Z"], // backtrader
    ["2024.01.02", "09:05", "2024-01-02T09:05:00Z"], // MetaTrader
    ["01/02/2024", "09:30", "2024-01-02T09:30:00Z"], // Kibot (US month/day/year)
    ["20240102", "093000", "2024-01-02T09:30:00Z"], // Stooq
    ["20240102", "000000", "2024-01-02T00:00:00Z"],
    [20240102n, 93000n, "2024-01-02T09:30:00Z"], // integers from a typed source
    ["2024-01-02", "09:05:00.250", "2024-01-02T09:05:00.250Z"],
  ])("date %s and time %s combine to %s", (date, time, iso) => {
    expect(combineDateTime(date, time)).toEqual({ ok: true, micros: micros(iso) });
  });

  test("a time of day that is not one is rejected with both values named", () => {
    const r = combineDateTime("2024-01-02", "25:00");
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/2024-01-02.*25:00/);
  });
});

describe("headerless CSV", () => {
  const kline = (openTime: string, closeTime: string) =>
    `${openTime},42000.10,42100.00,41950.50,42050.25,12.345,${closeTime},519000.1,1200,6.1,256000.2,0\n`;

  test("a Binance kline dump (12 numeric columns, epoch ms) is recognised and named", async () => {
    const file = tmpFile("BTCUSDT-1m-2024-01.csv", kline("1704067200000", "1704067259999") + kline("1704067260000", "1704067319999"));
    const { columns, rows } = await readAll(file);
    expect(columns).toEqual([...BINANCE_KLINE_COLUMNS]);
    expect(rows).toHaveLength(2);
    expect(resolveColumns(columns)).toMatchObject({ time: 0, open: 1, high: 2, low: 3, close: 4, volume: 5 });
  });

  test("newer Binance dumps with open_time in microseconds are recognised too", async () => {
    const file = tmpFile("BTCUSDT-1m-2025-01.csv", kline("1735689600000000", "1735689659999999"));
    const { columns, rows } = await readAll(file);
    expect(columns[0]).toBe("open_time");
    expect(parseTimestamp(rows[0]?.[0])).toEqual({ ok: true, micros: micros("2025-01-01T00:00:00Z") });
  });

  test("--columns names the columns of a headerless file; its first row is data", async () => {
    const file = tmpFile("kibot.txt", "01/02/2024,09:30,185.1,185.5,185.0,185.2,1000\n01/02/2024,09:31,185.2,185.6,185.1,185.3,900\n");
    const { columns, rows } = await readAll(file, { columns: ["date", "time", "open", "high", "low", "close", "volume"] });
    expect(columns).toEqual(["date", "time", "open", "high", "low", "close", "volume"]);
    expect(rows).toHaveLength(2);
  });

  test("a headerless file that is not a known layout fails saying how to name its columns", async () => {
    const file = tmpFile("mt4.csv", "2024.01.02,09:05,1.1,1.2,1.0,1.15,100\n");
    await expect(openCsv(file)).rejects.toThrow(/has no header row.*--columns/);
  });
});

describe("timeframe spellings", () => {
  test.each([
    ["D", "1d"], ["W", "1w"], ["M", "1mo"], ["day", "1d"], ["daily", "1d"], ["60min", "60m"],
    ["H1", "1h"], ["M5", "5m"], ["M1", "1m"], ["D1", "1d"], ["W1", "1w"], ["MN1", "1mo"],
    ["1M", "1mo"], ["3M", "3mo"], ["1m", "1m"], ["1Min", "1m"], ["1wk", "1w"], ["1mo", "1mo"], ["1-MONTH", "1mo"],
    ["minute", "1m"], ["hour", "1h"], ["1s", "1s"],
  ])("%s means %s", (raw, expected) => expect(normalizeTimeframe(raw)).toBe(expected));

  test.each(["m", "5", "60", "1y", "MN", "1q", "x1"])("%j is ambiguous or unknown and is rejected", (raw) => {
    expect(normalizeTimeframe(raw)).toBeUndefined();
  });
});

describe("column aliases from common exporters", () => {
  test.each([
    [["timestamp_utc", "open", "high", "low", "close", "volume"], "time", 0],
    [["open_time", "open", "high", "low", "close", "volume", "close_time"], "time", 0],
    [["Gmt time", "Open", "High", "Low", "Close", "Volume"], "time", 0], // Dukascopy
    [["t", "o", "h", "l", "c", "v", "vw", "n"], "volume", 5], // Polygon
    [["ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"], "time", 6], // Polygon flat files
    [["date", "close", "high", "low", "open", "volume", "adjClose", "adjHigh"], "adj_close", 6], // Tiingo
    [["timestamp", "open", "high", "low", "close", "adjusted_close", "volume"], "adj_close", 5], // Alpha Vantage
    [["<TICKER>", "<PER>", "<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<VOL>", "<OPENINT>"], "timeframe", 1], // Stooq
    [["Datetime", "Open", "High", "Low", "Close", "Adj Close", "Volume"], "time", 0], // yfinance intraday
  ] as const)("%j: %s is column %i", (columns, field, index) => {
    expect(resolveColumns(columns)[field]).toBe(index);
  });

  test("every alias list is non-empty and names no column twice", () => {
    const all = Object.values(COLUMN_ALIASES).flat();
    expect(all.length).toBeGreaterThan(40);
    expect(new Set(all).size).toBe(all.length);
  });
});

describe("path patterns", () => {
  test("a placeholder takes the shortest match: {symbol}-*.txt on nvda-1999-2014.txt is nvda", () => {
    expect(matchPathPattern("{symbol}-*.txt", "/data/nvda-1999-2014.txt")).toEqual({ symbol: "nvda" });
    expect(matchPathPattern("{symbol}-{timeframe}-*.csv", "/dumps/BTCUSDT-1m-2024-01.csv")).toEqual({ symbol: "BTCUSDT", timeframe: "1m" });
  });

  test("a pattern that matches no file is an error naming both", () => {
    expect(() => matchPathPattern("{symbol}_daily.csv", "/data/nvda-1999-2014.txt")).toThrow(
      '/data/nvda-1999-2014.txt does not match --path-pattern "{symbol}_daily.csv"',
    );
  });
});

describe("values that were silently wrong", () => {
  test.each([
    ["0024-01-02", /outside 1800-01-01/],
    ["2024-01-02T10:00:00+99:99", /offset \+99:99/],
    ["2024-01-02T10:00:00+14:75", /offset \+14:75/],
    ["2024-01-02T10:00:00-15:00", /offset -15:00/],
  ])("%s is rejected", (text, reason) => {
    const r = parseTimestamp(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });

  test("an offset at the edge of the real range is read as written", () => {
    expect(parseTimestamp("2024-01-02T10:00:00+14:00")).toEqual({ ok: true, micros: micros("2024-01-01T20:00:00Z") });
    expect(parseTimestamp("2024-01-02T10:00:00-12:00")).toEqual({ ok: true, micros: micros("2024-01-02T22:00:00Z") });
  });

  test("8-digit numbers are YYYYMMDD dates, not epoch seconds", () => {
    expect(parseTimestamp("20240801")).toEqual({ ok: true, micros: micros("2024-08-01T00:00:00Z") });
    expect(parseTimestamp(20240801n)).toEqual({ ok: true, micros: micros("2024-08-01T00:00:00Z") });
    const bad = parseTimestamp("20241301");
    expect(!bad.ok && bad.reason).toMatch(/YYYYMMDD/);
  });

  test.each([
    ["2024.01.02 09:05:00", "2024-01-02T09:05:00Z"], // MetaTrader
    ["01.01.2024 00:00:00.000", "2024-01-01T00:00:00Z"], // Dukascopy (day.month.year)
    ["01/04/2015 22:00:00.000", "2015-01-04T22:00:00Z"], // FXCM (month/day/year)
    ["01.01.2024 00:00:00.000 GMT+0100", "2023-12-31T23:00:00Z"], // Dukascopy local time
  ])("%s is read as %s", (text, iso) => {
    expect(parseTimestamp(text)).toEqual({ ok: true, micros: micros(iso) });
  });

  test("invalid UTF-8 in a symbol is rejected instead of stored as U+FFFD", async () => {
    const bytes = Buffer.concat([Buffer.from("date,symbol,open,high,low,close\n2024-01-02,AB"), Buffer.from([0xff, 0xfe]), Buffer.from(",1,2,1,2\n")]);
    const { rows } = await readAll(tmpFile("bad-utf8.csv", bytes));
    const r = checkBar(bar({ symbol: String(rows[0]?.[1]) }));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/not valid UTF-8/);
  });
});

function bar(over: Partial<BarText>): BarText {
  return { symbol: "X", exchange: "", provider: "", timeframe: "1d", time: "2024-01-02", open: "1", high: "2", low: "1", close: "2", volume: "1", adjClose: undefined, ...over };
}

describe("values the database would refuse become rejected rows", () => {
  test.each([
    [{ symbol: "S".repeat(3000) }, /symbol is 3000 characters long; at most 128/],
    [{ exchange: "E".repeat(10 << 20) }, /exchange is 10485760 characters long; at most 128/],
    [{ symbol: "AB\u0000C" }, /symbol contains a NUL byte/],
    [{ provider: "p\u0000" }, /provider contains a NUL byte/],
    [{ open: "1".repeat(140_000), high: "1".repeat(140_001) }, /open has 140000 digits before the decimal point; at most 40/],
    [{ close: `1.${"5".repeat(50)}`, high: "3" }, /close has 50 digits after the decimal point; at most 40/],
    [{ volume: "9e9999" }, /volume has 10000 digits before the decimal point; at most 40/],
  ])("%#: rejected with its reason", (over, reason) => {
    const r = checkBar(bar(over));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
    // A reason quotes at most a short prefix of a huge value.
    expect(!r.ok && r.reason.length).toBeLessThan(300);
  });
});

describe("one load request from flags, settings and the hook", () => {
  test("flags become the same request settings give, validated by one schema", () => {
    const fromFlags = loadRequestFromFlags({
      source: "dumps", "path-pattern": "{symbol}-{timeframe}-*.csv", layout: "binance-kline", "max-rejects": "5%",
      "on-conflict": "update", map: "volume=quote_asset_volume", columns: undefined, strict: true,
    });
    const settings = parseSettings({ datasets: [{ name: "btc", ...fromFlags }] }, { stack: "dev" });
    expect(settings.datasets).toEqual([{ name: "btc", ...fromFlags }]);
    expect(fromFlags).toEqual({
      source: "dumps", pathPattern: "{symbol}-{timeframe}-*.csv", layout: "binance-kline", maxRejects: "5%",
      onConflict: "update", map: { volume: "quote_asset_volume" }, strict: true,
    });
  });

  test("a bad value names the flag (CLI) or the key (settings) and what is allowed", () => {
    expect(() => loadRequestFromFlags({ source: "x", "max-rejects": "lots" })).toThrow(/^--max-rejects: must be a count like 250 or a percentage like 10%/);
    expect(() => loadRequestFromFlags({ source: "x", layout: "kibot" })).toThrow(/^--layout: .*binance-kline/);
    expect(() => parseSettings({ datasets: [{ name: "a", source: "x.csv", columns: [] }] }, { stack: "dev" })).toThrow(/0\.columns/);
    expect(() => parseLoadRequest({ source: "x", flavour: "y" })).toThrow(/flavour/);
  });

  test("the request becomes loader options: paths from the working directory, layout as column names, rejects under .tsdb/", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-req-"));
    fs.writeFileSync(path.join(dir, "BTCUSDT-1m-2024-01.csv"), "");
    const options = toLoadOptions({ source: ".", layout: "binance-kline", maxRejects: 3 }, { cwd: dir, defaultRejects: ".tsdb/rejects/last-load.csv" });
    expect(options).toMatchObject({
      files: [path.join(dir, "BTCUSDT-1m-2024-01.csv")], columns: [...BINANCE_KLINE_COLUMNS], maxRejects: "3",
      rejects: path.join(dir, ".tsdb/rejects/last-load.csv"), strict: false,
    });
    expect(() => toLoadOptions({ source: ".", layout: "binance-kline", columns: ["a"] }, { cwd: dir, defaultRejects: "r.csv" })).toThrow(/--columns or --layout, not both/);
  });
});
