/**
 * A load into an empty target (the first import) goes through one COPY fed while the file is read, like
 * `psql \copy`, with no probe, savepoint or statement between chunks (empty-table loads at the
 * floor). These tests pin that it is taken, that it leaves the rows every other path leaves, and that it loses
 * nothing when it cannot finish: a bad row under --strict after earlier chunks were sent, a second file of the
 * same load, and a bar another session writes into the table meanwhile. PostgreSQL 17 only: the TimescaleDB
 * build (PGlite) takes no COPY FROM STDIN and always writes by INSERT.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Client } from "pg";
import { beforeEach, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { type LoadOptions, type LoadSummary, loadOhlcv, loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { silentProgress } from "../../lib/loader/progress";
import { openChecked } from "../../lib/loader/readSource";
import { DEFAULT_CHUNK_ROWS, STREAM_CHUNK_ROWS, loadSource } from "../../lib/loader/writePlan";
import { SERVER_ENGINES, barsAsText, countBars, useMigratedEngine } from "../fixtures/loader/target";
import { exec, rows } from "../fixtures/schema";

const SYMBOLS = ["AAA", "BBB", "CCC"];
const PER_SYMBOL = 400;
const HEADER = "timestamp,symbol,timeframe,open,high,low,close,volume";
/** The time of each symbol's last bar in a file of PER_SYMBOL bars from minute 0. */
const LAST_BAR_TIME = new Date(Date.UTC(2024, 0, 2) + (PER_SYMBOL - 1) * 60_000).toISOString();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-stream-"));

