/**
 * `tsdb bench load [--rows N] [--repeat N] [--out FILE]` (npm run bench:load): the load benchmark of issue 4,
 * written to bench/load.md.
 *
 * Generates N (default 1,000,000) OHLCV rows as CSV, Parquet and SQLite in a temp dir, starts an embedded
 * PostgreSQL 17 (test/fixtures/engines.ts) with the real migrations, and in one run compares:
 * `psql \copy` of the CSV into an identical table (LIKE ... INCLUDING ALL: same keys, index and checks), our
 * loader (validation and dedup on, into market_data.ohlcv_bars) from each format, and a multi-row INSERT
 * loader (batches of 1000, like the seeds' scripts). \copy and the three loaders run `--repeat` (default 3)
 * interleaved rounds and report the median. Each loader runs in a child process so its peak RSS is
 * its own. Then the compression ratio of the bundled sample on the TimescaleDB engine.
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs, promisify } from "node:util";
import { withClient } from "../lib/db";
import { TimeKeySet } from "../lib/loader/keySet";
import { type LoadSummary, loadOhlcvFrom } from "../lib/loader/OhlcvLoader";
import { packageRoot } from "../cli/conventions";
import { startPostgresServer, startTimescaleEngine } from "../test/fixtures/engines";
import { schemaRunner } from "../test/fixtures/schema";

const ROOT = packageRoot(__dirname);
const DEV_VARIABLES = { ohlcvChunkInterval: "30 days", tickChunkInterval: "1 day", compressAfter: "90 days", tickRetention: "180 days", caggRefreshInterval: "1 hour" };
const run = promisify(execFile);

/** Deterministic rows: `symbols` symbols x hourly bars, prices in cents. */
function* rows(n: number): Generator<[number, string, number, number, number, number, number]> {
  const symbols = 100;
  const perSymbol = Math.ceil(n / symbols);
  let seed = 42;
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  let emitted = 0;
  for (let s = 0; s < symbols && emitted < n; s++) {
    let price = 10_000 + s * 100;
    for (let i = 0; i < perSymbol && emitted < n; i++, emitted++) {
      const open = price;
      const close = Math.max(100, Math.round(open * (1 + (rand() - 0.5) * 0.02)));
      const high = Math.max(open, close) + Math.round(rand() * 50);
      const low = Math.max(1, Math.min(open, close) - Math.round(rand() * 50));
      price = close;
      yield [Date.UTC(2020, 0, 1) + i * 3_600_000, `SYM${String(s).padStart(3, "0")}`, open, high, low, close, Math.round(rand() * 1e6)];
    }
  }
}

