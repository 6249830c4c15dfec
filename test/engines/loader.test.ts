/**
 * The loader against real engines: the TimescaleDB build (PGlite, hypertable target) and a native
 * PostgreSQL 17 server (plain table target), both with the project's real migrations.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { beforeEach, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { expandSource } from "../../lib/loader/columnMapping";
import { type LoadOptions, formatSummary, loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { validateOhlcv } from "../../lib/loader/validateReport";
import { BAR_ENGINES, SAMPLE_DIR, SAMPLE_ROWS, barsAsText, countBars, useMigratedEngine } from "../fixtures/loader/target";
import { exec, rows } from "../fixtures/schema";
import { writeNautilusBarsParquet } from "../fixtures/loader/nautilusParquet";

const BAD_ROWS = path.resolve(__dirname, "../fixtures/loader/bad-rows.csv");
const SAMPLE_CSV = path.join(SAMPLE_DIR, "csv/ohlcv.csv");

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "loader-"));
}

describe.each(BAR_ENGINES)("loading market data on $name", ({ start, timescaledb }) => {
  let url: string;
  const load = (options: LoadOptions) => loadOhlcvFrom(url, options);

  useMigratedEngine({ start, timescaledb }, (u) => (url = u));
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
  });

  test("the bundled sample as CSV, Parquet and SQLite loads to identical rows, prices as written", async () => {
    const csv = await load({ files: [SAMPLE_CSV] });
    expect(csv).toMatchObject({ read: SAMPLE_ROWS, inserted: SAMPLE_ROWS, updated: 0, alreadyPresent: 0, rejected: 0 });
    const fromCsv = await barsAsText(url);
    expect(fromCsv).toHaveLength(SAMPLE_ROWS);
    expect(fromCsv[0]).toBe("AAPL|XNAS|SAMPLE|1d|2022-01-03T00:00:00.000000Z|180|181.8|175.8|176.99|72327247|NULL");
    // The stored text of every price equals the text in the CSV file.
    const csvLines = fs.readFileSync(SAMPLE_CSV, "utf8").trim().split("\n").slice(1);
    const csvPrices = new Set(csvLines.map((l) => l.split(",").slice(5, 9).join("|")));
    expect(fromCsv.every((line) => csvPrices.has(line.split("|").slice(5, 9).join("|")))).toBe(true);

    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    // Each format on its own, with no flag and no path pattern, carries provider SAMPLE.
    const parquet = await load({ files: expandSource(path.join(SAMPLE_DIR, "parquet")) });
    expect(parquet.sources).toHaveLength(6);
    expect(parquet).toMatchObject({ read: SAMPLE_ROWS, inserted: SAMPLE_ROWS, rejected: 0 });
    expect(await barsAsText(url)).toEqual(fromCsv);

    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    const sqlite = await load({ files: [path.join(SAMPLE_DIR, "sqlite/sample.db")] });
    expect(sqlite).toMatchObject({ read: SAMPLE_ROWS, inserted: SAMPLE_ROWS, rejected: 0 });
    expect(await barsAsText(url)).toEqual(fromCsv);
  });

  test("the whole bundled sample directory (CSV, Parquet, SQLite; no flags) stores 5,118 bars with provider SAMPLE, each returned once", async () => {
    const files = expandSource(SAMPLE_DIR);
    expect(files).toHaveLength(8);
    const summary = await load({ files });
    expect(summary).toMatchObject({ read: 3 * SAMPLE_ROWS, inserted: SAMPLE_ROWS, alreadyPresent: 2 * SAMPLE_ROWS, rejected: 0 });
    expect(await countBars(url)).toBe(SAMPLE_ROWS);
    const providers = await rows<{ provider: string; n: string }>(url, "SELECT provider, count(*) AS n FROM market_data.ohlcv_bars GROUP BY provider");
    expect(providers).toEqual([{ provider: "SAMPLE", n: String(SAMPLE_ROWS) }]);
    const aapl = await rows<{ n: string; distinct_times: string }>(
      url,
      "SELECT count(*) AS n, count(DISTINCT time) AS distinct_times FROM market_data.get_market_data('AAPL', '1d')",
    );
    expect(aapl).toEqual([{ n: "782", distinct_times: "782" }]);
  });

  test("NautilusTrader's own files (ZSTD, bar metadata only in ARROW:schema, 64- and 128-bit prices) load with no flags", async () => {
    const dir = tmpDir();
    const bars = [
      { open: "150.25", high: "151.00", low: "149.50", close: "150.75", volume: "12000", tsEvent: 1_704_204_000_000_000_000n },
      { open: "150.75", high: "152.10", low: "150.01", close: "151.99", volume: "8300", tsEvent: 1_704_207_600_000_000_000n },
    ];
    await writeNautilusBarsParquet(path.join(dir, "bar/NFLX.XNAS-1-HOUR-LAST-EXTERNAL/part-0.parquet"), {
      bars, barType: "NFLX.XNAS-1-HOUR-LAST-EXTERNAL", pricePrecision: 2, sizePrecision: 0, layout: "fixed64",
    });
    await writeNautilusBarsParquet(path.join(dir, "bar/ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL/part-0.parquet"), {
      bars: [{ open: "2250.1234567890123456", high: "2251", low: "2249.5", close: "2250.5", volume: "0.0000000000000001", tsEvent: 1_704_204_000_000_000_000n }],
      barType: "ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", pricePrecision: 16, sizePrecision: 16, layout: "fixed128",
    });
    expect(await load({ files: expandSource(dir) })).toMatchObject({ read: 3, inserted: 3, rejected: 0 });
    expect(await barsAsText(url)).toEqual([
      "ETHUSDT-PERP|BINANCE||1m|2024-01-02T14:00:00.000000Z|2250.1234567890123456|2251.0000000000000000|2249.5000000000000000|2250.5000000000000000|0.0000000000000001|NULL",
      "NFLX|XNAS||1h|2024-01-02T14:00:00.000000Z|150.25|151.00|149.50|150.75|12000|NULL",
      "NFLX|XNAS||1h|2024-01-02T15:00:00.000000Z|150.75|152.10|150.01|151.99|8300|NULL",
    ]);
  });

  test("loading the same file again adds nothing and says so", async () => {
    await load({ files: [SAMPLE_CSV] });
    const again = await load({ files: [SAMPLE_CSV] });
    expect(again).toMatchObject({ read: SAMPLE_ROWS, inserted: 0, updated: 0, alreadyPresent: SAMPLE_ROWS, rejected: 0 });
    expect(formatSummary(again)).toContain("nothing new: every valid row was already in the table.");
    expect(await countBars(url)).toBe(SAMPLE_ROWS);
  });

  test("a file with bad rows loads the good ones and lists every bad one with its reason", async () => {
    const rejectsFile = path.join(tmpDir(), "rejects.csv");
    // 10 of 13 rows are bad: above the default --max-rejects (10%), so this load allows them explicitly.
    const summary = await load({ files: [BAD_ROWS], timeframe: "1d", rejects: rejectsFile, maxRejects: "100%" });
    expect(summary).toMatchObject({ read: 13, inserted: 3, rejected: 10, rejectsFile });
    const lines = fs.readFileSync(rejectsFile, "utf8").trim().split("\n");
    expect(lines[0]).toBe("source,row,reason,raw");
    const reasons = lines.slice(1).map((l) => {
      const [, row, reason] = /^[^,]+,(\d+),("(?:[^"]|"")*"|[^,]*),/.exec(l) ?? [];
      return `${row}: ${(reason ?? "").replace(/^"|"$/g, "").replace(/""/g, '"')}`;
    });
    expect(reasons).toEqual([
      '3: timestamp "not-a-date" is not ISO-8601, a date or an epoch number',
      '4: open "abc" is not a finite number',
      "5: open 0 is not positive",
      "6: high 184.99 is below max(open 185.00, close 185.00)",
      "7: low 185.01 is above min(open 185.00, close 185.50)",
      "8: volume -1 is negative",
      "9: duplicate key (AAPL, , , 1d, 2024-01-03 00:00:00+00) already seen earlier in this source",
      "10: symbol is missing",
      "11: close is missing",
      "12: high 185.00 is below max(open 185.00, close 185.000000000000000001)",
    ]);
    expect(lines[1]).toContain(`{""timestamp"":""not-a-date"",""symbol"":""AAPL"",""open"":""185.00""`);
    // Again: the good rows are already there (the key check finds them, nothing is written); each bad row is
    // still listed exactly once.
    const again = await load({ files: [BAD_ROWS], timeframe: "1d", rejects: rejectsFile, maxRejects: "100%" });
    expect(again).toMatchObject({ read: 13, inserted: 0, alreadyPresent: 3, rejected: 10 });
    expect(fs.readFileSync(rejectsFile, "utf8").trim().split("\n")).toEqual(lines);
    // The first occurrence of the duplicated key wins; an 18th decimal survives.
    expect(await barsAsText(url)).toEqual([
      "AAPL|||1d|2024-01-02T00:00:00.000000Z|185.10|186.20|184.00|185.64|1000|NULL",
      "AAPL|||1d|2024-01-03T00:00:00.000000Z|185.64|185.88|183.43|184.25|2000|NULL",
      "AAPL|||1d|2024-01-17T00:00:00.000000Z|185.000000000000000001|185.000000000000000001|184.10|185.000000000000000001|3|NULL",
    ]);
  });

  test("--strict fails on the first bad row and loads nothing", async () => {
    await expect(load({ files: [BAD_ROWS], timeframe: "1d", strict: true })).rejects.toThrow(
      `${BAD_ROWS} row 3: timestamp "not-a-date" is not ISO-8601, a date or an epoch number (--strict stops on the first invalid row; nothing was loaded).`,
    );
    expect(await countBars(url)).toBe(0);
  });

  test("on-conflict update rewrites changed bars only; skip keeps what is there", async () => {
    const dir = tmpDir();
    const v1 = path.join(dir, "v1.csv");
    const v2 = path.join(dir, "v2.csv");
    fs.writeFileSync(v1, "date,symbol,open,high,low,close,volume\n2024-01-02,X,10,11,9,10.5,100\n2024-01-03,X,10.5,12,10,11,100\n");
    fs.writeFileSync(v2, "date,symbol,open,high,low,close,volume\n2024-01-02,X,10,11,9,10.5,100\n2024-01-03,X,10.5,12,10,11.75,150\n2024-01-04,X,11,12,10,11,1\n");
    await load({ files: [v1], timeframe: "1d" });
    expect(await load({ files: [v2], timeframe: "1d" })).toMatchObject({ inserted: 1, updated: 0, alreadyPresent: 2 });
    expect((await barsAsText(url))[1]).toBe("X|||1d|2024-01-03T00:00:00.000000Z|10.5|12|10|11|100|NULL");
    await exec(url, "DELETE FROM market_data.ohlcv_bars WHERE time = '2024-01-04'");
    expect(await load({ files: [v2], timeframe: "1d", onConflict: "update" })).toMatchObject({ inserted: 1, updated: 1, alreadyPresent: 1 });
    expect((await barsAsText(url))[1]).toBe("X|||1d|2024-01-03T00:00:00.000000Z|10.5|12|10|11.75|150|NULL");
  });

  test("a load that fails in its last file leaves the target exactly as it was", async () => {
    await load({ files: [SAMPLE_CSV] });
    const before = await barsAsText(url);
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, "a.csv"), "date,symbol,open,high,low,close\n2024-01-02,NEW,1,2,1,2\n2024-01-03,NEW,2,3,1,2\n");
    fs.writeFileSync(path.join(dir, "b.csv"), "date,symbol,open,high,low,close\n2024-01-02,OK,1,2,1,2\n2024-01-03,BOOM,1,2,1,2\n");
    // Valid for the loader, refused by the database at the very end (the merge of the last file).
    await exec(url, "ALTER TABLE market_data.ohlcv_bars ADD CONSTRAINT test_no_boom CHECK (symbol <> 'BOOM')");
    try {
      await expect(load({ files: expandSource(dir), timeframe: "1d" })).rejects.toThrow(/test_no_boom/);
    } finally {
      await exec(url, "ALTER TABLE market_data.ohlcv_bars DROP CONSTRAINT test_no_boom");
    }
    expect(await barsAsText(url)).toEqual(before);
  });

  test("mappings: gzip CSV with ; and epoch milliseconds, any SQLite table, NautilusTrader fixed-point Parquet", async () => {
    const dir = tmpDir();
    const gz = path.join(dir, "quotes.txt");
    // No .gz suffix: gzip is recognised by its magic bytes.
    fs.writeFileSync(gz, zlib.gzipSync("Zeit;px_o;px_h;px_l;px_c\n1704205800000;185.10;186.20;184.00;185.64\n"));
    const a = await load({ files: [gz], symbol: "AAPL", timeframe: "1H", exchange: "XNAS", map: { time: "Zeit", open: "px_o", high: "px_h", low: "px_l", close: "px_c" } });
    expect(a).toMatchObject({ inserted: 1, rejected: 0 });

    const Database = (await import("better-sqlite3")).default;
    const dbFile = path.join(dir, "prices.sqlite");
    const db = new Database(dbFile);
    db.exec("CREATE TABLE quotes (sym TEXT, ts INTEGER, o TEXT, h TEXT, l TEXT, c TEXT, v INTEGER, tf TEXT)");
    db.prepare("INSERT INTO quotes VALUES ('BTC', 1704205800, '42000.123456789012345678', '42100', '41900.5', '42050.000000000000000001', 7, '1h')").run();
    db.close();
    const b = await load({ files: [dbFile], table: "quotes", provider: "X", map: { symbol: "sym", time: "ts", open: "o", high: "h", low: "l", close: "c", volume: "v", timeframe: "tf" } });
    expect(b).toMatchObject({ inserted: 1, rejected: 0 });

    const { parquetWriteFile, schemaFromColumnData } = await import("hyparquet-writer");
    const raw = (v: bigint) => {
      const bytes = new Uint8Array(8);
      new DataView(bytes.buffer).setBigInt64(0, v, true);
      return bytes;
    };
    const columnData = [
      { name: "open", data: [raw(150_250_000_000n)] },
      { name: "high", data: [raw(151_000_000_000n)] },
      { name: "low", data: [raw(149_500_000_000n)] },
      { name: "close", data: [raw(150_750_000_000n)] },
      { name: "volume", data: [raw(12_000_000_000_000n)] },
      { name: "ts_event", data: [1704205800000000000n] },
      { name: "ts_init", data: [1704205800000000000n] },
    ];
    const fixed = (name: string) => ({ name, type: "FIXED_LEN_BYTE_ARRAY" as const, type_length: 8, repetition_type: "REQUIRED" as const });
    const pq = path.join(dir, "data/ALPACA/NFLX/1h/nflx_1h.parquet");
    fs.mkdirSync(path.dirname(pq), { recursive: true });
    parquetWriteFile({
      filename: pq,
      columnData,
      schema: schemaFromColumnData({ columnData, schemaOverrides: {
        ...Object.fromEntries(["open", "high", "low", "close", "volume"].map((n) => [n, fixed(n)])),
        ts_event: { name: "ts_event", type: "INT64", repetition_type: "REQUIRED" },
        ts_init: { name: "ts_init", type: "INT64", repetition_type: "REQUIRED" },
      } }),
      kvMetadata: [
        { key: "bar_type", value: "NFLX.XNAS-1-HOUR-LAST-EXTERNAL" },
        { key: "price_precision", value: "2" },
        { key: "size_precision", value: "0" },
      ],
    });
    const c = await load({ files: expandSource(`${dir}/data/**/*.parquet`), pathPattern: "data/{provider}/{symbol}/{timeframe}/*.parquet" });
    expect(c).toMatchObject({ inserted: 1, rejected: 0 });

    expect(await barsAsText(url)).toEqual([
      "AAPL|XNAS||1h|2024-01-02T14:30:00.000000Z|185.10|186.20|184.00|185.64|0|NULL",
      "BTC||X|1h|2024-01-02T14:30:00.000000Z|42000.123456789012345678|42100|41900.5|42050.000000000000000001|7|NULL",
      "NFLX|XNAS|ALPACA|1h|2024-01-02T14:30:00.000000Z|150.25|151.00|149.50|150.75|12000|NULL",
    ]);
  });

  test("validate reports rows, ranges, NULLs, duplicates and gaps per series", async () => {
    await load({ files: [SAMPLE_CSV] });
    await exec(url, "DELETE FROM market_data.ohlcv_bars WHERE symbol = 'AAPL' AND ((timeframe = '1d' AND time = '2024-01-03') OR (timeframe = '1h' AND time = '2024-07-01 16:00+00'))");
    const report = await withClient(url, (c) => validateOhlcv(c));
    expect(report.totalRows).toBe(SAMPLE_ROWS - 2);
    expect(report.duplicateKeys).toBe(0);
    expect(report.nulls).toEqual({ symbol: 0, timeframe: 0, time: 0, open: 0, high: 0, low: 0, close: 0, volume: 0 });
    expect(report.series.map((s) => `${s.symbol} ${s.timeframe} ${s.rows} ${s.first} ${s.last} ${s.missingBars}`)).toEqual([
      "AAPL 1d 781 2022-01-03T00:00:00Z 2024-12-31T00:00:00Z 1",
      "AAPL 1h 923 2024-07-01T14:00:00Z 2024-12-31T20:00:00Z 1",
      "MSFT 1d 782 2022-01-03T00:00:00Z 2024-12-31T00:00:00Z 0",
      "MSFT 1h 924 2024-07-01T14:00:00Z 2024-12-31T20:00:00Z 0",
      "NFLX 1d 782 2022-01-03T00:00:00Z 2024-12-31T00:00:00Z 0",
      "NFLX 1h 924 2024-07-01T14:00:00Z 2024-12-31T20:00:00Z 0",
    ]);
  });
});
