/**
 * `npm run bench:load [-- --rows N --repeat R --scale-rows M --out FILE]`: the load benchmark, written to
 * bench/load.md. `tsdb bench load` (cli/bench.ts) calls `runLoadBench`.
 *
 * Everything runs on a native TimescaleDB server (PostgreSQL 15, TimescaleDB preloaded with the container's
 * worker settings: test/fixtures/engines.ts `startTimescaleServer`), in two databases migrated alike with the
 * dev stack's settings: the loader writes into one's `market_data.ohlcv_bars` hypertable, `psql \copy` and the
 * DBA's SQL into the other's, so both targets are the same hypertable (chunks, compression settings,
 * continuous aggregates and their invalidation triggers) in the same state. Background jobs are paused in
 * both, so no policy compresses or refreshes in the middle of a run.
 *
 * Data: N (default 1,000,000) one-minute bars of 50 symbols as CSV, Parquet and SQLite (the runbook's
 * `ohlcv_data`), plus the states they are loaded into, each prepared the same way in both databases:
 * - empty;
 * - earlier bars: N bars of the same symbols, ending at the chunk boundary before the file's first chunk;
 * - the same earlier bars with every chunk compressed;
 * - other series: N bars of 50 other symbols over the file's times (same chunks);
 * - the re-load: the file's bars present, the chunks before the boundary in its middle compressed, and a
 *   re-load file holding every bar again (the last 10 of each symbol revised) and 1% new bars.
 * Into the empty hypertable also the formats issue 22 added (zip, DuckDB, Feather, freqtrade JSON), each written by
 * its own tool from the same bars. Then, when --scale-rows is set (default 10,000,000), one more CSV of that size loaded once by the loader and
 * once by \copy into empty hypertables: how time and peak RSS grow with the file.
 *
 * After every run the target's row count and exact sum(close) are checked against the generator's. Every
 * loader runs in a child process (scripts/bench-load-child.ts, compiled by tsc into tmp/ and run by plain
 * node, as the CLI ships) so its peak RSS is its own.
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { withClient } from "../lib/db";
import type { ConflictPolicy } from "../lib/loader/OhlcvLoader";
import { DEFAULT_CHUNK_ROWS } from "../lib/loader/writePlan";
import { type Bar, type BarSet, type ChildLoadOptions, SYMBOLS, bars } from "./bench-load-child";
import { startTimescaleServer } from "../test/fixtures/engines";
import { schemaRunner } from "../test/fixtures/schema";

const ROOT = path.resolve(__dirname, "..");
const DEV_VARIABLES = { ohlcvChunkInterval: "30 days", tickChunkInterval: "1 day", compressAfter: "90 days", tickRetention: "180 days", caggRefreshInterval: "1 hour" };
/** The dev stack's chunk interval: TimescaleDB aligns time chunks to its multiples since the Unix epoch. */
const CHUNK_MS = 30 * 86_400_000;
/** A chunk boundary (2024-01-18, 658 x 30 days): the base file straddles it, half its bars on each side. */
const SPLIT = Date.UTC(2024, 0, 18);
const run = promisify(execFile);
/** Bars of each symbol the re-load file revises (the last ones of the base) and the share it adds. */
const REVISED_PER_SYMBOL = 10;
const NEW_SHARE = 0.01;

/** What `runLoadBench` measures; every field optional. */
export interface LoadBenchOptions {
  /** Bars in the base files (default 1,000,000). */
  rows?: number;
  /** Interleaved rounds (default 3; the report shows every round and the median). */
  repeat?: number;
  /** Bars of the one-off scaling run (default 10,000,000; 0 leaves it out). */
  scaleRows?: number;
  /** Markdown file to write (default bench/load.md). */
  out?: string;
}

/** Cents as decimal text (what the files hold and sum(close) prints, trailing zeros aside). */
const price = (cents: number | bigint) => {
  const c = BigInt(cents);
  const frac = (c % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${c / 100n}${frac ? `.${frac}` : ""}`;
};
const iso = (t: number) => `${new Date(t).toISOString().slice(0, 19)}Z`;
const line = (b: Bar) => `${iso(b.t)},${b.symbol},1m,${price(b.open)},${price(b.high)},${price(b.low)},${price(b.close)},${b.volume}`;
const HEADER = "timestamp,symbol,timeframe,open,high,low,close,volume";

/** Row count and exact sum(close) in cents: what a correct load leaves. */
interface Tally {
  rows: number;
  cents: bigint;
}
const plus = (a: Tally, b: Tally): Tally => ({ rows: a.rows + b.rows, cents: a.cents + b.cents });
const show = (t: Tally) => `${t.rows} / ${price(t.cents)}`;
const NONE: Tally = { rows: 0, cents: 0n };

async function writeLines(file: string, lines: Iterable<string>): Promise<void> {
  const out = fs.createWriteStream(file);
  let buf = `${HEADER}\n`;
  for (const l of lines) {
    buf += `${l}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise<void>((r) => out.once("drain", () => r()));
      buf = "";
    }
  }
  out.write(buf);
  await new Promise<void>((r) => out.end(() => r()));
}

/** Writes `perSymbol` bars of each symbol of `set` as CSV; returns what loading them adds. */
async function writeCsv(file: string, perSymbol: number, set: BarSet): Promise<Tally> {
  const t = { rows: 0, cents: 0n };
  await writeLines(file, (function* () {
    for (const b of bars(perSymbol, 0, set)) {
      t.rows++;
      t.cents += BigInt(b.close);
      yield line(b);
    }
  })());
  return t;
}

/** The first bar of a file of `perSymbol` bars a symbol that straddles SPLIT. */
const fileStart = (perSymbol: number) => SPLIT - Math.floor(perSymbol / 2) * 60_000;
/** The chunk boundary at or before `t`. */
const chunkFloor = (t: number) => Math.floor(t / CHUNK_MS) * CHUNK_MS;

