/**
 * TimescaleDB's jobs and policies proven by what they do, on native TimescaleDB 2.23 (PostgreSQL 15, preloaded,
 * the container's worker budget) with the project's real migrations and TEST_VARIABLES (compressAfter 45 days,
 * tickRetention 120 days, 14-day bar chunks, 2-hour tick chunks). Every job runs in the background scheduler's
 * own worker: `alter_job(next_start => now())` and wait (test/fixtures/scheduler.ts), never `CALL run_job`.
 *
 * The tests share one server and run in order: data, compression, rollups, retention, re-loads, every job's
 * record, then `db down`. The scheduler starts a rescheduled job a few seconds later (10-25 s on a loaded machine),
 * so the file takes minutes: its timeouts are sized for that, not for the work.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type LoadSummary, loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import type { DownStep } from "../../lib/migrations/downPlan";
import { type Engine, startTimescaleServer } from "../fixtures/engines";
import { barsAsText } from "../fixtures/loader/target";
import { jobOf, runByScheduler } from "../fixtures/scheduler";
import { MIGRATION_FILES, ROLLUPS, TEST_VARIABLES, exec, rows, schemaRunner } from "../fixtures/schema";

/** The bars' facts that compression must not change: count and the sum of every value column, as text. */
const BAR_TOTALS = `SELECT count(*)::text AS n, sum(open)::text AS open, sum(high)::text AS high, sum(low)::text AS low,
                           sum(close)::text AS close, sum(volume)::text AS volume, sum(adj_close)::text AS adj
                      FROM market_data.ohlcv_bars`;

/** Chunks of a hypertable with their range and state, oldest first. */
async function chunks(url: string, hypertable: string): Promise<{ name: string; end: string; compressed: boolean }[]> {
  return rows(
    url,
    `SELECT chunk_name AS name, range_end::text AS end, is_compressed AS compressed
       FROM timescaledb_information.chunks WHERE hypertable_schema = 'market_data' AND hypertable_name = $1 ORDER BY range_start`,
    [hypertable],
  );
}

/**
 * Each rollup recomputed straight from the daily bars with its bucket: what the hierarchy day -> week -> month
 * -> quarter -> year must hold. `since` keeps buckets from that time on.
 */
function recomputed(rollup: (typeof ROLLUPS)[number], since = "-infinity", before = "infinity"): string {
  const width = { ohlcv_daily: "1 day", ohlcv_weekly: "1 week", ohlcv_monthly: "1 month", ohlcv_quarterly: "3 months", ohlcv_yearly: "1 year" }[rollup];
  return `SELECT time_bucket(INTERVAL '${width}', time)::text AS bucket, symbol, exchange, provider, first(open, time)::text AS open,
                 max(high)::text AS high, min(low)::text AS low, last(close, time)::text AS close, sum(volume)::text AS volume
            FROM market_data.ohlcv_bars WHERE timeframe = '1d'
           GROUP BY time_bucket(INTERVAL '${width}', time), symbol, exchange, provider
          HAVING time_bucket(INTERVAL '${width}', time) >= '${since}'::timestamptz AND time_bucket(INTERVAL '${width}', time) < '${before}'::timestamptz
           ORDER BY 1, 2, 3, 4`;
}

/** A rollup's rows as its view shows them (materialized part plus real-time part). */
function viewed(rollup: string, since = "-infinity"): string {
  return `SELECT bucket::text, symbol, exchange, provider, open::text, high::text, low::text, close::text, volume::text
            FROM market_data.${rollup} WHERE bucket >= '${since}'::timestamptz ORDER BY 1, 2, 3, 4`;
}

/** Only what the refresh materialized (the continuous aggregate's own hypertable), no real-time part. */
async function materialized(url: string, rollup: string): Promise<string> {
  const [m] = await rows<{ t: string }>(
    url,
    `SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) AS t
       FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'market_data' AND view_name = $1`,
    [rollup],
  );
  return `SELECT bucket::text, symbol, exchange, provider, open::text, high::text, low::text, close::text, volume::text
            FROM ${m?.t} ORDER BY 1, 2, 3, 4`;
}

/** Where a rollup's materialization ends: buckets from here on come from the real-time part. */
async function watermark(url: string, rollup: string): Promise<string> {
  const [w] = await rows<{ w: string }>(
    url,
    `SELECT _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(c.mat_hypertable_id))::text AS w
       FROM _timescaledb_catalog.continuous_agg c WHERE c.user_view_schema = 'market_data' AND c.user_view_name = $1`,
    [rollup],
  );
  return w?.w as string;
}

