/**
 * Real-world file shapes and bad values, loaded end to end into a native PostgreSQL 17
 * server with the real migrations. Every fixture is generated here in the shape of the exporter it names.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { beforeEach, describe, expect, test } from "vitest";
import { type LoadOptions, loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { runLoadRequest } from "../../lib/loader/runLoad";
import { TIMESCALEDB_NATIVE, barsAsText, countBars, useMigratedEngine } from "../fixtures/loader/target";
import { exec } from "../fixtures/schema";

const ROOT = path.resolve(__dirname, "../..");
const TSX = pathToFileURL(require.resolve("tsx", { paths: [ROOT] })).href;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "loader-rw-"));
}

function write(dir: string, name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

/** Rejects file lines as `row: reason`. */
function rejectReasons(file: string): string[] {
  return fs.readFileSync(file, "utf8").trim().split("\n").slice(1).map((l) => {
    const [, row, reason] = /^[^,]+,(\d+),("(?:[^"]|"")*"|[^,]*),/.exec(l) ?? [];
    return `${row}: ${(reason ?? "").replace(/^"|"$/g, "").replace(/""/g, '"')}`;
  });
}

describe("real-world files on native TimescaleDB", () => {
  let url: string;
  const load = (options: LoadOptions) => loadOhlcvFrom(url, options);

  useMigratedEngine(TIMESCALEDB_NATIVE, (u) => (url = u));
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
  });

  test("a backtrader Date,Time CSV loads every row at its date plus time", async () => {
    const file = write(tmpDir(), "2006-min-005.txt",
      "Date,Time,Open,High,Low,Close,Volume,OpenInterest\n" +
      "2006-01-02,09:05:00,3578.73,3580.06,3577.83,3578.17,0,0\n" +
      "2006-01-02,09:10:00,3578.17,3579.42,3576.96,3579.42,0,0\n");
    const summary = await load({ files: [file], symbol: "ESTX50", timeframe: "5m" });
    expect(summary).toMatchObject({ read: 2, inserted: 2, rejected: 0 });
    expect(await barsAsText(url)).toEqual([
      "ESTX50|||5m|2006-01-02T09:05:00.000000Z|3578.73|3580.06|3577.83|3578.17|0|NULL",
      "ESTX50|||5m|2006-01-02T09:10:00.000000Z|3578.17|3579.42|3576.96|3579.42|0|NULL",
    ]);
  });

  test("a MetaTrader export (tab-separated <DATE> <TIME>, dotted dates) loads", async () => {
    const file = write(tmpDir(), "EURUSD_M5.csv",
      "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n" +
      "2024.01.02\t09:05:00\t1.10410\t1.10432\t1.10401\t1.10425\t312\t0\t2\n");
    const summary = await load({ files: [file], pathPattern: "{symbol}_{timeframe}.csv" });
    expect(summary).toMatchObject({ read: 1, inserted: 1, rejected: 0 });
    expect(await barsAsText(url)).toEqual(["EURUSD|||5m|2024-01-02T09:05:00.000000Z|1.10410|1.10432|1.10401|1.10425|0|NULL"]);
  });

  test("a headerless Binance kline dump loads, symbol and timeframe from its name", async () => {
    const file = write(tmpDir(), "BTCUSDT-1m-2024-01.csv",
      "1704067200000,42283.58,42298.62,42261.02,42298.61,35.92724,1704067259999,1518878.8,1327,23.15055,978529.9,0\n" +
      "1704067260000,42298.62,42320.00,42298.61,42319.99,21.5,1704067319999,909000.1,800,10.1,427000.5,0\n");
    const summary = await load({ files: [file], pathPattern: "{symbol}-{timeframe}-*.csv", provider: "BINANCE" });
    expect(summary).toMatchObject({ read: 2, inserted: 2, rejected: 0 });
    expect(await barsAsText(url)).toEqual([
      "BTCUSDT||BINANCE|1m|2024-01-01T00:00:00.000000Z|42283.58|42298.62|42261.02|42298.61|35.92724|NULL",
      "BTCUSDT||BINANCE|1m|2024-01-01T00:01:00.000000Z|42298.62|42320.00|42298.61|42319.99|21.5|NULL",
    ]);
  });

  test("a headerless file loads with the columns named", async () => {
    const file = write(tmpDir(), "AAPL.txt", "01/02/2024,09:30,185.10,185.50,185.00,185.20,1000\n");
    const summary = await load({ files: [file], columns: ["date", "time", "open", "high", "low", "close", "volume"], symbol: "AAPL", timeframe: "1m" });
    expect(summary).toMatchObject({ read: 1, inserted: 1 });
    expect(await barsAsText(url)).toEqual(["AAPL|||1m|2024-01-02T09:30:00.000000Z|185.10|185.50|185.00|185.20|1000|NULL"]);
  });

  test("the runbook's SQLite with timeframe D loads as 1d; 1M from Binance is a month", async () => {
    const Database = (await import("better-sqlite3")).default;
    const dir = tmpDir();
    const dbFile = path.join(dir, "spock_local.db");
    const db = new Database(dbFile);
    db.exec(`CREATE TABLE tickers (ticker TEXT, name TEXT, exchange TEXT, region TEXT);
             CREATE TABLE ohlcv_data (ticker TEXT, region TEXT, date TEXT, timeframe TEXT, open REAL, high REAL, low REAL, close REAL, volume INTEGER);
             INSERT INTO tickers VALUES ('005930', 'Samsung', 'KRX', 'KR');
             INSERT INTO ohlcv_data VALUES ('005930', 'KR', '2024-01-02', 'D', 78200, 79800, 78200, 79600, 17142847);
             INSERT INTO ohlcv_data VALUES ('005930', 'KR', '2024-01-03', 'D', 78500, 78800, 77000, 77000, 21753644);`);
    db.close();
    expect(await load({ files: [dbFile], provider: "KIS" })).toMatchObject({ read: 2, inserted: 2, rejected: 0 });
    const monthly = write(dir, "ETHUSDT-1M-2024.csv", "open_time,open,high,low,close,volume\n1704067200000,2281.87,2717.32,2167.01,2283.14,9999.5\n");
    expect(await load({ files: [monthly], pathPattern: "{symbol}-{timeframe}-*.csv" })).toMatchObject({ inserted: 1 });
    expect(await barsAsText(url)).toEqual([
      "005930|KRX|KIS|1d|2024-01-02T00:00:00.000000Z|78200|79800|78200|79600|17142847|NULL",
      "005930|KRX|KIS|1d|2024-01-03T00:00:00.000000Z|78500|78800|77000|77000|21753644|NULL",
      "ETHUSDT|||1mo|2024-01-01T00:00:00.000000Z|2281.87|2717.32|2167.01|2283.14|9999.5|NULL",
    ]);
  });

  test("an ambiguous timeframe is refused with the accepted forms: a flag stops the load, a column value rejects its row", async () => {
    const dir = tmpDir();
    const file = write(dir, "x.csv", "date,timeframe,open,high,low,close\n2024-01-02,D,1,2,1,2\n2024-01-03,m,1,2,1,2\n");
    await expect(load({ files: [file], symbol: "X", timeframe: "m" })).rejects.toThrow(
      `${file}: timeframe "m" (from --timeframe) is ambiguous or unknown; use N + unit`,
    );
    const rejectsFile = path.join(dir, "r.csv");
    expect(await load({ files: [file], symbol: "X", rejects: rejectsFile, maxRejects: "50%" })).toMatchObject({ inserted: 1, rejected: 1 });
    expect(rejectReasons(rejectsFile)).toEqual([expect.stringMatching(/^2: timeframe "m" is ambiguous or unknown; use N \+ unit/)]);
    expect(await barsAsText(url)).toEqual(["X|||1d|2024-01-02T00:00:00.000000Z|1|2|1|2|0|NULL"]);
  });

  test("a path pattern that matches no file stops the load naming file and pattern", async () => {
    const file = write(tmpDir(), "nvda-1999-2014.txt", "date,open,high,low,close\n2024-01-02,1,2,1,2\n");
    await expect(load({ files: [file], pathPattern: "{symbol}_daily.txt", timeframe: "1d" })).rejects.toThrow(
      `${file} does not match --path-pattern "{symbol}_daily.txt"`,
    );
    expect(await load({ files: [file], pathPattern: "{symbol}-*.txt", timeframe: "1d" })).toMatchObject({ inserted: 1 });
    expect((await barsAsText(url))[0]).toMatch(/^nvda\|/);
  });

  test("a load where every row is rejected fails, says so and loads nothing", async () => {
    const dir = tmpDir();
    const file = write(dir, "times.csv", "date,open,high,low,close\n09:05:00,1,2,1,2\n09:10:00,1,2,1,2\n");
    const rejectsFile = path.join(dir, "rejects.csv");
    await expect(load({ files: [file], symbol: "X", timeframe: "1d", rejects: rejectsFile })).rejects.toThrow(
      `every row was rejected (2 of 2); nothing was loaded. First: ${file} row 1: timestamp "09:05:00" is not ISO-8601, a date or an epoch number. All reasons: ${rejectsFile}`,
    );
    expect(await countBars(url)).toBe(0);
  });

  test("the CLI exits 1 with one line when every row is rejected, and 0 within --max-rejects", async () => {
    const dir = tmpDir();
    write(dir, "times.csv", "date,open,high,low,close\n09:05:00,1,2,1,2\n");
    const cli = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        // tsx by absolute URL: the working directory (the temp dir) has no node_modules.
        execFile(process.execPath, ["--import", TSX, path.join(ROOT, "scripts/data.ts"), "load", "--url", url, "--quiet", ...args], { cwd: dir }, (error, out, err) =>
          resolve({ code: error ? (error.code as number) : 0, out: String(out), err: String(err) }));
      });
    const failed = await cli(["--source", "times.csv", "--symbol", "X", "--timeframe", "D"]);
    expect(failed.code).toBe(1);
    expect(failed.err).toBe(
      `tsdb data load: every row was rejected (1 of 1); nothing was loaded. First: ${path.join(dir, "times.csv")} row 1: timestamp "09:05:00" is not ISO-8601, a date or an epoch number. All reasons: ${path.join(dir, ".tsdb/rejects/last-load.csv")}\n`,
    );
    expect(failed.out).not.toContain("nothing new");
    write(dir, "times.csv", "date,open,high,low,close\n2024-01-02,1,2,1,2\nbad,1,2,1,2\n");
    const ok = await cli(["--source", "times.csv", "--symbol", "X", "--timeframe", "D", "--max-rejects", "1"]);
    expect(ok).toMatchObject({ code: 0, err: "" });
    expect(ok.out).toContain("rejected rows with reasons: ");
  });

  test("more rejects than --max-rejects (default 10%) fail the load; within the limit it loads", async () => {
    const dir = tmpDir();
    const file = write(dir, "five.csv",
      "date,open,high,low,close\n2024-01-02,1,2,1,2\n2024-01-03,1,2,1,2\n2024-01-04,1,2,1,2\n2024-01-05,1,2,1,2\nbad,1,2,1,2\n");
    await expect(load({ files: [file], symbol: "X", timeframe: "1d" })).rejects.toThrow(
      "1 of 5 rows rejected (20%), more than --max-rejects 10%; nothing was loaded.",
    );
    expect(await countBars(url)).toBe(0);
    await expect(load({ files: [file], symbol: "X", timeframe: "1d", maxRejects: "0" })).rejects.toThrow(/more than --max-rejects 0/);
    expect(await load({ files: [file], symbol: "X", timeframe: "1d", maxRejects: "1" })).toMatchObject({ inserted: 4, rejected: 1 });
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    expect(await load({ files: [file], symbol: "X", timeframe: "1d", maxRejects: "20%" })).toMatchObject({ inserted: 4, rejected: 1 });
  });

  test("values the database would refuse are rejected rows with file, row and reason; the rest loads", async () => {
    const dir = tmpDir();
    const good = (d: string) => `${d},GOOD,,1,2,1,2\n`;
    const file = write(dir, "bad.csv", Buffer.concat([
      Buffer.from("date,symbol,exchange,open,high,low,close\n"),
      Buffer.from(good("2024-01-02")),
      Buffer.from(`2024-01-03,${"S".repeat(3000)},,1,2,1,2\n`),
      Buffer.from(`2024-01-04,BIG,${"E".repeat(10 << 20)},1,2,1,2\n`),
      Buffer.from("2024-01-05,NU\u0000L,,1,2,1,2\n"),
      Buffer.from(`2024-01-06,HUGE,,${"9".repeat(140_000)},${"9".repeat(140_001)},1,2\n`),
      Buffer.from("2024-01-07,AB"), Buffer.from([0xff, 0xfe]), Buffer.from(",,1,2,1,2\n"),
      Buffer.from("0024-01-08,OLD,,1,2,1,2\n"),
      Buffer.from("2024-01-09T10:00:00+99:99,OFF,,1,2,1,2\n"),
      Buffer.from(good("20240801")),
      ...Array.from({ length: 80 }, (_, i) => Buffer.from(good(`2023-01-${String((i % 28) + 1).padStart(2, "0")}T${String(Math.floor(i / 28)).padStart(2, "0")}:00:00Z`))),
    ]));
    const rejectsFile = path.join(dir, "rejects.csv");
    const summary = await load({ files: [file], timeframe: "1d", rejects: rejectsFile });
    expect(summary).toMatchObject({ read: 89, inserted: 82, rejected: 7 });
    expect(rejectReasons(rejectsFile)).toEqual([
      "2: symbol is 3000 characters long; at most 128",
      "3: exchange is 10485760 characters long; at most 128",
      "4: symbol contains a NUL byte",
      "5: open has 140000 digits before the decimal point; at most 40",
      '6: symbol "AB\uFFFD\uFFFD" is not valid UTF-8 (holds U+FFFD, the replacement character)',
      '7: timestamp "0024-01-08" is outside 1800-01-01..2200-01-01',
      '8: timestamp "2024-01-09T10:00:00+99:99" has offset +99:99, which is not a UTC offset (-14:00..+14:00, minutes below 60)',
    ]);
    expect(fs.readFileSync(rejectsFile, "utf8").split("\n")[1]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")},2,`));
    expect((await barsAsText(url)).filter((l) => l.includes("2024-08-01"))).toEqual(["GOOD|||1d|2024-08-01T00:00:00.000000Z|1|2|1|2|0|NULL"]);
  });

  test("a rejects path equal to a source is refused before anything is touched", async () => {
    const dir = tmpDir();
    const file = write(dir, "rejects.csv", "date,symbol,open,high,low,close\n2024-01-02,X,1,2,1,2\n");
    const before = fs.readFileSync(file, "utf8");
    await expect(load({ files: [file], timeframe: "1d", rejects: path.join(dir, ".", "rejects.csv") })).rejects.toThrow(
      `--rejects ${path.join(dir, "rejects.csv")} is also a source of this load; write rejects elsewhere (default .tsdb/rejects/last-load.csv).`,
    );
    expect(fs.readFileSync(file, "utf8")).toBe(before);
  });

  test("the default rejects file lives under .tsdb/ and a directory source run twice never reads it", async () => {
    const dir = tmpDir();
    write(dir, "a.csv", "date,symbol,open,high,low,close\n2024-01-02,X,1,2,1,2\n2024-01-03,X,1,2,1,2\n2024-01-04,X,1,2,1,2\n2024-01-05,X,1,2,1,2\n2024-01-06,X,1,2,1,2\n2024-01-07,X,1,2,1,2\n2024-01-08,X,1,2,1,2\n2024-01-09,X,1,2,1,2\n2024-01-10,X,1,2,1,2\n2024-01-11,X,1,0.5,1,2\n");
    const first = await runLoadRequest(url, { source: ".", timeframe: "1d" }, { cwd: dir });
    expect(first).toMatchObject({ read: 10, inserted: 9, rejected: 1, rejectsFile: path.join(dir, ".tsdb/rejects/last-load.csv") });
    const second = await runLoadRequest(url, { source: ".", timeframe: "1d" }, { cwd: dir });
    expect(second).toMatchObject({ read: 10, inserted: 0, alreadyPresent: 9, rejected: 1 });
    expect(second.sources.map((s) => s.source)).toEqual([path.join(dir, "a.csv")]);
  });
});
