/**
 * `npm run bench:load [-- --rows N --repeat R --out FILE]`: the load benchmark, written to
 * bench/load.md. `tsdb bench load` (cli/bench.ts) calls `runLoadBench`.
 *
 * Generates N (default 1,000,000) one-minute OHLCV bars of 50 symbols as CSV, Parquet and SQLite (the
 * runbook's `ohlcv_data` table), plus a re-load file: every bar again, the last 10 of each symbol revised
 * (close := low, volume + 1), and 1% new bars after them. Starts an embedded PostgreSQL 17
 * (test/fixtures/engines.ts) with the real migrations and runs, side by side in `repeat` interleaved rounds:
 *
 * - into an empty table: `psql \copy` of the CSV (the floor; once more into a copy of the table with
 *   0011's `time DESC` index), `sqlite3 -csv | psql \copy` (the SQLite floor), our loader from CSV, Parquet
 *   and SQLite, pgloader from the CSV and from SQLite (`using float-to-string`), and a seed-style multi-row
 *   INSERT (psycopg2 execute_values: literal VALUES, 1,000 rows a statement);
 * - the re-load, with every base bar present: `\copy` into a temp table + INSERT ... ON CONFLICT DO NOTHING
 *   (and DO UPDATE ... WHERE IS DISTINCT FROM), our loader with --on-conflict skip and update, and the
 *   multi-row INSERT with ON CONFLICT DO NOTHING.
 *
 * After every run the target's row count and exact sum(close) are checked against the generator's (the
 * correctness column). Every loader runs in a child process (scripts/bench-load-child.ts, compiled by tsc into
 * tmp/ and run by plain node, as the CLI ships) so its peak RSS is its own. Then, as before, the duplicate
 * check's memory and the compression ratio on the TimescaleDB engine.
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { withClient } from "../lib/db";
import { type ConflictPolicy, loadOhlcvFrom } from "../lib/loader/OhlcvLoader";
import { type Bar, SYMBOLS, bars } from "./bench-load-child";
import { startPostgresServer, startTimescaleEngine } from "../test/fixtures/engines";
import { schemaRunner } from "../test/fixtures/schema";

const ROOT = path.resolve(__dirname, "..");
const DEV_VARIABLES = { ohlcvChunkInterval: "30 days", tickChunkInterval: "1 day", compressAfter: "90 days", tickRetention: "180 days", caggRefreshInterval: "1 hour" };
const run = promisify(execFile);
const START = Date.UTC(2024, 0, 2);
/** Bars of each symbol the re-load file revises (the last ones of the base) and the share it adds. */
const REVISED_PER_SYMBOL = 10;
const NEW_SHARE = 0.01;

/** What `runLoadBench` measures; every field optional. */
export interface LoadBenchOptions {
  /** Bars in the base files (default 1,000,000). */
  rows?: number;
  /** Interleaved rounds (default 3; the report shows every round and the median). */
  repeat?: number;
  /** Markdown file to write (default bench/load.md). */
  out?: string;
  /** Also run pgloader and the multi-row INSERT peers (default true; they take most of a round). */
  peers?: boolean;
}

/** Cents as decimal text (what the files hold and sum(close) prints, trailing zeros aside). */
const price = (cents: number | bigint) => {
  const c = BigInt(cents);
  const frac = (c % 100n).toString().padStart(2, "0").replace(/0+$/, "");
  return `${c / 100n}${frac ? `.${frac}` : ""}`;
};
const iso = (t: number) => `${new Date(t).toISOString().slice(0, 19)}Z`;

/** Row count and exact sum(close) a correct load leaves, as `count / sum`. */
type Expected = string;

interface Files {
  csv: string;
  parquet: string;
  sqlite: string;
  reload: string;
  /** Times after which re-load bars are new, from which they are revised. */
  newAfter: string;
  revisedFrom: string;
  expected: { base: Expected; reloadSkip: Expected; reloadUpdate: Expected };
  reloadRows: number;
}

