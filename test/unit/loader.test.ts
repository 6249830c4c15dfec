import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { expandSource, matchPathPattern, parseMapping, resolveColumns } from "../../lib/loader/columnMapping";
import { quoteTarget } from "../../lib/loader/OhlcvLoader";
import { formatOf } from "../../lib/loader/readSource";
import { TimeKeySet } from "../../lib/loader/keySet";
import { lastRecordEnd, openCsv } from "../../lib/loader/sources/csv";
import { fixedToText, parseBarType } from "../../lib/loader/sources/parquet";
import { type BarText, type Decimal, checkBar, compareDecimal, comparePlain, normalizeTimeframe, numericText, parseDecimal, shortPlainValue } from "../../lib/loader/rowValidation";
import { microsToSql, parseTimestamp } from "../../lib/loader/timestamps";

const micros = (iso: string) => Date.parse(iso) * 1000;

describe("timestamps", () => {
  test.each([
    ["2024-01-02", micros("2024-01-02T00:00:00Z")],
    ["2024-01-02T14:30:00", micros("2024-01-02T14:30:00Z")],
    ["2024-01-02 14:30:00", micros("2024-01-02T14:30:00Z")],
    ["2024-01-02T14:30:00Z", micros("2024-01-02T14:30:00Z")],
    ["2024-01-02T14:30:00+02:00", micros("2024-01-02T12:30:00Z")],
    ["2024-01-02T14:30:00-0500", micros("2024-01-02T19:30:00Z")],
    ["2024-01-02T14:30:00.123456Z", micros("2024-01-02T14:30:00Z") + 123456],
    ["1704205800", micros("2024-01-02T14:30:00Z")],
    ["1704205800.5", micros("2024-01-02T14:30:00Z") + 500000],
    ["1704205800000", micros("2024-01-02T14:30:00Z")],
    ["1704205800000123", micros("2024-01-02T14:30:00Z") + 123],
    ["1704205800000123456", micros("2024-01-02T14:30:00Z") + 123],
  ])("%s means %i microseconds since the epoch", (text, expected) => {
    expect(parseTimestamp(text)).toEqual({ ok: true, micros: expected });
  });

  test("epoch values from typed sources: bigint nanoseconds, number seconds, Date", () => {
    expect(parseTimestamp(1704205800000000000n)).toEqual({ ok: true, micros: micros("2024-01-02T14:30:00Z") });
    expect(parseTimestamp(1704205800)).toEqual({ ok: true, micros: micros("2024-01-02T14:30:00Z") });
    expect(parseTimestamp(new Date("2024-01-02T14:30:00Z"))).toEqual({ ok: true, micros: micros("2024-01-02T14:30:00Z") });
  });

  test.each([
    ["", /empty/],
    ["yesterday", /not ISO-8601/],
    ["2024-02-30", /not a calendar date/],
    ["2024-13-01", /out of range/],
    ["99999999999999999999999", /outside 1800-01-01/],
  ])("%j is rejected", (text, reason) => {
    const r = parseTimestamp(text);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });

  test("microseconds are written as a UTC literal", () => {
    expect(microsToSql(micros("2024-01-02T14:30:00Z") + 7)).toBe("2024-01-02 14:30:00.000007+00");
  });
});

describe("decimals are compared exactly", () => {
  test.each([
    ["1.10", "1.1", 0],
    ["100.000000000000000001", "100", 1],
    ["0.3", "0.29999999999999999999", 1],
    ["1e2", "100", 0],
    ["-1", "0", -1],
    ["12", "9.99", 1],
    ["0.05", "0.5", -1],
  ])("%s vs %s -> %i", (a, b, expected) => {
    const da = parseDecimal(a);
    const db = parseDecimal(b);
    expect(da && db && compareDecimal(da, db)).toBe(expected);
  });

  test.each(["NaN", "Infinity", "1,5", "", ".", "0x10", "1e"])("%j is not a decimal", (text) => {
    expect(parseDecimal(text)).toBeUndefined();
  });
});

