/**
 * `npm run db -- plan|up|down|status [options]`: the migration runner for people and CI.
 * Settings (mode and `{{variables}}`) come from the stack's settings (Pulumi.yaml + Pulumi.<stack>.yaml),
 * the database from --url or DATABASE_URL. Exit 0 on success; otherwise a one-line reason on stderr.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { connectionLost, isConnectionLost, isConnectionLostError } from "../lib/db";
import { formatDownPlan } from "../lib/migrations/downPlan";
import { type MigrationStatus, MigrationRunner, type PlannedMigration } from "../lib/migrations/runner";
import { migrationVariables, readStackSettings } from "../lib/settings";

const HELP = `Usage: npm run db -- <command> [options]

Commands:
  plan     show the migrations up would apply (or, with --down, down would revert, with the tables
           they drop and their rows) and their SQL
  up       apply pending migrations (all, or up to --to VERSION)
  down     revert applied migrations above --to VERSION (required; 0 reverts everything); prints each
           table it drops with its rows first, refuses on a stack with tsdb:protectData true, and
           needs --force when a table to drop holds rows
  status   list every migration with its state: applied, pending, changed, missing

Options:
  --url URL           database URL (default: $DATABASE_URL)
  --to VERSION        target version (a whole number; 0 = none applied)
  --down              with plan: show what "down --to VERSION" would revert
  --stack NAME        stack whose settings to use (default: dev)
  --no-timescaledb    vanilla PostgreSQL: plain tables and materialized views
  --role ROLE         SET ROLE after connecting, so objects are owned by ROLE (default: <database>_owner
                      from the stack's settings when it exists and the login may use it)
  --dir DIR           migrations directory (default: ./sql)
  --force             with down: drop tables that hold rows
  --lock-timeout SEC  give up waiting for the migration lock (or a lock a migration needs) after SEC
                      seconds, naming the session holding it (default: 60)
  --json              machine-readable output
  -h, --help          this help
`;

type Command = "plan" | "up" | "down" | "status";
const COMMANDS: readonly Command[] = ["plan", "up", "down", "status"];

function parseTarget(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new Error(`--to must be a version number such as 3 or 0003, got ${JSON.stringify(raw)}.`);
  return Number(raw);
}

function formatStatus(lines: MigrationStatus[]): string {
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

function formatPlan(steps: PlannedMigration[], direction: "up" | "down"): string {
  if (steps.length === 0) return direction === "up" ? "Nothing to apply: the database is up to date." : "Nothing to revert.";
  return steps
    .map((s) => `-- ${s.action} ${s.file}\n${s.sql.replace(/\n{3,}/g, "\n\n").trim()}\n`)
    .join("\n");
}

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        to: { type: "string" },
        down: { type: "boolean", default: false },
        stack: { type: "string", default: "dev" },
        "no-timescaledb": { type: "boolean", default: false },
        role: { type: "string" },
        dir: { type: "string" },
        force: { type: "boolean", default: false },
        "lock-timeout": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    err.write(`db: ${(e as Error).message} (see --help)\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out.write(HELP);
    return 0;
  }
  const command = positionals[0] as Command | undefined;
  try {
    if (!command || !COMMANDS.includes(command) || positionals.length > 1) {
      throw new Error(`expected one command of ${COMMANDS.join(", ")}, got ${JSON.stringify(positionals.join(" ") || "nothing")} (see --help).`);
    }
    const to = parseTarget(values.to);
    if (command === "down" && to === undefined) throw new Error("down needs --to VERSION (use --to 0 to revert everything).");
    const url = values.url ?? process.env.DATABASE_URL;
    if (!url) throw new Error("no database: pass --url postgresql://... or set DATABASE_URL.");
    const lockTimeout = values["lock-timeout"];
    if (lockTimeout !== undefined && !/^\d+(\.\d+)?$/.test(lockTimeout)) {
      throw new Error(`--lock-timeout must be a number of seconds such as 60, got ${JSON.stringify(lockTimeout)}.`);
    }
    const settings = readStackSettings(process.cwd(), values.stack);
    const runner = new MigrationRunner({
      connection: url,
      migrations: path.resolve(values.dir ?? "sql"),
      timescaledb: settings.timescaledb && !values["no-timescaledb"],
      variables: migrationVariables(settings),
      role: values.role,
      defaultRole: `${settings.database}_owner`,
      lockTimeoutMs: lockTimeout === undefined ? undefined : Number(lockTimeout) * 1000,
    });
    const json = (v: unknown) => out.write(`${JSON.stringify(v, null, 2)}\n`);
    if (command === "plan") {
      const direction = values.down ? "down" : "up";
      if (direction === "down" && to === undefined) throw new Error("plan --down needs --to VERSION.");
      const steps = await runner.plan({ to, direction });
      if (values.json) json(steps);
      else {
        if (direction === "down" && steps.length > 0) out.write(`${formatDownPlan(await runner.downPlan({ to: to as number })).join("\n")}\n\n`);
        out.write(`${formatPlan(steps, direction)}\n`);
      }
    } else if (command === "up" || command === "down") {
      const outcome =
        command === "up"
          ? await runner.up({ to })
          : await runner.down({
              to: to as number,
              protectData: settings.protectData,
              force: values.force,
              action: `db down --to ${to} (stack ${settings.stack})`,
              onPlan: (steps) => {
                if (!values.json) out.write(steps.length === 0 ? "Nothing to revert.\n" : `${formatDownPlan(steps).join("\n")}\n`);
              },
            });
      if (values.json) json(outcome);
      else {
        const done = command === "up" ? outcome.applied : outcome.reverted;
        const verb = command === "up" ? "applied" : "reverted";
        out.write(done.length === 0 ? `Nothing ${verb}.\n` : `${done.map((f) => `${verb} ${f}`).join("\n")}\n`);
      }
    } else {
      const lines = await runner.status();
      if (values.json) json(lines);
      else out.write(`${formatStatus(lines)}\n`);
    }
    return 0;
  } catch (e) {
    // One line: CI logs and people read the reason, never a stack trace (and never the URL).
    const lost = isConnectionLost(e) && !isConnectionLostError(e) ? connectionLost(command ?? "db") : e;
    err.write(`db ${command ?? ""}: ${String((lost as Error).message ?? lost).replace(/\s*\n\s*/g, " ")}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
