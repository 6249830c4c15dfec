/**
 * One `tsdb` command with one set of conventions for every subcommand. Each subcommand's --help
 * (usage, flags with defaults, an example, exit 0), an unknown flag (one line naming it plus the usage, exit
 * 2), a typical failure (one line `tsdb <command>: ...`, exit 1 or 2, no stack trace), --json, --quiet,
 * --debug/DEBUG=tsdb, colours only on a TTY without NO_COLOR, environment variables named in help.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert";
import { beforeAll, describe, expect, test } from "vitest";
import { isInternalError } from "../../cli/conventions";
import { KNOWN_EXTENSIONS } from "../../lib/loader/columnMapping";
import { runTsdb } from "../../cli/program";
import { tsdbInProcess, tsdbSync } from "../fixtures/cli";

/** Every runnable subcommand, as a user types it after `tsdb`. */
const COMMANDS = [
  "db plan", "db up", "db down", "db status",
  "data load", "data validate",
  "backup", "restore", "env", "doctor", "setup", "sample",
  "bench load", "bench migrations", "bench queries", "bench cli",
];
const GROUPS = ["db", "data", "bench"];
const TOP_LEVEL = ["db", "data", "backup", "restore", "env", "doctor", "setup", "sample", "bench"];
const NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing";
const STACK_TRACE = /^\s+at .+\(.*:\d+:\d+\)$|^\s+at .+:\d+:\d+$/m;

beforeAll(() => {
  // commander reads DATABASE_URL from the process environment: a developer's own must not change the results.
  delete process.env.DATABASE_URL;
});

describe("tsdb alone and tsdb help", () => {
  test.each([[[]], [["help"]], [["--help"]], [["-h"]]])("tsdb %j lists every subcommand and exits 0", async (args) => {
    const r = await tsdbInProcess(args);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^Usage: tsdb \[options\] \[command\]\n/);
    const listed = [...r.stdout.split("Commands:")[1]!.matchAll(/^ {2}(\w+)/gm)].map((m) => m[1]);
    expect(listed).toEqual([...TOP_LEVEL, "help"]);
  });

  test.each(GROUPS)("tsdb %s alone lists its subcommands and exits 0 (npm run db alone printed `got \"nothing\"`)", async (group) => {
    const r = await tsdbInProcess([group]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: tsdb ${group} \\[options\\] \\[command\\]\\n`));
    const subs = COMMANDS.filter((c) => c.startsWith(`${group} `)).map((c) => c.split(" ")[1]);
    expect(subs.length).toBeGreaterThan(1);
    for (const sub of subs) expect(r.stdout).toMatch(new RegExp(`^ {2}${sub} `, "m"));
  });

  test.each(GROUPS)("tsdb %s --help and tsdb %s alone end with examples of its subcommands", async (group) => {
    for (const args of [[group, "--help"], [group]]) {
      const r = await tsdbInProcess(args);
      expect(r.code).toBe(0);
      const examples = r.stdout.split(/\nExamples:\n/)[1];
      expect(examples, `tsdb ${args.join(" ")}`).toBeDefined();
      const lines = examples!.trimEnd().split("\n");
      expect(lines.length).toBeGreaterThanOrEqual(2);
      const listed = [...r.stdout.split("Commands:")[1]!.matchAll(/^ {2}(\w+) /gm)].map((m) => m[1]);
      for (const line of lines) {
        const sub = new RegExp(`^ {2}\\$ tsdb ${group} (\\w+) `).exec(line)?.[1];
        expect(listed, line).toContain(sub);
      }
    }
  });

  test("an unknown subcommand is a usage error naming it, exit 2", async () => {
    const r = await tsdbInProcess(["db", "migrate"]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe("tsdb db: unknown command 'migrate'; the commands are plan, up, down, roles, status");
    expect(r.stderr.split("\n")[1]).toMatch(/^Usage: tsdb db /);
  });
});

describe.each(COMMANDS)("tsdb %s", (command) => {
  const args = command.split(" ");

  test("--help and -h print usage, flags with defaults and an example, exit 0", async () => {
    for (const flag of ["--help", "-h"]) {
      const r = await tsdbInProcess([...args, flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(new RegExp(`^Usage: tsdb ${command} \\[options\\]\\n`));
      expect(r.stdout).toMatch(/\nOptions:\n/);
      expect(r.stdout).toMatch(/\nExamples?:\n {2}\$ (\S+=\S+ )?tsdb /);
      expect(r.stdout).toContain("--quiet");
    }
  });

  test("an unknown flag prints one line naming it plus the usage, exit 2", async () => {
    const r = await tsdbInProcess([...args, "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toEqual([`tsdb ${command}: unknown option '--bogus'`, `Usage: tsdb ${command} [options] (see \`tsdb ${command} --help\`)`]);
  });

  test("a positional argument where none is taken is a usage error, exit 2", async () => {
    const r = await tsdbInProcess([...args, "extra"]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toMatch(new RegExp(`^tsdb ${command}: too many arguments`));
  });
});

