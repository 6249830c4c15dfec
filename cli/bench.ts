/**
 * `tsdb bench load|migrations|queries|cli`: the benchmarks behind bench/*.md (scripts/bench-*.ts). They start
 * the test engines (test/fixtures/engines.ts), so they need the repository's sources and dev dependencies
 * (`npm ci` in a clone); they run from the TypeScript sources through tsx, outside the compiled binary.
 */
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { type Act, UsageError, asGroup, examples, packageRoot, wholeNumber } from "./conventions";

/** Loads scripts/<name>.ts; without the sources or dev dependencies (a global install) says what to do instead. */
async function load<T>(name: "bench-load" | "bench-migrations" | "bench-queries" | "bench-cli"): Promise<T> {
  try {
    // Registered for the whole process, not scoped to one import (tsImport): the loader opens its readers with
    // `import("./sources/csv.js")`, which only a process-wide tsx maps to the .ts source.
    (await import("tsx/esm/api")).register();
    (await import("tsx/cjs/api")).register();
    return (await import(pathToFileURL(path.join(packageRoot(), "scripts", `${name}.ts`)).href)) as T;
  } catch (err) {
    if ((err as { code?: string }).code === "MODULE_NOT_FOUND" || (err as { code?: string }).code === "ERR_MODULE_NOT_FOUND") {
      throw new Error(`the benchmarks need the repository's dev dependencies (${(err as Error).message.split("\n")[0]}); run them from a clone after \`npm ci\``);
    }
    throw err;
  }
}

export function registerBench(program: Command, act: Act): void {
  const bench = asGroup(program.command("bench").description("benchmarks that write bench/*.md (need a clone with dev dependencies)"));
  examples(bench, "tsdb bench cli --runs 20", "tsdb bench load --rows 100000 --repeat 1 --scale-rows 0 --out /tmp/load.md");

  examples(
    bench
      .command("load")
      .description("loader vs psql \\copy and the DBA's SQL on a native TimescaleDB hypertable: CSV, Parquet and SQLite into an empty hypertable, after earlier bars (compressed or not), beside other series, as an overlapping re-load, and one large CSV for scaling; writes bench/load.md")
      .option("--rows <n>", "bars to generate (50 symbols)", wholeNumber("--rows", 1000), 1_000_000)
      .option("--repeat <n>", "interleaved rounds (the median is reported)", wholeNumber("--repeat", 1), 3)
      .option("--scale-rows <n>", "bars of the one-off scaling run (0: none)", wholeNumber("--scale-rows", 0), 10_000_000)
      .option("--out <file>", "report file (default: bench/load.md)"),
    "tsdb bench load --rows 100000 --repeat 1 --scale-rows 0 --out /tmp/load.md",
  ).action(
    act<{ rows: number; repeat: number; scaleRows: number; out?: string }>(async (o) => {
      await (await load<typeof import("../scripts/bench-load.js")>("bench-load")).runLoadBench(o);
    }),
  );

  examples(
    bench
      .command("migrations")
      .description("p50/p95 of a no-op `up` and `plan` with the real sql/, in process; prints (and with --out writes) the report")
      .option("--runs <n>", "timed runs after one warm-up", wholeNumber("--runs", 1), 50)
      .option("--out <file>", "also write the report here (e.g. bench/migrations.md)"),
    "tsdb bench migrations --runs 50 --out bench/migrations.md",
  ).action(act<{ runs: number; out?: string }>(async (o) => (await load<typeof import("../scripts/bench-migrations.js")>("bench-migrations")).runMigrationsBench(o)));

  examples(
    bench
      .command("queries")
      .description("the runbook's five queries on PostgreSQL 17, native TimescaleDB and the PGlite TimescaleDB engine, and at --scale-rows bars on native TimescaleDB; writes bench/queries.md")
      .option("--runs <n>", "timed runs per query", wholeNumber("--runs", 1), 50)
      .option("--years <n>", "years of daily bars (at least 10)", wholeNumber("--years", 10), 15)
      .option("--symbols <n>", "symbols with daily bars", wholeNumber("--symbols", 1), 20)
      .option("--hourly-symbols <n>", "symbols with hourly bars", wholeNumber("--hourly-symbols", 1), 5)
      .option("--hourly-years <n>", "years of hourly bars", wholeNumber("--hourly-years", 1), 3)
      .option("--scale-rows <n>", "bars of the scaling run on native TimescaleDB (0: none)", wholeNumber("--scale-rows", 0), 10_000_000)
      .option("--out <file>", "report file", "bench/queries.md"),
    "tsdb bench queries --runs 20 --scale-rows 0",
  ).action(
    act<{ runs: number; years: number; symbols: number; hourlySymbols: number; hourlyYears: number; scaleRows: number; out: string }>(async (o) => {
      if (o.hourlySymbols > o.symbols) throw new UsageError("--hourly-symbols cannot exceed --symbols");
      await (await load<typeof import("../scripts/bench-queries.js")>("bench-queries")).runQueriesBench(o);
    }),
  );

  examples(
    bench
      .command("cli")
      .description("start-up wall time of tsdb db status and a no-op db up vs bare `node -e 0`; writes bench/cli-start.md")
      .option("--runs <n>", "interleaved runs of each command", wholeNumber("--runs", 1), 20)
      .option("--out <file>", "report file", "bench/cli-start.md"),
    "tsdb bench cli --runs 20",
  ).action(act<{ runs: number; out: string }>(async (o) => (await load<typeof import("../scripts/bench-cli.js")>("bench-cli")).runCliBench(o)));
}