describe("row checks", () => {
  const good: BarText = {
    symbol: "AAPL", exchange: "", provider: "", timeframe: "1d", time: "2024-01-02",
    open: "185.10", high: "186.20", low: "184.00", close: "185.64", volume: "1000", adjClose: undefined,
  };
  test("a consistent bar passes", () => {
    expect(checkBar(good)).toEqual({ ok: true, micros: micros("2024-01-02T00:00:00Z") });
  });
  test.each<[Partial<BarText>, string]>([
    [{ time: "2024-01-32" }, "timestamp \"2024-01-32\" has a field out of range"],
    [{ open: "abc" }, "open \"abc\" is not a finite number"],
    [{ close: "" }, "close is missing"],
    [{ low: "0" }, "low 0 is not positive"],
    [{ open: "-1" }, "open -1 is not positive"],
    [{ high: "185.63" }, "high 185.63 is below max(open 185.10, close 185.64)"],
    [{ low: "185.11" }, "low 185.11 is above min(open 185.10, close 185.64)"],
    [{ volume: "-5" }, "volume -5 is negative"],
    [{ adjClose: "x" }, "adj_close \"x\" is not a finite number"],
    [{ symbol: "" }, "symbol is missing"],
  ])("%j is rejected: %s", (change, reason) => {
    expect(checkBar({ ...good, ...change })).toEqual({ ok: false, reason });
  });
  test("high equal to close by value but not by text still passes (185.640 = 185.64)", () => {
    expect(checkBar({ ...good, high: "185.640" }).ok).toBe(true);
  });
});

describe("timeframes", () => {
  test.each([
    ["1h", "1h"], ["1H", "1h"], ["60min", "60m"], ["1day", "1d"], ["daily", "1d"], ["1-HOUR", "1h"], ["1mo", "1mo"], ["15m", "15m"],
  ])("%s -> %s", (raw, expected) => expect(normalizeTimeframe(raw)).toBe(expected));
  test.each(["", "0d", "fortnight", "1y"])("%j is not a timeframe", (raw) => expect(normalizeTimeframe(raw)).toBeUndefined());
});

describe("column mapping", () => {
  test("common names are detected case-insensitively, ts_event before date", () => {
    expect(resolveColumns(["Date", "Ticker", "Open", "High", "Low", "Close", "Adj Close", "Volume"])).toEqual({
      time: 0, symbol: 1, open: 2, high: 3, low: 4, close: 5, adj_close: 6, volume: 7,
    });
    expect(resolveColumns(["open", "high", "low", "close", "volume", "ts_event", "ts_init"]).time).toBe(5);
  });
  test("an explicit mapping wins and a missing column is named", () => {
    expect(resolveColumns(["px_o", "px_h", "px_l", "px_c", "when"], { open: "px_o", high: "px_h", low: "px_l", close: "px_c", time: "when" }))
      .toEqual({ open: 0, high: 1, low: 2, close: 3, time: 4 });
    expect(() => resolveColumns(["a", "b"], {}, ["time"], "x.csv")).toThrow(
      "x.csv: no column for time; expected one of ts_event, timestamp, timestamp_utc, datetime, date_time, open_time, window_start, time_period_start, gmt_time, local_time, begins_at, time, ts, t, or a date column (date, trade_date) with or without a time column (or map one with --map time=COLUMN). Columns: a, b.",
    );
    expect(() => resolveColumns(["a"], { open: "nope" }, [], "x.csv")).toThrow(/mapped column "nope" for open is not among its columns \(a\)/);
  });
  test("--map parses FIELD=COLUMN pairs and rejects unknown fields", () => {
    expect(parseMapping("time=Date, symbol=Sym")).toEqual({ time: "Date", symbol: "Sym" });
    expect(() => parseMapping("when=Date")).toThrow(/FIELD one of time, date, symbol/);
  });
  test("the path pattern takes provider, symbol and timeframe from the path", () => {
    expect(matchPathPattern("data/{provider}/{symbol}/{timeframe}/*.parquet", "/home/q/data/ALPACA/NFLX/1h/nflx_1h.parquet")).toEqual({
      provider: "ALPACA", symbol: "NFLX", timeframe: "1h",
    });
    expect(() => matchPathPattern("data/{provider}/{symbol}/{timeframe}/*.parquet", "other/x.parquet")).toThrow(/does not match --path-pattern/);
    expect(() => matchPathPattern("{ticker}/*.csv", "a.csv")).toThrow(/\{ticker\} is not one of \{symbol\}/);
  });
  test("sources expand from a file, a directory and a glob, sorted", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-src-"));
    for (const f of ["A/1d/a.parquet", "A/1h/a.parquet", "B/1d/b.parquet", "notes.md", "x.csv"]) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), "");
    }
    expect(expandSource(path.join(dir, "x.csv"))).toEqual([path.join(dir, "x.csv")]);
    expect(expandSource(dir).map((f) => path.relative(dir, f))).toEqual(["A/1d/a.parquet", "A/1h/a.parquet", "B/1d/b.parquet", "x.csv"]);
    expect(expandSource(`${dir}/*/1d/*.parquet`).map((f) => path.relative(dir, f))).toEqual(["A/1d/a.parquet", "B/1d/b.parquet"]);
    expect(expandSource(`${dir}/**/*.parquet`)).toHaveLength(3);
    expect(() => expandSource(`${dir}/*.xlsx`)).toThrow(/matches no files/);
    expect(() => expandSource(path.join(dir, "missing"))).toThrow(/does not exist/);
  });
});

