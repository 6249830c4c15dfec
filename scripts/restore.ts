/**
 * `npm run db:restore -- [--stack dev] [--backup <file.manifest.json>] [--url postgresql://<admin>@host:port/postgres]
 *   [--database name] [--recreate [--force]] [--verify]`
 *
 * Restores the newest backup (or `--backup`) with TimescaleDB's procedure and checks checksum, versions and
 * row counts. `--verify` restores into a scratch database, compares, and drops it (nothing else changes).
 * The admin connection is --url (password in it or in PGPASSWORD) or the stack's secret `adminUrl` output.
 * Docker mode runs pg_restore inside the container.
 */
import * as path from "node:path";
import { failureLine } from "../lib/db";
import { listBackups } from "../lib/ops/backup";
import { parseFlags } from "../lib/ops/cliArgs";
import { dockerPgRestore, localPgRestore, restoreBackup, verifyBackup } from "../lib/ops/restore";
import { reachableHost, urlHost } from "../lib/connection";
import { connectionFromUrl, containerNameFor, readAdminUrl } from "../lib/ops/stackOutputs";
import { readStackSettings } from "../lib/settings";

const projectDir = path.resolve(__dirname, "..");

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    stack: { type: "string", default: "dev" },
    backup: { type: "string" },
    url: { type: "string" },
    container: { type: "string" },
    database: { type: "string" },
    recreate: { type: "boolean", default: false },
    force: { type: "boolean", default: false },
    verify: { type: "boolean", default: false },
    "local-client": { type: "boolean", default: false },
  });
  const stack = flags.stack ?? "dev";
  const settings = readStackSettings(projectDir, stack);
  // The admin connection: --url, else the stack's secret `adminUrl` output pointed at the maintenance database.
  const stackAdmin = flags.url ? undefined : await readAdminUrl(stack);
  if (!flags.url && !stackAdmin) {
    throw new Error(
      `--url is required (stack "${stack}" exports no adminUrl): an admin connection to the maintenance database, ` +
        `e.g. --url postgresql://postgres@${urlHost(reachableHost(settings.bindAddress))}:${settings.port}/postgres with PGPASSWORD set.`,
    );
  }
  const admin = flags.url ? connectionFromUrl(flags.url) : { ...connectionFromUrl(stackAdmin as string, {}), database: "postgres" };

  let manifestPath = flags.backup;
  if (!manifestPath) {
    const backupDir = path.resolve(projectDir, settings.backupDir);
    const newest = listBackups(backupDir, settings.database)[0];
    if (!newest) throw new Error(`No backup of "${settings.database}" in ${backupDir}; make one with \`npm run db:backup\` or pass --backup.`);
    manifestPath = newest.manifestPath;
  }
  if (flags.recreate && settings.protectData && !flags.force) {
    throw new Error(
      `[tsdb:protectData] is true for stack "${stack}": --recreate would drop database "${flags.database ?? settings.database}" and its data. ` +
        "Take a backup first, then add --force to confirm, or restore with --database <new name>.",
    );
  }
  const restore =
    settings.mode === "docker" && !flags["local-client"]
      ? dockerPgRestore(flags.container ?? containerNameFor(stack), admin.user, admin.password)
      : localPgRestore(admin);

  const result = flags.verify
    ? await verifyBackup({ manifestPath, admin, restore })
    : await restoreBackup({ manifestPath, admin, restore, database: flags.database, recreate: flags.recreate });
  const rows = Object.values(result.rowCounts).reduce((a, b) => a + b, 0);
  console.log(
    `${flags.verify ? "Verified" : "Restored"} ${path.basename(manifestPath)} ${flags.verify ? `(scratch database ${result.database}, dropped)` : `into ${result.database}`}: ` +
      `sha256 ok, PostgreSQL ${result.manifest.postgresMajor} / TimescaleDB ${result.manifest.timescaledbVersion ?? "none"} ok, ` +
      `${Object.keys(result.rowCounts).length} tables and ${rows} rows match the manifest.`,
  );
}

main().catch((err: unknown) => {
  console.error(`db:restore: ${failureLine(err, "the restore")}`);
  process.exit(1);
});
