/**
 * A load killed in the middle (SIGKILL after it has written rows, no cleanup of any kind) leaves the target as
 * it was.
 * Native PostgreSQL 17 only: it needs a second connection to watch the first, which the one-connection
 * TimescaleDB test engine cannot give.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Engine, startPostgresServer } from "../fixtures/engines";
import { SAMPLE_DIR, SAMPLE_ROWS, barsAsText, countBars, migrate } from "../fixtures/loader/target";
import { rows } from "../fixtures/schema";

const ROOT = path.resolve(__dirname, "../..");

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function runData(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "scripts/data.ts", ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
}

describe("a killed load", () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startPostgresServer();
    await migrate(engine.url, false);
  });
  afterAll(async () => {
    await engine?.stop();
  });

  test("SIGKILL in the middle of a load that has written rows leaves the target unchanged, and the next load works", async () => {
    const cli = runData(["load", "--url", engine.url, "--source", path.join(SAMPLE_DIR, "csv/ohlcv.csv"), "--quiet"]);
    const code = await new Promise((resolve) => cli.on("exit", resolve));
    expect(code).toBe(0);
    const before = await barsAsText(engine.url);
    expect(before).toHaveLength(SAMPLE_ROWS);

    // A FIFO as the source: the load can never reach its end, so the kill surely lands mid-COPY.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-kill-"));
    const fifo = path.join(dir, "feed.csv");
    execFileSync("mkfifo", [fifo]);
    const child = runData(["load", "--source", fifo, "--timeframe", "1d", "--quiet"], { DATABASE_URL: engine.url });
    const feed = fs.createWriteStream(fifo);
    feed.on("error", () => undefined);
    feed.write("date,symbol,open,high,low,close,volume\n");
    const day = Date.UTC(1990, 0, 1);
    let chunk = "";
    for (let i = 0; i < 50_000; i++) chunk += `${new Date(day + i * 86_400_000).toISOString().slice(0, 10)},KILL,1,2,1,2,3\n`;
    feed.write(chunk);
    // The load writes in chunks (a COPY per chunk, all in one transaction): once it holds ROW EXCLUSIVE on the
    // target, a COPY has written into it, and the transaction is still open (the FIFO never ends).
    await until("the load to have written rows into the target", async () => {
      const r = await rows<{ n: string }>(
        engine.url,
        `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.relation = 'market_data.ohlcv_bars'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted AND a.pid <> pg_backend_pid()`,
      );
      return Number(r[0]?.n) > 0;
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.on("exit", resolve));
    feed.destroy();
    await until("the killed session to end", async () => {
      const r = await rows<{ n: string }>(
        engine.url,
        "SELECT count(*) AS n FROM pg_locks WHERE relation = 'market_data.ohlcv_bars'::regclass AND mode = 'RowExclusiveLock'",
      );
      return Number(r[0]?.n) === 0;
    });

    expect(await barsAsText(engine.url)).toEqual(before);
    const again = runData(["load", "--url", engine.url, "--source", path.join(SAMPLE_DIR, "csv/ohlcv.csv"), "--quiet"]);
    let out = "";
    again.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    expect(await new Promise((resolve) => again.on("exit", resolve))).toBe(0);
    expect(out).toContain("nothing new");
    expect(await countBars(engine.url)).toBe(SAMPLE_ROWS);
  });

  test("the CLI exits non-zero with a one-line reason", async () => {
    const child = runData(["load", "--url", engine.url, "--source", "/nonexistent/x.csv"]);
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(1);
    expect(err).toBe("tsdb data load: --source /nonexistent/x.csv does not exist.\n");
  });
});
