/**
 * `data export` on the TimescaleDB build (PGlite) and PostgreSQL 17: bars out as CSV and Parquet, values
 * exactly as stored, and back in through the loader to identical rows.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { type ExportOptions, exportOhlcvTo } from "../../lib/loader/export";
import { loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { BAR_ENGINES, SAMPLE_DIR, SAMPLE_ROWS, barsAsText, useMigratedEngine } from "../fixtures/loader/target";
import { exec, rows } from "../fixtures/schema";

const ROOT = path.resolve(__dirname, "../..");

/** Values that lose something on any careless path: trailing zeros, 18 decimals, microseconds, NULL, 1969, a comma. */
const AWKWARD_BARS = `INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume, adj_close) VALUES
  ('BTCUSDT', 'BINANCE', 'binance', '1m', '2024-01-02T14:30:00.123456Z', 42000.123456789012345678, 42100, 41900.5, 42050.000000000000000001, 0.00012300, NULL),
  ('BRK,A', 'XNYS', '', '1d', '1969-07-21T00:00:00Z', 185.10, 186.20, 184.00, 185.64, 0, 180.123456),
  ('EUR/USD', '', 'fxcm', '1h', '2024-03-10T07:00:00Z', 1.08765, 1.08800, 1.08700, 1.08790, 1234.5, NULL)`;

