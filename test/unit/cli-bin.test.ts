/**
 * The compiled `tsdb` binary as users run it: package.json `bin` (npx tsdb, npm link), built by
 * `npm run build` (which `prepare`, and so `npm ci`, runs), and the npm scripts the README names as thin
 * aliases of it. Before the issue, `npm run setup -- --help` (and env, db:backup, db:restore, sample) answered
 * "Unknown option '--help'" and `npm run bench:load -- --help` crashed with a stack trace.
 */
import { execFile, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, test } from "vitest";
import { ROOT } from "../fixtures/cli";

const run = promisify(execFile);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string>; scripts: Record<string, string> };
const BIN = path.join(ROOT, pkg.bin.tsdb ?? "missing");
const SUBCOMMANDS = ["db", "data", "backup", "restore", "env", "doctor", "setup", "sample", "bench"];

/** Each README/npm script name and the subcommand it is an alias of. */
const ALIASES: Array<[string, string]> = [
  ["db", "tsdb db"], ["data", "tsdb data"], ["setup", "tsdb setup"], ["doctor", "tsdb doctor"], ["db:backup", "tsdb backup"],
  ["db:restore", "tsdb restore"], ["env", "tsdb env"], ["sample", "tsdb sample"], ["bench:load", "tsdb bench load"],
  ["bench:migrations", "tsdb bench migrations"], ["bench:queries", "tsdb bench queries"], ["bench:cli", "tsdb bench cli"],
];

beforeAll(async () => {
  // What `npm ci` runs through `prepare`, so this file tests the binary of the current sources.
  await run("npm", ["run", "-s", "build"], { cwd: ROOT });
}, 120_000);

describe("the tsdb binary", () => {
  test("package.json names it as bin `tsdb`, and prepare builds it (npm ci runs prepare)", () => {
    expect(pkg.bin).toEqual({ tsdb: "dist/tsdb.mjs" });
    expect(pkg.scripts.prepare).toBe("npm run build");
    expect(fs.statSync(BIN).mode & 0o111).not.toBe(0);
    expect(fs.readFileSync(BIN, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
  });

  test("`npx tsdb --help` in the repository lists every subcommand and exits 0", async () => {
    const { stdout } = await run("npx", ["--no-install", "tsdb", "--help"], { cwd: ROOT });
    const listed = [...stdout.split("Commands:")[1]!.matchAll(/^ {2}(\w+)/gm)].map((m) => m[1]);
    expect(listed).toEqual([...SUBCOMMANDS, "help"]);
  });

  test("the binary itself: an unknown flag exits 2 with one line plus the usage; a failure exits 1 with one line", () => {
    const bad = spawnSync(BIN, ["db", "up", "--force-it"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe("tsdb db up: unknown option '--force-it'\nUsage: tsdb db up [options] (see `tsdb db up --help`)\n");
    const failed = spawnSync(BIN, ["db", "status", "--url", "postgresql://nobody@127.0.0.1:1/nothing"], { encoding: "utf8" });
    expect(failed.status).toBe(1);
    expect(failed.stderr.trimEnd().split("\n")).toEqual([
      "tsdb db status: connect ECONNREFUSED 127.0.0.1:1, check that the server is running and that --url (or DATABASE_URL) names its host and port",
    ]);
  });

  test("runs from any directory: sql/ and the stack settings come from the package, not the working directory", () => {
    const r = spawnSync(BIN, ["db", "plan", "--url", "postgresql://nobody@127.0.0.1:1/nothing"], { encoding: "utf8", cwd: "/" });
    expect(r.stderr).toMatch(/^tsdb db plan: connect ECONNREFUSED/);
  });
});

describe("the npm scripts are aliases of tsdb subcommands", () => {
  test.each(ALIASES)("npm run %s -- --help prints the usage of `%s` and exits 0", async (script, command) => {
    expect(pkg.scripts[script]).toBe(`node ${pkg.bin.tsdb} ${command.replace(/^tsdb /, "")}`);
    const { stdout, stderr } = await run("npm", ["run", "-s", script, "--", "--help"], { cwd: ROOT });
    expect(stderr).toBe("");
    expect(stdout).toMatch(new RegExp(`^Usage: ${command} \\[options\\]`));
  });
});