interface Files {
  csv: string;
  parquet: string;
  sqlite: string;
  /** The same bars as a DuckDB database (table bars), a Feather v2 file, freqtrade JSON (one file a symbol) and a zipped CSV. */
  duckdb: string;
  feather: string;
  json: string[];
  zip: string;
  earlier: string;
  others: string;
  reload: string;
  base: Tally;
  earlierTally: Tally;
  othersTally: Tally;
  reloadSkip: Tally;
  reloadUpdate: Tally;
  reloadRows: number;
  /** Where the earlier bars end (a chunk boundary; every later chunk holds only the file's bars). */
  earlierEnd: number;
  /** Times after which re-load bars are new, and from which they are revised. */
  newAfter: string;
  revisedFrom: string;
}

async function generate(dir: string, n: number): Promise<Files> {
  const perSymbol = Math.ceil(n / SYMBOLS);
  const start = fileStart(perSymbol);
  const earlierEnd = chunkFloor(start);
  const csv = path.join(dir, "bars.csv");
  const base = await writeCsv(csv, perSymbol, { start });
  const earlier = path.join(dir, "earlier.csv");
  const earlierTally = await writeCsv(earlier, perSymbol, { start: earlierEnd - perSymbol * 60_000, seed: 4242 });
  const others = path.join(dir, "others.csv");
  const othersTally = await writeCsv(others, perSymbol, { start, prefix: "OTH", seed: 777 });

  const extra = Math.max(1, Math.round(perSymbol * NEW_SHARE));
  const skip = { rows: 0, cents: 0n };
  const update = { rows: 0, cents: 0n };
  let reloadRows = 0;
  const reload = path.join(dir, "reload.csv");
  await writeLines(reload, (function* () {
    for (const b of bars(perSymbol, extra, { start })) {
      reloadRows++;
      const isNew = b.i >= perSymbol;
      const revised = !isNew && b.i >= perSymbol - REVISED_PER_SYMBOL;
      const close = revised ? b.low : b.close;
      skip.rows++;
      update.rows++;
      skip.cents += BigInt(b.close);
      update.cents += BigInt(close);
      yield line(revised ? { ...b, close, volume: b.volume + 1 } : b);
    }
  })());

  const cols = { ts: [] as bigint[], symbol: [] as string[], open: [] as number[], high: [] as number[], low: [] as number[], close: [] as number[], volume: [] as number[] };
  for (const b of bars(perSymbol, 0, { start })) {
    cols.ts.push(BigInt(b.t) * 1_000_000n);
    cols.symbol.push(b.symbol);
    cols.open.push(b.open / 100);
    cols.high.push(b.high / 100);
    cols.low.push(b.low / 100);
    cols.close.push(b.close / 100);
    cols.volume.push(b.volume);
  }
  const parquet = path.join(dir, "bars.parquet");
  const { parquetWriteFile } = await import("hyparquet-writer");
  parquetWriteFile({
    filename: parquet,
    rowGroupSize: 100_000,
    columnData: [
      { name: "ts_event", data: cols.ts, type: "INT64" },
      { name: "symbol", data: cols.symbol, type: "STRING" },
      { name: "open", data: cols.open, type: "DOUBLE" },
      { name: "high", data: cols.high, type: "DOUBLE" },
      { name: "low", data: cols.low, type: "DOUBLE" },
      { name: "close", data: cols.close, type: "DOUBLE" },
      { name: "volume", data: cols.volume, type: "DOUBLE" },
    ],
  });

  // The runbook's SQLite shape: ohlcv_data (ticker, region, date, timeframe, open .. volume), REAL prices.
  const sqlite = path.join(dir, "bars.db");
  const Database = (await import("better-sqlite3")).default;
  const db = new Database(sqlite);
  db.exec(`PRAGMA journal_mode = OFF;
    CREATE TABLE ohlcv_data (ticker TEXT NOT NULL, region TEXT NOT NULL, date TEXT NOT NULL, timeframe TEXT NOT NULL,
      open REAL, high REAL, low REAL, close REAL, volume INTEGER, PRIMARY KEY (ticker, region, date, timeframe))`);
  const ins = db.prepare("INSERT INTO ohlcv_data VALUES (?, 'US', ?, '1m', ?, ?, ?, ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < cols.ts.length; i++) {
      ins.run(cols.symbol[i], new Date(Number((cols.ts[i] ?? 0n) / 1_000_000n)).toISOString().slice(0, 19).replace("T", " "), cols.open[i], cols.high[i], cols.low[i], cols.close[i], cols.volume[i]);
    }
  })();
  db.close();
  const formats = await writeNewFormats(dir, csv, perSymbol, start, cols);
  return {
    csv, parquet, sqlite, ...formats, earlier, others, reload, base, earlierTally, othersTally, reloadRows, earlierEnd,
    reloadSkip: skip,
    reloadUpdate: update,
    newAfter: new Date(start + (perSymbol - 1) * 60_000).toISOString(),
    revisedFrom: new Date(start + (perSymbol - REVISED_PER_SYMBOL) * 60_000).toISOString(),
  };
}

/** Rows a Feather record batch: pyarrow's write_feather default chunksize (64K), what pandas' to_feather writes. */
const FEATHER_BATCH_ROWS = 65_536;

/** Columns of the base bars, as the Parquet and Feather writers take them. */
interface Columns {
  ts: bigint[];
  symbol: string[];
  open: number[];
  high: number[];
  low: number[];
  close: number[];
  volume: number[];
}

/**
 * The base bars in the formats issue 22 added, each written by its own tool: DuckDB's Node package (a `bars` table
 * read from the CSV by DuckDB), apache-arrow (uncompressed Feather v2 in pandas' record batches), freqtrade's JSON shape (an array of
 * `[date_ms, open, high, low, close, volume]` per `SYMBOL-1m.json`) and zip(1) around the CSV.
 */