describe.each(BAR_ENGINES)("export on $name", ({ name, start, timescaledb }) => {
  let url: string;
  let dir: string;
  const out = (file: string) => path.join(dir, file);
  const exportTo = (options: ExportOptions) => exportOhlcvTo(url, options);

  useMigratedEngine({ start, timescaledb }, (u) => (url = u));
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "export-"));
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    await loadOhlcvFrom(url, { files: [path.join(SAMPLE_DIR, "csv/ohlcv.csv")] });
    await exec(url, AWKWARD_BARS);
  });

  test.each(["csv", "parquet"] as const)("export as %s, load into an empty table: identical rows", async (format) => {
    const before = await barsAsText(url);
    expect(before).toHaveLength(SAMPLE_ROWS + 3);
    const file = out(`all.${format}`);
    // Small pages: the keyset pagination crosses many page boundaries, also inside one series.
    const summary = await exportTo({ file, pageRows: 777 });
    expect(summary).toMatchObject({ rows: SAMPLE_ROWS + 3, format });

    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    const loaded = await loadOhlcvFrom(url, { files: [file] });
    expect(loaded).toMatchObject({ read: SAMPLE_ROWS + 3, inserted: SAMPLE_ROWS + 3, rejected: 0 });
    expect(await barsAsText(url)).toEqual(before);
  });

  test("CSV holds the stored text: header, UTC times with microseconds only when present, empty adj_close for NULL", async () => {
    const file = out("awkward.csv");
    await exportTo({ file, timeframe: "1m" });
    await exportTo({ file: out("brk.csv"), symbol: "BRK,A" });
    expect(fs.readFileSync(file, "utf8")).toBe(
      "time,symbol,exchange,provider,timeframe,open,high,low,close,volume,adj_close\n" +
        "2024-01-02T14:30:00.123456Z,BTCUSDT,BINANCE,binance,1m,42000.123456789012345678,42100,41900.5,42050.000000000000000001,0.00012300,\n",
    );
    expect(fs.readFileSync(out("brk.csv"), "utf8").split("\n")[1]).toBe('1969-07-21T00:00:00Z,"BRK,A",XNYS,,1d,185.10,186.20,184.00,185.64,0,180.123456');
  });

  test("Parquet: time as TIMESTAMP(MICROS, UTC), prices as exact decimal text", async () => {
    const file = out("fx.parquet");
    await exportTo({ file, provider: "fxcm" });
    const hyparquet = await import("hyparquet");
    const buffer = await hyparquet.asyncBufferFromFile(file);
    const meta = await hyparquet.parquetMetadataAsync(buffer);
    const time = meta.schema.find((e) => e.name === "time");
    expect(time?.logical_type).toEqual({ type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" });
    expect(meta.schema.find((e) => e.name === "open")?.converted_type).toBe("UTF8");
    const data = await hyparquet.parquetReadObjects({ file: buffer });
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ symbol: "EUR/USD", exchange: "", provider: "fxcm", timeframe: "1h", open: "1.08765", high: "1.08800", close: "1.08790", volume: "1234.5", adj_close: null });
    expect((data[0]?.time as Date).toISOString()).toBe("2024-03-10T07:00:00.000Z");
  });

  test("filters select symbol, timeframe, provider and an inclusive time range; a plain --to date is a whole UTC day", async () => {
    const file = out("aapl.csv");
    const summary = await exportTo({ file, symbol: "AAPL", timeframe: "1hour", provider: "SAMPLE", from: "2024-12-30", to: "2024-12-31" });
    const expected = await rows<{ n: number }>(
      url,
      `SELECT count(*)::int AS n FROM market_data.ohlcv_bars WHERE symbol = 'AAPL' AND timeframe = '1h' AND provider = 'SAMPLE'
          AND time >= '2024-12-30T00:00:00Z' AND time < '2025-01-01T00:00:00Z'`,
    );
    expect(expected[0]?.n).toBe(14);
    expect(summary.rows).toBe(14);
    const lines = fs.readFileSync(file, "utf8").trim().split("\n").slice(1);
    expect(lines[0]?.startsWith("2024-12-30T14:00:00Z,AAPL,XNAS,SAMPLE,1h,")).toBe(true);
    expect(lines[13]?.startsWith("2024-12-31T20:00:00Z,AAPL,XNAS,SAMPLE,1h,")).toBe(true);
    const exact = await exportTo({ file: out("exact.csv"), symbol: "AAPL", timeframe: "1h", from: "2024-12-31T15:00:00Z", to: "2024-12-31T17:00:00Z" });
    expect(exact.rows).toBe(3);
  });

  test("bad options fail before anything is written, and an existing file is kept unless --force", async () => {
    await expect(exportTo({ file: out("x.txt") })).rejects.toThrow(/--out .*x\.txt: name a \.csv or \.parquet file, or give --format csv\|parquet\./);
    await expect(exportTo({ file: out("x.csv"), from: "yesterday" })).rejects.toThrow(/--from "yesterday": timestamp "yesterday" is not ISO-8601/);
    await expect(exportTo({ file: out("x.csv"), timeframe: "fortnight" })).rejects.toThrow(/--timeframe "fortnight" is not like 1m/);
    expect(fs.readdirSync(dir)).toEqual([]);
    fs.writeFileSync(out("keep.csv"), "mine\n");
    await expect(exportTo({ file: out("keep.csv") })).rejects.toThrow(/keep\.csv exists; give --force to replace it\./);
    expect(fs.readFileSync(out("keep.csv"), "utf8")).toBe("mine\n");
    await exportTo({ file: out("keep.csv"), overwrite: true, symbol: "MSFT", timeframe: "1d" });
    expect(fs.readFileSync(out("keep.csv"), "utf8").split("\n")).toHaveLength(782 + 2);

    if (name === "PostgreSQL 17") {
      const run = (...args: string[]) =>
        spawnSync(process.execPath, ["--import", "tsx", "scripts/data.ts", "export", "--url", url, ...args], { cwd: ROOT, encoding: "utf8" });
      const ok = run("--out", out("cli.parquet"), "--symbol", "NFLX", "--timeframe", "1d", "--json");
      expect(ok.status, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ rows: 782, format: "parquet" });
      const again = run("--out", out("cli.parquet"));
      expect(again.status).toBe(1);
      expect(again.stderr).toBe(`tsdb data export: --out ${out("cli.parquet")} exists; give --force to replace it.\n`);
    }
  });
});
