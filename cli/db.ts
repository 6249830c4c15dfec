/**
 * `tsdb db plan|up|down|status`: the migration runner (lib/migrations/runner.ts) for people and CI; `tsdb db
 * roles`: the stack's roles and grants on a server of your own (lib/ops/ownServerAccess.ts).
 * The database comes from --url or DATABASE_URL (or the PG* variables), and so do the roles' names
 * (`<database>_owner`, ...). Settings (mode and `{{variables}}`) are the project's defaults (Pulumi.yaml), or
 * with --stack that stack's (Pulumi.<stack>.yaml), which must then be for the same database: a server of your
 * own never silently takes another stack's settings.
 */
import * as path from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { MigrationStatus, PlannedMigration } from "../lib/migrations/runner";
import { type Act, type Context, UsageError, asGroup, examples, packageRoot, parseConnection, projectRoot, requireUrl, urlOption } from "./conventions";

interface DbOptions {
  url?: string;
  to?: number;
  down?: boolean;
  stack?: string;
  timescaledb: boolean;
  role?: string;
  dir?: string;
  json?: boolean;
  force?: boolean;
  lockTimeout?: number;
}

function parseSeconds(raw: string): number {
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new InvalidArgumentError(`--lock-timeout must be a number of seconds such as 60, got ${JSON.stringify(raw)}.`);
  return Number(raw);
}

function parseTarget(raw: string): number {
  if (!/^\d+$/.test(raw)) throw new InvalidArgumentError("--to must be a version number such as 3 or 0003 (0 = none applied).");
  return Number(raw);
}

export function formatStatus(lines: MigrationStatus[]): string {
  const rows = [
    ["VERSION", "FILE", "STATE", "APPLIED AT", "BY", "MS"],
    ...lines.map((l) => [
      String(l.version).padStart(4, "0"),
      l.file,
      l.state,
      l.appliedAt ? l.appliedAt.toISOString() : "",
      l.appliedBy ?? "",
      l.durationMs === undefined ? "" : String(l.durationMs),
    ]),
  ];
  const widths = rows[0]!.map((_c, k) => Math.max(...rows.map((r) => (r[k] ?? "").length)));
  const pending = lines.filter((l) => l.state === "pending").length;
  const table = rows.map((r) => r.map((c, k) => c.padEnd(widths[k] ?? 0)).join("  ").trimEnd()).join("\n");
  return `${table}\n\n${lines.filter((l) => l.state === "applied").length} applied, ${pending} pending` +
    `${lines.some((l) => l.state === "changed") ? ", CHANGED files present (see above)" : ""}` +
    `${lines.some((l) => l.state === "missing") ? ", applied versions MISSING their file" : ""}`;
}

export function formatPlan(steps: PlannedMigration[], direction: "up" | "down"): string {
  if (steps.length === 0) return direction === "up" ? "Nothing to apply: the database is up to date." : "Nothing to revert.";
  return steps
    .map((s) => `-- ${s.action} ${s.file}\n${s.sql.replace(/\n{3,}/g, "\n\n").trim()}\n`)
    .join("\n");
}

/**
 * Settings for a command on `url`'s database: with --stack, that stack's (refused when it is for another
 * database); without, the project's defaults with the connection's database, so roles are `<database>_owner`...
 */
export async function settingsFor(stack: string | undefined, url: string) {
  const { defaultSettings, readStackSettings } = await import("../lib/settings.js");
  const database = parseConnection(url).database;
  if (stack === undefined) return { ...defaultSettings(), database, stack: "(none: project defaults)" };
  const settings = readStackSettings(projectRoot(), stack);
  if (settings.database !== database) {
    throw new UsageError(`--stack ${stack} is for database ${settings.database}, but the connection is to ${database}; leave out --stack for a server of your own (the database and roles then come from the connection)`);
  }
  return settings;
}

/** The runner and the settings for these flags (see settingsFor), migrations from --dir or sql/. */
async function runnerFor(o: DbOptions) {
  const url = requireUrl(o.url);
  const [{ MigrationRunner }, { migrationVariables }] = await Promise.all([import("../lib/migrations/runner.js"), import("../lib/settings.js")]);
  const settings = await settingsFor(o.stack, url);
  const runner = new MigrationRunner({
    connection: url,
    migrations: o.dir ? path.resolve(o.dir) : path.join(packageRoot(), "sql"),
    timescaledb: settings.timescaledb && o.timescaledb,
    variables: migrationVariables(settings),
    role: o.role,
    // Without --stack the owner comes from the connection: <database>_owner, else who owns what earlier runs
    // made (schema_migrations), else the database's owner (lib/migrations/runner.ts).
    defaultRole: `${settings.database}_owner`,
    ownerFromDatabase: o.stack === undefined,
    lockTimeoutMs: o.lockTimeout === undefined ? undefined : o.lockTimeout * 1000,
  });
  return { runner, settings };
}

