/**
 * `tsdb bench queries [--runs 50 --years 15 --symbols 20 --hourly-symbols 5 --hourly-years 3 --out bench/queries.md]`
 * (npm run bench:queries)
 *
 * The runbook's "Performance Verification" on the engines we have: a native PostgreSQL 17 (vanilla schema:
 * plain tables, materialized views), native TimescaleDB 2.23 on PostgreSQL 15 (the stack's engine) and the
 * TimescaleDB engine (PGlite build, WASM, one connection). On each:
 * the real migrations, bars loaded with the project's loader (daily bars for every symbol over `years`,
 * hourly bars for a few), rollups refreshed, old chunks compressed as the columnstore policy would, ANALYZE;
 * then p50/p95 over `runs` timed runs (after warm-up) of the five queries, written to bench/queries.md. Each
 * engine is loaded under migration 0011's `(symbol, timeframe, time DESC)` index, measured, then migrated to
 * 0012 (the same index ascending) and measured again: before and after on the same data, same run. Then, with
 * `--scale-rows` (default 10,000,000), a native TimescaleDB server loaded with that many bars (200 symbols of
 * daily bars, hourly bars of enough of them) and measured once more: how the queries grow with size.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Client } from "pg";
import { withClient } from "../lib/db";
import { loadOhlcvFrom } from "../lib/loader/OhlcvLoader";
import { type Engine, startPostgresServer, startTimescaleEngine, startTimescaleServer } from "../test/fixtures/engines";
import { schemaRunner } from "../test/fixtures/schema";
import { packageRoot } from "../cli/conventions";

const ROOT = packageRoot(__dirname);
// The dev stack's values (Pulumi.yaml defaults), so chunking and compression match what `pulumi up` builds.
const DEV_VARIABLES = { ohlcvChunkInterval: "30 days", tickChunkInterval: "1 day", compressAfter: "90 days", tickRetention: "180 days", caggRefreshInterval: "1 hour" };
const END = Date.UTC(2025, 0, 1);

interface Params {
  runs: number;
  years: number;
  symbols: number;
  hourlySymbols: number;
  hourlyYears: number;
  /** Bars of the scaling run on native TimescaleDB (0: none); daily and hourly bars of more symbols. */
  scaleRows: number;
}

/** Deterministic random walk bars on weekdays (daily) or weekday hours (hourly), prices to the cent. */
function writeBars(file: string, symbols: string[], timeframe: "1d" | "1h", years: number): number {
  const stepMs = timeframe === "1d" ? 86_400_000 : 3_600_000;
  const start = END - years * 365.25 * 86_400_000;
  let seed = 7;
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const fd = fs.openSync(file, "w");
  fs.writeSync(fd, "timestamp,symbol,timeframe,open,high,low,close,volume\n");
  let n = 0;
  for (const [i, symbol] of symbols.entries()) {
    let price = 5_000 + i * 1_000;
    let buf = "";
    for (let t = Math.ceil(start / stepMs) * stepMs; t < END; t += stepMs) {
      const day = new Date(t).getUTCDay();
      if (day === 0 || day === 6) continue;
      const open = price;
      const close = Math.max(100, Math.round(open * (1 + (rand() - 0.5) * 0.03)));
      const high = Math.max(open, close) + Math.round(rand() * 80);
      const low = Math.max(1, Math.min(open, close) - Math.round(rand() * 80));
      price = close;
      buf += `${new Date(t).toISOString().slice(0, 19)}Z,${symbol},${timeframe},${open / 100},${high / 100},${low / 100},${close / 100},${Math.round(rand() * 1e6)}\n`;
      n++;
      if (buf.length > 1 << 20) {
        fs.writeSync(fd, buf);
        buf = "";
      }
    }
    fs.writeSync(fd, buf);
  }
  fs.closeSync(fd);
  return n;
}

interface QuerySpec {
  name: string;
  goalMs?: number;
  /** The seeds' target for the same query, where they set one. */
  seedGoalMs?: number;
  sql: (timescaledb: boolean) => string;
  params: unknown[];
}

/** Midnight UTC of the Monday on or before `ms`: weeks start on Monday in time_bucket and date_trunc alike. */
function mondayOnOrBefore(ms: number): number {
  const d = new Date(ms);
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return day - ((new Date(day).getUTCDay() + 6) % 7) * 86_400_000;
}
// Week-aligned, so the rollup and the raw computation cover the same whole weeks.
const TEN_YEARS = [new Date(mondayOnOrBefore(END - 10 * 365.25 * 86_400_000)).toISOString(), new Date(mondayOnOrBefore(END)).toISOString()];
const LAST_YEAR = [new Date(END - 365.25 * 86_400_000).toISOString(), new Date(END).toISOString()];

