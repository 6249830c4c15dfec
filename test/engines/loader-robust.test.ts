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
import { LOAD_LOCK_CLASS, loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
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

describe("a load waits for a lock at most its lock timeout, naming the holder (23.22)", () => {
  let url = "";
  useMigratedEngine(POSTGRES_17, (u) => (url = u));
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

  test("--lock-timeout reaches the loader from a load request", async () => {
    const { toLoadOptions, parseLoadRequest } = await import("../../lib/loader/loadRequest");
    const options = toLoadOptions(parseLoadRequest({ source: dir, lockTimeout: "2.5" }), { cwd: dir, defaultRejects: "r.csv" });
    expect(options.lockTimeoutMs).toBe(2500);
    expect(() => parseLoadRequest({ source: dir, lockTimeout: "soon" })).toThrow(/lockTimeout: .*number of seconds/);
  });
});