describe("typical failures: one line, the exit code, no stack trace", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-cli-"));
  const cases: Array<[string[], number, RegExp]> = [
    [["db", "up"], 2, /^tsdb db up: no database: pass --url \(a postgresql:\/\/user@host:port\/database URL or libpq key=value pairs \(host=\.\.\. port=\.\.\. dbname=\.\.\. user=\.\.\.\)\) or set DATABASE_URL or PGHOST\/PGDATABASE$/],
    [["db", "down", "--url", NOWHERE], 2, /^tsdb db down: required option '--to <version>' not specified \(use --to 0 to revert everything\)$/],
    [["db", "up", "--to", "latest"], 2, /^tsdb db up: option '--to <version>' argument 'latest' is invalid\. --to must be a version number such as 3 or 0003/],
    [["db", "plan", "--down", "--url", NOWHERE], 2, /^tsdb db plan: plan --down needs --to VERSION$/],
    [["db", "status", "--url", NOWHERE], 1, /^tsdb db status: connect ECONNREFUSED 127\.0\.0\.1:1, check that the server is running and that --url \(or DATABASE_URL\) names its host and port$/],
    [["db", "up", "--stack", "staging", "--url", NOWHERE], 1, /^tsdb db up: .*Pulumi\.staging\.yaml does not exist/],
    [["data", "load", "--url", NOWHERE], 2, /^tsdb data load: required option '--source <path>' not specified$/],
    [["data", "load", "--source", "x.csv", "--format", "xls"], 2, /^tsdb data load: option '--format <format>' argument 'xls' is invalid\. Allowed choices are csv, parquet, sqlite, duckdb, arrow, json, zip\.$/],
    [["data", "load", "--source", "x.csv", "--on-conflict", "replace"], 2, /^tsdb data load: option '--on-conflict <mode>' argument 'replace' is invalid\. Allowed choices are skip, update\.$/],
    [["data", "validate", "--url", NOWHERE], 1, /^tsdb data validate: connect ECONNREFUSED/],
    [["backup", "--retain", "0"], 2, /^tsdb backup: option '--retain <n>' argument '0' is invalid\. --retain must be a whole number of at least 1\.$/],
    [["restore", "--stack", "prod", "--url", "postgresql://postgres@127.0.0.1:1/postgres", "--backup", "x.manifest.json", "--recreate"], 1, /^tsdb restore: --backup \S+x\.manifest\.json does not exist; pass a \*\.manifest\.json file or the directory holding it\.$/],
    [["env", "--role", "admin"], 2, /^tsdb env: option '--role <role>' argument 'admin' is invalid\. Allowed choices are migrator, app, readonly, replica\.$/],
    [["setup", "--stack", "staging"], 1, /^tsdb setup: .*Pulumi\.staging\.yaml does not exist/],
    [["sample", "--out", path.join(dir, "file", "sub")], 1, /^tsdb sample: /],
    [["bench", "queries", "--years", "5"], 2, /^tsdb bench queries: option '--years <n>' argument '5' is invalid\. --years must be a whole number of at least 10\.$/],
    [["bench", "queries", "--symbols", "2", "--hourly-symbols", "3"], 2, /^tsdb bench queries: --hourly-symbols cannot exceed --symbols$/],
  ];
  fs.writeFileSync(path.join(dir, "file"), "a file where sample wants a directory");

  test.each(cases)("tsdb %j exits %i", async (args, code, firstLine) => {
    const r = await tsdbInProcess(args);
    expect(r.code).toBe(code);
    expect(r.stderr.split("\n")[0]).toMatch(firstLine);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    // A usage error adds the usage line; a runtime failure is the one line alone.
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(code === 2 ? 2 : 1);
  });
});