const QUERIES: QuerySpec[] = [
  {
    name: "last 1,000 bars of one symbol (1h)",
    goalMs: 5,
    sql: () => `SELECT time, open, high, low, close, volume FROM market_data.ohlcv_bars
                 WHERE symbol = $1 AND timeframe = '1h' ORDER BY time DESC LIMIT 1000`,
    params: ["SYM000"],
  },
  {
    name: "ten years of daily bars of one symbol",
    goalMs: 20,
    seedGoalMs: 1000,
    sql: () => `SELECT time, open, high, low, close, volume FROM market_data.ohlcv_bars
                 WHERE symbol = $1 AND timeframe = '1d' AND time >= $2 AND time < $3 ORDER BY time`,
    params: ["SYM003", ...TEN_YEARS],
  },
  {
    name: "weekly candles, ten years, from the rollup (cagg / matview)",
    goalMs: 10,
    seedGoalMs: 100,
    sql: () => `SELECT bucket, open, high, low, close, volume FROM market_data.ohlcv_weekly
                 WHERE symbol = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket`,
    params: ["SYM003", ...TEN_YEARS],
  },
  {
    name: "weekly candles, ten years, computed from raw bars",
    sql: (ts) =>
      ts
        ? `SELECT time_bucket(INTERVAL '1 week', time) AS bucket, first(open, time) AS open, max(high) AS high, min(low) AS low,
                  last(close, time) AS close, sum(volume) AS volume
             FROM market_data.ohlcv_bars WHERE symbol = $1 AND timeframe = '1d' AND time >= $2 AND time < $3
            GROUP BY 1 ORDER BY 1`
        : `SELECT date_trunc('week', time) AS bucket, (array_agg(open ORDER BY time))[1] AS open, max(high) AS high, min(low) AS low,
                  (array_agg(close ORDER BY time DESC))[1] AS close, sum(volume) AS volume
             FROM market_data.ohlcv_bars WHERE symbol = $1 AND timeframe = '1d' AND time >= $2 AND time < $3
            GROUP BY 1 ORDER BY 1`,
    params: ["SYM003", ...TEN_YEARS],
  },
  {
    name: "cross-symbol monthly aggregation, one year, all symbols",
    sql: (ts) =>
      `SELECT ${ts ? "time_bucket(INTERVAL '1 month', time)" : "date_trunc('month', time)"} AS bucket, symbol,
              avg(close) AS avg_close, max(high) AS high, min(low) AS low, sum(volume) AS volume
         FROM market_data.ohlcv_bars WHERE timeframe = '1d' AND time >= $1 AND time < $2
        GROUP BY 1, 2 ORDER BY 1, 2`,
    params: LAST_YEAR,
  },
];

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

interface Measurement {
  engine: string;
  query: QuerySpec;
  rows: number;
  p50: number;
  p95: number;
  /** Median server-side execution time (EXPLAIN ANALYZE), without transfer and row parsing. */
  serverP50: number;
  /** Median planning time of the same runs (a hypertable plans every chunk it may touch). */
  planP50: number;
}

async function measure(client: Client, engine: string, timescaledb: boolean, runs: number): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (const q of QUERIES) {
    const sql = q.sql(timescaledb);
    let rows = 0;
    for (let i = 0; i < 5; i++) rows = (await client.query(sql, q.params)).rowCount ?? 0; // warm-up: plans, caches
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await client.query(sql, q.params);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const server: number[] = [];
    const planning: number[] = [];
    for (let i = 0; i < 11; i++) {
      const plan = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, q.params)).rows[0]["QUERY PLAN"] as { "Execution Time": number; "Planning Time": number }[];
      server.push(plan[0]?.["Execution Time"] ?? NaN);
      planning.push(plan[0]?.["Planning Time"] ?? NaN);
    }
    server.sort((a, b) => a - b);
    planning.sort((a, b) => a - b);
    out.push({ engine, query: q, rows, p50: percentile(times, 50), p95: percentile(times, 95), serverP50: percentile(server, 50), planP50: percentile(planning, 50) });
    console.log(`  ${q.name}: ${rows} rows, p50 ${percentile(times, 50).toFixed(2)} ms, p95 ${percentile(times, 95).toFixed(2)} ms`);
  }
  return out;
}

/** The last migration before 0012 made the bars' (symbol, timeframe, time) index ascending. */
const BEFORE_ASCENDING_INDEX = 11;

