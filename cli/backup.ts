/**
 * `tsdb backup` and `tsdb restore` over lib/ops/backup.ts and lib/ops/restore.ts.
 *
 * backup, docker mode (default): pg_dump runs inside the stack's TimescaleDB container, so client and server
 * versions match; row counts are read through the migrator URL from the stack outputs. External mode or
 * `--url`: a local pg_dump against that URL (password from the URL or PGPASSWORD, handed to pg_dump in its
 * environment only). Keeps the newest `tsdb:backupRetain` backups of the database.
 *
 * restore: the newest backup (or `--backup`: a manifest, or a directory whose newest manifest is taken). All
 * checks run first; the dump is loaded into a new database with TimescaleDB's procedure, verified, then
 * renamed into place (lib/ops/restore.ts). `--verify` restores into a scratch database, compares, and drops it
 * (nothing else changes). pg_restore runs inside the stack's container only for a docker stack without --url
 * or --local-client.
 */
import * as path from "node:path";
import type { Command } from "commander";
import { connectionWith, reachableHost, urlHost } from "../lib/postgres/connectionInfo";
import { type Act, type Context, UsageError, examples, parseConnection, projectRoot, stackOption, urlOption, wholeNumber, whileConnected } from "./conventions";

interface BackupFlags {
  stack: string;
  url?: string;
  container?: string;
  dir?: string;
  retain?: number;
  json?: boolean;
}

interface RestoreFlags {
  stack: string;
  backup?: string;
  url?: string;
  container?: string;
  database?: string;
  recreate?: boolean;
  force?: boolean;
  verify?: boolean;
  localClient?: boolean;
  json?: boolean;
}

async function backup(o: BackupFlags, ctx: Context): Promise<void> {
  const [{ createBackup, dockerPgDump, localPgDump }, { connectionFromUrl, containerNameFor, readDatabaseOutput }, { readStackSettings }] = await Promise.all([
    import("../lib/ops/backup.js"),
    import("../lib/ops/stackOutputs.js"),
    import("../lib/settings.js"),
  ]);
  const root = projectRoot();
  const settings = readStackSettings(root, o.stack);
  const retain = o.retain ?? settings.backupRetain;
  // Against the working directory (issue 23.11): outside a Pulumi project `root` is the installed package, and
  // dumps written under node_modules/ are deleted by the next `npm ci`. In the project, the two are the same.
  const backupDir = path.resolve(process.cwd(), o.dir ?? settings.backupDir);

  let connection;
  let dump;
  if (o.url) {
    connection = parseConnection(o.url);
    dump = localPgDump(connection);
  } else if (settings.mode === "docker") {
    connection = connectionFromUrl((await readDatabaseOutput(o.stack)).urls.migrator, {});
    dump = dockerPgDump(o.container ?? containerNameFor(o.stack), "postgres", connection.database);
  } else {
    throw new UsageError(`stack "${o.stack}" is in external mode: pass --url postgresql://<admin>@${urlHost(settings.externalHost ?? "<host>")}:${settings.externalPort}/${settings.database} (password in PGPASSWORD)`);
  }

  const result = await whileConnected("the backup", "no backup was written", () => createBackup({ connection, dump, backupDir, retain, stack: o.stack }));
  if (o.json) return ctx.json({ dumpPath: result.dumpPath, manifestPath: result.manifestPath, pruned: result.pruned, manifest: result.manifest });
  const rows = Object.values(result.manifest.rowCounts).reduce((a, b) => a + b, 0);
  ctx.print(
    `Backup of ${result.manifest.database} (PostgreSQL ${result.manifest.serverVersion}, TimescaleDB ${result.manifest.timescaledbVersion ?? "none"}):\n` +
      `  ${result.dumpPath} (${result.manifest.sizeBytes} bytes, sha256 ${result.manifest.sha256})\n` +
      `  ${result.manifestPath} (${Object.keys(result.manifest.rowCounts).length} tables, ${rows} rows)` +
      (result.pruned.length ? `\n  pruned (keeping ${retain}): ${result.pruned.map((p) => path.basename(p)).join(", ")}` : ""),
  );
}

