/**
 * The fault suite: a real PostgreSQL 15 server (Debian's, so that Debian's pg_dump and
 * pg_restore match it) under load, migration, backup and restore, each run as its CLI in a child process, hit
 * by a server restart, a terminated backend and a SIGKILL of the CLI, and run twice at once. After each: the
 * data is either fully there or untouched, and a failed command said so in one line (no stack trace), exit 1.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { type CliResult, ROOT, type RunningCli, runCli, startCli, until } from "../fixtures/cli";
import { type Engine, startPostgresServer, startTimescaleServer } from "../fixtures/engines";
import { SAMPLE_DIR, SAMPLE_ROWS, barsAsText } from "../fixtures/loader/target";
import { rows, schemaRunner } from "../fixtures/schema";

const SQL = path.join(ROOT, "sql");
const FILES = fs.readdirSync(SQL).filter((f) => f.endsWith(".sql")).sort();
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `tsdb-fault-${name}-`));

/** A failed command: exit 1, one line on stderr, no stack trace. */
function expectOneLineFailure(r: CliResult, line: RegExp): void {
  expect(r.stderr, r.stderr).toMatch(line);
  expect(r.stderr.trim().split("\n"), r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at |Unhandled 'error' event|Node\.js v\d/);
  expect(r.code).toBe(1);
}

/** Backends of `database` (other than ours) whose query matches `like`, as pids. */
async function backends(admin: string, database: string, like: string): Promise<number[]> {
  const r = await rows<{ pid: number }>(
    admin,
    `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND query LIKE $2`,
    [database, like],
  );
  return r.map((x) => x.pid);
}

async function terminate(admin: string, pids: number[]): Promise<void> {
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) await rows(admin, `SELECT pg_terminate_backend($1)`, [pid]);
}

/**
 * SIGKILLs the CLI: `node --import tsx cli/tsdb.ts` is one process (tsx loads in it). Its own children
 * (pg_dump, pg_restore) are left to run on or die, as they would when a user's terminal kills the CLI.
 */
async function sigkill(cli: RunningCli): Promise<CliResult> {
  process.kill(cli.child.pid as number, "SIGKILL");
  return cli.done;
}