/** The flags every db subcommand takes. */
function connectionFlags(cmd: Command): Command {
  return cmd
    .addOption(urlOption())
    .option("--stack <name>", "take settings from this stack (Pulumi.<name>.yaml), which must be for the connection's database (default: the project's defaults)")
    .option("--no-timescaledb", "vanilla PostgreSQL: plain tables and materialized views (default: TimescaleDB, or the stack's tsdb:timescaledb)")
    .option("--role <role>", "SET ROLE after connecting, so objects are owned by ROLE (default: <database>_owner when it exists and the login may use it)")
    .option("--dir <dir>", "migrations directory (default: this package's sql/)")
    .addOption(
      new Option("--lock-timeout <seconds>", "give up waiting for the migration lock (or a lock a migration needs) after SECONDS, naming the session holding it (default: 60)").argParser(parseSeconds),
    )
    .option("--json", "print the result as JSON");
}

async function plan(o: DbOptions, ctx: Context): Promise<void> {
  const direction = o.down ? "down" : "up";
  if (direction === "down" && o.to === undefined) throw new UsageError("plan --down needs --to VERSION");
  const { runner } = await runnerFor(o);
  const steps = await runner.plan({ to: o.to, direction });
  if (o.json) return ctx.json(steps);
  const { formatDownPlan } = await import("../lib/migrations/downPlan.js");
  if (direction === "down" && steps.length > 0) ctx.print(`${formatDownPlan(await runner.downPlan({ to: o.to as number })).join("\n")}\n`);
  ctx.print(formatPlan(steps, direction));
}

async function move(command: "up" | "down", o: DbOptions, ctx: Context): Promise<void> {
  const { runner, settings } = await runnerFor(o);
  const { formatDownPlan } = await import("../lib/migrations/downPlan.js");
  const outcome =
    command === "up"
      ? await runner.up({ to: o.to })
      : await runner.down({
          to: o.to as number,
          protectData: settings.protectData,
          force: o.force ?? false,
          action: o.stack === undefined ? `db down --to ${o.to}` : `db down --to ${o.to} (stack ${o.stack})`,
          // Every down first prints what it drops, with row counts (docs/OPERATIONS.md).
          onPlan: (steps) => {
            if (!o.json) ctx.print(steps.length === 0 ? "Nothing to revert." : formatDownPlan(steps).join("\n"));
          },
        });
  if (o.json) return ctx.json(outcome);
  const done = command === "up" ? outcome.applied : outcome.reverted;
  const verb = command === "up" ? "applied" : "reverted";
  ctx.print(done.length === 0 ? `Nothing ${verb}.` : done.map((f) => `${verb} ${f}`).join("\n"));
}

async function status(o: DbOptions, ctx: Context): Promise<void> {
  const lines = await (await runnerFor(o)).runner.status();
  if (o.json) ctx.json(lines);
  else ctx.print(formatStatus(lines));
}

interface RolesOptions {
  url?: string;
  stack?: string;
  timescaledb: boolean;
  connectRole: string[];
  json?: boolean;
}

/** `tsdb db roles`: the stack's roles and grants on a server of your own (lib/ops/ownServerAccess.ts). */
async function roles(o: RolesOptions, ctx: Context): Promise<void> {
  const url = requireUrl(o.url);
  const settings = await settingsFor(o.stack, url);
  const [{ withClient }, { applyOwnServerAccess }] = await Promise.all([import("../lib/db.js"), import("../lib/ops/ownServerAccess.js")]);
  const result = await withClient(url, (admin) =>
    applyOwnServerAccess(admin, {
      database: settings.database,
      timescaledb: settings.timescaledb && o.timescaledb,
      connectionLimits: { migrator: settings.migratorConnectionLimit, app: settings.appConnectionLimit, readonly: settings.readonlyConnectionLimit },
      connectRoles: [...settings.connectRoles, ...o.connectRole],
      env: ctx.io.env,
    }),
  );
  const connect = result.plan.databaseGrants.filter((g) => g.privileges.includes("CONNECT")).map((g) => g.role);
  if (o.json) return ctx.json({ database: settings.database, createdExtension: result.createdExtension, created: result.created, updated: result.updated, passwords: result.passwords, connect, jobApi: result.jobApi?.status ?? null });
  ctx.print(
    [
      `Roles of ${settings.database}: ${result.created.length ? `created ${result.created.join(", ")}` : "none created"}${result.updated.length ? `; already there: ${result.updated.join(", ")}` : ""}.`,
      `CONNECT on ${settings.database}: ${connect.join(", ")} (PUBLIC has none).`,
      ...(result.createdExtension ? [`Created the timescaledb extension in ${settings.database}.`] : []),
      ...(result.jobApi?.status === "restricted" ? [`TimescaleDB jobs (add_job, alter_job, delete_job, run_job): ${result.plan.owner} only (PUBLIC has none).`] : []),
      ...(result.jobApi?.status === "not-owner" ? [`WARN TimescaleDB jobs: any role may still schedule them: ${result.jobApi.detail}.`] : []),
      ...result.passwords.map((p) => `Password of ${p.role}: ${p.from === "environment" ? "from the environment" : "generated, not shown"}.`),
    ].join("\n"),
  );
  ctx.info(`Next: \`tsdb env --url <this URL> --role migrator --out .env.migrator\`, then \`tsdb db up\` as that role (set -a; . ./.env.migrator); apps: \`tsdb env --url <this URL> --role app\`.`);
}