async function writeNewFormats(dir: string, csv: string, perSymbol: number, start: number, cols: Columns): Promise<Pick<Files, "duckdb" | "feather" | "json" | "zip">> {
  const duckdb = path.join(dir, "bars.duckdb");
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const instance = await DuckDBInstance.create(duckdb);
  const connection = await instance.connect();
  await connection.run(`CREATE TABLE bars AS SELECT CAST("timestamp" AS TIMESTAMPTZ) AS "timestamp", symbol, timeframe, open, high, low, close, volume FROM read_csv('${csv}', types = {'open': 'DOUBLE', 'high': 'DOUBLE', 'low': 'DOUBLE', 'close': 'DOUBLE', 'volume': 'BIGINT'})`);
  connection.closeSync();
  instance.closeSync();

  const arrow = await import("apache-arrow");
  const feather = path.join(dir, "bars.feather");
  const table = new arrow.Table({
    date: arrow.vectorFromArray(cols.ts.map((t) => Number(t / 1_000_000n)), new arrow.TimestampMillisecond("UTC")),
    symbol: arrow.vectorFromArray(cols.symbol, new arrow.Utf8()),
    open: arrow.makeVector(Float64Array.from(cols.open)),
    high: arrow.makeVector(Float64Array.from(cols.high)),
    low: arrow.makeVector(Float64Array.from(cols.low)),
    close: arrow.makeVector(Float64Array.from(cols.close)),
    volume: arrow.makeVector(Float64Array.from(cols.volume)),
  });
  // In record batches of 65,536 rows, as pandas' to_feather (pyarrow's write_feather chunksize) writes them for
  // freqtrade and Lumibot: tableToIPC of the whole table would write one 1M-row batch, which no such tool writes
  // and which the loader (reading a batch at a time) must hold whole.
  const batches = [];
  for (let from = 0; from < table.numRows; from += FEATHER_BATCH_ROWS) batches.push(...table.slice(from, from + FEATHER_BATCH_ROWS).batches);
  fs.writeFileSync(feather, arrow.tableToIPC(new arrow.Table(batches), "file"));

  const json: string[] = [];
  for (let s = 0; s < SYMBOLS; s++) {
    const from = s * perSymbol;
    const symbol = cols.symbol[from] ?? "";
    const rows: string[] = [];
    for (let i = from; i < from + perSymbol; i++) {
      rows.push(`[${start + (i - from) * 60_000},${cols.open[i]},${cols.high[i]},${cols.low[i]},${cols.close[i]},${cols.volume[i]}]`);
    }
    const file = path.join(dir, `${symbol}-1m.json`);
    fs.writeFileSync(file, `[${rows.join(",")}]`);
    json.push(file);
  }

  const zip = path.join(dir, "bars.zip");
  await run("/usr/bin/zip", ["-q", "-j", zip, csv]);
  return { duckdb, feather, json, zip };
}

/** Where the measured children run from: the project compiled by tsc, under the (git-ignored) tmp/. */
const CHILD_DIST = path.join(ROOT, "tmp/bench-load-dist");

/** Compiles the project for the children (plain `node`, as the CLI ships; tsx would add its own memory). */
async function compileChildren(): Promise<string> {
  fs.rmSync(CHILD_DIST, { recursive: true, force: true });
  await run(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", path.join(ROOT, "tsconfig.json"), "--outDir", CHILD_DIST], { cwd: ROOT });
  return path.join(CHILD_DIST, "scripts/bench-load-child.js");
}

let childScript = "";

function runChild(args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--expose-gc", childScript, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop() ?? "{}")) : reject(new Error(`child ${args.join(" ")} exited ${code}`))));
  });
}