describe("formats and targets", () => {
  test.each([["a.parquet", "parquet"], ["a.PQ", "parquet"], ["spock_local.db", "sqlite"], ["a.sqlite3", "sqlite"], ["a.csv.gz", "csv"], ["a.txt", "csv"]])(
    "%s is read as %s", (file, format) => expect(formatOf(file)).toBe(format),
  );
  test("the target must be schema.table of plain identifiers", () => {
    expect(quoteTarget("market_data.ohlcv_bars", (s) => `"${s}"`)).toBe('"market_data"."ohlcv_bars"');
    expect(() => quoteTarget("ohlcv_bars; drop table x", (s) => s)).toThrow(/must be schema.table/);
  });
});

describe("NautilusTrader parquet values", () => {
  test.each([
    [150_000_000_000n, 9, 2, "150.00"],
    [150_123_456_789n, 9, undefined, "150.123456789"],
    [1_500_000_000n, 9, 0, "1.5"],
    [-25_000_000_000_000_000n, 16, 1, "-2.5"],
    [5n, 9, undefined, "0.000000005"],
  ])("raw %s at scale %i, precision %s -> %s", (raw, scale, precision, expected) => {
    expect(fixedToText(raw, scale, precision)).toBe(expected);
  });
  test("bar_type names symbol, venue and timeframe", () => {
    expect(parseBarType("NFLX.XNAS-1-HOUR-LAST-EXTERNAL")).toEqual({ symbol: "NFLX", exchange: "XNAS", timeframe: "1h" });
    expect(parseBarType("BTCUSDT-PERP.BINANCE-15-MINUTE-LAST-EXTERNAL")).toEqual({ symbol: "BTCUSDT-PERP", exchange: "BINANCE", timeframe: "15m" });
  });
});

