/**
 * `npm run db:restore -- [--stack dev] [--backup <file.manifest.json | dir>] [--url postgresql://<admin>@host:port/postgres]
 *   [--database name] [--recreate [--force]] [--verify] [--local-client]`
 *
 * Restores the newest backup (or `--backup`: a manifest, or a directory whose newest manifest is taken). All
 * checks run first; the dump is loaded into a new database, verified, then renamed into place (lib/ops/restore.ts).
 * `--verify` restores into a scratch database, compares, and drops it (nothing else changes).
 * The admin connection is --url (password in it or in PGPASSWORD) or the stack's secret `adminUrl` output.
 * pg_restore runs inside the stack's container only for a docker stack without --url or --local-client.
 */
import * as path from "node:path";
import { failureLine } from "../lib/db";
import { listBackups } from "../lib/ops/backup";
import { parseFlags } from "../lib/ops/cliArgs";
import { dockerPgRestore, localPgRestore, resolveManifest, restoreBackup, verifyBackup } from "../lib/ops/restore";
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

  let manifestPath = flags.backup === undefined ? undefined : resolveManifest(path.resolve(flags.backup), settings.database);
  if (!manifestPath) {
    const backupDir = path.resolve(projectDir, settings.backupDir);
    const newest = listBackups(backupDir, settings.database)[0];
    if (!newest) throw new Error(`No backup of "${settings.database}" in ${backupDir}; make one with \`npm run db:backup\` or pass --backup.`);
    manifestPath = newest.manifestPath;
  }
  // --url names a server of the user's choosing: the stack's container is not it.
  const restore =
    settings.mode === "docker" && !flags.url && !flags["local-client"]
      ? dockerPgRestore(flags.container ?? containerNameFor(stack), admin.user, admin.password)
      : localPgRestore(admin);

  const result = flags.verify
    ? await verifyBackup({ manifestPath, admin, restore })
    : await restoreBackup({ manifestPath, admin, restore, database: flags.database, recreate: flags.recreate, protectData: settings.protectData, force: flags.force });
  const rows = Object.values(result.rowCounts).reduce((a, b) => a + b, 0);
  console.log(
    `${flags.verify ? "Verified" : "Restored"} ${path.basename(manifestPath)} ${flags.verify ? `(scratch database ${result.database}, dropped)` : `into ${result.database}`}: ` +
      `sha256 ok, PostgreSQL ${result.manifest.postgresMajor} / TimescaleDB ${result.manifest.timescaledbVersion ?? "none"} ok, ` +
      `${Object.keys(result.rowCounts).length} tables and ${rows} rows match the manifest.` +
      (result.replaced ? `\nThe previous "${result.database}" is kept as "${result.replaced}"; drop it when no longer needed: DROP DATABASE "${result.replaced}";` : ""),
  );
}

main().catch((err: unknown) => {
  console.error(`db:restore: ${failureLine(err, "the restore")}`);
  process.exit(1);
});