const HEADER = "timestamp,symbol,timeframe,open,high,low,close,volume,adj_close";

interface CsvBar {
  time: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  adj: string;
}

/** `symbol|||1d|time|...` as barsAsText prints a bar loaded from CSV (no exchange or provider column). */
function asText(symbol: string, b: CsvBar): string {
  return [symbol, "", "", "1d", b.time.replace(/Z$/, ".000000Z"), b.open, b.high, b.low, b.close, b.volume, b.adj === "" ? "NULL" : b.adj].join("|");
}

describe("TimescaleDB jobs and policies under the real scheduler (native TimescaleDB 2.23)", () => {
  let engine: Engine;
  let url: string;
  let dir: string;
  /** Midnight UTC today, as the server sees it: every bar and tick is placed relative to it. */
  let today: Date;

  beforeAll(async () => {
    engine = await startTimescaleServer();
    url = engine.url;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-jobs-"));
    await schemaRunner(url, { timescaledb: true }).up();
    today = new Date((await rows<{ d: Date }>(url, "SELECT date_trunc('day', now(), 'UTC') AS d"))[0]?.d as Date);
    // Daily bars of two symbols from 400 days ago to 10 days ago (14-day chunks on both sides of
    // compressAfter), values with decimals so sums are exact or wrong; adj_close NULL on every 7th.
    await exec(
      url,
      `INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume, adj_close)
       SELECT s, 'XNAS', 'test', '1d', date_trunc('day', now(), 'UTC') - g * interval '1 day',
              100.125 + (g % 37) * 0.25 + k, 100.125 + (g % 37) * 0.25 + k + 1.5 + abs((g % 5) - 2) * 0.5,
              100.125 + (g % 37) * 0.25 + k - 1.25 - abs((g % 5) - 2) * 0.5, 100.125 + (g % 37) * 0.25 + k + ((g % 5) - 2) * 0.5,
              1000 + g * 3.5, CASE WHEN g % 7 = 0 THEN NULL ELSE 50.0625 + (g % 11) END
         FROM (VALUES ('AAA', 0), ('BBB', 7)) AS v(s, k), generate_series(10, 400) g;
       -- Ticks every 5 days and 3 hours, from 300 days ago to today: none within a tick chunk (2 hours) of the
       -- 120-day retention line, so which side of it each tick is on does not depend on the second the job runs.
       INSERT INTO market_data.ticks (symbol, exchange, provider, time, price, size, side)
       SELECT 'AAA', 'XNAS', 'test', now() - g * interval '5 days' - interval '3 hours', 100 + g * 0.01, g, 'buy'
         FROM generate_series(0, 60) g;`,
    );
  });

  afterAll(async () => {
    await engine?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the columnstore policy compresses exactly the chunks older than compressAfter; counts and sums are unchanged", async () => {
    const before = await rows(url, BAR_TOTALS);
    expect((await chunks(url, "ohlcv_bars")).some((c) => c.compressed)).toBe(false);
    const run = await runByScheduler(url, await jobOf(url, "policy_compression", "ohlcv_bars"));
    expect(run.status).toBe("Success");
    // The policy's line: chunks whose whole range ends before (its start - compressAfter).
    const [line] = await rows<{ t: string }>(url, `SELECT ($1::timestamptz - INTERVAL '${TEST_VARIABLES.compressAfter}')::text AS t`, [run.startedAt]);
    const after = await chunks(url, "ohlcv_bars");
    const older = await rows<{ name: string }>(
      url,
      `SELECT chunk_name AS name FROM timescaledb_information.chunks
        WHERE hypertable_schema = 'market_data' AND hypertable_name = 'ohlcv_bars' AND range_end <= $1::timestamptz ORDER BY range_start`,
      [line?.t],
    );
    expect(older.length).toBeGreaterThan(20);
    expect(older.length).toBeLessThan(after.length); // the newest chunks stay rowstore
    expect(after.filter((c) => c.compressed).map((c) => c.name)).toEqual(older.map((c) => c.name));
    expect(await rows(url, BAR_TOTALS)).toEqual(before);
  });

  test("each rollup, day -> week -> month -> quarter -> year, equals its recomputation from the bars after the refresh policies run", async () => {
    for (const rollup of ROLLUPS) {
      expect((await runByScheduler(url, await jobOf(url, "policy_refresh_continuous_aggregate", rollup))).status).toBe("Success");
    }
    for (const rollup of ROLLUPS) {
      const expected = await rows(url, recomputed(rollup));
      expect(expected.length).toBeGreaterThan(1);
      // What the refresh wrote (every bucket before the watermark; the open one stays real-time), and the view.
      expect(await rows(url, await materialized(url, rollup)), rollup).toEqual(await rows(url, recomputed(rollup, "-infinity", await watermark(url, rollup))));
      expect(await rows(url, viewed(rollup)), rollup).toEqual(expected);
    }
  }, 420_000);

  test("real-time aggregation shows bars loaded after the last refresh from each level's watermark on; the next refresh materializes them", async () => {
    // New daily bars from the daily rollup's watermark (the day after its last materialized bucket) up to today,
    // loaded through the project's loader. The policies refresh the whole range, open buckets too, so each level's
    // materialization ends at the end of the bucket holding the last bar: from there on a level is computed at
    // query time from the level below. A new bar inside a bucket a level already materialized (the current year,
    // say) shows there after the next refresh (docs/SCHEMA.md).
    const from = Date.parse(await watermark(url, "ohlcv_daily"));
    expect(from).toBeLessThanOrEqual(today.getTime());
    const days = Math.round((today.getTime() - from) / 86_400_000) + 1;
    const before = await Promise.all(ROLLUPS.map(async (r) => rows(url, await materialized(url, r))));
    const csv = path.join(dir, "recent.csv");
    const recent = Array.from({ length: days }, (_, i) => {
      const time = new Date(from + i * 86_400_000).toISOString();
      return `${time},AAA,1d,${200 + i}.5,${210 + i}.25,${190 + i}.75,${205 + i}.125,${5000 + i},`;
    });
    fs.writeFileSync(csv, `${HEADER}\n${recent.join("\n")}\n`);
    expect((await loadOhlcvFrom(url, { files: [csv] })).inserted).toBe(days);
    // The CSV's bars have no exchange or provider: a series of their own. Nothing materialized changed; every
    // bucket from a level's watermark on is the recomputation from all bars, the new ones included.
    for (const [i, rollup] of ROLLUPS.entries()) {
      expect(await rows(url, await materialized(url, rollup)), rollup).toEqual(before[i]);
      const mark = await watermark(url, rollup);
      expect(await rows(url, viewed(rollup, mark)), rollup).toEqual(await rows(url, recomputed(rollup, mark)));
    }
    expect(await rows(url, "SELECT count(*)::int AS n FROM market_data.ohlcv_daily WHERE exchange = ''")).toEqual([{ n: days }]);
    for (const rollup of ROLLUPS) {
      expect((await runByScheduler(url, await jobOf(url, "policy_refresh_continuous_aggregate", rollup))).status).toBe("Success");
    }
    for (const rollup of ROLLUPS) {
      const expected = await rows(url, recomputed(rollup));
      expect(await rows(url, await materialized(url, rollup)), rollup).toEqual(await rows(url, recomputed(rollup, "-infinity", await watermark(url, rollup))));
      expect(await rows(url, viewed(rollup)), rollup).toEqual(expected);
    }
  }, 420_000);

  test("the retention policy drops the ticks older than tickRetention and nothing else", async () => {
    const ticks = await rows<{ t: string }>(url, "SELECT time::text AS t FROM market_data.ticks ORDER BY time");
    const bars = await rows(url, BAR_TOTALS);
    const run = await runByScheduler(url, await jobOf(url, "policy_retention", "ticks"));
    expect(run.status).toBe("Success");
    const kept = await rows<{ t: string }>(url, "SELECT time::text AS t FROM market_data.ticks ORDER BY time");
    const [line] = await rows<{ t: string }>(url, `SELECT ($1::timestamptz - INTERVAL '${TEST_VARIABLES.tickRetention}')::text AS t`, [run.startedAt]);
    // The ticks kept are exactly those at or after the policy's line (no tick is within 2 hours of it).
    const younger = ticks.filter((t) => Date.parse(t.t) >= Date.parse(line?.t as string));
    expect(younger.length).toBeGreaterThan(0);
    expect(younger.length).toBeLessThan(ticks.length);
    expect(kept).toEqual(younger);
    expect(await rows(url, BAR_TOTALS)).toEqual(bars);
  });

  /**
   * A series of every other day, 300 to 200 days ago: compressed by the policy before the re-loads. The re-load
   * file holds every one of its bars, REVISED of them with another close, and NEW bars on days between them.
   */
  const RELOAD = { symbol: "RLD", days: 100, revised: [2, 40, 42, 76, 98], fresh: [1, 3, 51, 97, 99] };
  function reloadBars(kind: "base" | "reload"): CsvBar[] {
    const bars: CsvBar[] = [];
    for (let d = 0; d < RELOAD.days; d++) {
      const present = d % 2 === 0;
      if (!present && (kind === "base" || !RELOAD.fresh.includes(d))) continue;
      const close = kind === "reload" && RELOAD.revised.includes(d) ? `${61 + d}.0625` : `${60 + d}.125`;
      const time = new Date(today.getTime() - (300 - d) * 86_400_000).toISOString().replace(".000Z", "Z");
      bars.push({ time, open: `${60 + d}.5`, high: `${63 + d}.75`, low: `${58 + d}.25`, close, volume: `${1000 + d}.5`, adj: d % 3 === 0 ? "" : `${30 + d}.03125` });
    }
    return bars;
  }
  const writeCsv = (name: string, bars: CsvBar[]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `${HEADER}\n${bars.map((b) => `${b.time},${RELOAD.symbol},1d,${b.open},${b.high},${b.low},${b.close},${b.volume},${b.adj}`).join("\n")}\n`);
    return file;
  };
  const reloadSeries = async () => (await barsAsText(url)).filter((l) => l.startsWith(`${RELOAD.symbol}|`));
  const others = async () => (await barsAsText(url)).filter((l) => !l.startsWith(`${RELOAD.symbol}|`));
  const counts = (s: LoadSummary) => ({ read: s.read, inserted: s.inserted, updated: s.updated, alreadyPresent: s.alreadyPresent, rejected: s.rejected });

  test("re-loads into compressed chunks: skip adds only the new bars, update changes exactly the changed ones, values exact", async () => {
    const base = reloadBars("base");
    const reload = reloadBars("reload");
    expect((await loadOhlcvFrom(url, { files: [writeCsv("base.csv", base)] })).inserted).toBe(base.length);
    expect((await runByScheduler(url, await jobOf(url, "policy_compression", "ohlcv_bars"))).status).toBe("Success");
    // Every chunk holding the series is compressed now (it is 200 to 300 days old).
    const holding = await rows<{ compressed: boolean }>(
      url,
      `SELECT c.is_compressed AS compressed FROM timescaledb_information.chunks c
        WHERE c.hypertable_name = 'ohlcv_bars' AND c.range_start < $2::timestamptz AND c.range_end > $1::timestamptz`,
      [base[0]?.time, base.at(-1)?.time],
    );
    expect(holding.length).toBeGreaterThan(5);
    expect(holding.every((c) => c.compressed)).toBe(true);
    const rest = await others();
    const reloadFile = writeCsv("reload.csv", reload);

    const skip = await loadOhlcvFrom(url, { files: [reloadFile], onConflict: "skip" });
    expect(counts(skip)).toEqual({ read: reload.length, inserted: RELOAD.fresh.length, updated: 0, alreadyPresent: base.length, rejected: 0 });
    const withFresh = reload.map((b) => base.find((o) => o.time === b.time) ?? b); // base values kept, new bars added
    expect(await reloadSeries()).toEqual(withFresh.map((b) => asText(RELOAD.symbol, b)));

    const update = await loadOhlcvFrom(url, { files: [reloadFile], onConflict: "update" });
    expect(await reloadSeries()).toEqual(reload.map((b) => asText(RELOAD.symbol, b)));
    expect(counts(update)).toEqual({ read: reload.length, inserted: 0, updated: RELOAD.revised.length, alreadyPresent: reload.length - RELOAD.revised.length, rejected: 0 });
    expect(await others()).toEqual(rest);
  }, 180_000);

  test("every job the migrations created ends with Success in job_stats under the scheduler, and none is in job_errors", async () => {
    const jobs = await rows<{ job_id: number; name: string }>(
      url,
      `SELECT job_id, proc_name || ' on ' || coalesce(hypertable_name, '-') AS name FROM timescaledb_information.jobs
        WHERE job_id >= 1000 ORDER BY job_id`,
    );
    // Five columnstore policies, five rollup refreshes, the tick retention.
    expect(jobs).toHaveLength(11);
    for (const job of jobs) await runByScheduler(url, job.job_id);
    const stats = await rows<{ job_id: number; status: string; failures: number }>(
      url,
      "SELECT job_id, last_run_status AS status, total_failures::int AS failures FROM timescaledb_information.job_stats WHERE job_id >= 1000 ORDER BY job_id",
    );
    expect(stats).toEqual(jobs.map((j) => ({ job_id: j.job_id, status: "Success", failures: 0 })));
    expect(await rows(url, "SELECT job_id, err_message FROM timescaledb_information.job_errors")).toEqual([]);
  }, 600_000);

  test("TimescaleDB 2.23 refuses alter_job on a hierarchical rollup's refresh policy, not on the daily one's (docs/SCHEMA.md)", async () => {
    const weekly = await jobOf(url, "policy_refresh_continuous_aggregate", "ohlcv_weekly");
    const daily = await jobOf(url, "policy_refresh_continuous_aggregate", "ohlcv_daily");
    const interval = `INTERVAL '${TEST_VARIABLES.caggRefreshInterval}'`;
    await expect(rows(url, `SELECT alter_job($1, schedule_interval => ${interval})`, [weekly])).rejects.toThrow(
      /multiple refresh policies are not supported for hierarchical continuous aggregates/,
    );
    expect(await rows(url, `SELECT schedule_interval::text AS s FROM alter_job($1, schedule_interval => ${interval})`, [daily])).toEqual([{ s: "00:20:00" }]);
  });

  test("db down over compressed hypertables does what its plan says: keeps the hypertables' rows while reverting compression, then drops what it lists", async () => {
    expect((await rows<{ n: number }>(url, "SELECT count(*)::int AS n FROM timescaledb_information.chunks WHERE is_compressed"))[0]?.n).toBeGreaterThan(0);
    const bars = await barsAsText(url);
    const runner = schemaRunner(url, { timescaledb: true });
    let plan: DownStep[] = [];
    await runner.down({ to: 4, force: false, onPlan: (steps) => (plan = steps) });
    // The plan for every migration after 0004 (newest first) names no hypertable, so none is dropped, and
    // compression is undone.
    const after4 = MIGRATION_FILES.filter((f) => f > "0005").reverse();
    expect(after4.at(-1)).toBe("0005_compression.sql");
    expect(plan.map((s) => s.file)).toEqual(after4);
    expect(plan.flatMap((s) => s.tables).filter((t) => t.hypertable)).toEqual([]);
    for (const t of plan.flatMap((s) => s.tables)) {
      expect(await rows(url, "SELECT to_regclass($1) IS NULL AS gone", [t.name]), t.name).toEqual([{ gone: true }]);
    }
    expect(await barsAsText(url)).toEqual(bars);
    expect(await rows(url, "SELECT count(*)::int AS n FROM timescaledb_information.chunks WHERE is_compressed")).toEqual([{ n: 0 }]);
    expect(await rows(url, "SELECT count(*)::int AS n FROM timescaledb_information.hypertables WHERE compression_enabled")).toEqual([{ n: 0 }]);
    expect(await rows(url, "SELECT count(*)::int AS n FROM timescaledb_information.jobs WHERE job_id >= 1000")).toEqual([{ n: 0 }]);

    // 0004 drops the hypertables: refused while they hold rows, done with force, exactly as planned.
    await expect(runner.down({ to: 3, onPlan: (steps) => (plan = steps) })).rejects.toThrow(/would drop tables that hold rows .*market_data\.ohlcv_bars.*nothing was reverted/);
    const planned = plan[0]?.tables.find((t) => t.name === "market_data.ohlcv_bars");
    expect(planned).toEqual({ name: "market_data.ohlcv_bars", rows: bars.length, hypertable: true });
    expect(await barsAsText(url)).toEqual(bars);
    await runner.down({ to: 3, force: true });
    for (const t of plan.flatMap((s) => s.tables)) {
      expect(await rows(url, "SELECT to_regclass($1) IS NULL AS gone", [t.name]), t.name).toEqual([{ gone: true }]);
    }
    expect(await rows(url, "SELECT count(*)::int AS n FROM timescaledb_information.hypertables")).toEqual([{ n: 0 }]);
  }, 120_000);
});