describe("the in-file duplicate key set", () => {
  test("finds duplicates in time order, out of order, and after switching to a Set", () => {
    const keys = new TimeKeySet();
    const added = [10, 20, 30, 20, 5, 30, 5, 25, 40, 25].map((t) => keys.add(t));
    expect(added).toEqual([true, true, true, false, true, false, false, true, true, false]);
    expect(keys.size).toBe(6);
  });
  test("grows past its initial capacity without losing keys", () => {
    const keys = new TimeKeySet();
    for (let i = 0; i < 5000; i++) expect(keys.add(i * 3_600_000_000)).toBe(true);
    expect(keys.add(1234 * 3_600_000_000)).toBe(false);
    expect(keys.size).toBe(5000);
  });
  test("keeps in-order bars as runs: a year of one-minute bars around the clock is one run, a stock's year one run a session", () => {
    const minute = 60_000_000;
    const crypto = new TimeKeySet();
    for (let i = 0; i < 525_600; i++) crypto.add(micros("2024-01-01T00:00:00Z") + i * minute);
    expect([crypto.size, crypto.runs]).toEqual([525_600, 1]);
    const stock = new TimeKeySet();
    let sessions = 0;
    for (let day = 0; day < 365; day++) {
      const open = micros("2024-01-01T14:30:00Z") + day * 86_400_000_000;
      if ([0, 6].includes(new Date(open / 1000).getUTCDay())) continue;
      sessions++;
      for (let m = 0; m < 390; m++) stock.add(open + m * minute);
    }
    expect([stock.size, stock.runs]).toEqual([sessions * 390, sessions]);
    // Every key is still found, between and inside runs; times between bars are not.
    expect(stock.add(micros("2024-03-05T14:30:00Z"))).toBe(false);
    expect(stock.add(micros("2024-03-05T20:59:00Z"))).toBe(false);
    expect(stock.add(micros("2024-03-05T14:30:30Z"))).toBe(true);
    expect(stock.add(micros("2024-03-05T21:00:00Z"))).toBe(true);
  });
  test("irregular times take at most one run per two keys", () => {
    const keys = new TimeKeySet();
    let t = 0;
    for (let i = 0; i < 10_000; i++) keys.add((t += 1 + ((i * 7919) % 13)));
    expect(keys.size).toBe(10_000);
    expect(keys.runs).toBeLessThanOrEqual(5_000);
  });
  test("answers as a Set would for mostly ordered series with gaps, repeats and late rows", () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let round = 0; round < 20; round++) {
      const keys = new TimeKeySet();
      const reference = new Set<number>();
      let t = 1_700_000_000_000_000;
      const step = [60_000_000, 86_400_000_000, 1][round % 3] as number;
      const answers: Array<[number, boolean, boolean]> = [];
      for (let i = 0; i < 3000; i++) {
        const r = random();
        if (r < 0.8) t += step;
        else if (r < 0.9) t += step * Math.ceil(random() * 50);
        const time = r > 0.95 ? t - step * Math.floor(random() * 200) : t;
        const expected = !reference.has(time);
        reference.add(time);
        answers.push([time, keys.add(time), expected]);
      }
      expect(answers.filter(([, got, expected]) => got !== expected)).toEqual([]);
      expect(keys.size).toBe(reference.size);
    }
  });
});

describe("the allocation-free compare of plain decimals", () => {
  test("agrees with compareDecimal on every pair of a grid of tricky values", () => {
    const values = ["0", "0.0", "00.5", "0.5", "0.50", "0.05", "1", "1.0", "1.000000000000000001", "9.99", "10", "010", "100.5", "100.49999", "185.10", "185.1", "185.11"];
    for (const a of values) {
      for (const b of values) {
        const da = parseDecimal(a);
        const db = parseDecimal(b);
        expect([a, b, comparePlain(a, b)]).toEqual([a, b, da && db && compareDecimal(da, db)]);
      }
    }
  });
  test("the row check's OHLC verdict is compareDecimal's for every high/open pair of a grid, short and long decimals alike", () => {
    const values = ["0.5", "0.50", "0.05", "1", "1.0", "9.99", "10", "010", "100.5", "100.49999", "185.10", "185.1", "185.11",
      "99999999999999.9", "99999999999999.8", "0.00000000000001", "0.000000000000011", "123456789012345", "123456789012346",
      "1.000000000000000001", "1.0000000000000001", "1.00000000000001", "1.000000000000009"];
    const low = "0.000000000000001";
    for (const open of values) {
      for (const high of values) {
        const expected = (compareDecimal(parseDecimal(high) as Decimal, parseDecimal(open) as Decimal) as number) >= 0;
        const bar = { symbol: "X", exchange: "", provider: "", timeframe: "1d", time: "2024-01-02", open, high, low, close: open, volume: "1", adjClose: undefined };
        expect([open, high, checkBar(bar).ok]).toEqual([open, high, expected]);
      }
    }
  });
  test("a typed source's prices compared as doubles get the verdict their texts get", () => {
    const values = [1e-7, 1e-6, 0.1 + 0.2, 0.3, 1, 185.1, 185.10000000000002, 1e20, 1e21, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, 5e-324];
    const verdicts: Array<[number, number, boolean]> = [];
    for (const open of values) {
      for (const high of values) {
        const prices = [open, high, Math.min(open, 0.3), open];
        const texts = prices.map((v) => numericText(v) as string);
        const bar = { symbol: "X", exchange: "", provider: "", timeframe: "1d", time: "2024-01-02", open: texts[0], high: texts[1], low: texts[2], close: texts[3], volume: "1", adjClose: undefined };
        const byText = checkBar(bar).ok;
        expect([open, high, checkBar({ ...bar, priceValues: Float64Array.from(prices) }).ok]).toEqual([open, high, byText]);
        verdicts.push([open, high, byText]);
      }
    }
    expect(verdicts.filter(([, , ok]) => ok).length).toBeGreaterThan(10);
    expect(verdicts.filter(([, , ok]) => !ok).length).toBeGreaterThan(10);
  });
  test("a short plain decimal read in one pass is Number()'s double; anything else is NaN", () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const texts: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const digits = Array.from({ length: 1 + Math.floor(random() * 14) }, () => String(Math.floor(random() * 10))).join("");
      const at = Math.floor(random() * digits.length);
      texts.push(at === 0 ? digits : `${digits.slice(0, at)}.${digits.slice(at)}`);
    }
    expect(texts.filter((t) => shortPlainValue(t) !== Number(t))).toEqual([]);
    for (const bad of ["", ".5", "5.", "1.2.3", "-1", "+1", "1e5", " 1", "1 ", "0x10", "1,5", "1234567890123456"]) {
      expect([bad, shortPlainValue(bad)]).toEqual([bad, Number.NaN]);
    }
  });
  test("declines anything but plain unsigned decimals", () => {
    expect(comparePlain("1e2", "100")).toBeUndefined();
    expect(comparePlain("-1", "1")).toBeUndefined();
    expect(comparePlain(".5", "0.5")).toBeUndefined();
  });
});

