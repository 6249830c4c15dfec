/**
 * The stack's `database` output as CLIs read it (`pulumi stack output --json --show-secrets database`), checked
 * against the one contract in sdk/databaseOutput.ts so a renamed field fails here with its path rather than as
 * `undefined` later.
 */
import { type TsdbDatabaseOutput, type TsdbRole, TSDB_ROLES, databaseOutputProblems } from "../../sdk/databaseOutput";
import { type ResolvedConnection, resolveConnection } from "../postgres/connectionString";
import { runCommand, type CommandResult } from "./prerequisites";

/** Login roles whose URLs the stack exports. */
export const ROLES = TSDB_ROLES;
/** One of {@link ROLES}. */
export type Role = TsdbRole;

/** The validated `database` output (sdk/databaseOutput.ts). */
export type DatabaseOutput = TsdbDatabaseOutput;

/** Runs the Pulumi CLI with `args`; injectable so tests can feed JSON. */
export type PulumiRunner = (args: string[]) => Promise<CommandResult>;

/** The real runner: `pulumi <args>` without a shell. */
export const runPulumi: PulumiRunner = (args) => runCommand("pulumi", args, 120_000);

/** Parses and validates the JSON of the `database` output; errors name the field at fault. */
export function parseDatabaseOutput(json: string, stack: string): DatabaseOutput {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new Error(`Stack "${stack}": \`pulumi stack output database\` did not print JSON; has \`pulumi up\` run for this stack?`);
  }
  const problems = databaseOutputProblems(value);
  if (problems.length > 0) {
    const issues = problems.map((p) => `database.${p.replace(" (", ": expected ").replace(/\)$/, "")}`).join("; ");
    throw new Error(`Stack "${stack}": the database output is not what this project exports (${issues}).`);
  }
  return value as DatabaseOutput;
}

/** Reads the `database` output of `stack` through the Pulumi CLI, with secrets shown (never logged). */
export async function readDatabaseOutput(stack: string, pulumi: PulumiRunner = runPulumi): Promise<DatabaseOutput> {
  const result = await pulumi(["stack", "output", "--json", "--show-secrets", "--stack", stack, "database"]);
  if (result.exitCode === 127) {
    throw new Error("The Pulumi CLI is not on PATH; install it (`curl -fsSL https://get.pulumi.com | sh`) or pass --url.");
  }
  if (result.exitCode !== 0) {
    throw new Error(`\`pulumi stack output --stack ${stack} database\` failed: ${result.stderr.trim() || `exit code ${result.exitCode}`}`);
  }
  return parseDatabaseOutput(result.stdout, stack);
}

/**
 * Connection settings from a connection string (URL or key=value), read as libpq reads it with `env`'s PG*
 * variables for what it leaves out (lib/postgres/connectionString.ts): a password missing from the URL comes
 * from PGPASSWORD, so an admin password need not appear on a command line.
 */
export function connectionFromUrl(url: string, env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  return resolveConnection(url, env);
}

/** Name of the TimescaleDB container of a docker-mode stack (components/TimescaleDbServer.ts: `tsdb-<stack>-timescaledb`). */
export function containerNameFor(stack: string): string {
  return `tsdb-${stack}-timescaledb`;
}

/**
 * The stack's `adminUrl` output (superuser in docker mode, the admin role in external mode), or undefined when
 * the stack does not export one. Kept out of `database`, which other programs read through StackReference.
 */
export async function readAdminUrl(stack: string, pulumi: PulumiRunner = runPulumi): Promise<string | undefined> {
  const result = await pulumi(["stack", "output", "--json", "--show-secrets", "--stack", stack, "adminUrl"]);
  if (result.exitCode !== 0) return undefined;
  try {
    const value: unknown = JSON.parse(result.stdout);
    return typeof value === "string" && value.startsWith("postgres") ? value : undefined;
  } catch {
    return undefined;
  }
}
