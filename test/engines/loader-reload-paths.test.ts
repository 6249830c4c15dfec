/**
 * Every way a load can reach the target leaves the same rows: the key-filtered path (per chunk,
 * fetch the keys present, write only missing rows, stage only changed ones), in chunks small enough that a
 * series spans several, and the reference staging path (every row staged, one ON CONFLICT merge), for
 * re-loads under --on-conflict skip and update, from CSV and from SQLite, on the TimescaleDB build (PGlite,
 * hypertable target, rows written by INSERT) and on PostgreSQL 17 (plain table, COPY).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, beforeEach, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { type LoadOptions, type LoadSummary, loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { BAR_ENGINES, SERVER_ENGINES, barsAsText, useMigratedEngine } from "../fixtures/loader/target";
import { exec } from "../fixtures/schema";

const SERIES = ["AAA", "BBB", "CCC"];
const BASE = 300;
const NEW = 7;
const REVISED = 5;

interface Bar {
  symbol: string;
  time: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  adj: string;
}

/**
 * Base bars; and a re-load of them: the last REVISED of each series changed (close and adj_close), the one
 * before them unchanged but written differently (trailing zeros, as another exporter writes the same number),
 * NEW bars after them, and the series interleaved bar by bar so chunks hold every series.
 */
function dataset(): { base: Bar[]; reload: Bar[] } {
  const base: Bar[] = [];
  const reload: Bar[] = [];
  for (const [s, symbol] of SERIES.entries()) {
    for (let i = 0; i < BASE + NEW; i++) {
      const c = 1000 + s * 100 + (i % 37);
      const bar: Bar = {
        symbol,
        time: new Date(Date.UTC(2024, 0, 2, 9, 30) + i * 60_000).toISOString(),
        open: String(c / 10),
        high: String((c + 5) / 10),
        low: String((c - 5) / 10),
        close: String((c + 1) / 10),
        volume: String(i * 3),
        adj: i % 2 === 0 ? String((c + 1) / 20) : "",
      };
      if (i < BASE) base.push(bar);
      const revised = i >= BASE - REVISED && i < BASE;
      const restated = i === BASE - REVISED - 1;
      reload.push(
        revised
          ? { ...bar, close: String((c - 4) / 10), adj: String((c + 2) / 20) }
          : restated
            ? { ...bar, open: `${bar.open}${bar.open.includes(".") ? "" : "."}000`, volume: `00${bar.volume}`, adj: bar.adj ? `${bar.adj}0` : "" }
            : bar,
      );
    }
  }
  const byTime = (a: Bar, b: Bar) => a.time.localeCompare(b.time) || a.symbol.localeCompare(b.symbol);
  return { base, reload: reload.sort(byTime) };
}

const counts = (s: LoadSummary) => ({ read: s.read, inserted: s.inserted, updated: s.updated, alreadyPresent: s.alreadyPresent, rejected: s.rejected });

const HEADER = "timestamp,symbol,timeframe,open,high,low,close,volume,adj_close";
const csvOf = (bars: Bar[]) => `${HEADER}\n${bars.map((b) => `${b.time},${b.symbol},1m,${b.open},${b.high},${b.low},${b.close},${b.volume},${b.adj}`).join("\n")}\n`;

/** The runbook's SQLite shape (ohlcv_data: ticker, region, date, ...), REAL prices as most exports have. */
async function sqliteOf(file: string, bars: Bar[]): Promise<string> {
  const Database = (await import("better-sqlite3")).default;
  const db = new Database(file);
  db.exec(`CREATE TABLE ohlcv_data (ticker TEXT, region TEXT, date TEXT, timeframe TEXT, open REAL, high REAL, low REAL, close REAL, volume INTEGER, adj_close REAL)`);
  const ins = db.prepare("INSERT INTO ohlcv_data VALUES (?, 'US', ?, '1m', ?, ?, ?, ?, ?, ?)");
  for (const b of bars) ins.run(b.symbol, b.time.replace("T", " ").slice(0, 19), Number(b.open), Number(b.high), Number(b.low), Number(b.close), Number(b.volume), b.adj === "" ? null : Number(b.adj));
  db.close();
  return file;
}