/** Wall time of a shell pipeline (psql, sqlite3), failing with its stderr. */
async function timedShell(script: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  try {
    // Zone-less times (the SQLite file's) mean UTC, as the loader reads them.
    await run("/bin/bash", ["-o", "pipefail", "-c", script], { maxBuffer: 64 << 20, env: { ...process.env, PGTZ: "UTC", TZ: "UTC" } });
  } catch (err) {
    throw new Error(`${script.slice(0, 200)}: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err });
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
const psqlIn = (url: string, command: string) => `/usr/bin/psql -X -q -v ON_ERROR_STOP=1 ${q(url)} -c ${q(command)}`;
const CSV_COLS = "(time, symbol, timeframe, open, high, low, close, volume)";
const BARS = "market_data.ohlcv_bars";
/** `psql \copy` of a CSV file (our header) into the bars hypertable of the database at `url`. */
const copyCsvInto = (url: string, file: string) => psqlIn(url, `\\copy ${BARS} ${CSV_COLS} FROM '${file}' WITH (FORMAT csv, HEADER true)`);

/** The hypertable's state a run starts from. */
type State = "empty" | "earlier" | "earlier-compressed" | "others" | "reload";
/** The two databases: the loader's, and the one \copy and the DBA's SQL write to. */
type Side = "loader" | "copy";

interface Group {
  state: State;
  title: string;
  /** What the hypertable holds before the run. */
  before: (f: Files) => Tally;
}

const GROUPS: Group[] = [
  { state: "empty", title: "Into an empty hypertable", before: () => NONE },
  { state: "earlier", title: "New bars after earlier ones (the everyday append): the same symbols' earlier bars stored", before: (f) => f.earlierTally },
  { state: "earlier-compressed", title: "New bars after earlier ones, every earlier chunk compressed", before: (f) => f.earlierTally },
  { state: "others", title: "New series beside others: 50 other symbols stored over the same times (same chunks)", before: (f) => f.othersTally },
  { state: "reload", title: "Overlapping re-load: every bar present, the chunks before the middle of the file compressed", before: () => NONE },
];

/** One kind of run: measured once per round. */
interface Kind {
  state: State;
  side: Side;
  name: string;
  /** The row (same state) whose median is this one's floor; none for the floors themselves. */
  floor?: string;
  once: () => Promise<{ seconds: number; maxRssMb?: number }>;
  expected: (f: Files) => Tally;
}

interface Sample {
  seconds: number;
  maxRssMb?: number;
  check: string;
  ok: boolean;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const keyOf = (k: { state: State; name: string }) => `${k.state}/${k.name}`;

/** Puts each database into the state a run needs, from whatever state it is in, the same way on both sides. */
class States {
  private readonly current: Partial<Record<Side, State>> = {};
  /** Sides whose last run was undone (`undo`): already in their state, nothing to reset. */
  private readonly undone: Partial<Record<Side, boolean>> = {};
  constructor(readonly urls: Record<Side, string>, private readonly files: Files) {}

  /**
   * One statement on `side`. Putting a state back (undoing a re-load's revisions beside compressed chunks) makes
   * TimescaleDB decompress batches; its 100,000-tuple cap per statement is lifted for these sessions, as the
   * loader lifts it for its own transaction.
   */
  sql(side: Side, text: string, params: unknown[] = []) {
    return withClient(this.urls[side], async (c) => {
      await c.query("SET timescaledb.max_tuples_decompressed_per_dml_transaction = 0");
      return c.query(text, params);
    });
  }

  private async copyIn(side: Side, file: string): Promise<void> {
    await timedShell(copyCsvInto(this.urls[side], file));
  }

  /** Compresses every chunk of the hypertable older than `before` (partial ones again). */
  private async compress(side: Side, before: number): Promise<void> {
    await this.sql(side, `SELECT count(compress_chunk(c.chunk_schema || '.' || c.chunk_name))
        FROM timescaledb_information.chunks c JOIN _timescaledb_catalog.chunk k ON k.schema_name = c.chunk_schema AND k.table_name = c.chunk_name
       WHERE c.hypertable_schema = 'market_data' AND c.hypertable_name = 'ohlcv_bars' AND c.range_end <= $1 AND k.status <> 1`, [new Date(before).toISOString()]);
  }

  private async settle(side: Side, table = BARS): Promise<void> {
    await this.sql(side, `VACUUM ANALYZE ${table}`);
    await this.sql(side, "CHECKPOINT");
  }

  /** Puts `side` into `state` for one run. */
  async prepare(side: Side, state: State): Promise<void> {
    const undone = this.undone[side] === true;
    this.undone[side] = false;
    if (this.current[side] === state) return undone ? undefined : this.reset(side, state);
    await this.restate(side, state);
  }

  /**
   * Undoes a run at once, rather than before the side's next run: rows a run leaves behind get a VACUUM ANALYZE
   * from autovacuum about a minute later (some 3 s of work for 1M bars on this machine), which then lands in the
   * middle of a later run, the other side's as often as not.
   */
  async undo(side: Side): Promise<void> {
    const state = this.current[side];
    if (state) await this.reset(side, state);
    this.undone[side] = true;
  }

  private async restate(side: Side, state: State): Promise<void> {
    const f = this.files;
    await this.sql(side, `TRUNCATE ${BARS}`);
    if (state === "earlier" || state === "earlier-compressed") await this.copyIn(side, f.earlier);
    if (state === "earlier-compressed") await this.compress(side, f.earlierEnd);
    if (state === "others") await this.copyIn(side, f.others);
    if (state === "reload") {
      await this.copyIn(side, f.csv);
      await this.compress(side, SPLIT);
      // The base values of the bars the re-load revises, to undo it between runs.
      await this.sql(side, "TRUNCATE bench.revised");
      await this.sql(side, `INSERT INTO bench.revised SELECT * FROM ${BARS} WHERE time >= $1`, [f.revisedFrom]);
    }
    await this.settle(side);
    this.current[side] = state;
  }

  /** Undoes the last run's load: what it added goes, what it changed is put back. */
  private async reset(side: Side, state: State): Promise<void> {
    const f = this.files;
    if (state === "empty") await this.sql(side, `TRUNCATE ${BARS}`);
    if (state === "earlier" || state === "earlier-compressed") {
      await this.sql(side, `SELECT count(*) FROM drop_chunks('${BARS}', newer_than => $1::timestamptz)`, [new Date(f.earlierEnd).toISOString()]);
    }
    if (state === "others") await this.sql(side, `DELETE FROM ${BARS} WHERE symbol LIKE 'SYM%'`);
    if (state === "reload") {
      await this.sql(side, `DELETE FROM ${BARS} WHERE time > $1`, [f.newAfter]);
      await this.sql(side, `UPDATE ${BARS} t SET close = r.close, volume = r.volume FROM bench.revised r
                  WHERE (t.symbol, t.exchange, t.provider, t.timeframe, t.time) = (r.symbol, r.exchange, r.provider, r.timeframe, r.time)
                    AND t.time >= $1 AND (t.close, t.volume) IS DISTINCT FROM (r.close, r.volume)`, [f.revisedFrom]);
      // The DBA's ON CONFLICT decompresses the batches it probes; back to fully compressed.
      await this.compress(side, SPLIT);
    }
    await this.settle(side);
  }

  async tally(side: Side): Promise<string> {
    const r = await this.sql(side, `SELECT count(*) AS n, coalesce(trim_scale(sum(close)), 0)::text AS s FROM ${BARS}`);
    return `${r.rows[0].n} / ${r.rows[0].s}`;
  }
}

/** The DBA's re-load: \copy into a temp table, then one INSERT ... ON CONFLICT into the hypertable. */
function dbaMerge(dir: string, url: string, reload: string, policy: ConflictPolicy): () => Promise<{ seconds: number }> {
  const file = path.join(dir, `merge-${policy}.sql`);
  // TimescaleDB stops a statement that decompresses more than 100,000 tuples (DO UPDATE over the compressed half
  // does); the DBA lifts the limit for the transaction, as its hint says.
  fs.writeFileSync(file, `BEGIN; SET LOCAL timescaledb.max_tuples_decompressed_per_dml_transaction = 0;
CREATE TEMP TABLE s (LIKE ${BARS} INCLUDING DEFAULTS) ON COMMIT DROP;
\\copy s ${CSV_COLS} FROM '${reload}' WITH (FORMAT csv, HEADER true)
INSERT INTO ${BARS} AS t SELECT * FROM s ON CONFLICT (symbol, exchange, provider, timeframe, time) ${
    policy === "skip"
      ? "DO NOTHING"
      : "DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, adj_close = EXCLUDED.adj_close " +
        "WHERE (t.open, t.high, t.low, t.close, t.volume, t.adj_close) IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume, EXCLUDED.adj_close)"
  };
COMMIT;
`);
  return async () => ({ seconds: await timedShell(`/usr/bin/psql -X -q -v ON_ERROR_STOP=1 ${q(url)} -f ${q(file)}`) });
}

/** Every run, in the order a round runs them: grouped by state, so each state is prepared once a round. */
function kindsFor(urls: Record<Side, string>, f: Files, dir: string): Kind[] {
  const loader = (file: string | string[], policy: ConflictPolicy = "skip", options: ChildLoadOptions = {}) => async () => {
    const r = await runChild(["loader", urls.loader, typeof file === "string" ? file : JSON.stringify(file), policy, JSON.stringify(options)]);
    return { seconds: r.seconds ?? 0, maxRssMb: r.maxRssMb };
  };
  const shell = (script: string) => async () => ({ seconds: await timedShell(script) });
  const sqliteSelect = "SELECT ticker, region, date, timeframe, open, high, low, close, volume FROM ohlcv_data";
  const COPY = "psql \\copy, CSV (floor)";
  const SQLITE = "sqlite3 -csv | psql \\copy (SQLite floor)";
  const ZIP = "unzip -p | psql \\copy (zip floor)";
  const kinds: Kind[] = [];
  for (const g of GROUPS.filter((x) => x.state !== "reload")) {
    const expected = (files: Files) => plus(g.before(files), files.base);
    const add = (k: Omit<Kind, "state" | "expected">) => kinds.push({ ...k, state: g.state, expected });
    add({ side: "copy", name: SQLITE, once: shell(`/usr/bin/sqlite3 -csv ${q(f.sqlite)} ${q(sqliteSelect)} | ${psqlIn(urls.copy, `\\copy ${BARS} (symbol, exchange, time, timeframe, open, high, low, close, volume) FROM STDIN WITH (FORMAT csv)`)}`) });
    add({ side: "loader", name: "loader, SQLite (runbook ohlcv_data)", floor: SQLITE, once: loader(f.sqlite) });
    add({ side: "loader", name: "loader, Parquet", floor: COPY, once: loader(f.parquet, "skip", { timeframe: "1m" }) });
    add({ side: "copy", name: COPY, once: shell(copyCsvInto(urls.copy, f.csv)) });
    add({ side: "loader", name: "loader, CSV", floor: COPY, once: loader(f.csv) });
    if (g.state === "empty") {
      // Issue 22's formats, each against the same bars through \copy (no converter of theirs is installed here:
      // no duckdb or pyarrow command line), and the zip against unzip -p | \copy.
      add({ side: "copy", name: ZIP, once: shell(`/usr/bin/unzip -p ${q(f.zip)} | ${psqlIn(urls.copy, `\\copy ${BARS} ${CSV_COLS} FROM STDIN WITH (FORMAT csv, HEADER true)`)}`) });
      add({ side: "loader", name: "loader, zip (one CSV)", floor: ZIP, once: loader(f.zip) });
      add({ side: "loader", name: "loader, DuckDB (table bars)", floor: COPY, once: loader(f.duckdb) });
      add({ side: "loader", name: "loader, Feather v2 (uncompressed)", floor: COPY, once: loader(f.feather, "skip", { timeframe: "1m" }) });
      add({ side: "loader", name: "loader, freqtrade JSON (50 files)", floor: COPY, once: loader(f.json, "skip", { pathPattern: "{symbol}-{timeframe}.json" }) });
    }
  }
  for (const policy of ["skip", "update"] as const) {
    const floor = `\\copy to a temp table + INSERT ... ON CONFLICT DO ${policy === "skip" ? "NOTHING" : "UPDATE"} (the DBA's SQL)`;
    const expected = (files: Files) => (policy === "skip" ? files.reloadSkip : files.reloadUpdate);
    kinds.push({ state: "reload", side: "copy", name: floor, expected, once: dbaMerge(dir, urls.copy, f.reload, policy) });
    kinds.push({ state: "reload", side: "loader", name: `loader, CSV, --on-conflict ${policy}`, floor, expected, once: loader(f.reload, policy) });
  }
  return kinds;
}

/** Two databases on one native TimescaleDB server, migrated alike, jobs paused; returns their URLs. */
async function twoDatabases(createDatabase: (name: string) => Promise<string>): Promise<Record<Side, string>> {
  const urls = { loader: await createDatabase("market"), copy: await createDatabase("market_copy") };
  for (const url of Object.values(urls)) {
    await schemaRunner(url, { timescaledb: true, variables: DEV_VARIABLES }).up();
    await withClient(url, (c) =>
      // alter_job(scheduled => false) refuses the hierarchical aggregates' refresh policies on TimescaleDB 2.23
      // ("multiple refresh policies are not supported"), so the jobs are unscheduled in the catalog (superuser).
      c.query(`UPDATE _timescaledb_config.bgw_job SET scheduled = false WHERE id >= 1000;
               CREATE SCHEMA bench; CREATE TABLE bench.revised (LIKE ${BARS});`),
    );
  }
  return urls;
}

interface Scale {
  rows: number;
  loaderSeconds: number;
  copySeconds: number;
  maxRssMb: number;
  check: string;
  ok: boolean;
}

/** The one-off scaling run: a CSV of `rows` bars, loaded once by each side into an empty hypertable. */
async function scaleRun(dir: string, rows: number, states: States, urls: Record<Side, string>): Promise<Scale> {
  const perSymbol = Math.ceil(rows / SYMBOLS);
  const file = path.join(dir, "scale.csv");
  const expected = show(await writeCsv(file, perSymbol, { start: fileStart(perSymbol), seed: 99 }));
  await states.prepare("copy", "empty");
  const copySeconds = await timedShell(copyCsvInto(urls.copy, file));
  const copyCheck = await states.tally("copy");
  await states.prepare("copy", "empty");
  await states.prepare("loader", "empty");
  const r = await runChild(["loader", urls.loader, file, "skip"]);
  const check = await states.tally("loader");
  await states.prepare("loader", "empty");
  fs.rmSync(file, { force: true });
  return { rows: perSymbol * SYMBOLS, loaderSeconds: r.seconds ?? NaN, copySeconds, maxRssMb: r.maxRssMb ?? NaN, check, ok: check === expected && copyCheck === expected };
}

/** Runs the benchmark and writes the report; returns its Markdown. */
export async function runLoadBench(o: LoadBenchOptions = {}): Promise<string> {
  const n = o.rows ?? 1_000_000;
  const repeat = Math.max(1, o.repeat ?? 3);
  const scaleRows = o.scaleRows ?? 10_000_000;
  if (!Number.isInteger(n) || n < SYMBOLS * 20) throw new Error(`--rows must be a whole number of at least ${SYMBOLS * 20}, got ${n}.`);
  const loadStart = os.loadavg().map((l) => l.toFixed(1)).join(" / ");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-load-"));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`generating ${n} rows in ${dir}`);
  const files = await generate(dir, n);
  log("compiling the project for the measured children");
  childScript = await compileChildren();
  const sizes = Object.fromEntries((["csv", "parquet", "sqlite", "reload"] as const).map((k) => [k, Math.round(fs.statSync(files[k]).size / 1048576)]));
  const server = await startTimescaleServer();
  const samples = new Map<string, Sample[]>();
  const roundLoads: string[] = [];
  let kinds: Kind[] = [];
  let scale: Scale | undefined;
  let versions = "";
  let compression = "";
  let keyset: Record<string, number> = {};
  try {
    const urls = await twoDatabases((name) => server.createDatabase(name));
    versions = (await withClient(urls.loader, (c) => c.query("SELECT current_setting('server_version') AS pg, extversion FROM pg_extension WHERE extname = 'timescaledb'"))).rows
      .map((r) => `PostgreSQL ${r.pg}, TimescaleDB ${r.extversion}`)[0] ?? "";
    const states = new States(urls, files);
    kinds = kindsFor(urls, files, dir);
    for (let round = 1; round <= repeat; round++) {
      roundLoads.push(os.loadavg()[0]?.toFixed(1) ?? "?");
      for (const k of kinds) {
        log(`round ${round} of ${repeat}: ${k.state}: ${k.name}`);
        await states.prepare(k.side, k.state);
        const r = await k.once();
        const check = await states.tally(k.side);
        await states.undo(k.side);
        const expected = show(k.expected(files));
        const ok = check === expected;
        if (!ok) log(`  ${k.name}: ${check}, expected ${expected}`);
        samples.set(keyOf(k), [...(samples.get(keyOf(k)) ?? []), { ...r, check, ok }]);
        log(`  ${r.seconds.toFixed(2)} s${r.maxRssMb ? `, ${r.maxRssMb} MB` : ""}, ${check}`);
      }
    }
    compression = await compressionOf(states, files);
    keyset = await keysetMemory(n);
    if (scaleRows > 0) {
      log(`scaling run: ${scaleRows} rows`);
      scale = await scaleRun(dir, scaleRows, states, urls);
    }
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(CHILD_DIST, { recursive: true, force: true });
  }
  const md = report({ n, repeat, scaleRows, files, sizes, kinds, samples, roundLoads, loadStart, keyset, scale, versions, compression });
  fs.writeFileSync(o.out ?? path.join(ROOT, "bench/load.md"), md);
  return md;
}

/** The base file's bars compressed chunk by chunk (dev settings: segmentby symbol), from hypertable_columnstore_stats. */
async function compressionOf(states: States, files: Files): Promise<string> {
  await states.prepare("loader", "empty");
  await timedShell(copyCsvInto(states.urls.loader, files.csv));
  await states.sql("loader", `SELECT count(compress_chunk(ch)) FROM show_chunks('${BARS}') ch`);
  const s = (await states.sql("loader", `SELECT total_chunks, number_compressed_chunks AS compressed, before_compression_total_bytes AS before, after_compression_total_bytes AS after
      FROM hypertable_columnstore_stats('${BARS}')`)).rows[0];
  return `${s.compressed}/${s.total_chunks} chunks compressed: ${Math.round(Number(s.before) / 1048576)} MiB -> ${Math.round(Number(s.after) / 1048576)} MiB, ratio ${(Number(s.before) / Number(s.after)).toFixed(1)}x`;
}

/** Memory of the in-file duplicate check alone, measured in a child. */
function keysetMemory(n: number): Promise<Record<string, number>> {
  return runChild(["keyset", "", String(n)]);
}

interface ReportInput {
  n: number;
  repeat: number;
  scaleRows: number;
  files: Files;
  sizes: Record<string, number>;
  kinds: Kind[];
  samples: Map<string, Sample[]>;
  roundLoads: string[];
  loadStart: string;
  keyset: Record<string, number>;
  scale: Scale | undefined;
  versions: string;
  compression: string;
}

/** Issue 22's formats, as their rows are named. */
const NEW_FORMATS = ["loader, zip (one CSV)", "loader, DuckDB (table bars)", "loader, Feather v2 (uncompressed)", "loader, freqtrade JSON (50 files)"];

const HEAD = "| run | seconds, round by round | median s | rows/s | vs floor: paired (medians) | peak RSS MB | rows / sum(close) |\n|---|---|---|---|---|---|---|";

function report(r: ReportInput): string {
  const { n, repeat, files, kinds, samples } = r;
  const med = (k: { state: State; name: string }) => median((samples.get(keyOf(k)) ?? []).map((s) => s.seconds));
  const floorOf = (state: State, name: string) => kinds.find((k) => k.state === state && k.name === name)?.floor ?? "";
  const ratioOf = (state: State, name: string) => med({ state, name: floorOf(state, name) }) / med({ state, name });
  // Each round runs a loader right after (or before) its floor: the ratio of the two is taken round by round, so a
  // minute in which the machine is slow (this 2-core VM's floors ranged 6-12 s in one run) slows both sides of it.
  const pairedOf = (state: State, name: string) => {
    const floor = samples.get(keyOf({ state, name: floorOf(state, name) })) ?? [];
    return median((samples.get(keyOf({ state, name })) ?? []).flatMap((s, i) => (floor[i] ? [floor[i].seconds / s.seconds] : [])));
  };
  const both = (state: State, name: string) => `${pairedOf(state, name).toFixed(2)}x (${ratioOf(state, name).toFixed(2)}x)`;
  const rowLine = (k: Kind) => {
    const runs = samples.get(keyOf(k)) ?? [];
    const m = med(k);
    const rows = k.state === "reload" ? files.reloadRows : n;
    const rss = runs.map((s) => s.maxRssMb).filter((x): x is number => x !== undefined);
    const ok = runs.length > 0 && runs.every((s) => s.ok);
    return `| ${k.name.replace(/\|/g, "\\|")} | ${runs.map((s) => s.seconds.toFixed(2)).join(", ")} | **${m.toFixed(2)}** | ${Math.round(rows / m).toLocaleString("en-US")} | ${k.floor ? both(k.state, k.name) : "1.00x (floor)"} | ${rss.length ? Math.max(...rss) : "-"} | ${[...new Set(runs.map((s) => s.check))].join("; ")} ${ok ? "ok" : "**WRONG**"} |`;
  };
  const sections = GROUPS.map((g) => `## ${g.title}\n\n${HEAD}\n${kinds.filter((k) => k.state === g.state).map(rowLine).join("\n")}`);
  const met = (ok: boolean) => (ok ? "yes" : "**no**");
  const loaderRss = kinds.filter((k) => k.side === "loader").flatMap((k) => (samples.get(keyOf(k)) ?? []).map((s) => s.maxRssMb ?? Infinity));
  const peakRss = loaderRss.length ? Math.max(...loaderRss) : NaN;
  const allOk = kinds.length > 0 && kinds.every((k) => (samples.get(keyOf(k)) ?? []).every((s) => s.ok)) && (r.scale?.ok ?? true);
  const formatGoal = (state: State, label: string) => {
    const names = ["loader, CSV", "loader, Parquet", "loader, SQLite (runbook ohlcv_data)"];
    const paired = names.map((name) => pairedOf(state, name));
    return `| loader >= 0.95x its floor, ${label} (CSV, Parquet, SQLite) | ${names.map((name) => both(state, name)).join(", ")} | ${met(paired.every((x) => x >= 0.95))} |`;
  };
  const skip = pairedOf("reload", "loader, CSV, --on-conflict skip");
  const update = pairedOf("reload", "loader, CSV, --on-conflict update");
  const csvRss = Math.max(...(samples.get(keyOf({ state: "empty", name: "loader, CSV" })) ?? []).map((s) => s.maxRssMb ?? Infinity));
  const goals = [
    formatGoal("empty", "into an empty hypertable"),
    formatGoal("earlier", "after earlier bars"),
    formatGoal("earlier-compressed", "after earlier bars in compressed chunks"),
    formatGoal("others", "beside other series"),
    `| overlapping re-load (1% new, half in compressed chunks) faster than the DBA's SQL: skip / update | ${both("reload", "loader, CSV, --on-conflict skip")} / ${both("reload", "loader, CSV, --on-conflict update")} | ${met(skip > 1 && update > 1)} |`,
    `| (issue 22, reported) its formats against their floors, into an empty hypertable: ${NEW_FORMATS.join(", ")} | ${NEW_FORMATS.map((name) => both("empty", name)).join(", ")} | - |`,
    `| loader peak RSS < 200 MB (worst of every loader run) | ${peakRss} MB | ${met(peakRss < 200)} |`,
    ...(r.scale
      ? [`| peak RSS flat in the file's size: CSV ${n.toLocaleString("en-US")} vs ${r.scale.rows.toLocaleString("en-US")} bars within 10% | ${csvRss} vs ${r.scale.maxRssMb} MB (${((r.scale.maxRssMb / csvRss - 1) * 100).toFixed(0)}%) | ${met(Math.abs(r.scale.maxRssMb / csvRss - 1) <= 0.1 && r.scale.maxRssMb < 200)} |`]
      : []),
    `| every run leaves the expected rows and exact sum(close) | ${allOk ? "all" : "not all"} | ${met(allOk)} |`,
  ];
  const scaleTable = r.scale
    ? `## How a load grows with the file: CSV into an empty hypertable

| bars | loader s (median of ${repeat} / one run) | \\copy s | loader vs \\copy | loader rows/s | loader peak RSS MB | rows / sum(close) |
|---|---|---|---|---|---|---|
| ${n.toLocaleString("en-US")} | ${med({ state: "empty", name: "loader, CSV" }).toFixed(2)} | ${med({ state: "empty", name: "psql \\copy, CSV (floor)" }).toFixed(2)} | ${ratioOf("empty", "loader, CSV").toFixed(2)}x | ${Math.round(n / med({ state: "empty", name: "loader, CSV" })).toLocaleString("en-US")} | ${csvRss} | ${show(files.base)} |
| ${r.scale.rows.toLocaleString("en-US")} | ${r.scale.loaderSeconds.toFixed(2)} | ${r.scale.copySeconds.toFixed(2)} | ${(r.scale.copySeconds / r.scale.loaderSeconds).toFixed(2)}x | ${Math.round(r.scale.rows / r.scale.loaderSeconds).toLocaleString("en-US")} | ${r.scale.maxRssMb} | ${r.scale.check} ${r.scale.ok ? "ok" : "**WRONG**"} |

Query times at 10 million bars are in bench/queries.md.
`
    : "";
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const command = `npm run bench:load${n !== 1_000_000 || repeat !== 3 || r.scaleRows !== 10_000_000 ? ` -- --rows ${n} --repeat ${repeat} --scale-rows ${r.scaleRows}` : ""}`;
  return `# Load benchmark (native TimescaleDB)

Command: \`${command}\` (scripts/bench-load.ts, \`runLoadBench\`), ${new Date().toISOString().slice(0, 16)}Z, on ${os.cpus().length} x ${cpu},
${Math.round(os.totalmem() / 2 ** 30)} GB RAM, Node ${process.version}, ${r.versions} (native, Debian packages; the test fixture's server:
TimescaleDB preloaded with the container's worker settings from lib/tuning.ts, fsync off).
Load average (1 / 5 / 15 min) at the start ${r.loadStart}, at the end ${os.loadavg().map((l) => l.toFixed(1)).join(" / ")}; 1-minute load at the start of each round: ${r.roundLoads.join(", ")}.
This machine has 2 cores: compare rows of the same run, round by round.

Data: ${n.toLocaleString("en-US")} one-minute bars of ${SYMBOLS} symbols (symbol after symbol), files: CSV ${r.sizes.csv} MB, Parquet ${r.sizes.parquet} MB
(hyparquet-writer: nullable columns, DataPageV2, SNAPPY, dictionaries, row groups of 100,000), SQLite ${r.sizes.sqlite} MB (the runbook's \`ohlcv_data\`, REAL prices),
Feather v2 (apache-arrow, uncompressed, record batches of ${FEATHER_BATCH_ROWS.toLocaleString("en-US")} rows as pandas writes them).
Re-load file (${r.sizes.reload} MB): ${files.reloadRows.toLocaleString("en-US")} bars, every base bar again (the last ${REVISED_PER_SYMBOL} of each symbol revised: close := low,
volume + 1) and ${NEW_SHARE * 100}% new bars after them. The base bars straddle a chunk boundary (${new Date(SPLIT).toISOString().slice(0, 10)}): half of them lie in the chunk before it.

Targets: two databases on one server, each migrated to the newest migration with the dev stack's settings (30-day chunks,
columnstore segmentby symbol, the five hierarchical continuous aggregates over the bars), background jobs paused. The loader
writes into one database's \`market_data.ohlcv_bars\`, \\copy and the DBA's SQL into the other's: the same hypertable in the same
state. Each target is put into its section's state once a round (VACUUM ANALYZE, CHECKPOINT); right after each run and its check,
what the run added is removed and what it changed put back (chunks recompressed, VACUUM ANALYZE, CHECKPOINT), so no run shares
the server with autovacuum working through another run's rows. ${repeat} interleaved rounds, each running
every row below once, in this order. Correctness: after every run, the target's row count and exact \`sum(close)\` against the generator's.

${sections.join("\n\n")}

## Goals (issue 19; the loader's earlier goals are met by the same rows)

| goal | this run: paired (medians) | met |
|---|---|---|
${goals.join("\n")}

${scaleTable}
Compression on this server (dev settings: 30-day chunks, segmentby symbol, orderby time DESC), the base file's bars,
every chunk compressed with compress_chunk, sizes from hypertable_columnstore_stats: ${r.compression}.

In-file duplicate check for ${(r.keyset.keys ?? 0).toLocaleString("en-US")} keys (epoch microseconds per series): ${((r.keyset.keysetBytes ?? 0) / 1048576).toFixed(1)} MiB
as the loader keeps them (runs of evenly spaced times per series, lib/loader/keySet.ts: memory grows with the gaps, not the bars), ${((r.keyset.setBytes ?? 0) / 1048576).toFixed(1)} MiB
as \`Set\`s (what the times a series lists out of order are kept in).

Reading the numbers:
- "vs floor" is the floor's seconds over the run's: above 1.00x the loader is faster. "Paired" is the median, over the rounds,
  of that ratio within each round (the run and its floor measured one after the other); "(medians)" divides the two columns'
  medians. The goals are judged on the paired ratio: on this machine a slow minute slows a run and its floor alike, and
  medians taken apart can pair a run from a fast minute with a floor from a slow one.
- The loader validates every row and drops in-file duplicates; \\copy does neither.
- Loaders run in child processes of their own (peak RSS is the child's), compiled by tsc and run by plain \`node\`, as the CLI ships.
- Into a hypertable that holds none of the file's keys (empty, earlier bars, other series) the loader asks the target once
  whether it holds any of the file's first chunk of bars (one probe of at most 256 keys), then writes the whole file through one
  COPY fed while the file is read and checked, as \\copy feeds its one COPY; the loader's client (reading, validating,
  formatting) runs on the machine's second core, beside the server.
- A re-load goes in chunks (256 rows, doubling up to ${DEFAULT_CHUNK_ROWS.toLocaleString("en-US")}): each first asks the target which of its keys it holds (one index
  range scan per series, compressed chunks included), then COPYs only the missing rows (and, with update, UPDATEs only the
  changed ones): the server never rewrites or re-checks the bars it already has. The DBA's SQL writes every row twice
  (temp table, then ON CONFLICT probing the target, which decompresses the compressed batches it must check).
`;
}
