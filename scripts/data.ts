/**
 * `tsdb data ...` under tsx, kept for the Pulumi dataset hook (providers/DatasetProvider.ts), which runs
 * `node --import tsx scripts/data.ts load --source ... --json --quiet` from the project directory.
 * People use `tsdb data` (or `npm run data --`).
 */
import { runTsdb } from "../cli/program";

void runTsdb(["data", ...process.argv.slice(2)]).then((code) => {
  process.exitCode = code;
});