// PostgreSQL 15 for pg_dump/pg_restore 15; with native TimescaleDB (hypertables, compression, the scheduler's
// jobs) as the stack's container runs it, and without it (--no-timescaledb).
describe.each([
  { name: "native TimescaleDB (PostgreSQL 15)", start: startTimescaleServer, timescaledb: true },
  { name: "PostgreSQL 15", start: () => startPostgresServer({ major: 15 }), timescaledb: false },
])("faults on $name", ({ start, timescaledb }) => {
  let server: Engine;
  let admin: (database?: string) => string;
  /** `db up`'s flag for this engine's schema. */
  const schemaFlag = timescaledb ? [] : ["--no-timescaledb"];
  beforeAll(async () => {
    server = await start();
    admin = (database = "postgres") => server.urlFor(database);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  describe("a load", () => {
    const DB = "loads";
    let before: string[];
    beforeAll(async () => {
      await server.createDatabase(DB);
      await schemaRunner(admin(DB), { timescaledb }).up();
      const r = await runCli("data", ["load", "--url", admin(DB), "--source", path.join(SAMPLE_DIR, "csv/ohlcv.csv"), "--quiet"]);
      expect(r.code, r.stderr).toBe(0);
      before = await barsAsText(admin(DB));
      expect(before).toHaveLength(SAMPLE_ROWS);
    });

    /**
     * A load of a big file, seen mid-COPY. A regular file, not a FIFO: after a failure the loader stops reading
     * its source, and a read pending on a FIFO nobody writes to would keep any process waiting.
     */
    let bigFile = "";
    async function loadInCopy(): Promise<{ cli: RunningCli; feed: { destroy(): void } }> {
      if (!bigFile) {
        bigFile = path.join(tmp("big"), "big.csv");
        const out = fs.openSync(bigFile, "w");
        fs.writeSync(out, "date,symbol,open,high,low,close,volume\n");
        for (let s = 0; s < 40; s++) {
          let chunk = "";
          for (let i = 0; i < 15_000; i++) chunk += `${new Date(Date.UTC(1960, 0, 1) + i * 86_400_000).toISOString().slice(0, 10)},FAULT${s},1,2,1,2,3\n`;
          fs.writeSync(out, chunk);
        }
        fs.closeSync(out);
      }
      const cli = startCli("data", ["load", "--source", bigFile, "--timeframe", "1d", "--quiet"], { env: { DATABASE_URL: admin(DB) } });
      // The loader writes chunk by chunk (a COPY each, one transaction): between two chunks no COPY runs, so wait
      // until the load's session holds ROW EXCLUSIVE on the target (it has written rows, nothing is committed).
      await until("the load to have written rows into the target", async () => (await loadSessions()).length > 0);
      return { cli, feed: { destroy: () => undefined } };
    }

    /** Sessions (other than ours) with uncommitted writes to the bars: the running load's. */
    async function loadSessions(): Promise<number[]> {
      const r = await rows<{ pid: number }>(
        admin(DB),
        `SELECT DISTINCT l.pid FROM pg_locks l WHERE l.relation = 'market_data.ohlcv_bars'::regclass AND l.mode = 'RowExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()`,
      );
      return r.map((x) => x.pid);
    }

    test("a terminated backend mid-COPY: one line, exit 1, the bars untouched", async () => {
      const { cli, feed } = await loadInCopy();
      await terminate(admin(), await loadSessions());
      const r = await cli.done;
      feed.destroy();
      expectOneLineFailure(r, /^tsdb data load: connection lost during the load; nothing was committed\n$/);
      expect(await barsAsText(admin(DB))).toEqual(before);
    }, 60_000);

    test("a server restart mid-COPY: one line, exit 1, the bars untouched", async () => {
      const { cli, feed } = await loadInCopy();
      await server.restart();
      const r = await cli.done;
      feed.destroy();
      expectOneLineFailure(r, /^tsdb data load: connection lost during the load; nothing was committed\n$/);
      expect(await barsAsText(admin(DB))).toEqual(before);
    }, 60_000);

    test("a SIGKILLed load mid-COPY: the bars untouched once the server notices", async () => {
      const { cli, feed } = await loadInCopy();
      const r = await sigkill(cli);
      feed.destroy();
      expect(r.signal ?? r.code).toBeTruthy();
      await until("the killed load's backend to end", async () => (await loadSessions()).length === 0);
      expect(await barsAsText(admin(DB))).toEqual(before);
    }, 60_000);

    test("two loads of the same new file at once: both succeed and every bar is there exactly once", async () => {
      const file = path.join(tmp("twice"), "twice.csv");
      let csv = "date,symbol,open,high,low,close,volume\n";
      for (let i = 0; i < 3000; i++) csv += `${new Date(Date.UTC(2000, 0, 1) + i * 86_400_000).toISOString().slice(0, 10)},TWICE,1,2,1,2,3\n`;
      fs.writeFileSync(file, csv);
      const [a, b] = await Promise.all([1, 2].map(() => runCli("data", ["load", "--url", admin(DB), "--source", file, "--timeframe", "1d", "--quiet"])));
      expect([a?.code, b?.code], `${a?.stderr}${b?.stderr}`).toEqual([0, 0]);
      expect(await rows(admin(DB), `SELECT count(*)::int AS n FROM market_data.ohlcv_bars WHERE symbol = 'TWICE'`)).toEqual([{ n: 3000 }]);
      expect((await barsAsText(admin(DB))).filter((l) => !l.startsWith("TWICE|"))).toEqual(before);
    }, 60_000);
  });

  describe("a migration", () => {
    /** sql/ 0001-0003 and a 0004 that sleeps `seconds` inside its transaction after creating a table. */
    function slowDir(seconds: number): string {
      const dir = tmp("slow-mig");
      for (const f of FILES.slice(0, 3)) fs.copyFileSync(path.join(SQL, f), path.join(dir, f));
      fs.writeFileSync(
        path.join(dir, "0004_slow.sql"),
        `-- migrate:up\nCREATE TABLE research.slow (x int);\nSELECT pg_sleep(${seconds});\n-- migrate:down\nDROP TABLE research.slow;\n`,
      );
      return dir;
    }
    const applied = async (db: string) => (await rows<{ version: number }>(admin(db), `SELECT version FROM schema_migrations.applied ORDER BY 1`)).map((r) => r.version);
    const slowTable = async (db: string) => (await rows<{ t: string | null }>(admin(db), `SELECT to_regclass('research.slow')::text AS t`))[0]?.t;

    async function upInSlowMigration(db: string, seconds: number): Promise<RunningCli> {
      await server.createDatabase(db);
      const cli = startCli("db", ["up", ...schemaFlag, "--dir", slowDir(seconds), "--url", admin(db)]);
      await until("the slow migration to run", async () => (await backends(admin(), db, "SELECT pg_sleep(%")).length > 0);
      return cli;
    }
    const LOST = /^tsdb db up: connection lost during applying 0004_slow\.sql; nothing of it was committed; committed before it: applied 0001_schemas\.sql, applied 0002_audit\.sql, applied 0003_reference_data\.sql\n$/;

    test("a server restart mid-migration: one line naming it, exit 1, nothing of it committed", async () => {
      const cli = await upInSlowMigration("mig_restart", 60);
      await server.restart();
      expectOneLineFailure(await cli.done, LOST);
      expect(await applied("mig_restart")).toEqual([1, 2, 3]);
      expect(await slowTable("mig_restart")).toBeNull();
    }, 60_000);

    test("a terminated backend mid-migration: one line naming it, exit 1, nothing of it committed", async () => {
      const cli = await upInSlowMigration("mig_terminate", 60);
      await terminate(admin(), await backends(admin(), "mig_terminate", "SELECT pg_sleep(%"));
      expectOneLineFailure(await cli.done, LOST);
      expect(await applied("mig_terminate")).toEqual([1, 2, 3]);
      expect(await slowTable("mig_terminate")).toBeNull();
    }, 60_000);

    test("a SIGKILLed db up mid-migration: nothing of it committed, and the next up runs (no lock left behind)", async () => {
      const cli = await upInSlowMigration("mig_kill", 2);
      await sigkill(cli);
      await until("the killed run's backend to end", async () => (await backends(admin(), "mig_kill", "SELECT pg_sleep(%")).length === 0);
      expect(await applied("mig_kill")).toEqual([1, 2, 3]);
      expect(await slowTable("mig_kill")).toBeNull();
      const again = await runCli("db", ["up", ...schemaFlag, "--lock-timeout", "5", "--url", admin("mig_kill")]);
      expect(again.stderr).toBe("");
      expect(await applied("mig_kill")).toHaveLength(FILES.length);
    }, 60_000);

    test("two db up at once: both succeed and each migration is applied exactly once", async () => {
      await server.createDatabase("mig_twice");
      const both = await Promise.all([1, 2].map(() => runCli("db", ["up", ...schemaFlag, "--url", admin("mig_twice")])));
      expect(both.map((r) => [r.code, r.stderr])).toEqual([[0, ""], [0, ""]]);
      const lines = both.flatMap((r) => r.stdout.split("\n").filter((l) => l.startsWith("applied ")));
      expect(lines.sort()).toEqual(FILES.map((f) => `applied ${f}`));
      expect(await applied("mig_twice")).toHaveLength(FILES.length);
    }, 60_000);
  });

  describe("a backup and a restore", () => {
    const DB = "market";
    let backupDir: string;
    let manifest: string;
    const counts = async (db: string) =>
      rows(admin(db), `SELECT (SELECT count(*)::int FROM market_data.ohlcv_bars) AS bars, (SELECT count(*)::int FROM reference_data.tickers) AS tickers`);
    const files = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

    beforeAll(async () => {
      await server.createDatabase(DB);
      await schemaRunner(admin(DB), { timescaledb }).up();
      // Enough bars that pg_restore is seen at work (a second or more).
      await withClient(admin(DB), (c) =>
        c.query(`INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
                 SELECT 'S' || (g % 50), 'X', 'p', '1m', timestamptz '2020-01-01' + (g / 50) * interval '1 minute', 1, 2, 1, 2, 3
                   FROM generate_series(0, 399999) g`),
      );
      await withClient(admin(DB), (c) => c.query(`INSERT INTO reference_data.tickers (ticker, region, name) VALUES ('S1', 'US', 'One')`));
      backupDir = tmp("backups");
      const r = await runCli("backup", ["--url", admin(DB), "--dir", backupDir]);
      expect(r.code, r.stderr).toBe(0);
      manifest = path.join(backupDir, files(backupDir).find((f) => f.endsWith(".manifest.json")) as string);
    }, 120_000);

    /** A backup started while a table is locked, so it waits (in its own session or pg_dump's) until the fault. */
    async function backupWaiting(dir: string): Promise<{ cli: RunningCli; release: () => Promise<void> }> {
      const pg = (await import("pg")).default;
      const holder = new pg.Client({ connectionString: admin(DB) });
      holder.on("error", () => undefined);
      await holder.connect();
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE reference_data.tickers IN ACCESS EXCLUSIVE MODE");
      const cli = startCli("backup", ["--url", admin(DB), "--dir", dir]);
      await until("the backup to wait for the lock", async () => {
        const r = await rows(admin(), `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [DB]);
        return r.length > 0;
      });
      return { cli, release: () => holder.end().catch(() => undefined) };
    }
    const waiting = async () => (await rows<{ pid: number }>(admin(), `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [DB])).map((r) => r.pid);

    test("a terminated backend mid-backup: one line, exit 1, no backup written", async () => {
      const dir = tmp("b-term");
      const { cli, release } = await backupWaiting(dir);
      await terminate(admin(), await waiting());
      const r = await cli.done;
      await release();
      expectOneLineFailure(r, /^tsdb backup: connection lost during the backup; no backup was written\n$/);
      expect(files(dir)).toEqual([]);
    }, 60_000);

    test("a server restart mid-backup: one line, exit 1, no backup written", async () => {
      const dir = tmp("b-restart");
      const { cli, release } = await backupWaiting(dir);
      await server.restart();
      const r = await cli.done;
      await release();
      expectOneLineFailure(r, /^tsdb backup: connection lost during the backup; no backup was written\n$/);
      expect(files(dir)).toEqual([]);
    }, 60_000);

    test("a SIGKILLed backup: no backup (manifest) is left that a restore would pick", async () => {
      const dir = tmp("b-kill");
      const { cli, release } = await backupWaiting(dir);
      await sigkill(cli);
      await release();
      // pg_dump, if it was running, loses its snapshot's exporter and stops; give it time to finish either way.
      // Client sessions only: TimescaleDB's scheduler keeps a background worker in every database with jobs.
      await until("no backup session left", async () => (await rows(admin(), `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`, [DB])).length === 0);
      expect(files(dir).filter((f) => f.endsWith(".manifest.json") || f.endsWith(".dump"))).toEqual([]);
    }, 60_000);

    test("two backups at once: both complete, each with its own manifest and dump", async () => {
      const dir = tmp("b-twice");
      const both = await Promise.all([1, 2].map(() => runCli("backup", ["--url", admin(DB), "--dir", dir])));
      expect(both.map((r) => [r.code, r.stderr])).toEqual([[0, ""], [0, ""]]);
      expect(files(dir).filter((f) => f.endsWith(".manifest.json"))).toHaveLength(2);
      expect(files(dir).filter((f) => f.endsWith(".dump"))).toHaveLength(2);
    }, 120_000);

    /** The staging database a restore into `target` loads first (lib/ops/restore.ts: `<target>_restore_<time>`), if any. */
    async function stagingOf(target: string): Promise<string | undefined> {
      const found = await rows<{ datname: string }>(admin(), `SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${target}\\_restore\\_%`]);
      return found[0]?.datname;
    }
    /** A restore into `target`, caught while pg_restore copies the bars (into the staging database). */
    async function restoreInCopy(target: string): Promise<{ cli: RunningCli; staging: string }> {
      const cli = startCli("restore", ["--url", admin(), "--backup", manifest, "--database", target, "--local-client"]);
      let staging: string | undefined;
      await until("pg_restore to copy the bars", async () => {
        staging = await stagingOf(target);
        // A hypertable's rows are dumped, and restored, as its chunks' tables.
        return staging !== undefined && (await backends(admin(), staging, timescaledb ? "COPY _timescaledb_internal._hyper_%" : "COPY market_data.ohlcv_bars%")).length > 0;
      }, 60_000);
      return { cli, staging: staging as string };
    }
    /** The target after a failed restore: absent, or without any table (nothing of the restore committed). */
    async function expectNothingRestored(target: string): Promise<void> {
      const exists = await rows(admin(), `SELECT 1 FROM pg_database WHERE datname = $1`, [target]);
      if (exists.length === 0) return;
      expect(await rows(admin(target), `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema IN ('market_data','reference_data','trading','research','audit','schema_migrations')`)).toEqual([]);
    }

    test("a terminated backend mid-restore: one line, exit 1, nothing restored", async () => {
      const { cli, staging } = await restoreInCopy("r_term");
      await terminate(admin(), await backends(admin(), staging, "COPY%"));
      expectOneLineFailure(await cli.done, /^tsdb restore: /);
      await expectNothingRestored("r_term");
      expect(await stagingOf("r_term")).toBeUndefined();
    }, 120_000);

    test("a server restart mid-restore: one line, exit 1, nothing restored", async () => {
      const { cli } = await restoreInCopy("r_restart");
      await server.restart();
      expectOneLineFailure(await cli.done, /^tsdb restore: /);
      await expectNothingRestored("r_restart");
    }, 120_000);

    test("a SIGKILLed restore: once pg_restore is gone, the target holds all of the backup or nothing of it", async () => {
      const { cli, staging } = await restoreInCopy("r_kill");
      await sigkill(cli);
      // pg_restore is a child of the killed CLI; it may run on to its end (one transaction) or die with it.
      // Either way it wrote into the staging database: the target is only ever renamed into place whole.
      await until("pg_restore to end", async () => (await backends(admin(), staging, "%")).length === 0, 60_000);
      await expectNothingRestored("r_kill");
    }, 120_000);

    test("two restores at once: into two databases both complete; into the same one, one wins and the other fails in one line", async () => {
      const both = await Promise.all(["r_a", "r_b"].map((d) => runCli("restore", ["--url", admin(), "--backup", manifest, "--database", d, "--local-client"])));
      expect(both.map((r) => [r.code, r.stderr])).toEqual([[0, ""], [0, ""]]);
      expect(await counts("r_a")).toEqual(await counts(DB));
      expect(await counts("r_b")).toEqual(await counts(DB));
      const same = await Promise.all([1, 2].map(() => runCli("restore", ["--url", admin(), "--backup", manifest, "--database", "r_same", "--local-client"])));
      expect(same.map((r) => r.code).sort()).toEqual([0, 1]);
      const failed = same.find((r) => r.code === 1) as CliResult;
      expectOneLineFailure(failed, /^tsdb restore: /);
      expect(await counts("r_same")).toEqual(await counts(DB));
    }, 180_000);
  });
});