async function generate(dir: string, n: number): Promise<{ csv: string; parquet: string; sqlite: string }> {
  const csv = path.join(dir, "bars.csv");
  const out = fs.createWriteStream(csv);
  out.write("timestamp,symbol,timeframe,open,high,low,close,volume\n");
  let buf = "";
  const cols = { ts: [] as bigint[], symbol: [] as string[], open: [] as number[], high: [] as number[], low: [] as number[], close: [] as number[], volume: [] as number[] };
  for (const [t, sym, o, h, l, c, v] of rows(n)) {
    buf += `${new Date(t).toISOString().slice(0, 19)}Z,${sym},1h,${o / 100},${h / 100},${l / 100},${c / 100},${v}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise<void>((r) => out.once("drain", () => r()));
      buf = "";
    }
    cols.ts.push(BigInt(t) * 1_000_000n);
    cols.symbol.push(sym);
    cols.open.push(o / 100);
    cols.high.push(h / 100);
    cols.low.push(l / 100);
    cols.close.push(c / 100);
    cols.volume.push(v);
  }
  out.write(buf);
  await new Promise<void>((r) => out.end(() => r()));

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

  const sqlite = path.join(dir, "bars.db");
  const Database = (await import("better-sqlite3")).default;
  const db = new Database(sqlite);
  db.exec("PRAGMA journal_mode = OFF; CREATE TABLE bars (timestamp TEXT, symbol TEXT, timeframe TEXT, open REAL, high REAL, low REAL, close REAL, volume INTEGER)");
  const ins = db.prepare("INSERT INTO bars VALUES (?, ?, '1h', ?, ?, ?, ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < cols.ts.length; i++) {
      ins.run(new Date(Number((cols.ts[i] ?? 0n) / 1_000_000n)).toISOString().slice(0, 19).replace("T", " "), cols.symbol[i], cols.open[i], cols.high[i], cols.low[i], cols.close[i], cols.volume[i]);
    }
  })();
  db.close();
  return { csv, parquet, sqlite };
}

/** Child mode: one measured load, JSON on stdout with the child's peak RSS. */
async function child(mode: string, url: string, file: string): Promise<void> {
  const started = process.hrtime.bigint();
  let extra: Record<string, unknown> = {};
  if (mode === "loader") {
    const s: LoadSummary = await loadOhlcvFrom(url, { files: [file], timeframe: "1h", ...(file.endsWith(".db") ? { sqliteTable: "bars" } : {}), ...(file.endsWith(".parquet") ? {} : {}) });
    extra = { inserted: s.inserted, alreadyPresent: s.alreadyPresent, rejected: s.rejected, read: s.read };
  } else if (mode === "insert") {
    // What the seeds do: parse (with the same CSV parser as the loader, so only the write path differs), then
    // multi-row INSERTs of 1000 rows with parameters, no validation.
    const Papa = (await import("papaparse")).default;
    let n = 0;
    await withClient(url, async (c) => {
      await c.query("BEGIN");
      let batch: string[][] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        const values = batch.map((_, i) => `(${Array.from({ length: 8 }, (_x, j) => `$${i * 8 + j + 1}`).join(", ")})`).join(", ");
        await c.query(`INSERT INTO bench.insert_target (time, symbol, timeframe, open, high, low, close, volume) VALUES ${values} ON CONFLICT DO NOTHING`, batch.flat());
        n += batch.length;
        batch = [];
      };
      let header = true;
      for await (const rec of fs.createReadStream(file, { encoding: "utf8" }).pipe(Papa.parse(Papa.NODE_STREAM_INPUT, { delimiter: ",", skipEmptyLines: true }))) {
        if (header) {
          header = false;
          continue;
        }
        batch.push(rec as string[]);
        if (batch.length === 1000) await flush();
      }
      await flush();
      await c.query("COMMIT");
    });
    extra = { inserted: n };
  } else if (mode === "keyset") {
    // Memory of the in-file duplicate check alone, as the loader keeps it (TimeKeySet per series), and as
    // plain Sets (what it degrades to for out-of-order sources).
    const measure = (make: () => { add(t: number): unknown; size: number }) => {
      global.gc?.();
      const before = process.memoryUsage();
      const seen = new Map<string, { add(t: number): unknown; size: number }>();
      for (const [t, sym] of rows(Number(file))) {
        let s = seen.get(sym);
        if (!s) seen.set(sym, (s = make()));
        s.add(t * 1000);
      }
      global.gc?.();
      const after = process.memoryUsage();
      const bytes = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
      return { bytes, keys: [...seen.values()].reduce((a, s) => a + s.size, 0) };
    };
    const sorted = measure(() => new TimeKeySet());
    const sets = measure(() => new Set<number>());
    extra = { keysetBytes: sorted.bytes, setBytes: sets.bytes, keys: sorted.keys };
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ seconds, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), ...extra })}\n`);
}

function runChild(args: string[], nodeFlags: string[] = []): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--expose-gc", ...nodeFlags, "--import", "tsx", path.join(ROOT, "scripts/bench-load.ts"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop() ?? "{}")) : reject(new Error(`child ${args.join(" ")} exited ${code}`))));
  });
}