describe("--debug and DEBUG=tsdb show the stack trace of a failure", () => {
  test("without them there is none; with either there is", async () => {
    const plain = await tsdbInProcess(["db", "status", "--url", NOWHERE]);
    expect(plain.stderr).not.toMatch(STACK_TRACE);
    const flag = await tsdbInProcess(["db", "status", "--url", NOWHERE, "--debug"]);
    expect(flag.code).toBe(1);
    expect(flag.stderr.split("\n")[0]).toBe(plain.stderr.split("\n")[0]);
    expect(flag.stderr).toMatch(STACK_TRACE);
    const env = await tsdbInProcess(["db", "status", "--url", NOWHERE], { env: { DEBUG: "pg,tsdb" } });
    expect(env.stderr).toMatch(STACK_TRACE);
  });
});

test("data load --help names every extension a directory --source loads (it left out .tsv.gz and .sqlite3)", async () => {
  const r = await tsdbInProcess(["data", "load", "--help"]);
  const source = r.stdout.split("--source <path>")[1]!.split(/\n {2}-/)[0]!.replace(/\s+/g, " ");
  expect(KNOWN_EXTENSIONS).toContain(".sqlite3");
  for (const ext of KNOWN_EXTENSIONS) expect(source).toContain(` ${ext} `);
});