describe("CSV reading", () => {
  test("non-ASCII text survives being split across read chunks (the reader reads 64 KiB at a time)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-csv-"));
    const file = path.join(dir, "bars.csv");
    // ~4 MiB where most bytes belong to 3-byte characters, so chunk boundaries fall inside characters.
    const exchange = "Börse ✓".padEnd(40, "✓");
    const lines = ["time;symbol;exchange;open;high;low;close"];
    for (let i = 0; i < 30_000; i++) lines.push(`${i};ÅÄÖ${i % 7};${exchange};1.5;2.5;1.25;2`);
    fs.writeFileSync(file, "\uFEFF" + lines.join("\n") + "\n");
    const source = await openCsv(file);
    try {
      expect(source.columns).toEqual(["time", "symbol", "exchange", "open", "high", "low", "close"]);
      const exchanges = new Set<unknown>();
      let rows = 0;
      for await (const batch of source.batches()) {
        for (const record of batch) {
          rows++;
          exchanges.add(record[2]);
        }
      }
      expect(rows).toBe(30_000);
      expect([...exchanges]).toEqual([exchange]);
    } finally {
      await source.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ["a,b\n1,2\n3,", 8],
    ['a,"x\ny"\n1,"2', 8],
    ['a,"x\n', -1],
    ['a,"say ""hi""\n"\nb', 16],
    ["no line break", -1],
  ])("the last complete record of %j ends at %i", (text, end) => {
    expect(lastRecordEnd(text)).toBe(end);
  });

  test("CRLF lines over many read chunks end without a carriage return in their last field", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-csv-"));
    const file = path.join(dir, "crlf.csv");
    const lines = ["time,symbol,open,high,low,close,volume"];
    for (let i = 0; i < 20_000; i++) lines.push(`${i},S${i % 3},1.5,2.5,1.25,2,${i}`);
    fs.writeFileSync(file, `${lines.join("\r\n")}\r\n`);
    const source = await openCsv(file);
    try {
      const volumes: unknown[] = [];
      for await (const batch of source.batches()) for (const record of batch) volumes.push(record[6]);
      expect(volumes).toEqual(Array.from({ length: 20_000 }, (_, i) => String(i)));
    } finally {
      await source.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("quoted fields with delimiters, quotes and line breaks stay whole across read chunks", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-csv-"));
    const file = path.join(dir, "bars.csv");
    const note = 'first line, with comma\nsecond "quoted" line';
    const lines = ["time,symbol,note,open,high,low,close"];
    for (let i = 0; i < 40_000; i++) lines.push(`${i},S${i % 3},"${note.replace(/"/g, '""')}",1.5,2.5,1.25,2`);
    fs.writeFileSync(file, lines.join("\r\n"));
    const source = await openCsv(file);
    try {
      const notes = new Set<unknown>();
      let rows = 0;
      for await (const batch of source.batches()) {
        for (const record of batch) {
          rows++;
          notes.add(record[2]);
          expect(record).toHaveLength(7);
          expect(record[6]).toBe("2");
        }
      }
      expect(rows).toBe(40_000);
      expect([...notes]).toEqual([note]);
    } finally {
      await source.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