async function writeLines(file: string, header: string, lines: Iterable<string>): Promise<void> {
  const out = fs.createWriteStream(file);
  let buf = `${header}\n`;
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

async function generate(dir: string, n: number): Promise<Files> {
  const perSymbol = Math.ceil(n / SYMBOLS);
  const extra = Math.max(1, Math.round(perSymbol * NEW_SHARE));
  const header = "timestamp,symbol,timeframe,open,high,low,close,volume";
  const line = (b: Bar) => `${iso(b.t)},${b.symbol},1m,${price(b.open)},${price(b.high)},${price(b.low)},${price(b.close)},${b.volume}`;
  const csv = path.join(dir, "bars.csv");
  await writeLines(csv, header, (function* () {
    for (const b of bars(perSymbol)) yield line(b);
  })());
  let baseSum = 0n;
  let skipSum = 0n;
  let updateSum = 0n;
  let reloadRows = 0;
  const reload = path.join(dir, "reload.csv");
  await writeLines(reload, header, (function* () {
    for (const b of bars(perSymbol, extra)) {
      reloadRows++;
      const isNew = b.i >= perSymbol;
      const revised = !isNew && b.i >= perSymbol - REVISED_PER_SYMBOL;
      if (!isNew) baseSum += BigInt(b.close);
      const close = revised ? b.low : b.close;
      skipSum += BigInt(isNew ? close : b.close);
      updateSum += BigInt(close);
      yield line(revised ? { ...b, close, volume: b.volume + 1 } : b);
    }
  })());
  const baseRows = perSymbol * SYMBOLS;
  const reloadCount = (perSymbol + extra) * SYMBOLS;

  const cols = { ts: [] as bigint[], symbol: [] as string[], open: [] as number[], high: [] as number[], low: [] as number[], close: [] as number[], volume: [] as number[] };
  for (const b of bars(perSymbol)) {
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
  return {
    csv,
    parquet,
    sqlite,
    reload,
    reloadRows,
    newAfter: new Date(START + (perSymbol - 1) * 60_000).toISOString(),
    revisedFrom: new Date(START + (perSymbol - REVISED_PER_SYMBOL) * 60_000).toISOString(),
    expected: {
      base: `${baseRows} / ${price(baseSum)}`,
      reloadSkip: `${reloadCount} / ${price(skipSum)}`,
      reloadUpdate: `${reloadCount} / ${price(updateSum)}`,
    },
  };
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

function runChild(args: string[], nodeFlags: string[] = []): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--expose-gc", ...nodeFlags, childScript, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop() ?? "{}")) : reject(new Error(`child ${args.join(" ")} exited ${code}`))));
  });
}

/** Wall time of a shell pipeline (psql, sqlite3, pgloader), failing with its stderr. */
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