async function prepare(engine: Engine, timescaledb: boolean, files: string[], to?: number): Promise<{ rows: number; loadSeconds: number; compressed: string }> {
  // Loaded under the old (time DESC) index, as existing databases were (to = 11); main() then measures, applies
  // 0012 and measures again on the same data. The scaling run loads after every migration.
  await schemaRunner(engine.url, { timescaledb, variables: DEV_VARIABLES }).up(to === undefined ? {} : { to });
  const summary = await loadOhlcvFrom(engine.url, { files, exchange: "XNAS", provider: "bench" });
  return withClient(engine.url, async (c) => {
    await c.query("CALL market_data.refresh_ohlcv_rollups()");
    let compressed = "n/a (vanilla)";
    if (timescaledb) {
      // What the columnstore policy does on a running server (done here at once, so every engine is measured alike).
      await c.query("SELECT count(compress_chunk(ch, if_not_compressed => true)) FROM show_chunks('market_data.ohlcv_bars', older_than => INTERVAL '90 days') ch");
      const r = (await c.query(
        "SELECT count(*) FILTER (WHERE is_compressed)::int AS c, count(*)::int AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'ohlcv_bars'",
      )).rows[0] as { c: number; n: number };
      compressed = `${r.c} of ${r.n} chunks`;
    }
    await c.query("ANALYZE");
    return { rows: summary.inserted, loadSeconds: summary.seconds, compressed };
  });
}

/** The index on (symbol, timeframe, time): of the plain table, or summed over a hypertable's chunks. */
function indexSize(engine: Engine, timescaledb: boolean): Promise<string> {
  return withClient(engine.url, async (c) => {
    const r = await c.query<{ mb: string }>(
      timescaledb
        ? "SELECT round(sum(pg_relation_size(i.indexrelid)) / 1048576.0, 1) AS mb FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE '%ohlcv_bars_symbol_timeframe_time_idx'"
        : "SELECT round(pg_relation_size('market_data.ohlcv_bars_symbol_timeframe_time_idx') / 1048576.0, 1) AS mb",
    );
    return `${r.rows[0]?.mb ?? "?"} MB`;
  });
}

function fmt(n: number): string {
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}

/** What `tsdb bench queries` passes (whole numbers, checked by the CLI). */
export type QueriesBenchOptions = Params & { out: string };

/** Which engines run, and how each is started. */
const ENGINES = [
  ["PostgreSQL 17 (native, vanilla schema)", () => startPostgresServer({ major: 17 }), false],
  ["TimescaleDB 2.23 (native, PostgreSQL 15)", () => startTimescaleServer(), true],
  ["TimescaleDB 2.23 engine (PGlite, WASM)", () => startTimescaleEngine(), true],
] as const;

/** A data set: its CSV files and how many bars of each kind they hold. */
interface DataSet {
  files: string[];
  text: string;
}

function writeDataSet(dir: string, name: string, p: { years: number; symbols: number; hourlySymbols: number; hourlyYears: number }): DataSet {
  const symbols = Array.from({ length: p.symbols }, (_, i) => `SYM${String(i).padStart(3, "0")}`);
  const daily = path.join(dir, `${name}-daily.csv`);
  const hourly = path.join(dir, `${name}-hourly.csv`);
  const dailyRows = writeBars(daily, symbols, "1d", p.years);
  const hourlyRows = writeBars(hourly, symbols.slice(0, p.hourlySymbols), "1h", p.hourlyYears);
  return {
    files: [daily, hourly],
    text: `${(dailyRows + hourlyRows).toLocaleString("en-US")} bars: ${dailyRows.toLocaleString("en-US")} daily (${p.symbols} symbols, ${p.years} years of weekdays) and ${hourlyRows.toLocaleString("en-US")} hourly (${p.hourlySymbols} symbols, ${p.hourlyYears} years)`,
  };
}

/** The scaling run's shape: 200 symbols of daily bars over 15 years, and hourly bars of enough of them to reach `rows`. */
function scaleShape(rows: number): { years: number; symbols: number; hourlySymbols: number; hourlyYears: number } {
  const symbols = 200;
  const years = 15;
  const hourlyYears = 10;
  const perSymbolHourly = hourlyYears * 261 * 24;
  const hourlySymbols = Math.max(1, Math.min(symbols, Math.round((rows - symbols * years * 261) / perSymbolHourly)));
  return { years, symbols, hourlySymbols, hourlyYears };
}