export function registerDb(program: Command, act: Act): void {
  const db = asGroup(program.command("db").description("apply, revert and inspect the versioned migrations in sql/"));
  examples(
    db,
    "tsdb db status --url postgresql://postgres@127.0.0.1:5432/market",
    "tsdb db plan && tsdb db up          # DATABASE_URL from the environment",
    "tsdb db down --to 3 --url postgresql://postgres@127.0.0.1:5432/market",
  );
  const to = (description: string) => new Option("--to <version>", description).argParser(parseTarget);

  examples(
    connectionFlags(db.command("plan").description("show the migrations up would apply (with --down: what down would revert) and their SQL"))
      .addOption(to("target version (default: the newest)"))
      .option("--down", 'show what "down --to VERSION" would revert'),
    "tsdb db plan --url postgresql://postgres@127.0.0.1:5432/market",
  ).action(act<DbOptions>((o, ctx) => plan(o, ctx)));

  examples(
    connectionFlags(db.command("up").description("apply pending migrations (all, or up to --to VERSION)")).addOption(to("apply up to this version (default: all)")),
    "tsdb db up --url postgresql://postgres@127.0.0.1:5432/market",
  ).action(act<DbOptions>((o, ctx) => move("up", o, ctx)));

  examples(
    connectionFlags(
      db
        .command("down")
        .description(
          "revert applied migrations above --to VERSION; prints each table it drops with its rows first, refuses on a stack with tsdb:protectData true, and needs --force when a table to drop holds rows",
        ),
    )
      .addOption(to("revert every migration above this version, 0 reverts everything (required)"))
      .option("--force", "drop tables that hold rows"),
    "tsdb db down --to 3 --url postgresql://postgres@127.0.0.1:5432/market",
  )
    .hook("preAction", (_db, down) => {
      if (down.getOptionValue("to") === undefined) throw new UsageError("required option '--to <version>' not specified (use --to 0 to revert everything)");
    })
    .action(act<DbOptions>((o, ctx) => move("down", o, ctx)));

  examples(
    db
      .command("roles")
      .description(
        "on a server of your own: create the <database>_owner/_migrator/_app/_readonly roles, database grants, schemas and default privileges the stack creates (as the admin; the database must exist). Passwords from TSDB_MIGRATOR_PASSWORD, TSDB_APP_PASSWORD, TSDB_READONLY_PASSWORD or generated, never printed; tsdb env --role hands them out",
      )
      .addOption(urlOption("the admin's connection to the database (a superuser, or a CREATEROLE admin owning the database): a postgresql:// URL or key=value pairs"))
      .option("--stack <name>", "take connection limits and tsdb:connectRoles from this stack, which must be for the connection's database")
      .option("--no-timescaledb", "vanilla PostgreSQL: the owner role gets no LOGIN (TimescaleDB's jobs need it)")
      .option("--connect-role <role>", "also grant CONNECT to this existing role (a pooler's auth_query user, a monitoring role); repeatable. pg_monitor always gets it", (v: string, prev: string[]) => [...prev, v], [] as string[])
      .option("--json", "print what was done as JSON (never a password)"),
    "PGPASSWORD=... tsdb db roles --url postgresql://postgres@db.example.com:5432/market --connect-role pgbouncer_auth",
  ).action(act<RolesOptions>((o, ctx) => roles(o, ctx)));

  examples(
    connectionFlags(db.command("status").description("list every migration with its state: applied, pending, changed, missing")),
    "tsdb db status --url postgresql://postgres@127.0.0.1:5432/market",
  ).action(act<DbOptions>((o, ctx) => status(o, ctx)));
}
