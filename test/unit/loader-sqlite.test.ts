/**
 * The SQLite source reads a table in rowid pages (a seventh less CPU than a row-by-row iterator) and
 * anything without a rowid to page by (a view, a WITHOUT ROWID table, a table whose columns take every rowid
 * alias) row by row. Every way gives the same records in the same order.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test } from "vitest";
import { openSqlite } from "../../lib/loader/sources/sqlite";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-sqlite-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 10,000 rows (more than two pages), inserted out of key order, some rowids negative or far apart. */
const ROWS = Array.from({ length: 10_000 }, (_, i) => ({
  ticker: `T${i % 7}`,
  date: new Date(Date.UTC(2024, 0, 1) + ((i * 7919) % 10_000) * 60_000).toISOString().slice(0, 19).replace("T", " "),
  close: 100 + (i % 97) / 4,
  volume: BigInt(i) * 1_000_000_007n,
}));

function database(name: string, ddl: string, insert: string, values: (r: (typeof ROWS)[number], i: number) => unknown[]): string {
  const file = path.join(dir, name);
  const db = new Database(file);
  db.exec(ddl);
  const ins = db.prepare(insert);
  db.transaction(() => ROWS.forEach((r, i) => ins.run(...values(r, i))))();
  db.close();
  return file;
}

async function records(file: string, table: string): Promise<unknown[][]> {
  const source = await openSqlite(file, table);
  const out: unknown[][] = [];
  try {
    for await (const batch of source.batches()) out.push(...batch);
  } finally {
    await source.close();
  }
  return out;
}

describe("SQLite sources read by rowid pages and row by row give the same records", () => {
  const plain = database(
    "plain.db",
    "CREATE TABLE bars (ticker TEXT, date TEXT, close REAL, volume INTEGER); CREATE VIEW bars_view AS SELECT * FROM bars",
    "INSERT INTO bars (rowid, ticker, date, close, volume) VALUES (?, ?, ?, ?, ?)",
    // Rowids from far below zero, with gaps: paging must neither skip nor repeat one.
    (r, i) => [BigInt(i) * 3n - 9_000_000_000_000_000_000n + (i === 0 ? 0n : 1n), r.ticker, r.date, r.close, r.volume],
  );
  const expected = ROWS.map((r) => [r.ticker, r.date, r.close, r.volume]);

  test("a table (rowid pages) and a view of it (row by row): every record, in rowid order, values exact", async () => {
    const fromTable = await records(plain, "bars");
    expect(fromTable).toHaveLength(10_000);
    expect(fromTable).toEqual(expected);
    expect(await records(plain, "bars_view")).toEqual(fromTable);
  });

  test("a WITHOUT ROWID table and a table with a column named rowid read whole", async () => {
    const withoutRowid = database(
      "without.db",
      "CREATE TABLE bars (ticker TEXT, date TEXT, close REAL, volume INTEGER, PRIMARY KEY (ticker, date)) WITHOUT ROWID",
      "INSERT INTO bars VALUES (?, ?, ?, ?)",
      (r) => [r.ticker, r.date, r.close, r.volume],
    );
    const keyOrder = [...expected].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1])));
    expect(await records(withoutRowid, "bars")).toEqual(keyOrder);
    const rowidColumn = database(
      "rowid-column.db",
      "CREATE TABLE bars (rowid TEXT, ticker TEXT, date TEXT, close REAL, volume INTEGER)",
      "INSERT INTO bars VALUES (?, ?, ?, ?, ?)",
      (r, i) => [`r${i}`, r.ticker, r.date, r.close, r.volume],
    );
    expect(await records(rowidColumn, "bars")).toEqual(ROWS.map((r, i) => [`r${i}`, r.ticker, r.date, r.close, r.volume]));
  });

  test("the runbook's ohlcv_data joined with tickers pages by the bars' rowid", async () => {
    const file = path.join(dir, "runbook.db");
    const db = new Database(file);
    db.exec(`CREATE TABLE ohlcv_data (ticker TEXT, region TEXT, date TEXT, timeframe TEXT, close REAL);
             CREATE TABLE tickers (ticker TEXT, region TEXT, exchange TEXT)`);
    const ins = db.prepare("INSERT INTO ohlcv_data VALUES (?, 'US', ?, '1m', ?)");
    db.transaction(() => ROWS.forEach((r) => ins.run(r.ticker, r.date, r.close)))();
    db.prepare("INSERT INTO tickers VALUES ('T3', 'US', 'XNAS')").run();
    db.close();
    const read = await records(file, "ohlcv_data");
    expect(read).toEqual(ROWS.map((r) => [r.ticker, "US", r.date, "1m", r.close, r.ticker === "T3" ? "XNAS" : "US"]));
  });
});