/** Runs the benchmark and writes its report (default bench/queries.md). */
export async function runQueriesBench(p: QueriesBenchOptions): Promise<void> {
  const loadAtStart = os.loadavg().map((l) => l.toFixed(1)).join(" / ");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-bench-queries-"));
  const base = writeDataSet(dir, "base", p);
  console.log(`Data: ${base.text}.`);

  const results: Measurement[] = [];
  const setup: string[] = [];
  let scaleText = "";
  try {
    for (const [label, start, timescaledb] of ENGINES) {
      console.log(`${label}: migrating and loading...`);
      const engine = await start();
      try {
        const prepared = await prepare(engine, timescaledb, base.files, BEFORE_ASCENDING_INDEX);
        setup.push(`| ${label} | ${prepared.rows.toLocaleString("en-US")} | ${prepared.loadSeconds.toFixed(1)} s | ${prepared.compressed} |`);
        const before = `${label}, before 0012 (index time DESC, ${await indexSize(engine, timescaledb)})`;
        results.push(...(await withClient(engine.url, (c) => measure(c, before, timescaledb, p.runs))));
        await schemaRunner(engine.url, { timescaledb, variables: DEV_VARIABLES }).up();
        await withClient(engine.url, (c) => c.query("ANALYZE market_data.ohlcv_bars"));
        const after = `${label}, after 0012 (index time ascending, ${await indexSize(engine, timescaledb)})`;
        results.push(...(await withClient(engine.url, (c) => measure(c, after, timescaledb, p.runs))));
      } finally {
        await engine.stop();
      }
    }
    if (p.scaleRows > 0) {
      const scale = writeDataSet(dir, "scale", scaleShape(p.scaleRows));
      scaleText = scale.text;
      const label = "TimescaleDB 2.23 (native, PostgreSQL 15)";
      console.log(`${label}, scaling run: ${scale.text}`);
      const engine = await startTimescaleServer();
      try {
        const prepared = await prepare(engine, true, scale.files);
        setup.push(`| ${label}, scaling run | ${prepared.rows.toLocaleString("en-US")} | ${prepared.loadSeconds.toFixed(1)} s | ${prepared.compressed} |`);
        const name = `${label}, ${(prepared.rows / 1e6).toFixed(1)}M bars (index ${await indexSize(engine, true)})`;
        results.push(...(await withClient(engine.url, (c) => measure(c, name, true, p.runs))));
      } finally {
        await engine.stop();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  writeReport(p, { loadAtStart, base: base.text, scale: scaleText, setup, results });
}

function writeReport(p: QueriesBenchOptions, r: { loadAtStart: string; base: string; scale: string; setup: string[]; results: Measurement[] }): void {
  const command = `npx tsdb bench queries --runs ${p.runs} --years ${p.years} --symbols ${p.symbols} --hourly-symbols ${p.hourlySymbols} --hourly-years ${p.hourlyYears} --scale-rows ${p.scaleRows}`;
  const met = (ms: number, goal?: number) => (goal ? (ms < goal ? "yes" : "**no**") : "-");
  const lines = [
    "# Query benchmark (runbook: Performance Verification)",
    "",
    `Command: \`${command}\``,
    "",
    `Recorded ${new Date().toISOString().slice(0, 16)}Z on ${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? "CPU"}, ${Math.round(os.totalmem() / 1024 ** 3)} GB RAM, Node ${process.version}; load average (1/5/15 min) ${r.loadAtStart} at the start, ${os.loadavg().map((l) => l.toFixed(1)).join(" / ")} at the end.`,
    `Data: ${r.base}; on native TimescaleDB also a scaling run of ${r.scale || "(none)"},`,
    "loaded with the project's loader into `market_data.ohlcv_bars` after the real migrations (dev settings: 30-day chunks, columnstore after 90 days);",
    "rollups refreshed with `CALL market_data.refresh_ohlcv_rollups()`, chunks older than 90 days compressed, then ANALYZE. Native servers are the test fixtures'",
    "(fsync off; TimescaleDB preloaded with the container's settings from lib/tuning.ts, its background jobs running). Times are client round trips over one connection",
    `(TCP on loopback), after 5 warm-up runs, ${p.runs} timed runs per query. "server p50" and "plan p50" are the median execution and planning times EXPLAIN ANALYZE reports for 11 more runs.`,
    "Goals: ours (p50), and the seeds' targets where they set one (ten years of daily bars < 1000 ms, a continuous aggregate < 100 ms).",
    "",
    "| engine | rows loaded | load time | compressed |",
    "|---|---|---|---|",
    ...r.setup,
    "",
    "| engine | query | rows returned | p50 ms | p95 ms | server p50 ms | plan p50 ms | goal (p50) | met | seeds' target | met |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...r.results.map(
      (m) =>
        `| ${m.engine} | ${m.query.name} | ${m.rows} | ${fmt(m.p50)} | ${fmt(m.p95)} | ${fmt(m.serverP50)} | ${fmt(m.planP50)} | ${m.query.goalMs ? `< ${m.query.goalMs} ms` : "-"} | ${met(m.p50, m.query.goalMs)} | ${m.query.seedGoalMs ? `< ${m.query.seedGoalMs} ms` : "-"} | ${met(m.p50, m.query.seedGoalMs)} |`,
    ),
    "",
  ];
  const out = path.resolve(ROOT, p.out);
  const notes = fs.existsSync(out) ? fs.readFileSync(out, "utf8").split("\n## Reading these numbers")[1] : undefined;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, lines.join("\n") + (notes !== undefined ? `\n## Reading these numbers${notes}` : ""));
  console.log(`Wrote ${path.relative(ROOT, out)}`);
}
