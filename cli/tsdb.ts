#!/usr/bin/env node
/**
 * The `tsdb` binary (package.json `bin`): compiled to dist/cli/tsdb.js by `npm run build` (run by `prepare`,
 * so by `npm ci`). Run `tsdb --help` for the commands.
 */
import { runTsdb } from "./program";

void runTsdb(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
