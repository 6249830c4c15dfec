/**
 * `tsdb data ...` under tsx, kept so command lines written before `tsdb` existed
 * (`node --import tsx scripts/data.ts load --source ...`) keep working. People use `tsdb data` (or
 * `npm run data --`); the Pulumi dataset hook runs lib/loader/hookWorker.ts.
 */
import { runTsdb } from "../cli/program";

void runTsdb(["data", ...process.argv.slice(2)]).then((code) => {
  // Exit now rather than when the event loop drains: a child a check started (a `docker info` that hangs
  // on a daemon that is not there) must not keep the command waiting after its result is printed.
  // stdout and stderr are synchronous for files and pipes on POSIX, so nothing printed is lost.
  process.exit(code);
});
