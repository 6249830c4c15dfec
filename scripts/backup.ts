/**
 * `npm run db:backup -- [--stack dev] [--url postgresql://user@host:port/db] [--container name] [--dir path] [--retain n]`
 *
 * Docker mode (default): pg_dump runs inside the stack's TimescaleDB container, so client and server versions
 * match; row counts are read through the migrator URL from the stack outputs. External mode or `--url`: a local
 * pg_dump against that URL (password from the URL or PGPASSWORD, handed to pg_dump in its environment only).
 * Keeps the newest `tsdb:backupRetain` backups of the database.
 */
import * as path from "node:path";
import { failureLine } from "../lib/db";
import { createBackup, dockerPgDump, localPgDump } from "../lib/ops/backup";
import { parseFlags } from "../lib/ops/cliArgs";
import { urlHost } from "../lib/connection";
import { connectionFromUrl, containerNameFor, readDatabaseOutput } from "../lib/ops/stackOutputs";
import { readStackSettings } from "../lib/settings";

const projectDir = path.resolve(__dirname, "..");

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    stack: { type: "string", default: "dev" },
    url: { type: "string" },
    container: { type: "string" },
    dir: { type: "string" },
    retain: { type: "string" },
  });
  const stack = flags.stack ?? "dev";
  const settings = readStackSettings(projectDir, stack);
  const retain = flags.retain !== undefined ? Number(flags.retain) : settings.backupRetain;
  if (!Number.isInteger(retain) || retain < 1) throw new Error(`--retain must be a whole number of at least 1, got "${flags.retain}".`);
  const backupDir = path.resolve(projectDir, flags.dir ?? settings.backupDir);

  let connection;
  let dump;
  if (flags.url) {
    connection = connectionFromUrl(flags.url);
    dump = localPgDump(connection);
  } else if (settings.mode === "docker") {
    connection = connectionFromUrl((await readDatabaseOutput(stack)).urls.migrator, {});
    dump = dockerPgDump(flags.container ?? containerNameFor(stack), "postgres", connection.database);
  } else {
    throw new Error(`Stack "${stack}" is in external mode: pass --url postgresql://<admin>@${urlHost(settings.externalHost ?? "<host>")}:${settings.externalPort}/${settings.database} (password in PGPASSWORD).`);
  }

  const result = await createBackup({ connection, dump, backupDir, retain });
  const rows = Object.values(result.manifest.rowCounts).reduce((a, b) => a + b, 0);
  console.log(
    `Backup of ${result.manifest.database} (PostgreSQL ${result.manifest.serverVersion}, TimescaleDB ${result.manifest.timescaledbVersion ?? "none"}):\n` +
      `  ${result.dumpPath} (${result.manifest.sizeBytes} bytes, sha256 ${result.manifest.sha256})\n` +
      `  ${result.manifestPath} (${Object.keys(result.manifest.rowCounts).length} tables, ${rows} rows)` +
      (result.pruned.length ? `\n  pruned (keeping ${retain}): ${result.pruned.map((p) => path.basename(p)).join(", ")}` : ""),
  );
}

main().catch((err: unknown) => {
  console.error(`db:backup: ${failureLine(err, "the backup", "no backup was written")}`);
  process.exit(1);
});