describe("a bug in tsdb and a user's error print differently", () => {
  /** The error a real line of code raises, not one constructed to look like it. */
  function raised(fn: () => unknown): unknown {
    try {
      fn();
    } catch (err) {
      return err;
    }
    throw new Error("did not throw");
  }
  const nothing = undefined as unknown as { write(s: string): void };

  test.each([
    ["internal: a property read of undefined (TypeError)", raised(() => nothing.write("x")), true],
    ["internal: an undefined name (ReferenceError)", raised(() => new Function("return notDefinedAnywhere")()), true],
    ["internal: an invalid array length (RangeError)", raised(() => new Array(-1)), true],
    ["internal: a failed assertion", raised(() => assert.ok(false, "rows were counted twice")), true],
    ["internal: a thrown string", "boom", true],
    ["not internal: a message tsdb wrote for the user (Error)", new Error("--source x.csv does not exist."), false],
    ["not internal: a bad URL from the user (TypeError with code ERR_INVALID_URL)", raised(() => new URL("notaurl")), false],
    ["not internal: a missing file (ENOENT)", raised(() => fs.readFileSync("/nonexistent/file")), false],
    ["not internal: unparsable input (SyntaxError)", raised(() => JSON.parse("{")), false],
  ])("%s", (_what, err, internal) => {
    expect(isInternalError(err)).toBe(internal);
  });

  async function run(args: string[], out: { write(s: string): unknown }) {
    let stderr = "";
    const code = await runTsdb(args, { out, err: { write: (s: string) => (stderr += s) }, env: { PATH: process.env.PATH } });
    return { code, stderr };
  }

  test("an internal error says it is a bug, shows the stack trace without --debug, and says what to include in a report; exit 1", async () => {
    // A real command whose output stream fails with the TypeError a bug in it would raise.
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-bug-")), ".env");
    const r = await run(["env", "--url", "postgresql://me:secret@127.0.0.1:5432/market", "--out", out], { write: (s: string) => nothing.write(s) });
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe("tsdb env: internal error (a bug in tsdb, not in your input or server): TypeError: Cannot read properties of undefined (reading 'write')");
    expect(r.stderr).toMatch(STACK_TRACE);
    const version = (JSON.parse(fs.readFileSync(path.join(__dirname, "../../package.json"), "utf8")) as { version: string }).version;
    expect(lines[lines.length - 1]).toBe(
      `Please report it to the tsdb-stack maintainers with the command you ran, everything printed above, and: tsdb ${version}, Node ${process.version}, ${process.platform} ${process.arch}.`,
    );
    expect(r.stderr).not.toContain("secret");
  });

  test("the user's error on the same command stays one line naming what to fix, with no stack trace and no report", async () => {
    const r = await run(["env", "--url", "mysql://me@127.0.0.1/market"], { write: () => undefined });
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(
      "tsdb env: --url: the connection is not a postgresql://user@host:port/database URL or libpq key=value pairs (host=... port=... dbname=... user=...)",
    );
    expect(r.stderr).not.toMatch(/internal error|report it/);
    expect(r.stderr).not.toMatch(STACK_TRACE);
    const failed = await run(["db", "status", "--url", NOWHERE], { write: () => undefined });
    expect(failed.code).toBe(1);
    expect(failed.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(failed.stderr).not.toMatch(/internal error|report it/);
  });
});

describe("colours, --json and --quiet", () => {
  const doctor = ["doctor", "--url", NOWHERE];

  test("doctor's FAIL is coloured on a TTY, and never with NO_COLOR or when piped", async () => {
    const tty = await tsdbInProcess(doctor, { tty: true, env: { TERM: "xterm" } });
    expect(tty.stdout).toContain("\u001b[31mFAIL\u001b[0m Database: cannot connect");
    const noColor = await tsdbInProcess(doctor, { tty: true, env: { TERM: "xterm", NO_COLOR: "" } });
    expect(noColor.stdout).toContain("\nFAIL Database: cannot connect");
    expect(noColor.stdout).not.toContain("\u001b[");
    const piped = await tsdbInProcess(doctor, { tty: false, env: { TERM: "xterm" } });
    expect(piped.stdout).not.toContain("\u001b[");
  });

  test("doctor --json prints the checks as JSON and still exits 1 for a failed check", async () => {
    const r = await tsdbInProcess([...doctor, "--json"]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { ok: boolean; failed: string[]; checks: Array<{ name: string; status: string }> };
    expect(report.ok).toBe(false);
    expect(report.failed).toEqual(["Database"]);
    expect(report.checks.map((c) => c.name)).toEqual(["Node.js", "Database", "pg_dump", "pg_restore", "psql"]);
  });

  test("sample --quiet prints its result line only; sample --json the files' checksums", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-sample-"));
    try {
      const loud = await tsdbInProcess(["sample", "--out", out]);
      expect(loud.stdout.split("\n").filter(Boolean).length).toBeGreaterThan(1);
      const quiet = await tsdbInProcess(["sample", "--out", out, "--quiet"]);
      expect(quiet.code).toBe(0);
      expect(quiet.stdout).toBe(`wrote 5118 bars to ${out}\n`);
      const json = JSON.parse((await tsdbInProcess(["sample", "--out", out, "--json"])).stdout) as { bars: number; sha256: Record<string, string> };
      expect(json.bars).toBe(5118);
      expect(Object.keys(json.sha256).length).toBeGreaterThan(0);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

describe("every flag that reads an environment variable says which in its help", () => {
  test.each([["db plan"], ["db up"], ["db down"], ["db status"], ["data load"], ["data validate"]])("tsdb %s --url: DATABASE_URL", async (command) => {
    const r = await tsdbInProcess([...command.split(" "), "--help"]);
    // Commander wraps the help to the widest flag of the command: any space may be a line break.
    const help = r.stdout.replace(/\s+/g, " ");
    expect(help).toContain("--url <url> the database: a postgresql:// URL or libpq key=value pairs; PG* variables fill in what it leaves out (env: DATABASE_URL)");
  });

  test("backup and restore name PGPASSWORD; setup names the Pulumi variables it reads; --debug names DEBUG", async () => {
    expect((await tsdbInProcess(["backup", "--help"])).stdout).toMatch(/--url <url>[^]*PGPASSWORD/);
    expect((await tsdbInProcess(["restore", "--help"])).stdout).toMatch(/--url <url>[^]*PGPASSWORD/);
    const setup = (await tsdbInProcess(["setup", "--help"])).stdout;
    for (const v of ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"]) expect(setup).toContain(v);
    expect((await tsdbInProcess(["--help"])).stdout).toMatch(/--debug .*DEBUG=tsdb/);
  });

  test("DATABASE_URL is used when --url is absent (a child process: commander reads the real environment)", () => {
    const r = tsdbSync(["db", "status"], { DATABASE_URL: NOWHERE });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tsdb db status: connect ECONNREFUSED 127\.0\.0\.1:1/);
  });
});
