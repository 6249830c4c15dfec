#!/usr/bin/env node
/**
 * The `tsdb` binary (package.json `bin`): compiled to dist/cli/tsdb.js by `npm run build` (run by `prepare`,
 * so by `npm ci`). Run `tsdb --help` for the commands.
 */
import { runTsdb } from "./program";

void runTsdb(process.argv.slice(2)).then((code) => {
  // Exit now rather than when the event loop drains: a child a check started (a `docker info` that hangs
  // on a daemon that is not there) must not keep the command waiting after its result is printed.
  // stdout and stderr are synchronous for files and pipes on POSIX, so nothing printed is lost.
  process.exit(code);
});