/** One kind of run: its rows of figures, measured once per round. */
interface Kind {
  group: "empty" | "reload";
  name: string;
  /** The row whose median is this one's floor (ratio column); none for the floors themselves. */
  floor?: string;
  /** Runs once, returns seconds and (loaders) peak RSS; the table is checked afterwards. */
  once: () => Promise<{ seconds: number; maxRssMb?: number }>;
  table: string;
  expected: keyof Files["expected"];
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

/** Runs the benchmark and writes the report; returns its Markdown. */
export async function runLoadBench(o: LoadBenchOptions = {}): Promise<string> {
  const n = o.rows ?? 1_000_000;
  const repeat = Math.max(1, o.repeat ?? 3);
  const peers = o.peers ?? true;
  if (!Number.isInteger(n) || n < SYMBOLS * 20) throw new Error(`--rows must be a whole number of at least ${SYMBOLS * 20}, got ${n}.`);
  const loadStart = os.loadavg().map((l) => l.toFixed(1)).join(" / ");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-load-"));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`generating ${n} rows in ${dir}`);
  const files = await generate(dir, n);
  log("compiling the project for the measured children");
  childScript = await compileChildren();
  const sizes = Object.fromEntries((["csv", "parquet", "sqlite", "reload"] as const).map((k) => [k, Math.round(fs.statSync(files[k]).size / 1048576)]));
  const pg = await startPostgresServer();
  const samples = new Map<string, Sample[]>();
  const roundLoads: string[] = [];
  const kinds: Kind[] = [];
  let keyset: Record<string, number> = {};
  let compression = "";
  let pgloaderNote = "";
  try {
    await schemaRunner(pg.url, { timescaledb: false }).up({ to: 11 });
    await withClient(pg.url, (c) => c.query("CREATE SCHEMA bench; CREATE TABLE bench.copy_target_desc (LIKE market_data.ohlcv_bars INCLUDING ALL);"));
    await schemaRunner(pg.url, { timescaledb: false }).up();
    // The runbook's column names for pgloader's SQLite load (it writes each source table to the same name);
    // the same key and index as ohlcv_bars.
    await withClient(pg.url, (c) =>
      c.query(`CREATE TABLE bench.copy_target (LIKE market_data.ohlcv_bars INCLUDING ALL);
        CREATE TABLE bench.insert_target (LIKE market_data.ohlcv_bars INCLUDING ALL);
        CREATE TABLE bench.pgloader_target (LIKE market_data.ohlcv_bars INCLUDING ALL);
        CREATE TABLE public.ohlcv_data (ticker text NOT NULL, region text NOT NULL, date timestamptz NOT NULL, timeframe text NOT NULL,
          open numeric NOT NULL, high numeric NOT NULL, low numeric NOT NULL, close numeric NOT NULL, volume numeric NOT NULL DEFAULT 0,
          PRIMARY KEY (ticker, region, timeframe, date));
        CREATE INDEX ohlcv_data_ticker_timeframe_date_idx ON public.ohlcv_data (ticker, timeframe, date);
        CREATE TABLE bench.revised (LIKE market_data.ohlcv_bars);`),
    );
    const sql = (text: string, params: unknown[] = []) => withClient(pg.url, (c) => c.query(text, params));
    const empty = async (table: string) => {
      await sql(`TRUNCATE ${table}`);
      await sql("CHECKPOINT");
    };
    // Back to the base bars (the re-load's new bars deleted, its revisions undone), vacuumed as a table that
    // has been there a day would be.
    const rebase = async (table: string) => {
      await sql(`DELETE FROM ${table} WHERE time > $1`, [files.newAfter]);
      await sql(`UPDATE ${table} t SET close = r.close, volume = r.volume FROM bench.revised r
                  WHERE (t.symbol, t.exchange, t.provider, t.timeframe, t.time) = (r.symbol, r.exchange, r.provider, r.timeframe, r.time)
                    AND (t.close, t.volume) IS DISTINCT FROM (r.close, r.volume)`);
      await sql(`VACUUM ANALYZE ${table}`);
      await sql("CHECKPOINT");
    };
    const { url } = pg;
    const psql = (command: string) => `/usr/bin/psql -X -q -v ON_ERROR_STOP=1 ${q(url)} -c ${q(command)}`;
    const csvCols = "(time, symbol, timeframe, open, high, low, close, volume)";
    const loader = (file: string, policy: ConflictPolicy = "skip") => async () => {
      const r = await runChild(["loader", url, file, policy]);
      return { seconds: r.seconds ?? 0, maxRssMb: r.maxRssMb };
    };
    const shell = (script: string) => async () => ({ seconds: await timedShell(script) });
    const add = (k: Omit<Kind, "once"> & { once: Kind["once"]; before?: () => Promise<void> }) =>
      kinds.push({ ...k, once: async () => {
        await k.before?.();
        return k.once();
      } });

    // Into an empty table. SQLite first and CSV last, so the loader's table and copy_target hold the base
    // bars from the CSV when the re-loads start.
    const sqliteSelect = "SELECT ticker, region, date, timeframe, open, high, low, close, volume FROM ohlcv_data";
    add({ group: "empty", name: "sqlite3 -csv | psql \\copy (SQLite floor)", table: "bench.copy_target", expected: "base",
      before: () => empty("bench.copy_target"),
      once: shell(`/usr/bin/sqlite3 -csv ${q(files.sqlite)} ${q(sqliteSelect)} | ${psql(`\\copy bench.copy_target (symbol, exchange, time, timeframe, open, high, low, close, volume) FROM STDIN WITH (FORMAT csv)`)}`) });
    add({ group: "empty", name: "loader, SQLite (runbook ohlcv_data)", floor: "sqlite3 -csv | psql \\copy (SQLite floor)", table: "market_data.ohlcv_bars", expected: "base",
      before: () => empty("market_data.ohlcv_bars"), once: loader(files.sqlite) });
    add({ group: "empty", name: "psql \\copy, CSV, into 0011's time DESC index", floor: "psql \\copy, CSV (floor)", table: "bench.copy_target_desc", expected: "base",
      before: () => empty("bench.copy_target_desc"),
      once: shell(psql(`\\copy bench.copy_target_desc ${csvCols} FROM '${files.csv}' WITH (FORMAT csv, HEADER true)`)) });
    add({ group: "empty", name: "loader, Parquet", floor: "psql \\copy, CSV (floor)", table: "market_data.ohlcv_bars", expected: "base",
      before: () => empty("market_data.ohlcv_bars"), once: loader(files.parquet) });
    add({ group: "empty", name: "psql \\copy, CSV (floor)", table: "bench.copy_target", expected: "base",
      before: () => empty("bench.copy_target"),
      once: shell(psql(`\\copy bench.copy_target ${csvCols} FROM '${files.csv}' WITH (FORMAT csv, HEADER true)`)) });
    add({ group: "empty", name: "loader, CSV", floor: "psql \\copy, CSV (floor)", table: "market_data.ohlcv_bars", expected: "base",
      before: () => empty("market_data.ohlcv_bars"), once: loader(files.csv) });
    if (peers) {
      const pgloaderCsv = path.join(dir, "csv.load");
      fs.writeFileSync(pgloaderCsv, `LOAD CSV FROM '${files.csv}' (time, symbol, timeframe, open, high, low, close, volume)
  INTO ${url}
  TARGET TABLE bench.pgloader_target
  TARGET COLUMNS (time, symbol, timeframe, open, high, low, close, volume)
  WITH skip header = 1, fields terminated by ',';
`);
      const pgloaderSqlite = path.join(dir, "sqlite.load");
      fs.writeFileSync(pgloaderSqlite, `LOAD DATABASE FROM sqlite://${files.sqlite} INTO ${url}
  WITH data only, create no tables, create no indexes, reset no sequences
  CAST type real to numeric using float-to-string
  INCLUDING ONLY TABLE NAMES LIKE 'ohlcv_data';
`);
      add({ group: "empty", name: "pgloader, CSV", floor: "psql \\copy, CSV (floor)", table: "bench.pgloader_target", expected: "base",
        before: () => empty("bench.pgloader_target"), once: shell(`/usr/bin/pgloader --quiet ${q(pgloaderCsv)}`) });
      add({ group: "empty", name: "pgloader, SQLite (using float-to-string)", floor: "sqlite3 -csv | psql \\copy (SQLite floor)", table: "public.ohlcv_data", expected: "base",
        before: () => empty("public.ohlcv_data"), once: shell(`/usr/bin/pgloader --quiet ${q(pgloaderSqlite)}`) });
      add({ group: "empty", name: "multi-row INSERT (execute_values style, 1,000 rows a statement)", floor: "psql \\copy, CSV (floor)", table: "bench.insert_target", expected: "base",
        before: () => empty("bench.insert_target"), once: async () => {
          const r = await runChild(["insert", url, files.csv]);
          return { seconds: r.seconds ?? 0, maxRssMb: r.maxRssMb };
        } });
    }
    // The re-load: every base bar present, the last ones revised, 1% new.
    const mergeSql = (policy: ConflictPolicy) =>
      `BEGIN; CREATE TEMP TABLE s (LIKE bench.copy_target INCLUDING DEFAULTS) ON COMMIT DROP;
       \\copy s ${csvCols} FROM '${files.reload}' WITH (FORMAT csv, HEADER true)
       INSERT INTO bench.copy_target AS t SELECT * FROM s ON CONFLICT (symbol, exchange, provider, timeframe, time) ${
         policy === "skip"
           ? "DO NOTHING"
           : "DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, adj_close = EXCLUDED.adj_close " +
             "WHERE (t.open, t.high, t.low, t.close, t.volume, t.adj_close) IS DISTINCT FROM (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume, EXCLUDED.adj_close)"
       };
       COMMIT;`;
    const mergeScript = (policy: ConflictPolicy) => {
      const f = path.join(dir, `merge-${policy}.sql`);
      fs.writeFileSync(f, mergeSql(policy));
      return shell(`/usr/bin/psql -X -q -v ON_ERROR_STOP=1 ${q(url)} -f ${q(f)}`);
    };
    for (const policy of ["skip", "update"] as const) {
      const floor = `\\copy to a temp table + INSERT ... ON CONFLICT DO ${policy === "skip" ? "NOTHING" : "UPDATE"} (floor)`;
      const expected = policy === "skip" ? "reloadSkip" : "reloadUpdate";
      add({ group: "reload", name: floor, table: "bench.copy_target", expected, before: () => rebase("bench.copy_target"), once: mergeScript(policy) });
      add({ group: "reload", name: `loader, CSV, --on-conflict ${policy}`, floor, table: "market_data.ohlcv_bars", expected,
        before: () => rebase("market_data.ohlcv_bars"), once: loader(files.reload, policy) });
    }
    if (peers) {
      add({ group: "reload", name: "multi-row INSERT ... ON CONFLICT DO NOTHING (execute_values style)", floor: "\\copy to a temp table + INSERT ... ON CONFLICT DO NOTHING (floor)",
        table: "bench.insert_target", expected: "reloadSkip", before: () => rebase("bench.insert_target"), once: async () => {
          const r = await runChild(["insert", url, files.reload]);
          return { seconds: r.seconds ?? 0, maxRssMb: r.maxRssMb };
        } });
    }

    const checkOf = async (table: string) => {
      const r = await sql(`SELECT count(*) AS n, coalesce(trim_scale(sum(close)), 0)::text AS s FROM ${table}`);
      return `${r.rows[0].n} / ${r.rows[0].s}`;
    };
    for (let round = 1; round <= repeat; round++) {
      roundLoads.push(os.loadavg()[0]?.toFixed(1) ?? "?");
      for (const k of kinds) {
        log(`round ${round} of ${repeat}: ${k.name}`);
        if (round === 1 && k.group === "reload" && k.table === "bench.copy_target") {
          // The base values of the bars the re-load revises, to undo it between runs.
          await sql("TRUNCATE bench.revised");
          await sql(`INSERT INTO bench.revised SELECT * FROM bench.copy_target WHERE time >= $1`, [files.revisedFrom]);
        }
        const r = await k.once();
        const check = await checkOf(k.table);
        const ok = check === files.expected[k.expected];
        if (!ok) log(`  ${k.name}: ${check}, expected ${files.expected[k.expected]}`);
        samples.set(k.name, [...(samples.get(k.name) ?? []), { ...r, check, ok }]);
        log(`  ${r.seconds.toFixed(2)} s${r.maxRssMb ? `, ${r.maxRssMb} MB` : ""}, ${check}`);
      }
    }
    keyset = await runChild(["keyset", "", String(n)]);
  } finally {
    await pg.stop();
  }
  if (peers) pgloaderNote = (await run("/usr/bin/pgloader", ["--version"])).stdout.split("\n")[0] ?? "";

  log("compression of the sample on TimescaleDB");
  const tsdb = await startTimescaleEngine();
  try {
    // The dev stack's settings (30-day chunks for bars).
    await schemaRunner(tsdb.url, { timescaledb: true, variables: DEV_VARIABLES }).up();
    const ratio = () => withClient(tsdb.url, async (c) => {
      await c.query("SELECT compress_chunk(ch) FROM show_chunks('market_data.ohlcv_bars') ch");
      const r = await c.query(
        `SELECT total_chunks, number_compressed_chunks, before_compression_total_bytes AS before, after_compression_total_bytes AS after
           FROM hypertable_columnstore_stats('market_data.ohlcv_bars')`,
      );
      const s = r.rows[0];
      return `${s.number_compressed_chunks}/${s.total_chunks} chunks compressed: ${Math.round(Number(s.before) / 1024)} KiB -> ${Math.round(Number(s.after) / 1024)} KiB, ratio ${(Number(s.before) / Number(s.after)).toFixed(1)}x`;
    });
    await loadOhlcvFrom(tsdb.url, { files: [path.join(ROOT, "data/sample/csv/ohlcv.csv")] });
    compression = `- the bundled sample (5,118 bars): ${await ratio()}`;
    await withClient(tsdb.url, (c) => c.query("TRUNCATE market_data.ohlcv_bars"));
    // A denser set: 2,000 minute bars of each of the 50 symbols.
    const head = path.join(dir, "head.csv");
    const lines = fs.readFileSync(files.csv, "utf8").split("\n");
    const perSymbol = Math.ceil(n / SYMBOLS);
    fs.writeFileSync(head, [lines[0], ...lines.slice(1).filter((l, i) => l && i % perSymbol < 2000)].join("\n"));
    await loadOhlcvFrom(tsdb.url, { files: [head] });
    compression += `\n- 100,000 bars (2,000 minute bars x 50 symbols): ${await ratio()}`;
  } finally {
    await tsdb.stop();
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(CHILD_DIST, { recursive: true, force: true });

  const md = report({ n, repeat, peers, files, sizes, kinds, samples, roundLoads, loadStart, keyset, compression, pgloaderNote });
  const outFile = o.out ?? path.join(ROOT, "bench/load.md");
  fs.writeFileSync(outFile, md);
  return md;
}

function report(r: {
  n: number; repeat: number; peers: boolean; files: Files; sizes: Record<string, number>; kinds: Kind[]; samples: Map<string, Sample[]>;
  roundLoads: string[]; loadStart: string; keyset: Record<string, number>; compression: string; pgloaderNote: string;
}): string {
  const { n, repeat, files, kinds, samples } = r;
  const med = (name: string) => median((samples.get(name) ?? []).map((s) => s.seconds));
  const rowsOf = (k: Kind) => (k.group === "empty" ? n : files.reloadRows);
  const line = (k: Kind) => {
    const runs = samples.get(k.name) ?? [];
    const m = med(k.name);
    const ratio = k.floor ? `${(med(k.floor) / m).toFixed(2)}x` : "1.00x (floor)";
    const rss = runs.map((s) => s.maxRssMb).filter((x): x is number => x !== undefined);
    const checks = [...new Set(runs.map((s) => s.check))];
    const ok = runs.length > 0 && runs.every((s) => s.ok);
    return `| ${k.name.replace(/\|/g, "\\|")} | ${runs.map((s) => s.seconds.toFixed(2)).join(", ")} | **${m.toFixed(2)}** | ${Math.round(rowsOf(k) / m).toLocaleString("en-US")} | ${ratio} | ${rss.length ? Math.max(...rss) : "-"} | ${checks.join("; ")} ${ok ? "ok" : "**WRONG**"} |`;
  };
  const head = "| run | seconds, round by round | median s | rows/s | vs floor | peak RSS MB | rows / sum(close) |\n|---|---|---|---|---|---|---|";
  const ratioOf = (name: string) => {
    const k = kinds.find((x) => x.name === name);
    return k?.floor ? med(k.floor) / med(name) : NaN;
  };
  const met = (ok: boolean) => (ok ? "yes" : "**no**");
  const loaders = kinds.filter((k) => k.name.startsWith("loader"));
  const peakRss = Math.max(...loaders.flatMap((k) => (samples.get(k.name) ?? []).map((s) => s.maxRssMb ?? Infinity)));
  const allOk = kinds.every((k) => (samples.get(k.name) ?? []).every((s) => s.ok));
  const g = (name: string) => ratioOf(name);
  const goals = [
    `| 1. re-load (1% new) at least as fast as \\copy + ON CONFLICT DO NOTHING | ${g("loader, CSV, --on-conflict skip").toFixed(2)}x | ${met(g("loader, CSV, --on-conflict skip") >= 1)} |`,
    `| 1. (reported) the same with --on-conflict update vs DO UPDATE ... WHERE IS DISTINCT FROM | ${g("loader, CSV, --on-conflict update").toFixed(2)}x | ${met(g("loader, CSV, --on-conflict update") >= 1)} |`,
    `| 2. SQLite >= 0.95x its floor | ${g("loader, SQLite (runbook ohlcv_data)").toFixed(2)}x | ${met(g("loader, SQLite (runbook ohlcv_data)") >= 0.95)} |`,
    `| 2. CSV >= 0.95x \\copy | ${g("loader, CSV").toFixed(2)}x | ${met(g("loader, CSV") >= 0.95)} |`,
    `| 2. Parquet >= 0.95x \\copy | ${g("loader, Parquet").toFixed(2)}x | ${met(g("loader, Parquet") >= 0.95)} |`,
    `| 3. loader peak RSS < 200 MB, default heap (worst of every loader run) | ${peakRss} MB | ${met(peakRss < 200)} |`,
    `| 5. every run leaves the expected rows and exact sum(close) | ${allOk ? "all" : "not all"} | ${met(allOk)} |`,
    // The loader's first goals, which every later change must still meet.
    `| CSV loader with validation and dedup >= 0.8x \\copy | ${g("loader, CSV").toFixed(2)}x | ${met(g("loader, CSV") >= 0.8)} |`,
    `| ${n.toLocaleString("en-US")} rows from CSV in under ${(10 * n) / 1_000_000} s | ${med("loader, CSV").toFixed(2)} s | ${met(med("loader, CSV") < (10 * n) / 1_000_000)} |`,
    `| loader peak RSS under 300 MB | ${peakRss} MB | ${met(peakRss < 300)} |`,
    `| Parquet and SQLite sources >= 0.6x \\copy | ${g("loader, Parquet").toFixed(2)}x, ${g("loader, SQLite (runbook ohlcv_data)").toFixed(2)}x | ${met(Math.min(g("loader, Parquet"), g("loader, SQLite (runbook ohlcv_data)")) >= 0.6)} |`,
  ];
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const command = `npm run bench:load${n !== 1_000_000 || repeat !== 3 ? ` -- --rows ${n} --repeat ${repeat}` : ""}${r.peers ? "" : " --no-peers"}`;
  return `# Load benchmark

Command: \`${command}\` (scripts/bench-load.ts, \`runLoadBench\`), ${new Date().toISOString().slice(0, 16)}Z, on ${os.cpus().length} x ${cpu},
${Math.round(os.totalmem() / 2 ** 30)} GB RAM, Node ${process.version}, embedded PostgreSQL 17 (fsync off, as the test fixture starts it)${r.pgloaderNote ? `, ${r.pgloaderNote}` : ""}.
Load average (1 / 5 / 15 min) at the start ${r.loadStart}, at the end ${os.loadavg().map((l) => l.toFixed(1)).join(" / ")}; 1-minute load at the start of each round: ${r.roundLoads.join(", ")}.
This machine has 2 cores shared with other work: compare rows of the same run, round by round.

Data: ${n.toLocaleString("en-US")} one-minute bars of ${SYMBOLS} symbols (symbol after symbol), files: CSV ${r.sizes.csv} MB, Parquet ${r.sizes.parquet} MB
(hyparquet-writer: nullable columns, DataPageV2, SNAPPY, dictionaries, row groups of 100,000), SQLite ${r.sizes.sqlite} MB (the runbook's \`ohlcv_data\`, REAL prices). Re-load file (${r.sizes.reload} MB): ${files.reloadRows.toLocaleString("en-US")} bars, every base bar again
(the last ${REVISED_PER_SYMBOL} of each symbol revised: close := low, volume + 1) and ${NEW_SHARE * 100}% new bars after them.
Targets: \`market_data.ohlcv_bars\` after every migration (0012: ascending \`(symbol, timeframe, time)\` index) for the loader, tables
\`LIKE ... INCLUDING ALL\` of it for \\copy, pgloader's CSV and the INSERTs (same key, index and checks), and for pgloader's SQLite load
\`public.ohlcv_data\` with the runbook's column names and the same key and index. ${repeat} interleaved rounds, each running every row below once, in this order.
Correctness: after every run, the target's row count and exact \`sum(close)\`; expected ${files.expected.base} after a load into an empty table,
${files.expected.reloadSkip} after a re-load that keeps present bars, ${files.expected.reloadUpdate} after one that updates them.

## Into an empty table (${n.toLocaleString("en-US")} bars)

${head}
${kinds.filter((k) => k.group === "empty").map(line).join("\n")}

## Re-load: ${files.reloadRows.toLocaleString("en-US")} bars, ${n.toLocaleString("en-US")} already present

The table is put back to the base bars before each run (new bars deleted, revisions undone, VACUUM ANALYZE).

${head}
${kinds.filter((k) => k.group === "reload").map(line).join("\n")}

## Goals (numbered: this run's; unnumbered: the loader's first goals, which every change must still meet)

| goal | this run (median vs its floor) | met |
|---|---|---|
${goals.join("\n")}

Goal 4 (query latencies after 0012's index change, before and after in one run) is in bench/queries.md.

In-file duplicate check for ${(r.keyset.keys ?? 0).toLocaleString("en-US")} keys (epoch microseconds per series): ${((r.keyset.keysetBytes ?? 0) / 1048576).toFixed(1)} MiB
as the loader keeps them for time-ordered sources (a sorted Float64Array per series), ${((r.keyset.setBytes ?? 0) / 1048576).toFixed(1)} MiB as \`Set\`s (what a
series switches to when its rows are out of order).

Compression on the TimescaleDB engine (PGlite build, TimescaleDB 2.23; dev stack settings: 30-day chunks, segmentby
symbol), every chunk compressed with compress_chunk, sizes from hypertable_columnstore_stats:
${r.compression}

Reading the numbers:
- The loader validates every row and drops in-file duplicates; \\copy, pgloader and the INSERTs do neither.
- Loaders and INSERTs run in child processes of their own (peak RSS is the child's), compiled by tsc and run
  by plain \`node\`, as the CLI ships; under tsx the same loads take about 40 MB more (the transpiler).
- Into an empty table the loader writes a file through one COPY, fed while the file is read and checked (as
  \\copy feeds its one COPY), so the server does the same work for both; the loader's client (reading,
  validating, formatting: about 3 s of CPU per million rows) runs on the machine's second core, shared with the
  server's background work and other jobs, where psql's client does next to nothing.
- A re-load goes in chunks (256 rows, doubling up to 32,768): each first asks the target which of its keys it
  holds (one index range scan per series), then COPYs only the missing rows straight into the target while the
  client reads and checks the next ones (docs/LOADING.md). It sends only the new (and, with update, the
  changed) bars: the server never writes or probes the bars it already has.
- The floor for a re-load writes every row twice (temp table, then ON CONFLICT probing the target).
`;
}