/** What `tsdb bench load` passes. */
export interface LoadBenchOptions {
  rows: number;
  repeat: number;
  out?: string;
}

/** Runs the benchmark and writes its report (default bench/load.md). */
export async function runLoadBench(values: LoadBenchOptions): Promise<void> {
  const n = values.rows;
  const repeat = Math.max(1, values.repeat);
  const loadStart = os.loadavg()[0]?.toFixed(1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-load-"));
  const log = (s: string) => process.stderr.write(`${s}\n`);
  log(`generating ${n} rows in ${dir}`);
  const files = await generate(dir, n);
  const sizes = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, Math.round(fs.statSync(f).size / 1048576)]));
  const pg = await startPostgresServer();
  const results: Array<{ name: string; seconds: number; maxRssMb?: number; note?: string }> = [];
  let keyset: Record<string, number> = {};
  let compression = "";
  try {
    await schemaRunner(pg.url, { timescaledb: false }).up();
    await withClient(pg.url, (c) =>
      c.query(`CREATE SCHEMA bench;
        CREATE TABLE bench.copy_target (LIKE market_data.ohlcv_bars INCLUDING ALL);
        CREATE TABLE bench.insert_target (LIKE market_data.ohlcv_bars INCLUDING ALL);`),
    );
    const reset = (table: string) => withClient(pg.url, async (c) => {
      await c.query(`TRUNCATE ${table}`);
      await c.query("CHECKPOINT");
    });
    const count = async (table: string) => Number((await withClient(pg.url, (c) => c.query(`SELECT count(*) AS n FROM ${table}`))).rows[0].n);

    // The goal rows (\\copy and the three loaders) run `repeat` rounds, interleaved, and report the median: on
    // a shared 2-core machine one run can be 20 % off either way.
    const copyOnce = async () => {
      await reset("bench.copy_target");
      const t0 = process.hrtime.bigint();
      await run("/usr/bin/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", pg.url, "-c",
        `\\copy bench.copy_target (time, symbol, timeframe, open, high, low, close, volume) FROM '${files.csv}' WITH (FORMAT csv, HEADER true)`]);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if ((await count("bench.copy_target")) !== n) throw new Error("\\copy did not load every row");
      return { seconds };
    };
    const loaderOnce = (name: string, file: string) => async () => {
      await reset("market_data.ohlcv_bars");
      const r = await runChild(["--child", "loader", "--url", pg.url, "--file", file]);
      if (r.inserted !== n || (await count("market_data.ohlcv_bars")) !== n) throw new Error(`${name} loaded ${r.inserted} of ${n}`);
      return { seconds: r.seconds ?? 0, maxRssMb: r.maxRssMb };
    };
    const goalRuns: Array<[string, () => Promise<{ seconds: number; maxRssMb?: number }>]> = [
      ["psql \\copy (CSV, no validation, no dedup)", copyOnce],
      ["loader, CSV (validation + dedup; new rows: direct COPY pass)", loaderOnce("loader, CSV", files.csv)],
      ["loader, Parquet (validation + dedup; new rows: direct COPY pass)", loaderOnce("loader, Parquet", files.parquet)],
      ["loader, SQLite (validation + dedup; new rows: direct COPY pass)", loaderOnce("loader, SQLite", files.sqlite)],
    ];
    const samples = new Map<string, Array<{ seconds: number; maxRssMb?: number }>>();
    for (let round = 1; round <= repeat; round++) {
      for (const [name, once] of goalRuns) {
        log(`${name}, round ${round} of ${repeat}`);
        samples.set(name, [...(samples.get(name) ?? []), await once()]);
      }
    }
    for (const [name] of goalRuns) {
      const runs = samples.get(name) ?? [];
      const sorted = runs.map((r) => r.seconds).sort((a, b) => a - b);
      const rss = runs.map((r) => r.maxRssMb).filter((m): m is number => m !== undefined);
      results.push({
        name,
        seconds: sorted[Math.floor(sorted.length / 2)] ?? 0,
        ...(rss.length > 0 ? { maxRssMb: Math.max(...rss) } : {}),
        note: repeat > 1 ? `median of ${repeat}: ${runs.map((r) => r.seconds.toFixed(2)).join(", ")} s` : undefined,
      });
    }
    for (const [name, file] of [["loader, CSV", files.csv], ["loader, Parquet", files.parquet]] as const) {
      log(`${name}, heap capped`);
      await reset("market_data.ohlcv_bars");
      const r = await runChild(["--child", "loader", "--url", pg.url, "--file", file], ["--max-old-space-size=192"]);
      if (r.inserted !== n) throw new Error(`${name} (capped) loaded ${r.inserted} of ${n}`);
      results.push({ name: `${name}, \`node --max-old-space-size=192\``, seconds: r.seconds ?? 0, maxRssMb: r.maxRssMb });
    }
    log("loader, CSV again");
    const again = await runChild(["--child", "loader", "--url", pg.url, "--file", files.csv]);
    results.push({ name: "loader, CSV again (every row present: staging + merge pass)", seconds: again.seconds ?? 0, maxRssMb: again.maxRssMb, note: `inserted ${again.inserted}, already present ${again.alreadyPresent}` });

    log("multi-row INSERT");
    await reset("bench.insert_target");
    const ins = await runChild(["--child", "insert", "--url", pg.url, "--file", files.csv]);
    if ((await count("bench.insert_target")) !== n) throw new Error("INSERT loader did not load every row");
    results.push({ name: "multi-row INSERT, 1000 rows/statement (like the seeds)", seconds: ins.seconds ?? 0, maxRssMb: ins.maxRssMb });

    keyset = await runChild(["--child", "keyset", "--file", String(n)]);
  } finally {
    await pg.stop();
  }

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
    // A denser set: the first 100,000 generated rows (1,000 hourly bars for each of 100 symbols).
    const head = path.join(dir, "head.csv");
    const lines = fs.readFileSync(files.csv, "utf8").split("\n");
    fs.writeFileSync(head, [lines[0], ...lines.slice(1).filter((l, i) => l && i % Math.max(1, Math.floor(n / 100)) < 1000)].join("\n"));
    await loadOhlcvFrom(tsdb.url, { files: [head] });
    compression += `\n- 100,000 bars (1,000 hourly bars x 100 symbols): ${await ratio()}`;
  } finally {
    await tsdb.stop();
  }
  fs.rmSync(dir, { recursive: true, force: true });

  const copyRate = n / (results[0]?.seconds ?? 1);
  const table = results.map((r) => {
    const rate = n / r.seconds;
    return `| ${r.name} | ${r.seconds.toFixed(2)} | ${Math.round(rate).toLocaleString("en-US")} | ${(rate / copyRate).toFixed(2)}x | ${r.maxRssMb ?? "-"} | ${r.note ?? ""} |`;
  });
  // The issue's goals, judged from the rows above.
  const row = (prefix: string) => results.find((r) => r.name.startsWith(prefix));
  const ratio = (prefix: string) => copyRate > 0 ? n / (row(prefix)?.seconds ?? Infinity) / copyRate : 0;
  const met = (ok: boolean) => (ok ? "yes" : "**no**");
  const csvRatio = ratio("loader, CSV (");
  const csvSeconds = row("loader, CSV (")?.seconds ?? Infinity;
  const peakRss = Math.max(...["loader, CSV (", "loader, Parquet (", "loader, SQLite ("].map((p) => row(p)?.maxRssMb ?? Infinity));
  const parquetRatio = ratio("loader, Parquet (");
  const sqliteRatio = ratio("loader, SQLite (");
  const goals = [
    `| CSV loader with validation and dedup >= 0.8x \\copy | ${csvRatio.toFixed(2)}x | ${met(csvRatio >= 0.8)} |`,
    `| ${n.toLocaleString("en-US")} rows in under 10 s | ${csvSeconds.toFixed(2)} s (CSV) | ${met(csvSeconds < 10)} |`,
    `| loader peak RSS under 300 MB (default heap) | ${peakRss} MB (worst of CSV, Parquet, SQLite) | ${met(peakRss < 300)} |`,
    `| Parquet and SQLite sources >= 0.6x \\copy | ${parquetRatio.toFixed(2)}x, ${sqliteRatio.toFixed(2)}x | ${met(parquetRatio >= 0.6 && sqliteRatio >= 0.6)} |`,
  ];
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const md = `# Load benchmark

Command: \`npx tsdb bench load${n !== 1_000_000 || repeat !== 3 ? ` --rows ${n} --repeat ${repeat}` : ""}\` (scripts/bench-load.ts), ${new Date().toISOString().slice(0, 10)}, on ${os.cpus().length} x ${cpu},
${Math.round(os.totalmem() / 2 ** 30)} GB RAM, Node ${process.version}, embedded PostgreSQL 17 (fsync off, as the test fixture starts it).
Load average (1 min) at the start ${loadStart}, at the end ${os.loadavg()[0]?.toFixed(1)}: other work on the machine slows every row alike.

${n.toLocaleString("en-US")} hourly OHLCV rows (100 symbols), files: CSV ${sizes.csv} MB, Parquet ${sizes.parquet} MB, SQLite ${sizes.sqlite} MB.
Every target is \`market_data.ohlcv_bars\` from the real migrations, or an identical table (\`LIKE ... INCLUDING ALL\`:
primary key, symbol/timeframe index, CHECK constraints), empty before each run.

| run | seconds | rows/s | vs \\copy | peak RSS MB | notes |
|---|---|---|---|---|---|
${table.join("\n")}

| goal (issue 4) | this run | met |
|---|---|---|
${goals.join("\n")}

In-file duplicate check for ${(keyset.keys ?? 0).toLocaleString("en-US")} keys (epoch microseconds per series): ${((keyset.keysetBytes ?? 0) / 1048576).toFixed(1)} MiB
as the loader keeps them for time-ordered sources (a sorted Float64Array per series), ${((keyset.setBytes ?? 0) / 1048576).toFixed(1)} MiB as \`Set\`s (what a
series switches to when its rows are out of order).

Compression on the TimescaleDB engine (PGlite build, TimescaleDB 2.23; dev stack settings: 30-day chunks, segmentby
symbol), every chunk compressed with compress_chunk, sizes from hypertable_columnstore_stats:
${compression}

Reading the numbers:
- New rows take the loader's direct pass (COPY straight into the target under a savepoint, see
  docs/LOADING.md): JS reading and checking runs on one core while the server's COPY runs on the other, so
  the server's COPY is the bottleneck for every format, as it is for \\copy; differences of a few percent
  either way are run-to-run noise on this shared 2-core machine.
- A re-run whose rows are all present hits a unique violation on its first row, rolls back to the savepoint
  and goes through staging + ON CONFLICT merge: every row is written twice (staging, then probed in the
  target), hence the lower rate; it adds 0 rows.
- Peak RSS is with V8's default heap sizing, which lets garbage accumulate; the capped runs show the live
  memory is lower at nearly the same speed.
- The sample compresses poorly because its 30-day chunks hold few rows (per-chunk overhead dominates); the
  denser 100,000-bar set shows the columnstore's usual ratio.
`;
  const outFile = values.out ?? path.join(ROOT, "bench/load.md");
  fs.writeFileSync(outFile, md);
  process.stdout.write(md);
}

// Child mode (runChild above): an internal protocol between the benchmark and its measured children.
if (require.main === module) {
  const { values } = parseArgs({ options: { child: { type: "string" }, url: { type: "string" }, file: { type: "string" } } });
  child(values.child ?? "", values.url ?? "", values.file ?? "").catch((err: unknown) => {
    process.stderr.write(`bench load child: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
