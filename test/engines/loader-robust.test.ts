/**
 * Issue 23's loads that hung, died on one row or lost rows, on real PostgreSQL 17 (several sessions and COPY
 * FROM STDIN, which the TimescaleDB build cannot do): a load behind another session's lock gives up naming
 * it; a price the target's numeric type cannot hold is one rejected row; a CSV quote left open rejects its
 * row and loads the rest.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { parseLoadRequest, toLoadOptions } from "../../lib/loader/loadRequest";
import { LOAD_LOCK_CLASS, loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { formatValidation, validateOhlcv } from "../../lib/loader/validateReport";
import { POSTGRES_17, countBars, useMigratedEngine } from "../fixtures/loader/target";
import { exec } from "../fixtures/schema";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-robust-"));
const HEADER = "timestamp,symbol,timeframe,open,high,low,close,volume";

/** `n` daily bars of `symbol` from 2024-01-01 as CSV lines (no header). */
function dailyLines(symbol: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const c = 1000 + (i % 41);
    return `${new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString().slice(0, 10)},${symbol},1d,${c / 10},${(c + 3) / 10},${(c - 3) / 10},${(c + 1) / 10},${i}`;
  });
}

function csvFile(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${[HEADER, ...lines].join("\n")}\n`);
  return file;
}

describe("on PostgreSQL 17", () => {
  let url = "";
  useMigratedEngine(POSTGRES_17, (u) => (url = u));

  describe("a load waits for a lock at most its lock timeout, naming the holder (23.22)", () => {
    beforeEach(async () => {
      await exec(url, "TRUNCATE market_data.ohlcv_bars");
    });

    test("a session holding the load's advisory lock (any role can) no longer makes the load wait forever", async () => {
      const file = csvFile("advisory.csv", dailyLines("AAA", 20));
      await withClient(url, async (holder) => {
        await holder.query("SET application_name = 'squatter'");
        const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
        await holder.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOAD_LOCK_CLASS, "market_data.ohlcv_bars"]);
        const load = loadOhlcvFrom(url, { files: [file], lockTimeoutMs: 1000 });
        await expect(load).rejects.toThrow(
          new RegExp(`^waited 1 s for the load lock on market_data\\.ohlcv_bars .* held by pid ${pid}, user postgres, application "squatter"; gave up, nothing was loaded`),
        );
      });
      expect(await countBars(url)).toBe(0);
    }, 30_000);

    test("an uncommitted insert of one of the load's bars no longer makes the load wait forever", async () => {
      const file = csvFile("held-bar.csv", dailyLines("BBB", 20));
      await withClient(url, async (holder) => {
        await holder.query("SET application_name = 'half-done'");
        const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
        await holder.query("BEGIN");
        await holder.query(
          `INSERT INTO market_data.ohlcv_bars (symbol, timeframe, time, open, high, low, close) VALUES ('BBB', '1d', '2024-01-05T00:00:00Z', 1, 1, 1, 1)`,
        );
        try {
          for (const strategy of ["filter", "stage"] as const) {
            const load = loadOhlcvFrom(url, { files: [file], lockTimeoutMs: 1000, strategy });
            await expect(load).rejects.toThrow(new RegExp(`^waited 1 s for a lock on market_data\\.ohlcv_bars .* held by pid ${pid}, user postgres, application "half-done"`));
          }
        } finally {
          await holder.query("ROLLBACK");
        }
      });
      expect(await countBars(url)).toBe(0);
    }, 30_000);

    test("--lock-timeout reaches the loader from a load request", () => {
      const options = toLoadOptions(parseLoadRequest({ source: dir, lockTimeout: "2.5" }), { cwd: dir, defaultRejects: "r.csv" });
      expect(options.lockTimeoutMs).toBe(2500);
      expect(() => parseLoadRequest({ source: dir, lockTimeout: "soon" })).toThrow(/lockTimeout: .*number of seconds/);
    });
  });

  describe("two loads at once, one rejects path (23.12)", () => {

    test("two concurrent loads from one directory each name a rejects file holding all of their own rejects and none of the other's", async () => {
      await exec(url, "TRUNCATE market_data.ohlcv_bars");
      const withBad = (symbol: string, n: number, every: number) =>
        dailyLines(symbol, n).map((l, i) => (i % every === 0 ? l.replace(/,1d,[^,]*,/, ",1d,abc,") : l));
      const a = csvFile("concurrent-a.csv", withBad("RA", 4000, 20));
      const b = csvFile("concurrent-b.csv", withBad("RB", 4000, 2));
      const rejectsFile = path.join(dir, ".tsdb", "rejects", "last-load.csv");
      const [sa, sb] = await Promise.all([
        loadOhlcvFrom(url, { files: [a], rejects: rejectsFile, maxRejects: "100%" }),
        loadOhlcvFrom(url, { files: [b], rejects: rejectsFile, maxRejects: "100%" }),
      ]);
      expect([sa.rejected, sb.rejected]).toEqual([200, 2000]);
      expect(sa.rejectsFile).not.toBe(sb.rejectsFile);
      for (const [summary, file] of [[sa, a], [sb, b]] as const) {
        const lines = fs.readFileSync(summary.rejectsFile as string, "utf8").trimEnd().split("\n").slice(1);
        expect(lines).toHaveLength(summary.rejected);
        expect(lines.every((l) => l.startsWith(`${file},`))).toBe(true);
      }
    }, 60_000);
  });

  describe("a value the target cannot hold is one rejected row, not a failed load (23.19)", () => {
    beforeEach(async () => {
      await exec(url, "TRUNCATE market_data.ohlcv_bars");
    });

    test("a price with 17,000 digits rejects its row and the 29 good rows load", async () => {
      const lines = dailyLines("AAA", 30);
      // The 11th bar's open with 17,000 trailing zeros: the value is fine, its text overflows numeric.
      lines[10] = lines[10]!.replace(/^([^,]*,[^,]*,[^,]*,)([^,]*)/, (_, head: string, open: string) => `${head}${open}${open.includes(".") ? "" : "."}${"0".repeat(17_000)}`);
      const file = csvFile("long-price.csv", lines);
      for (const staging of ["copy", "insert"] as const) {
        await exec(url, "TRUNCATE market_data.ohlcv_bars");
        const summary = await loadOhlcvFrom(url, { files: [file], staging });
        expect(summary).toMatchObject({ read: 30, inserted: 29, rejected: 1 });
      }
      expect(await countBars(url)).toBe(29);
    }, 60_000);

    test("a custom target's numeric(p,s) and integer columns are checked on the client", async () => {
      await exec(
        url,
        `CREATE SCHEMA IF NOT EXISTS custom;
         DROP TABLE IF EXISTS custom.bars;
         CREATE TABLE custom.bars (symbol text NOT NULL, exchange text NOT NULL DEFAULT '', provider text NOT NULL DEFAULT '',
           timeframe text NOT NULL, time timestamptz NOT NULL, open numeric(6,2) NOT NULL, high numeric(6,2) NOT NULL,
           low numeric(6,2) NOT NULL, close numeric(6,2) NOT NULL, volume integer NOT NULL DEFAULT 0, adj_close numeric(6,2),
           PRIMARY KEY (symbol, exchange, provider, timeframe, time))`,
      );
      const lines = dailyLines("CCC", 10);
      lines.push("2024-02-01,CCC,1d,9999.99,10000.00,9999.00,9999.50,1");
      lines.push("2024-02-02,CCC,1d,9999.99,9999.995,9999.00,9999.50,1");
      lines.push("2024-02-03,CCC,1d,100,101,99,100,1.5");
      lines.push("2024-02-04,CCC,1d,100,101,99,100,3000000000");
      lines.push("2024-02-05,CCC,1d,9999.99,9999.994,9999.00,9999.50,7");
      const file = csvFile("custom-target.csv", lines);
      const rejectsFile = path.join(dir, "custom-rejects.csv");
      const summary = await loadOhlcvFrom(url, { files: [file], target: "custom.bars", rejects: rejectsFile, maxRejects: "50%" });
      expect(summary).toMatchObject({ read: 15, inserted: 11, rejected: 4 });
      const rejects = fs.readFileSync(rejectsFile, "utf8");
      for (const reason of [
        "high 10000.00 does not fit the target column's type numeric(6,2)",
        "high 9999.995 does not fit the target column's type numeric(6,2)",
        "volume 1.5 is not a whole number, which the target column's type integer needs",
        "volume 3000000000 is out of range for the target column's type integer",
      ]) {
        expect(rejects).toContain(reason);
      }
    }, 60_000);
  });

  describe("a CSV quote rejects its row and the rest loads (23.13, 23.20)", () => {
    beforeEach(async () => {
      await exec(url, "TRUNCATE market_data.ohlcv_bars");
    });

    test("an unterminated quote at row 500 of 1,000: read 1000, rejected 1, inserted 999 (was read 500, rejected 1, exit 0)", async () => {
      const lines = dailyLines("QQQ", 1000);
      lines[499] = lines[499]!.replace(",QQQ,", ',"QQQ,');
      const rejectsFile = path.join(dir, "open-quote-rejects.csv");
      const summary = await loadOhlcvFrom(url, { files: [csvFile("open-quote.csv", lines)], rejects: rejectsFile });
      expect(summary).toMatchObject({ read: 1000, inserted: 999, rejected: 1 });
      expect(fs.readFileSync(rejectsFile, "utf8")).toContain(',500,"a quote ("") opened in this row is never closed');
      expect(await countBars(url)).toBe(999);
    }, 60_000);

    test("one stray quote inside an unquoted field: that row is rejected, every other row loads", async () => {
      const lines = dailyLines("SPY", 3000);
      lines[20] = lines[20]!.replace(",SPY,", ',S"PY,');
      const summary = await loadOhlcvFrom(url, { files: [csvFile("stray-quote.csv", lines)] });
      expect(summary).toMatchObject({ read: 3000, inserted: 2999, rejected: 1 });
    }, 60_000);
  });

  describe("validate reads every stored timeframe and key (23.16, 23.17)", () => {

    test("one series stored as 100000000000h (before the bound) no longer fails validate for the whole table", async () => {
      await exec(
        url,
        `TRUNCATE market_data.ohlcv_bars;
         INSERT INTO market_data.ohlcv_bars (symbol, timeframe, time, open, high, low, close) VALUES
           ('AAA', '1h', '2024-01-02T10:00:00Z', 1, 1, 1, 1), ('AAA', '1h', '2024-01-02T13:00:00Z', 1, 1, 1, 1),
           ('BBB', '100000000000h', '2024-01-02T10:00:00Z', 1, 1, 1, 1), ('BBB', '100000000000h', '2024-01-02T13:00:00Z', 1, 1, 1, 1),
           (E'CC\\x1b[2KC\\u202e', '1d', '2024-01-02T00:00:00Z', 1, 1, 1, 1)`,
      );
      await withClient(url, async (client) => {
        const report = await validateOhlcv(client);
        expect(report.series.map((s) => [s.symbol, s.timeframe, s.missingBars])).toEqual([
          ["AAA", "1h", 2], ["BBB", "100000000000h", null], ["CC\u001b[2KC\u202e", "1d", 0],
        ]);
        const text = formatValidation(report);
        expect(text).toContain("CC\\u001b[2KC\\u202e");
        expect(["\u001b", "\u202e"].some((c) => text.includes(c))).toBe(false);
      });
    }, 60_000);
  });
});