describe.each(BAR_ENGINES)("re-load paths on $name", ({ start, timescaledb }) => {
  let url: string;
  let files: { baseCsv: string; reloadCsv: string; baseDb: string; reloadDb: string };

  useMigratedEngine({ start, timescaledb }, (u) => (url = u));
  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reload-paths-"));
    const { base, reload } = dataset();
    files = {
      baseCsv: path.join(dir, "base.csv"),
      reloadCsv: path.join(dir, "reload.csv"),
      baseDb: await sqliteOf(path.join(dir, "base.db"), base),
      reloadDb: await sqliteOf(path.join(dir, "reload.db"), reload),
    };
    fs.writeFileSync(files.baseCsv, csvOf(base));
    fs.writeFileSync(files.reloadCsv, csvOf(reload));
  });
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
  });

  const PATHS: Array<[string, Partial<LoadOptions>]> = [
    ["key-filtered, one chunk", { strategy: "filter" }],
    ["key-filtered, chunks of 64 rows", { strategy: "filter", chunkRows: 64 }],
    ["staging + merge", { strategy: "stage" }],
  ];

  /** Base load then re-load through `how`; the table afterwards and the re-load's counts. */
  async function reloadThrough(base: string, reload: string, how: Partial<LoadOptions>, policy: "skip" | "update"): Promise<{ bars: string[]; summary: LoadSummary }> {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    await loadOhlcvFrom(url, { files: [base], ...how });
    const summary = await loadOhlcvFrom(url, { files: [reload], onConflict: policy, ...how });
    return { bars: await barsAsText(url), summary };
  }

  const total = SERIES.length * (BASE + NEW);

  for (const policy of ["skip", "update"] as const) {
    test(`a CSV re-load with --on-conflict ${policy} leaves the same rows and counts through every path`, async () => {
      const results = [];
      for (const [, how] of PATHS) results.push(await reloadThrough(files.baseCsv, files.reloadCsv, how, policy));
      const [first, ...rest] = results;
      expect(first?.bars).toHaveLength(total);
      expect(counts(first?.summary as LoadSummary)).toEqual({
        read: total,
        inserted: SERIES.length * NEW,
        // The restated bar (same numbers, other digits) is never an update.
        updated: policy === "update" ? SERIES.length * REVISED : 0,
        alreadyPresent: SERIES.length * (policy === "update" ? BASE - REVISED : BASE),
        rejected: 0,
      });
      for (const r of rest) {
        expect(r.bars).toEqual(first?.bars);
        expect(counts(r.summary)).toEqual(counts(first?.summary as LoadSummary));
      }
      // What each policy keeps: the base close (skip) or the revised one (update) of a revised bar.
      const { base, reload } = dataset();
      const last = base[BASE - 1] as Bar;
      const revised = reload.find((b) => b.symbol === last.symbol && b.time === last.time) as Bar;
      expect(revised.close).not.toBe(last.close);
      const stored = (first?.bars ?? []).find((b) => b.startsWith(`${last.symbol}|||1m|${last.time.slice(0, 19)}`));
      expect(stored?.split("|")[8]).toBe(policy === "update" ? revised.close : last.close);
    });
  }

  test("a SQLite re-load (runbook ohlcv_data) leaves the same rows as the CSV one through every path, skip and update", async () => {
    for (const policy of ["skip", "update"] as const) {
      const fromCsv = await reloadThrough(files.baseCsv, files.reloadCsv, { strategy: "stage" }, policy);
      for (const [, how] of PATHS) {
        const fromDb = await reloadThrough(files.baseDb, files.reloadDb, how, policy);
        // The SQLite bars carry their region as exchange; REAL prices print as their shortest text.
        expect(fromDb.bars).toEqual(fromCsv.bars.map((b) => b.replace(/^([A-Z]+)\|\|/, "$1|US|")));
        expect(counts(fromDb.summary)).toEqual(counts(fromCsv.summary));
      }
    }
  });

  test("a re-load whose file lists a bar twice keeps the first and counts the second as rejected on every path", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reload-dup-"));
    const file = path.join(dir, "dup.csv");
    const lines = fs.readFileSync(files.reloadCsv, "utf8").trimEnd().split("\n");
    fs.writeFileSync(file, `${[...lines, lines[1]].join("\n")}\n`);
    const results = [];
    for (const [, how] of PATHS) results.push(await reloadThrough(files.baseCsv, file, { ...how, maxRejects: "1" }, "update"));
    expect(results[0]?.summary.rejected).toBe(1);
    for (const r of results.slice(1)) {
      expect(r.bars).toEqual(results[0]?.bars);
      expect(counts(r.summary)).toEqual(counts(results[0]?.summary as LoadSummary));
    }
  });
});

// One session at a time on the TimescaleDB build: a second writer needs a native server.
describe.each(SERVER_ENGINES)("a re-load racing another writer on $name", (engine) => {
  let url: string;
  useMigratedEngine(engine, (u) => (url = u));

  test("a bar another session inserts while the load runs is counted present, not written twice", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reload-concurrent-"));
    const { base, reload } = dataset();
    const baseCsv = path.join(dir, "base.csv");
    const reloadCsv = path.join(dir, "reload.csv");
    fs.writeFileSync(baseCsv, csvOf(base));
    fs.writeFileSync(reloadCsv, csvOf(reload));
    await loadOhlcvFrom(url, { files: [baseCsv] });
    // Another session holds a new bar of the re-load uncommitted: the load cannot see it when it asks which
    // keys exist, its direct write waits on it, and once it commits the chunk goes through staging instead.
    const newBar = reload.at(-1) as Bar;
    await withClient(url, async (other) => {
      await other.query("BEGIN");
      await other.query(
        `INSERT INTO market_data.ohlcv_bars (symbol, timeframe, time, open, high, low, close, volume) VALUES ($1, '1m', $2, $3, $4, $5, $6, $7)`,
        [newBar.symbol, newBar.time, newBar.open, newBar.high, newBar.low, newBar.close, newBar.volume],
      );
      const load = loadOhlcvFrom(url, { files: [reloadCsv] });
      await new Promise((r) => setTimeout(r, 1500));
      await other.query("COMMIT");
      expect(counts(await load)).toEqual({ read: SERIES.length * (BASE + NEW), inserted: SERIES.length * NEW - 1, updated: 0, alreadyPresent: SERIES.length * BASE + 1, rejected: 0 });
    });
    expect(await barsAsText(url)).toHaveLength(SERIES.length * (BASE + NEW));
  });
});
