/**
 * `tsdb db` (npm run db) end to end with the real sql/: on TimescaleDB, up creates every hypertable, policy and
 * continuous aggregate, down --to 0 removes them, up restores them, status shows none pending; the same on
 * PostgreSQL 17 with --no-timescaledb. Plus the CLI's own contract: exit codes and one-line reasons.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { readMigrationsDir } from "../../lib/migrations/file";
import { type CliResult, tsdbAsync } from "../fixtures/cli";
import { type Engine, startPostgresServer, startTimescaleEngine } from "../fixtures/engines";

const ROOT = path.join(__dirname, "../..");
const FILES = readMigrationsDir(path.join(ROOT, "sql")).map((f) => f.file);

/** `tsdb db ...args` in a child process, DATABASE_URL empty unless `env` sets it. */
function db(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return tsdbAsync(["db", ...args], { DATABASE_URL: "", ...env });
}

async function one<T>(url: string, sql: string): Promise<T> {
  return withClient(url, async (c) => (await c.query(sql)).rows[0] as T);
}

describe("tsdb db on TimescaleDB with the real sql/", () => {
  let tsdb: Engine;
  beforeAll(async () => {
    tsdb = await startTimescaleEngine();
  });
  afterAll(async () => {
    await tsdb?.stop();
  });
  const counts = `SELECT
      (SELECT count(*)::int FROM timescaledb_information.hypertables) AS hypertables,
      (SELECT count(*)::int FROM timescaledb_information.continuous_aggregates) AS caggs,
      (SELECT count(*)::int FROM timescaledb_information.jobs WHERE job_id >= 1000) AS policies,
      (SELECT count(*)::int FROM pg_tables WHERE schemaname IN ('market_data','reference_data','trading','research','audit')) AS tables`;

  test("plan, up, status, down --to 0, up again", async () => {
    const plan = await db(["plan", "--url", tsdb.url]);
    expect(plan.code).toBe(0);
    expect(plan.stdout.match(/^-- apply \S+/gm)).toEqual(FILES.map((f) => `-- apply ${f}`));
    expect(plan.stdout).toContain("create_hypertable");

    const up = await db(["up"], { DATABASE_URL: tsdb.url });
    expect(up).toMatchObject({ code: 0, stderr: "" });
    expect(up.stdout.trim().split("\n")).toEqual(FILES.map((f) => `applied ${f}`));
    const built = await one<{ hypertables: number; caggs: number; policies: number; tables: number }>(tsdb.url, counts);
    expect(built.caggs).toBe(5);
    expect(built.hypertables).toBeGreaterThanOrEqual(2);
    expect(built.policies).toBeGreaterThanOrEqual(6); // compression + 5 refresh policies (+ retention on dev)

    const status = await db(["status", "--url", tsdb.url]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^VERSION\s+FILE\s+STATE\s+APPLIED AT\s+BY\s+MS$/m);
    expect(status.stdout).toContain(`${FILES.length} applied, 0 pending`);
    const json = JSON.parse((await db(["status", "--json", "--url", tsdb.url])).stdout) as { state: string }[];
    expect(json.map((s) => s.state)).toEqual(FILES.map(() => "applied"));

    const downPlan = await db(["plan", "--down", "--to", "0", "--url", tsdb.url]);
    expect(downPlan.stdout.match(/^-- revert \S+/gm)).toEqual([...FILES].reverse().map((f) => `-- revert ${f}`));

    const down = await db(["down", "--to", "0", "--url", tsdb.url]);
    expect(down.code).toBe(0);
    expect(down.stdout.match(/^reverted .*/gm)).toEqual([...FILES].reverse().map((f) => `reverted ${f}`));
    expect(await one(tsdb.url, counts)).toEqual({ hypertables: 0, caggs: 0, policies: 0, tables: 0 });

    expect((await db(["up", "--url", tsdb.url])).code).toBe(0);
    expect(await one(tsdb.url, counts)).toEqual(built);
    expect((await db(["up", "--url", tsdb.url])).stdout).toBe("Nothing applied.\n");
    expect((await db(["plan", "--url", tsdb.url])).stdout).toBe("Nothing to apply: the database is up to date.\n");
  });

  test("down and up with --no-timescaledb on the TimescaleDB database are one line saying what to pass, and revert nothing", async () => {
    const before = await one<{ n: number }>(tsdb.url, "SELECT count(*)::int AS n FROM schema_migrations.applied");
    expect(before.n).toBe(FILES.length);
    for (const command of [["down", "--to", "0"], ["up"]]) {
      const r = await db([...command, "--no-timescaledb", "--url", tsdb.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `tsdb db ${command[0]}: This database was migrated with TimescaleDB, but this run is for vanilla PostgreSQL; nothing was changed: ` +
          "run without --no-timescaledb with a stack whose tsdb:timescaledb is true.\n",
      );
    }
    expect(await one(tsdb.url, "SELECT count(*)::int AS n FROM schema_migrations.applied")).toEqual(before);
  });
});

describe("tsdb db on PostgreSQL 17 with --no-timescaledb", () => {
  let pg: Engine;
  beforeAll(async () => {
    pg = await startPostgresServer();
  });
  afterAll(async () => {
    await pg?.stop();
  });

  test("up makes plain tables and materialized views; down --to 0 and up again work", async () => {
    const url = await pg.createDatabase("vanilla_cli");
    const views = `SELECT count(*)::int AS n FROM pg_matviews WHERE schemaname = 'market_data'`;
    expect((await db(["up", "--no-timescaledb", "--url", url])).code).toBe(0);
    expect(await one(url, views)).toEqual({ n: 5 });
    expect((await db(["down", "--to", "0", "--no-timescaledb", "--url", url])).code).toBe(0);
    expect(await one(url, views)).toEqual({ n: 0 });
    expect((await db(["up", "--no-timescaledb", "--url", url])).code).toBe(0);
    expect((await db(["status", "--no-timescaledb", "--url", url])).stdout).toContain(`${FILES.length} applied, 0 pending`);
  });

  test("as the migrator without --role, objects are owned by <database>_owner from the stack settings", async () => {
    // The dev stack's database is `market`, so the default role is market_owner.
    const url = await pg.createDatabase("market");
    await withClient(url, async (c) => {
      await c.query("CREATE ROLE market_owner NOLOGIN");
      await c.query("CREATE ROLE market_migrator LOGIN PASSWORD 'mig' IN ROLE market_owner");
      await c.query("ALTER DATABASE market OWNER TO market_owner");
    });
    const r = await db(["up", "--no-timescaledb", "--url", pg.urlFor("market", "market_migrator", "mig")]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    const owners = await withClient(url, async (c) =>
      (await c.query("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('market_data','trading','schema_migrations')")).rows,
    );
    expect(owners).toEqual([{ tableowner: "market_owner" }]);
    const by = await one(url, "SELECT DISTINCT applied_by FROM schema_migrations.applied");
    expect(by).toEqual({ applied_by: "market_migrator" });
  });

  test("a wrong password is exit 1 with a one-line reason that does not echo the URL", async () => {
    const url = pg.urlFor("postgres", "postgres", "not-the-password");
    const r = await db(["status", "--url", url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tsdb db status: password authentication failed for user "postgres", check the user and password in --url (or PGPASSWORD)\n');
  });
});

describe("tsdb db argument errors (exit 2: one line naming the problem, then the usage)", () => {
  test.each([
    [["up"], "tsdb db up: no database: pass --url (a postgresql://user@host:port/database URL or libpq key=value pairs (host=... port=... dbname=... user=...)) or set DATABASE_URL or PGHOST/PGDATABASE"],
    [["down", "--url", "postgresql://x@127.0.0.1:1/x"], "tsdb db down: required option '--to <version>' not specified (use --to 0 to revert everything)"],
    [["up", "--to", "latest", "--url", "postgresql://x@127.0.0.1:1/x"], "tsdb db up: option '--to <version>' argument 'latest' is invalid. --to must be a version number such as 3 or 0003 (0 = none applied)."],
    [["migrate"], "tsdb db: unknown command 'migrate'; the commands are plan, up, down, roles, status"],
    [["up", "--force"], "tsdb db up: unknown option '--force'"],
  ])("%j exits 2", async (args, message) => {
    const r = await db(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(message);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(2);
    expect(r.stderr.split("\n")[1]).toMatch(/^Usage: tsdb db/);
  });

  test("an unknown stack is a runtime failure naming the missing file, exit 1", async () => {
    const r = await db(["up", "--stack", "staging", "--url", "postgresql://x@127.0.0.1:1/x"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tsdb db up: .*Pulumi\.staging\.yaml does not exist/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("--help prints usage and exits 0; tsdb db alone lists the subcommands", async () => {
    const r = await db(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: tsdb db \[options\] \[command\]/);
    expect((await db([])).stdout).toBe(r.stdout);
  });
});
