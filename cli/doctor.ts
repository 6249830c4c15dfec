/**
 * `tsdb doctor`: checks with the fix for each problem; exit 1 when any check fails.
 *
 * Two paths, checking only what each needs:
 * - `--url URL`, a server of your own: Node.js, the server (reachable, the TimescaleDB extension unless
 *   --no-timescaledb, hypertables, jobs, compression, cache, connections) and the PostgreSQL client tools
 *   for backups. Docker and the Pulumi CLI are not checked.
 * - the stack (no --url): Node.js, the Pulumi CLI, the Docker daemon (docker mode), free ports while nothing
 *   is deployed, disk space, and the database checks through the stack's outputs once deployed.
 */
import type { Command } from "commander";
import type { CheckResult } from "../lib/ops/prerequisites";
import { type Act, type Context, examples, packageRoot, projectRoot, stackOption } from "./conventions";

interface DoctorFlags {
  stack: string;
  url?: string;
  adminUrl?: string;
  timescaledb: boolean;
  json?: boolean;
}

type Checks = typeof import("../lib/ops/prerequisites.js");

/** The database checks and the server's major version; a connection failure becomes a failed check. */
async function databaseChecks(url: string, expectTimescaleDb: boolean, fix: string): Promise<{ results: CheckResult[]; major?: number }> {
  const [{ withClient }, { checkDatabase }] = await Promise.all([import("../lib/db.js"), import("../lib/ops/databaseHealth.js")]);
  try {
    return await withClient(url, async (client) => {
      const results = await checkDatabase(client, { expectTimescaleDb });
      const num = Number(((await client.query("SELECT current_setting('server_version_num') AS n")).rows[0] as { n: string }).n);
      return { results, major: Math.floor(num / 10_000) };
    });
  } catch (err) {
    return { results: [{ name: "Database", status: "fail", detail: `cannot connect: ${(err as Error).message}`, fix }] };
  }
}

/** A server of your own: what `db up`, `data load`, `data validate` and backups need, nothing else. */
async function serverPath(url: string, o: DoctorFlags, nodeRange: string, checks: Checks): Promise<CheckResult[]> {
  const db = await databaseChecks(url, o.timescaledb, "Check the server, firewall and credentials in --url (a password may come from PGPASSWORD).");
  return [checks.checkNode(nodeRange), ...db.results, ...(await checks.checkClientTools(db.major))];
}

/** The stack: prerequisites of `pulumi up`, then the deployed database when the stack has outputs. */
async function stackPath(o: DoctorFlags, checks: Checks): Promise<CheckResult[]> {
  const [{ readDatabaseOutput }, { readStackSettings }, pulumiCli, { runCommand }] = await Promise.all([
    import("../lib/ops/stackOutputs.js"),
    import("../lib/settings.js"),
    import("../lib/ops/pulumiCli.js"),
    import("../lib/ops/prerequisites.js"),
  ]);
  const root = projectRoot();
  const settings = readStackSettings(root, o.stack);
  // The CLI setup would use, run by its path; doctor never downloads one, so never runs the npm launcher's bin
  // (under npm run or npx it is on PATH as `pulumi`, and would download its own version on first use).
  const cli = pulumiCli.findPulumiCli(pulumiCli.pinnedPulumiVersion(packageRoot()));
  const runPulumi = (args: string[]) => (cli ? runCommand(cli, args, 120_000) : Promise.resolve({ exitCode: 127, stdout: "", stderr: "" }));
  let url: string | undefined;
  const notes: CheckResult[] = [];
  try {
    url = (await readDatabaseOutput(o.stack, runPulumi)).urls.migrator;
  } catch (err) {
    notes.push({ name: "Stack outputs", status: "warn", detail: `no database checks: ${(err as Error).message}`, fix: "Deploy with `tsdb setup`, or check a server of your own with `tsdb doctor --url`." });
  }
  // A deployed stack holds its own ports, so only check them when there is no database to talk to yet.
  const results = await checks.checkPrerequisites({ ...checks.stackPrerequisites(root, settings, { checkPorts: url === undefined }), pulumiCli: cli ?? null });
  results.push(...notes);
  if (url) {
    const fix = settings.mode === "docker" ? "Start the stack: `pulumi up` (check the container with `docker ps`)." : "Check the server, firewall and credentials.";
    results.push(...(await databaseChecks(url, settings.timescaledb && o.timescaledb, fix)).results);
  }
  return results;
}

function colourMarks(text: string, ctx: Context): string {
  return text
    .replace(/^ok {3}/gm, () => `${ctx.paint("ok", "green")}   `)
    .replace(/^WARN/gm, () => ctx.paint("WARN", "yellow"))
    .replace(/^FAIL/gm, () => ctx.paint("FAIL", "red"));
}

/** External mode before `pulumi up`: does the admin have what the stack will ask of it (CREATEROLE, CREATEDB...)? */
async function adminChecks(url: string, stack: string): Promise<CheckResult[]> {
  const [{ withClient }, { adminPrivilegeProblems }, { connectionFromUrl }, { readStackSettings }] = await Promise.all([
    import("../lib/db.js"),
    import("../lib/managed.js"),
    import("../lib/ops/stackOutputs.js"),
    import("../lib/settings.js"),
  ]);
  const name = "Admin privileges";
  const settings = readStackSettings(projectRoot(), stack);
  try {
    const problems = await withClient(connectionFromUrl(url), (c) => adminPrivilegeProblems(c, settings));
    if (problems.length === 0) return [{ name, status: "ok", detail: "enough for pulumi up" }];
    return problems.map((detail) => ({ name, status: "fail", detail }));
  } catch (err) {
    return [{ name, status: "fail", detail: `cannot connect as the admin: ${(err as Error).message}` }];
  }
}

async function doctor(o: DoctorFlags, ctx: Context): Promise<void> {
  const checks = await import("../lib/ops/prerequisites.js");
  const results = o.url ? await serverPath(o.url, o, checks.nodeRangeOf(packageRoot()), checks) : await stackPath(o, checks);
  if (o.adminUrl) results.push(...(await adminChecks(o.adminUrl, o.stack)));
  const failed = results.filter((r) => r.status === "fail").map((r) => r.name);
  if (failed.length > 0) ctx.fail();
  if (o.json) return ctx.json({ ok: failed.length === 0, failed, checks: results });
  ctx.print(`tsdb doctor, ${o.url ? "server from --url" : `stack ${o.stack}`}\n${colourMarks(checks.formatResults(results), ctx)}`);
  ctx.print(failed.length > 0 ? `\n${failed.length} check(s) failed: ${failed.join(", ")}.` : "\nAll checks passed.");
}

export function registerDoctor(program: Command, act: Act): void {
  const cmd = program
    .command("doctor")
    .description("check prerequisites and the database, with the fix for each problem; exit 1 when a check fails")
    .addOption(stackOption())
    .option("--url <url>", "check this server only (reachable, extension, health, client tools for backups): no Docker or Pulumi needed")
    .option("--admin-url <url>", "also check that this admin (password in the URL or PGPASSWORD) has what pulumi up needs on a managed service: CREATEROLE, CREATEDB unless tsdb:existingDatabase")
    .option("--no-timescaledb", "the server is plain PostgreSQL: a missing timescaledb extension is not a failure")
    .option("--json", "print every check as JSON");
  examples(cmd, "tsdb doctor --url postgresql://postgres@127.0.0.1:5432/market", "tsdb doctor --stack dev").action(act<DoctorFlags>((o, ctx) => doctor(o, ctx)));
}
