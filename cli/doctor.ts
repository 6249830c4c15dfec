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
import { parseEndpoint } from "../lib/postgres/connectionString";
import { type Act, type Context, UsageError, examples, packageRoot, parseConnection, projectRoot, stackOption } from "./conventions";

interface DoctorFlags {
  stack: string;
  url?: string;
  pooler?: string;
  adminUrl?: string;
  timescaledb: boolean;
  json?: boolean;
}

type Checks = typeof import("../lib/ops/prerequisites.js");

/** What to do when connecting failed, by the error: a missing database is created, not looked for behind a firewall. */
function connectFix(err: unknown, url: string, fallback: string): string {
  const code = (err as { code?: string }).code;
  if (code === "3D000") {
    const c = parseConnection(url);
    return `Create it: \`createdb -h ${c.host} -p ${c.port} -U <admin> ${c.database}\` (or \`CREATE DATABASE "${c.database.replace(/"/g, '""')}";\` as an admin; a managed service's console makes it), then run doctor again.`;
  }
  if (code === "28P01" || code === "28000") return "Check the user and password (in the URL, PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf.";
  if (/^TLS: /.test((err as Error).message ?? "")) return "See the TLS message above: it says what to put in the URL.";
  return fallback;
}

/** The database checks and the server's major version; a connection failure becomes a failed check. */
async function databaseChecks(url: string, expectTimescaleDb: boolean, fix: string, path: "stack" | "url" = "stack"): Promise<{ results: CheckResult[]; major?: number }> {
  const [{ withClient }, { checkDatabase }] = await Promise.all([import("../lib/db.js"), import("../lib/ops/databaseHealth.js")]);
  try {
    return await withClient(url, async (client) => {
      const results = await checkDatabase(client, { expectTimescaleDb, path });
      if (path === "url") {
        results.push(
          await migrationsCheck(client).catch((err: Error): CheckResult => ({ name: "Migrations", status: "warn", detail: `cannot read the history: ${err.message}`, fix: "Run doctor as the migrator or the admin." })),
        );
      }
      const num = Number(((await client.query("SELECT current_setting('server_version_num') AS n")).rows[0] as { n: string }).n);
      return { results, major: Math.floor(num / 10_000) };
    });
  } catch (err) {
    const message = (err as Error).message;
    const detail = (err as { code?: string }).code === "3D000" ? `${message}: the database must exist before \`tsdb db up\`` : `cannot connect: ${message}`;
    return { results: [{ name: "Database", status: "fail", detail, fix: connectFix(err, url, fix) }] };
  }
}

/** What `tsdb db up` will do here: the migrations of this package not applied yet. */
async function migrationsCheck(client: import("pg").Client): Promise<CheckResult> {
  const [{ readMigrationsDir }, { readHistory }, path] = await Promise.all([import("../lib/migrations/file.js"), import("../lib/migrations/core.js"), import("node:path")]);
  const files = readMigrationsDir(path.join(packageRoot(), "sql"));
  const applied = new Set((await readHistory(client)).map((m) => m.version));
  const pending = files.filter((f) => !applied.has(f.version));
  if (pending.length === 0) return { name: "Migrations", status: "ok", detail: `all ${files.length} applied` };
  const names = pending.map((f) => f.file);
  const shown = names.length > 3 ? `${names.slice(0, 2).join(", ")} ... ${names[names.length - 1]}` : names.join(", ");
  return { name: "Migrations", status: "ok", detail: `${applied.size} of ${files.length} applied; \`tsdb db up\` will apply ${pending.length} (${shown})` };
}

/**
 * A connection pooler (PgBouncer) in front of the server: can `url`'s login get through it? A pooler whose
 * auth_query user lacks CONNECT on the database (REVOKE ALL ... FROM PUBLIC) lets nobody in.
 */
async function poolerCheck(url: string, at: { host: string; port: number }): Promise<CheckResult> {
  const [{ withClient, clientConfig, withSettings }, { connectionWith }] = await Promise.all([import("../lib/postgres/client.js"), import("../lib/postgres/connectionInfo.js")]);
  const c = parseConnection(url);
  const where = `${at.host}:${at.port}`;
  try {
    // A pooler that cannot log in to the server may keep the client waiting (query_wait_timeout): give up sooner.
    await withClient(withSettings(clientConfig(connectionWith(c, at)), { connectionTimeoutMillis: 10_000, query_timeout: 10_000 }), (client) => client.query("SELECT 1"));
    return { name: "Pooler", status: "ok", detail: `${c.user} gets through ${where}` };
  } catch (err) {
    return {
      name: "Pooler",
      status: "fail",
      detail: `${c.user} cannot authenticate through ${where}: ${(err as Error).message}`,
      fix:
        "If the pooler looks passwords up with auth_query, its auth user needs CONNECT on the database: `tsdb db roles --connect-role <auth user>` " +
        "(a stack: tsdb:connectRoles); also check the pooler's auth_file or userlist for this login.",
    };
  }
}

/** A server of your own: what `db up`, `data load`, `data validate` and backups need, nothing else. */
async function serverPath(url: string, o: DoctorFlags, nodeRange: string, checks: Checks): Promise<CheckResult[]> {
  parseConnection(url);
  const db = await databaseChecks(url, o.timescaledb, "Check that the server runs and that the URL names its host and port (and the firewall lets you in); a password may come from PGPASSWORD.", "url");
  const pooler = o.pooler ? [await poolerCheck(url, poolerEndpoint(o.pooler))] : [];
  return [checks.checkNode(nodeRange), ...db.results, ...pooler, ...(await checks.checkClientTools(db.major))];
}

function poolerEndpoint(raw: string): { host: string; port: number } {
  const at = parseEndpoint(raw, 6432);
  if (!at) throw new UsageError(`--pooler must be host or host:port (IPv6 in brackets), got ${JSON.stringify(raw)}`);
  return at;
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
  let appThroughPooler: { url: string; pooler: { host: string; port: number } } | undefined;
  const notes: CheckResult[] = [];
  try {
    const output = await readDatabaseOutput(o.stack, runPulumi);
    url = output.urls.migrator;
    if (output.pooler) appThroughPooler = { url: output.urls.app, pooler: output.pooler };
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
  if (appThroughPooler) results.push(await poolerCheck(appThroughPooler.url, appThroughPooler.pooler));
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
    import("../lib/postgres/managed.js"),
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
    .option("--url <url>", "check this server only (reachable, extension, what db up will do, health, client tools for backups): a postgresql:// URL or key=value pairs; no Docker or Pulumi needed")
    .option("--pooler <host:port>", "with --url: also check that the URL's login gets through this connection pooler (PgBouncer)")
    .option("--admin-url <url>", "also check that this admin (password in the URL or PGPASSWORD) has what pulumi up needs on a managed service: CREATEROLE, CREATEDB unless tsdb:existingDatabase")
    .option("--no-timescaledb", "the server is plain PostgreSQL: a missing timescaledb extension is not a failure")
    .option("--json", "print every check as JSON");
  examples(cmd, "tsdb doctor --url postgresql://postgres@127.0.0.1:5432/market", "tsdb doctor --stack dev").action(act<DoctorFlags>((o, ctx) => doctor(o, ctx)));
}