/** `n` minute bars per symbol from minute `from`, symbol after symbol, as a CSV file. */
function csvFile(name: string, from: number, n: number, extra: string[] = []): string {
  const lines = [HEADER];
  for (const symbol of SYMBOLS) {
    for (let i = from; i < from + n; i++) {
      const c = 1000 + (i % 41);
      lines.push(`${new Date(Date.UTC(2024, 0, 2) + i * 60_000).toISOString()},${symbol},1m,${c / 10},${(c + 3) / 10},${(c - 3) / 10},${(c + 1) / 10},${i}`);
    }
  }
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${[...lines, ...extra].join("\n")}\n`);
  return file;
}

/** The load through `client`, with the text of every statement it sent (COPY streams by their SQL). */
async function loadRecording(url: string, options: LoadOptions): Promise<{ summary: LoadSummary; statements: string[] }> {
  const statements: string[] = [];
  const summary = await withClient(url, async (client: Client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (q: unknown, ...rest: unknown[]) => {
      statements.push(typeof q === "string" ? q : String((q as { text?: string }).text));
      return query(q, ...rest);
    };
    return loadOhlcv(client, options);
  });
  return { summary, statements };
}

/**
 * Runs `load` while another session holds one bar of it, inserted and not yet committed: once the load's
 * `statement` (a COPY or an INSERT) waits on that key, and `holdMs` more, the other session commits.
 */
async function loadAgainstHeldBar<T>(url: string, bar: { symbol: string; time: string }, load: () => Promise<T>, statement = "COPY", holdMs = 0): Promise<T> {
  return withClient(url, async (other) => {
    await other.query("BEGIN");
    await other.query(
      `INSERT INTO market_data.ohlcv_bars (symbol, timeframe, time, open, high, low, close, volume)
       VALUES ($1, '1m', $2, 100, 100.3, 99.7, 100.1, 7)`,
      [bar.symbol, bar.time],
    );
    const loading = load();
    await waitForLockedWrite(url, statement);
    await new Promise((r) => setTimeout(r, holdMs));
    await other.query("COMMIT");
    return loading;
  });
}

/** Until a COPY (or INSERT) waits on a lock another session holds (a key it inserted and has not committed). */
async function waitForLockedWrite(url: string, statement: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await rows(url, "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", [`${statement} %`])).length > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("the load never waited on the other session's bar");
}

const copies = (statements: string[]) => statements.filter((s) => /^COPY .* FROM STDIN( \(FORMAT binary\))?$/.test(s));
const binaryCopies = (statements: string[]) => statements.filter((s) => /^COPY .* FROM STDIN \(FORMAT binary\)$/.test(s));

/**
 * Bars whose stored form a binary COPY must reproduce exactly as the text path stores it: values in every
 * spelling the row checks pass (trailing zeros kept as scale, exponents, a sign, a leading or trailing point,
 * 40 digits each side, base-10000 groups of zeros inside), times before 1970 and 2000 and with microseconds,
 * keys with a backslash, a quote and non-ASCII letters, adj_close present or not.
 */
const SPELLINGS = [
  "timestamp,symbol,exchange,timeframe,open,high,low,close,volume,adj_close",
  "1969-12-31T23:59:00Z,A\\B,X,1m,10.50,10.5000,10.5,10.50,0,",
  "1999-12-31T23:59:59.999999Z,A\\B,X,1m,1.5e-3,1.50E1,0.0015,+5,1e3,.5",
  "2000-01-01T00:00:00Z,Ünïcødé €,X,1m,5.,5.0,5,5.00,00012.3400,5",
  "2000-01-01T00:00:00.000001Z,O'Brien,X,1m,0.00001234,0.0001,0.00001,0.00005,1000000000000,0.0001000",
  `2024-06-30T12:34:56.789012Z,LONG,X,1m,${"9".repeat(40)}.${"9".repeat(40)},${"9".repeat(40)}.${"9".repeat(40)},1${"0".repeat(39)},${"1".repeat(40)}.${"0".repeat(39)}1,1.5e20,100000000.00000001`,
  "2199-12-31T23:59:59.999999Z,LONG,X,1m,10000.0001,100000000,10000,100000000,10000,00000.00001000",
  "1900-01-01T00:00:00Z,-ZERO-,X,1d,1,1,1,1,-0.00,",
];
const between = (statements: string[]) => statements.filter((s) => /SAVEPOINT|unnest\(\$1::int\[\]/.test(s));

describe.each(SERVER_ENGINES)("a load into an empty table on $name", (engine) => {
  let url: string;
  useMigratedEngine(engine, (u) => (url = u));
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
  });

  test("is one COPY with nothing between chunks, and leaves the rows the staging path leaves", async () => {
    const file = csvFile("base.csv", 0, PER_SYMBOL);
    // Chunks of 64 rows: the per-chunk path would send a probe, a savepoint and a COPY for each of 19 chunks.
    const { summary, statements } = await loadRecording(url, { files: [file], chunkRows: 64 });
    expect(copies(statements)).toHaveLength(1);
    expect(between(statements)).toEqual([]);
    expect(summary).toMatchObject({ read: 1200, inserted: 1200, updated: 0, alreadyPresent: 0, rejected: 0 });
    const streamed = await barsAsText(url);
    expect(streamed).toHaveLength(1200);
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    await loadOhlcvFrom(url, { files: [file], strategy: "stage" });
    expect(await barsAsText(url)).toEqual(streamed);
  });

  test("a streamed load into the contract's table is one binary COPY and stores every value, time and key as the text path does", async () => {
    const file = path.join(dir, "spellings.csv");
    fs.writeFileSync(file, `${SPELLINGS.join("\n")}\n`);
    const { summary, statements } = await loadRecording(url, { files: [file] });
    expect(summary).toMatchObject({ read: 7, inserted: 7, rejected: 0 });
    expect(copies(statements)).toHaveLength(1);
    expect(binaryCopies(statements)).toHaveLength(1);
    const binary = await barsAsText(url);
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    const staged = await loadRecording(url, { files: [file], strategy: "stage" });
    expect(binaryCopies(staged.statements)).toEqual([]);
    const text = await barsAsText(url);
    expect(text).toHaveLength(7);
    expect(binary).toEqual(text);
    // The written scale is kept either way: 10.50 stays 10.50, 1.5e-3 is 0.0015, a volume of -0.00 is 0.00.
    expect(binary).toContain("A\\B|X||1m|1969-12-31T23:59:00.000000Z|10.50|10.5000|10.5|10.50|0|NULL");
    expect(binary).toContain("-ZERO-|X||1d|1900-01-01T00:00:00.000000Z|1|1|1|1|0.00|NULL");
  });

  test("appended bars stream as binary COPY, the probed first chunk included, stored as the text path stores them", async () => {
    const history = path.join(dir, "spellings-history.csv");
    fs.writeFileSync(history, `${SPELLINGS[0]}\n2024-01-01T00:00:00Z,OTHER,X,1m,1,1,1,1,1,\n`);
    const file = path.join(dir, "spellings-append.csv");
    fs.writeFileSync(file, `${SPELLINGS.join("\n")}\n`);
    await loadOhlcvFrom(url, { files: [history] });
    const { statements } = await loadRecording(url, { files: [file], chunkRows: 4 });
    expect(between(statements).filter((s) => /unnest/.test(s))).toHaveLength(1);
    expect(binaryCopies(statements)).toHaveLength(1);
    const binary = await barsAsText(url);
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
    await loadOhlcvFrom(url, { files: [history] });
    await loadOhlcvFrom(url, { files: [file], strategy: "stage" });
    expect(binary).toHaveLength(8);
    expect(binary).toEqual(await barsAsText(url));
  });

  test("a target whose value columns are not unconstrained numeric gets text COPY (binary is typed), and its own types' values", async () => {
    await exec(url, "DROP TABLE IF EXISTS public.float_bars");
    await exec(url, "CREATE TABLE public.float_bars (LIKE market_data.ohlcv_bars INCLUDING ALL)");
    await exec(url, "ALTER TABLE public.float_bars ALTER COLUMN close TYPE double precision, ALTER COLUMN volume TYPE numeric(30,2)");
    const file = csvFile("floats.csv", 0, 10);
    const { summary, statements } = await loadRecording(url, { files: [file], target: "public.float_bars" });
    expect(summary).toMatchObject({ read: 30, inserted: 30, rejected: 0 });
    expect(copies(statements)).toHaveLength(1);
    expect(binaryCopies(statements)).toEqual([]);
    expect(await rows(url, "SELECT close::text AS close, volume::text AS volume FROM public.float_bars WHERE symbol = 'AAA' ORDER BY time LIMIT 2")).toEqual([
      { close: "100.1", volume: "0.00" },
      { close: "100.2", volume: "1.00" },
    ]);
    await exec(url, "DROP TABLE public.float_bars");
  });

  test("a bad row under --strict, after earlier chunks were sent, leaves the table empty", async () => {
    const file = csvFile("strict.csv", 0, PER_SYMBOL, ["2024-03-01T00:00:00Z,AAA,1m,10,9,11,10,1"]);
    await expect(loadOhlcvFrom(url, { files: [file], chunkRows: 64, strict: true })).rejects.toThrow(
      /strict\.csv row 1201: high 9 is below max\(open 10, close 10\) \(--strict stops on the first invalid row; nothing was loaded\)/,
    );
    expect(await countBars(url)).toBe(0);
  });

  test("a second file of the same load finds the first one's bars present (the table is no longer empty)", async () => {
    const first = csvFile("first.csv", 0, PER_SYMBOL);
    const second = csvFile("second.csv", PER_SYMBOL - 50, 100);
    const { summary, statements } = await loadRecording(url, { files: [first, second], chunkRows: 64 });
    expect(summary.sources.map((s) => [s.inserted, s.alreadyPresent])).toEqual([[1200, 0], [150, 150]]);
    // The second file went through the per-chunk path: probes and savepoints after the one streamed COPY.
    expect(between(statements).length).toBeGreaterThan(0);
    expect(await countBars(url)).toBe(1350);
  });

  test("new bars after the stored ones (the everyday append) are one COPY: one probe of the first chunk, no savepoint", async () => {
    await loadOhlcvFrom(url, { files: [csvFile("history.csv", 0, PER_SYMBOL)] });
    const { summary, statements } = await loadRecording(url, { files: [csvFile("append.csv", PER_SYMBOL, 300)], chunkRows: 64 });
    expect(summary).toMatchObject({ read: 900, inserted: 900, alreadyPresent: 0, rejected: 0 });
    expect(copies(statements)).toHaveLength(1);
    expect(between(statements).filter((s) => /unnest/.test(s))).toHaveLength(1);
    expect(between(statements).filter((s) => /SAVEPOINT/.test(s))).toEqual([]);
    expect(await countBars(url)).toBe(2100);
  });

  test.each(["stream", "probe"] as const)("a load streamed through one COPY (plan %s) makes chunks of at most 8,192 rows, however large the chunk size", async (plan) => {
    // Larger chunks kept the loader's peak memory growing with the file (writePlan.ts STREAM_CHUNK_ROWS).
    const file = csvFile(`capped-${plan}.csv`, 0, 20_000);
    const source = await openChecked(file, {}, { asText: true, chunkRows: DEFAULT_CHUNK_ROWS }, { reject: () => undefined, progress: () => undefined });
    const sizes: number[] = [];
    const chunks = source.chunks.bind(source);
    source.chunks = async function* () {
      for await (const chunk of chunks()) {
        sizes.push(chunk.n);
        yield chunk;
      }
    };
    try {
      const summary = await withClient(url, (c) => loadSource(c, source, { files: [file] }, silentProgress, plan));
      expect(summary).toMatchObject({ read: 60_000, inserted: 60_000 });
    } finally {
      await source.close();
    }
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(60_000);
    expect(Math.max(...sizes)).toBe(STREAM_CHUNK_ROWS);
    expect(await countBars(url)).toBe(60_000);
  });

  test("a re-load of stored bars asks about chunks of up to 32,768 rows: one probe a chunk, the cap of streamed loads (8,192) not applied", async () => {
    // 69,000 bars: chunks of 256, 512, ... 32,768 rows (65,280), then the last 3,720: nine probes, and the first
    // chunk's probe that chose not to stream: ten. With 8,192-row chunks it would be fourteen, each probing the
    // stored bars again (a 1M-bar re-load took 40% longer).
    const file = csvFile("many.csv", 0, 23_000);
    await loadOhlcvFrom(url, { files: [file] });
    const { summary, statements } = await loadRecording(url, { files: [file] });
    expect(summary).toMatchObject({ read: 69_000, inserted: 0, alreadyPresent: 69_000, rejected: 0 });
    expect(between(statements).filter((s) => /unnest/.test(s))).toHaveLength(10);
  }, 120_000);

  test("a file whose first chunk is new but whose later bars are stored: the COPY fails on them, the load runs again chunk by chunk, exact", async () => {
    // Only CCC is stored; the file starts with AAA and BBB (new) and ends with CCC's stored bars, one changed.
    const full = csvFile("all.csv", 0, PER_SYMBOL);
    const lines = fs.readFileSync(full, "utf8").trim().split("\n");
    const onlyCcc = path.join(dir, "ccc.csv");
    fs.writeFileSync(onlyCcc, `${[lines[0], ...lines.slice(1).filter((l) => l.includes(",CCC,"))].join("\n")}\n`);
    await loadOhlcvFrom(url, { files: [onlyCcc] });
    const stored = (await barsAsText(url)).filter((l) => l.startsWith("CCC|"));
    const { summary, statements } = await loadRecording(url, { files: [full], chunkRows: 64 });
    expect(summary).toMatchObject({ read: 1200, inserted: 800, alreadyPresent: 400, rejected: 0 });
    expect(copies(statements).length).toBeGreaterThan(1); // the streamed attempt, then the chunked one
    expect(statements.filter((s) => /pg_advisory_xact_lock\(/.test(s))).toHaveLength(1); // the retry ran alone
    const after = await barsAsText(url);
    expect(after).toHaveLength(1200);
    expect(after.filter((l) => l.startsWith("CCC|"))).toEqual(stored);
  });

  test("a conflict while the loader waits for the socket ends the streamed COPY at once (a large file, the first bar taken)", async () => {
    // 150,000 bars, about 11 MB of COPY text: more than the socket holds while the server waits on the lock,
    // so the loader is waiting for the socket when the server's error comes.
    const file = csvFile("large.csv", 0, 50_000);
    const summary = await loadAgainstHeldBar(url, { symbol: "AAA", time: "2024-01-02T00:00:00Z" }, () => loadOhlcvFrom(url, { files: [file] }), "COPY", 1500);
    expect(summary).toMatchObject({ read: 150_000, inserted: 149_999, alreadyPresent: 1, rejected: 0 });
    expect(await countBars(url)).toBe(150_000);
  });

  test("written by batched INSERTs (the PGlite way), a chunk's later batches stay inside its savepoint: a conflict there is counted present", async () => {
    // 1,200 new bars in one chunk are six INSERTs of 200; the other session holds the last bar, in the sixth.
    const file = csvFile("insert-race.csv", 0, PER_SYMBOL);
    const summary = await loadAgainstHeldBar(url, { symbol: "CCC", time: LAST_BAR_TIME }, () => loadOhlcvFrom(url, { files: [file], staging: "insert" }), "INSERT");
    expect(summary).toMatchObject({ read: 1200, inserted: 1199, alreadyPresent: 1, rejected: 0 });
    expect(await countBars(url)).toBe(1200);
  });

  test("a bar another session writes meanwhile fails the streamed COPY; the load runs again alone and counts it present", async () => {
    const file = csvFile("race.csv", 0, PER_SYMBOL);
    // The load's COPY reaches that key and waits for the other transaction, which then commits.
    const { summary, statements } = await loadAgainstHeldBar(url, { symbol: "CCC", time: LAST_BAR_TIME }, () => loadRecording(url, { files: [file] }));
    expect(summary).toMatchObject({ read: 1200, inserted: 1199, alreadyPresent: 1, rejected: 0 });
    // The first attempt streamed; the second, alone, went chunk by chunk.
    expect(statements.filter((s) => s.startsWith("SELECT pg_advisory_xact_lock"))).toEqual([
      "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))",
      "SELECT pg_advisory_xact_lock($1, hashtext($2))",
    ]);
    expect(await countBars(url)).toBe(1200);
    // The other session's values stay: a skip load never overwrites a bar it did not write.
    expect((await barsAsText(url)).filter((b) => b.startsWith("CCC|||1m|2024-01-02T06:39:00"))).toEqual([
      "CCC|||1m|2024-01-02T06:39:00.000000Z|100|100.3|99.7|100.1|7|NULL",
    ]);
  });
});