async function restore(o: RestoreFlags, ctx: Context): Promise<void> {
  const [{ chooseBackup, dockerPgRestore, localPgRestore, resolveManifest, restoreBackup, verifyBackup }, { connectionFromUrl, containerNameFor, readAdminUrl }, { readStackSettings }] =
    await Promise.all([import("../lib/ops/restore.js"), import("../lib/ops/stackOutputs.js"), import("../lib/settings.js")]);
  const root = projectRoot();
  const settings = readStackSettings(root, o.stack);
  // The admin connection: --url, else the stack's secret `adminUrl` output pointed at the maintenance database.
  const stackAdmin = o.url ? undefined : await readAdminUrl(o.stack);
  if (!o.url && !stackAdmin) {
    throw new UsageError(
      `--url is required (stack "${o.stack}" exports no adminUrl): an admin connection to the maintenance database, ` +
        `e.g. --url postgresql://postgres@${urlHost(reachableHost(settings.bindAddress))}:${settings.port}/postgres with PGPASSWORD set`,
    );
  }
  const admin = o.url ? parseConnection(o.url) : connectionWith(connectionFromUrl(stackAdmin as string, {}), { database: "postgres" });

  // The backup of the database being restored (--database), from this stack's server (issue 23.5, 23.7).
  const database = o.database ?? settings.database;
  let manifestPath = o.backup === undefined ? undefined : resolveManifest(path.resolve(o.backup), database, o.stack);
  if (!manifestPath) {
    const backupDir = path.resolve(process.cwd(), settings.backupDir);
    const newest = chooseBackup(backupDir, database, o.stack);
    if (!newest) throw new Error(`no backup of "${database}" in ${backupDir}; make one with \`tsdb backup\` or pass --backup`);
    manifestPath = newest.manifestPath;
  }
  // --url names a server of the user's choosing: the stack's container is not it.
  const runner =
    settings.mode === "docker" && !o.url && !o.localClient
      ? dockerPgRestore(o.container ?? containerNameFor(o.stack), admin.user, admin.password)
      : localPgRestore(admin);

  const chosen = manifestPath;
  const result = await whileConnected("the restore", "nothing was committed", () =>
    o.verify
      ? verifyBackup({ manifestPath: chosen, admin, restore: runner })
      : restoreBackup({ manifestPath: chosen, admin, restore: runner, database: o.database, recreate: o.recreate, protectData: settings.protectData, force: o.force }),
  );
  if (o.json) return ctx.json({ verified: o.verify === true, manifestPath, database: result.database, rowCounts: result.rowCounts, replaced: result.replaced ?? null, leftovers: result.leftovers, warnings: result.warnings ?? [] });
  const rows = Object.values(result.rowCounts).reduce((a, b) => a + b, 0);
  // What killed runs had left: said first, so it is not lost under the result.
  for (const line of result.leftovers) ctx.print(`Interrupted restore: ${line}`);
  ctx.print(
    `${o.verify ? "Verified" : "Restored"} ${path.basename(manifestPath)} ${o.verify ? `(scratch database ${result.database}, dropped)` : `into ${result.database}`}: ` +
      `sha256 ok, PostgreSQL ${result.manifest.postgresMajor} / TimescaleDB ${result.manifest.timescaledbVersion ?? "none"} ok, ` +
      `${Object.keys(result.rowCounts).length} tables and ${rows} rows match the manifest.` +
      (result.replaced ? `\nThe previous "${result.database}" is kept as "${result.replaced}"; drop it when no longer needed: DROP DATABASE "${result.replaced}";` : "") +
      (result.warnings ?? []).map((w) => `\nWARN ${w}`).join(""),
  );
}

export function registerBackup(program: Command, act: Act): void {
  const backupCmd = program
    .command("backup")
    .description("pg_dump the database with a manifest (checksum, versions, row counts); keeps the newest tsdb:backupRetain")
    .addOption(stackOption())
    .addOption(urlOption("back up this server with a local pg_dump instead of the stack's container: a postgresql:// URL or key=value pairs (password in it or PGPASSWORD)"))
    .option("--container <name>", "docker mode: the TimescaleDB container (default: tsdb-<stack>-timescaledb)")
    .option("--dir <dir>", "where backups go (default: the stack's tsdb:backupDir)")
    .option("--retain <n>", "keep the newest N backups of the database (default: the stack's tsdb:backupRetain)", wholeNumber("--retain", 1))
    .option("--json", "print the backup's paths and manifest as JSON");
  examples(backupCmd, "tsdb backup", "PGPASSWORD=... tsdb backup --url postgresql://postgres@db.example.com:5432/market").action(act<BackupFlags>((o, ctx) => backup(o, ctx)));

  const restoreCmd = program
    .command("restore")
    .description("restore the newest backup (or --backup) and check checksum, versions and row counts")
    .addOption(stackOption())
    .option("--backup <file|dir>", "the backup's .manifest.json, or a directory whose newest backup is taken (default: the newest in the stack's tsdb:backupDir)")
    .option("--url <url>", "admin connection, password in it or PGPASSWORD: to the maintenance database, or to the database restored when the service allows no other (default: the stack's adminUrl output)")
    .option("--container <name>", "docker mode: the TimescaleDB container (default: tsdb-<stack>-timescaledb)")
    .option("--database <name>", "restore into this database (default: the backup's)")
    .option("--recreate", "replace a database that holds data: restore beside it, verify, swap names; the old one is kept renamed (refused on a protectData stack without --force)")
    .option("--force", "with --recreate: confirm replacing a protectData stack's database")
    .option("--verify", "restore into a scratch database, compare, and drop it: nothing else changes")
    .option("--local-client", "use this machine's pg_restore even in docker mode (always so with --url)")
    .option("--json", "print the result as JSON");
  examples(restoreCmd, "tsdb restore --verify", "PGPASSWORD=... tsdb restore --url postgresql://postgres@127.0.0.1:5432/postgres --database market_copy").action(
    act<RestoreFlags>((o, ctx) => restore(o, ctx)),
  );
}
