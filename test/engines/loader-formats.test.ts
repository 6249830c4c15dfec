/**
 * Issue 22 end to end on a native PostgreSQL 17 server with the real migrations, through the `tsdb` command:
 * what a user types loads what the files hold.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { tsdbInProcess } from "../fixtures/cli";
import { duckdbRun } from "../fixtures/loader/duckdb";
import { POSTGRES_17, barsAsText, useMigratedEngine } from "../fixtures/loader/target";
import { exec } from "../fixtures/schema";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-formats-e-"));

function write(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

describe("issue 22 through tsdb data load on PostgreSQL 17", () => {
  let url: string;
  useMigratedEngine(POSTGRES_17, (u) => (url = u));
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
  });
  const load = (...args: string[]) => tsdbInProcess(["data", "load", "--url", url, "--quiet", "--json", ...args]);

  test("item 7: --source a --source b loads every file of both, each file once", async () => {
    const a = write("multi/a/AAA.csv", "time,open,high,low,close\n2024-01-02,1,2,1,2\n");
    const b = write("multi/b/BBB.csv", "time,open,high,low,close\n2024-01-02,3,4,3,4\n");
    const r = await load("--source", a, "--source", b, "--source", path.dirname(b), "--path-pattern", "{symbol}.csv", "--timeframe", "1d");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ read: 2, inserted: 2 });
    expect(await barsAsText(url)).toEqual([
      "AAA|||1d|2024-01-02T00:00:00.000000Z|1|2|1|2|0|NULL",
      "BBB|||1d|2024-01-02T00:00:00.000000Z|3|4|3|4|0|NULL",
    ]);
  });

  test("item 1: --timezone America/New_York stores New York wall-clock bars at their UTC instants", async () => {
    const file = write("spx/SPX.csv", "Datetime,Open,High,Low,Close\n2024-07-01 09:30:00,1,2,1,2\n2024-01-02 09:30:00,1,2,1,2\n");
    const r = await load("--source", file, "--symbol", "SPX", "--timeframe", "1m", "--timezone", "America/New_York");
    expect(r.code).toBe(0);
    expect(await barsAsText(url)).toEqual([
      "SPX|||1m|2024-01-02T14:30:00.000000Z|1|2|1|2|0|NULL",
      "SPX|||1m|2024-07-01T13:30:00.000000Z|1|2|1|2|0|NULL",
    ]);
    const bad = await load("--source", file, "--symbol", "SPX", "--timeframe", "1m", "--timezone", "New York");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--timezone: must be an IANA time zone name/);
  });

  test("items 3 and 4: a DuckDB file's DECIMAL prices are stored exactly as DuckDB holds them, through tsdb data load", async () => {
    const file = path.join(dir, "lumibot.duckdb");
    await duckdbRun([
      "CREATE TABLE bars (ts TIMESTAMPTZ, symbol VARCHAR, open DECIMAL(38,18), high DECIMAL(38,18), low DECIMAL(38,18), close DECIMAL(38,18), volume DECIMAL(18,8))",
      "INSERT INTO bars VALUES ('2024-01-02 14:30:00+00', 'BTC', 94098.9, 94100.000000000000000001, 94098.1, 94099.123456789012345678, 1.5)",
    ], file);
    const r = await load("--source", file, "--timeframe", "1m");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(await barsAsText(url)).toEqual([
      "BTC|||1m|2024-01-02T14:30:00.000000Z|94098.900000000000000000|94100.000000000000000001|94098.100000000000000000|94099.123456789012345678|1.50000000|NULL",
    ]);
  });

  test("item 5: inconsistent OHLC bars are rejected by default, kept and listed with flag, kept with keep; validate lists what the table holds", async () => {
    const file = write("fx/EURUSD.csv", "Date,Open,High,Low,Close\n2024-01-02,1.10,1.104,1.09,1.105\n2024-01-03,1.10,1.11,1.09,1.105\n2024-01-04,1.10,1.11,1.1001,1.105\n");
    const args = ["--source", file, "--symbol", "EURUSD=X", "--timeframe", "1d", "--max-rejects", "100%"];
    const rejected = await load(...args);
    expect(rejected.code).toBe(0);
    expect(JSON.parse(rejected.stdout)).toMatchObject({ read: 3, inserted: 1, rejected: 2, inconsistent: 0 });
    await exec(url, "TRUNCATE market_data.ohlcv_bars");

    const flagged = await load(...args, "--inconsistent-ohlc", "flag");
    expect(flagged.code).toBe(0);
    expect(JSON.parse(flagged.stdout)).toMatchObject({
      read: 3, inserted: 3, rejected: 0, inconsistent: 2,
      flagged: [
        { source: file, row: 1, reason: "high 1.104 is below max(open 1.10, close 1.105)" },
        { source: file, row: 3, reason: "low 1.1001 is above min(open 1.10, close 1.105)" },
      ],
    });
    expect(await barsAsText(url)).toEqual([
      "EURUSD=X|||1d|2024-01-02T00:00:00.000000Z|1.10|1.104|1.09|1.105|0|NULL",
      "EURUSD=X|||1d|2024-01-03T00:00:00.000000Z|1.10|1.11|1.09|1.105|0|NULL",
      "EURUSD=X|||1d|2024-01-04T00:00:00.000000Z|1.10|1.11|1.1001|1.105|0|NULL",
    ]);
    const report = await tsdbInProcess(["data", "validate", "--url", url, "--json"]);
    expect(JSON.parse(report.stdout)).toMatchObject({
      inconsistentOhlc: 2,
      inconsistentBars: [
        { symbol: "EURUSD=X", time: "2024-01-02T00:00:00.000000Z", open: "1.10", high: "1.104", low: "1.09", close: "1.105" },
        { symbol: "EURUSD=X", time: "2024-01-04T00:00:00.000000Z", open: "1.10", high: "1.11", low: "1.1001", close: "1.105" },
      ],
    });
    const text = await tsdbInProcess(["data", "validate", "--url", url]);
    expect(text.stdout).toContain("bars with inconsistent OHLC (high below open/close or low above them): 2");
    await exec(url, "TRUNCATE market_data.ohlcv_bars");

    const kept = await load(...args, "--inconsistent-ohlc", "keep");
    expect(JSON.parse(kept.stdout)).toMatchObject({ read: 3, inserted: 3, rejected: 0, inconsistent: 2 });
    expect(JSON.parse(kept.stdout)).not.toHaveProperty("flagged");
  });
});

