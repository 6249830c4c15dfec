/**
 * `tsdb db plan|up|down|status`: the migration runner (lib/migrations/runner.ts) for people and CI.
 * Settings (mode and `{{variables}}`) come from the stack's settings (Pulumi.yaml + Pulumi.<stack>.yaml),
 * the database from --url or DATABASE_URL.
 */
import * as path from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { MigrationStatus, PlannedMigration } from "../lib/migrations/runner";
import { type Act, type Context, UsageError, asGroup, examples, packageRoot, projectRoot, requireUrl, stackOption, urlOption } from "./conventions";

interface DbOptions {
  url?: string;
  to?: number;
  down?: boolean;
  stack: string;
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

/** The runner and the stack's settings for these flags: settings from the project's Pulumi.<stack>.yaml (projectRoot), migrations from --dir or sql/. */
async function runnerFor(o: DbOptions) {
  const url = requireUrl(o.url);
  const [{ MigrationRunner }, { migrationVariables, readStackSettings }] = await Promise.all([import("../lib/migrations/runner.js"), import("../lib/settings.js")]);
  const settings = readStackSettings(projectRoot(), o.stack);
  const runner = new MigrationRunner({
    connection: url,
    migrations: o.dir ? path.resolve(o.dir) : path.join(packageRoot(), "sql"),
    timescaledb: settings.timescaledb && o.timescaledb,
    variables: migrationVariables(settings),
    role: o.role,
    defaultRole: `${settings.database}_owner`,
    lockTimeoutMs: o.lockTimeout === undefined ? undefined : o.lockTimeout * 1000,
  });
  return { runner, settings };
}

/** The flags every db subcommand takes. */
function connectionFlags(cmd: Command): Command {
  return cmd
    .addOption(urlOption())
    .addOption(stackOption())
    .option("--no-timescaledb", "vanilla PostgreSQL: plain tables and materialized views (default: the stack's tsdb:timescaledb)")
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
          action: `db down --to ${o.to} (stack ${settings.stack})`,
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
    connectionFlags(db.command("status").description("list every migration with its state: applied, pending, changed, missing")),
    "tsdb db status --url postgresql://postgres@127.0.0.1:5432/market",
  ).action(act<DbOptions>((o, ctx) => status(o, ctx)));
}
