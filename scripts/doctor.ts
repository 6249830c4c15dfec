/**
 * `npm run doctor -- [--stack dev] [--url postgresql://...]`: prerequisite checks and, for a deployed stack
 * (or `--url`), the database checks. Prints every problem with its fix; exits 1 when any check fails.
 */
import * as path from "node:path";
import { withClient } from "../lib/db";
import { checkDatabase } from "../lib/ops/databaseHealth";
import { parseFlags } from "../lib/ops/cliArgs";
import { checkPrerequisites, formatResults, hasFailures, stackPrerequisites, type CheckResult } from "../lib/ops/prerequisites";
import { connectionFromUrl, readDatabaseOutput } from "../lib/ops/stackOutputs";
import { adminPrivilegeProblems } from "../lib/managed";
import { readStackSettings } from "../lib/settings";

const projectDir = path.resolve(__dirname, "..");

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    stack: { type: "string", default: "dev" },
    url: { type: "string" },
    "admin-url": { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (flags.help) {
    console.log("Usage: npm run doctor -- [--stack dev] [--url postgresql://user:pass@host:port/db] [--admin-url postgresql://admin@host:port/db (password in PGPASSWORD)]");
    return 0;
  }
  const stack = flags.stack ?? "dev";
  const settings = readStackSettings(projectDir, stack);

  // A deployed stack holds its own ports, so only check them when there is no database to talk to yet.
  let url = flags.url;
  let deployed = url !== undefined;
  const notes: CheckResult[] = [];
  if (!url) {
    try {
      url = (await readDatabaseOutput(stack)).urls.migrator;
      deployed = true;
    } catch (err) {
      notes.push({ name: "Stack outputs", status: "warn", detail: `no database checks: ${(err as Error).message}`, fix: "Deploy with `npm run setup` or pass --url." });
    }
  }

  const results = await checkPrerequisites(stackPrerequisites(projectDir, settings, { checkPorts: !deployed }));
  results.push(...notes);

  if (url) {
    try {
      results.push(...(await withClient(url, (client) => checkDatabase(client, { expectTimescaleDb: settings.timescaledb }))));
    } catch (err) {
      results.push({
        name: "Database",
        status: "fail",
        detail: `cannot connect: ${(err as Error).message}`,
        fix: settings.mode === "docker" ? "Start the stack: `pulumi up` (check the container with `docker ps`)." : "Check the server, firewall and credentials.",
      });
    }
  }

  // External mode before `pulumi up`: does the admin have what the stack will ask of it (issue 12)?
  if (flags["admin-url"]) results.push(...(await adminChecks(flags["admin-url"], settings)));

  console.log(`tsdb doctor, stack ${stack} (${settings.mode} mode)\n${formatResults(results)}`);
  const failed = results.filter((r) => r.status === "fail").map((r) => r.name);
  if (hasFailures(results)) {
    console.log(`\n${failed.length} check(s) failed: ${failed.join(", ")}.`);
    return 1;
  }
  console.log("\nAll checks passed.");
  return 0;
}

async function adminChecks(url: string, settings: ReturnType<typeof readStackSettings>): Promise<CheckResult[]> {
  const name = "Admin privileges";
  try {
    const problems = await withClient(connectionFromUrl(url), (c) => adminPrivilegeProblems(c, settings));
    if (problems.length === 0) return [{ name, status: "ok", detail: "enough for pulumi up" }];
    return problems.map((detail) => ({ name, status: "fail", detail }));
  } catch (err) {
    return [{ name, status: "fail", detail: `cannot connect as the admin: ${(err as Error).message}` }];
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`doctor: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
