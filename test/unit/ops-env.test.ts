/**
 * `npm run env`: the `.env` written from the stack's `database` output (fed as JSON through an injected
 * Pulumi runner), its contents per role and its 0600 mode.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { exportOhlcv } from "../../lib/loader/export";
import { renderEnvFile, writeSecretFile } from "../../lib/ops/envFile";
import { tsdbSync } from "../fixtures/cli";
import { envFileReaders } from "../fixtures/envReaders";
import { connectionFromUrl, parseDatabaseOutput, readAdminUrl, readDatabaseOutput, type PulumiRunner } from "../../lib/ops/stackOutputs";

const OUTPUT = {
  mode: "docker",
  host: "127.0.0.1",
  port: 5432,
  database: "market",
  sslmode: "disable",
  users: { migrator: "market_migrator", app: "market_app", readonly: "market_readonly" },
  urls: {
    migrator: "postgresql://market_migrator:m1gr%40tor@127.0.0.1:5432/market?sslmode=disable",
    app: "postgresql://market_app:Xy7-pq%2Fz@127.0.0.1:5432/market?sslmode=disable",
    readonly: "postgresql://market_readonly:r34d0nly@127.0.0.1:5432/market?sslmode=disable",
  },
  pgadminUrl: "http://127.0.0.1:5050",
  versions: { image: "timescale/timescaledb:2.23.0-pg17", postgresMajor: 17, timescaledb: "2.23.0" },
};

function pulumiFeeding(json: string, calls: string[][] = []): PulumiRunner {
  return async (args) => {
    calls.push(args);
    return { exitCode: 0, stdout: json, stderr: "" };
  };
}

describe("reading the database output", () => {
  test("asks pulumi for the stack's database output with secrets shown", async () => {
    const calls: string[][] = [];
    const output = await readDatabaseOutput("dev", pulumiFeeding(JSON.stringify(OUTPUT), calls));
    expect(calls).toEqual([["stack", "output", "--json", "--show-secrets", "--stack", "dev", "database"]]);
    expect(output.urls.app).toBe(OUTPUT.urls.app);
  });

  test("a missing Pulumi CLI, a failing one and a stack without outputs each get a clear error", async () => {
    await expect(readDatabaseOutput("dev", async () => ({ exitCode: 127, stdout: "", stderr: "" }))).rejects.toThrow(/Pulumi CLI is not on PATH/);
    await expect(readDatabaseOutput("prod", async () => ({ exitCode: 255, stdout: "", stderr: "error: no stack named 'prod' found\n" }))).rejects.toThrow(
      "`pulumi stack output --stack prod database` failed: error: no stack named 'prod' found",
    );
    await expect(readDatabaseOutput("dev", pulumiFeeding(""))).rejects.toThrow(/did not print JSON; has `pulumi up` run for this stack\?/);
  });

  test("an output without the role URLs names the missing field", () => {
    const { urls: _urls, ...withoutUrls } = OUTPUT;
    expect(() => parseDatabaseOutput(JSON.stringify(withoutUrls), "dev")).toThrow(/Stack "dev": the database output is not what this project exports \(database\.urls: /);
  });
});

describe("the admin URL for restores", () => {
  test("comes from the stack's separate adminUrl output, and is absent when the stack has none", async () => {
    const calls: string[][] = [];
    expect(await readAdminUrl("dev", pulumiFeeding(JSON.stringify("postgresql://postgres:pw@127.0.0.1:5432/postgres"), calls))).toBe(
      "postgresql://postgres:pw@127.0.0.1:5432/postgres",
    );
    expect(calls).toEqual([["stack", "output", "--json", "--show-secrets", "--stack", "dev", "adminUrl"]]);
    expect(await readAdminUrl("dev", async () => ({ exitCode: 255, stdout: "", stderr: "error: current stack does not have output property 'adminUrl'" }))).toBeUndefined();
    expect(await readAdminUrl("dev", async () => ({ exitCode: 127, stdout: "", stderr: "" }))).toBeUndefined();
  });

  test("tsdb restore without --url, on a stack that exports no adminUrl, says what to pass (a usage error, exit 2)", () => {
    const result = tsdbSync(["restore", "--stack", "dev"], { PATH: path.dirname(process.execPath) });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'tsdb restore: --url is required (stack "dev" exports no adminUrl): an admin connection to the maintenance database, e.g. --url postgresql://postgres@127.0.0.1:5432/postgres with PGPASSWORD set\n' +
        "Usage: tsdb restore [options] (see `tsdb restore --help`)\n",
    );
  });
});

describe("the .env file", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-env-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("for the app role: DATABASE_URL and the libpq variables, password decoded", () => {
    const text = renderEnvFile(parseDatabaseOutput(JSON.stringify(OUTPUT), "dev"), "app", "dev");
    expect(text.split("\n").filter((l) => !l.startsWith("#"))).toEqual([
      "DATABASE_URL=postgresql://market_app:Xy7-pq%2Fz@127.0.0.1:5432/market?sslmode=disable",
      "PGHOST=127.0.0.1",
      "PGPORT=5432",
      "PGDATABASE=market",
      "PGUSER=market_app",
      "PGPASSWORD=Xy7-pq/z",
      "PGSSLMODE=disable",
      "",
    ]);
  });

  test.each([
    ["readonly", "market_readonly", "r34d0nly"],
    ["migrator", "market_migrator", "m1gr@tor"],
  ] as const)("for the %s role it carries that role's user and password", (role, user, password) => {
    const text = renderEnvFile(parseDatabaseOutput(JSON.stringify(OUTPUT), "dev"), role, "dev");
    expect(text).toContain(`\nPGUSER=${user}\n`);
    expect(text).toContain(`\nPGPASSWORD=${password}\n`);
    expect(text).toContain(`DATABASE_URL=${OUTPUT.urls[role]}\n`);
  });

  /** The stack output with the app role's password replaced. */
  const withAppPassword = (password: string) =>
    parseDatabaseOutput(JSON.stringify({ ...OUTPUT, urls: { ...OUTPUT.urls, app: `postgresql://market_app:${encodeURIComponent(password)}@127.0.0.1:5432/market?sslmode=disable` } }), "dev");
  const VARIABLES = ["DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE"];

  const HOSTILE = [
    "it's",
    "$(touch PWNED)",
    "`touch PWNED`",
    "it's $(touch PWNED)",
    'say "hi"',
    "back\\slash\\n",
    "with space",
    "trailing ",
    "hash #comment",
    "a#b",
    "${HOME}",
    "$HOME",
    "a&touch PWNED",
    "semi;touch PWNED",
    "~root",
    "'quoted'",
    '"dq"',
    "new\nline",
  ];

  test.each(HOSTILE)("a password %j is never run by sh and is read identically by every reader, or the file is refused", async (password) => {
    let text: string | undefined;
    try {
      text = renderEnvFile(withAppPassword(password), "app", "dev");
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toBe(
        "PGPASSWORD of role app has characters that POSIX sh (`set -a; . ./.env`), Docker --env-file, Node --env-file and python-dotenv would read differently; a .env file holds only letters, digits and _ . / : @ % + , - = ? [ ] (unquoted). Give the role a password of those characters (generated passwords are) or connect with the stack's DATABASE_URL output instead.",
      );
      return;
    }
    // Today's file: read it back with each reader, in a directory where a command would leave PWNED.
    const file = path.join(dir, ".env");
    fs.writeFileSync(file, text);
    const read = await envFileReaders(file, VARIABLES, dir);
    expect(fs.existsSync(path.join(dir, "PWNED"))).toBe(false);
    for (const [reader, values] of Object.entries(read)) expect({ reader, password: values.PGPASSWORD }).toEqual({ reader, password });
  });

  test.each([
    "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF", // as the stack generates them (32 letters and digits)
    "m1gr@tor",
    "a+b,c=d?e[f]g%h:i/j.k_l-m",
  ])("a password %j is written unquoted and every reader gets the same seven values", async (password) => {
    const file = path.join(dir, ".env");
    writeSecretFile(file, renderEnvFile(withAppPassword(password), "app", "dev"));
    const read = await envFileReaders(file, VARIABLES, dir);
    expect(Object.keys(read)).toEqual(["sh", "node", "docker", "python-dotenv"]);
    const expected = {
      DATABASE_URL: `postgresql://market_app:${encodeURIComponent(password)}@127.0.0.1:5432/market?sslmode=disable`,
      PGHOST: "127.0.0.1",
      PGPORT: "5432",
      PGDATABASE: "market",
      PGUSER: "market_app",
      PGPASSWORD: password,
      PGSSLMODE: "disable",
    };
    for (const [reader, values] of Object.entries(read)) expect({ reader, values }).toEqual({ reader, values: expected });
    expect(new URL(expected.DATABASE_URL).password).toBe(encodeURIComponent(password));
  });

  test("is written with mode 0600, also over an existing world-readable file", () => {
    const file = path.join(dir, ".env");
    fs.writeFileSync(file, "OLD=1\n", { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    writeSecretFile(file, "PGPASSWORD=secret\n");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, "utf8")).toBe("PGPASSWORD=secret\n");
    expect(fs.readdirSync(dir)).toEqual([".env"]);

    const fresh = path.join(dir, "app.env");
    writeSecretFile(fresh, "X=1\n");
    expect(fs.statSync(fresh).mode & 0o777).toBe(0o600);
  });

  test("env --out and export --out --force refuse a symbolic link, a FIFO and a device node, and leave them as they were (issue 23.3)", async () => {
    const elsewhere = path.join(dir, "elsewhere.txt");
    fs.writeFileSync(elsewhere, "not yours\n");
    const link = path.join(dir, "stdout-like.env");
    fs.symlinkSync(elsewhere, link);
    const fifo = path.join(dir, "pipe.env");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    const never = {} as import("pg").Client; // the path is refused before any query
    for (const [file, kind] of [[link, `a symbolic link \\(to ${elsewhere.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\)`], [fifo, "a FIFO"], ["/dev/null", "a device"]] as const) {
      expect(() => writeSecretFile(file, "PGPASSWORD=secret\n")).toThrow(new RegExp(`^--out ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is ${kind}; it writes regular files only`));
      await expect(exportOhlcv(never, { file: `${file}`, format: "csv", overwrite: true })).rejects.toThrow(/it writes regular files only/);
    }
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(elsewhere, "utf8")).toBe("not yours\n");
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
    expect(fs.lstatSync("/dev/null").isCharacterDevice()).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp") || f.endsWith(".partial"))).toEqual([]);
  });
});

describe("connection URLs given on the command line", () => {
  test("a URL without a password takes it from PGPASSWORD, so it never has to be typed into argv", () => {
    const read = connectionFromUrl("postgresql://postgres@db.internal:6543/postgres?sslmode=require", { PGPASSWORD: "pw" });
    // The password is non-enumerable (kept out of logs): compared as a plain field.
    expect({ ...read, password: read.password }).toEqual({
      host: "db.internal",
      port: 6543,
      database: "postgres",
      user: "postgres",
      password: "pw",
      sslmode: "require",
      fromConnectionString: true,
    });
  });

  test.each([
    ["not a url", /^the connection is not a postgresql:\/\/user@host:port\/database URL or libpq key=value pairs/],
    ["mysql://u@h/db", /^the connection is not a postgresql:\/\//],
  ])("%s is refused", (url, message) => {
    expect(() => connectionFromUrl(url, {})).toThrow(message);
  });
});

describe("tsdb env, run for real with a stand-in pulumi that prints the output JSON", () => {
  test("writes the readonly role's .env with mode 0600 and says what it wrote, without printing the password", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-envcli-"));
    try {
      fs.writeFileSync(path.join(dir, "output.json"), JSON.stringify(OUTPUT));
      fs.writeFileSync(path.join(dir, "pulumi"), `#!/bin/sh\necho "$*" > ${dir}/args\ncat ${dir}/output.json\n`, { mode: 0o755 });
      const out = path.join(dir, "readonly.env");
      const result = tsdbSync(["env", "--stack", "dev", "--role", "readonly", "--out", out], { PATH: `${dir}:${process.env.PATH}` });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`Wrote ${out} (mode 0600) for role readonly of stack dev: DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE.\n`);
      expect(fs.readFileSync(path.join(dir, "args"), "utf8")).toBe("stack output --json --show-secrets --stack dev database\n");
      expect(fs.statSync(out).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(out, "utf8")).toContain("PGUSER=market_readonly\nPGPASSWORD=r34d0nly\n");

      const bad = tsdbSync(["env", "--role", "admin"], { PATH: `${dir}:${process.env.PATH}` });
      expect(bad.code).toBe(2);
      expect(bad.stderr.split("\n")[0]).toBe("tsdb env: option '--role <role>' argument 'admin' is invalid. Allowed choices are migrator, app, readonly, replica.");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("tsdb env --url, for a server of your own (no stack, no Pulumi CLI)", () => {
  test("writes the URL's connection as a 0600 .env that sh reads back exactly; a bad URL is one usage line", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-envurl-"));
    try {
      const out = path.join(dir, "own.env");
      const url = "postgresql://me:s3cret-Pw@db.example.com:6543/market?sslmode=require";
      const result = tsdbSync(["env", "--url", url, "--out", out], { PATH: path.dirname(process.execPath) });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`Wrote ${out} (mode 0600) for the --url given: DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE.\n`);
      expect(fs.statSync(out).mode & 0o777).toBe(0o600);
      const sourced = spawnSync("sh", ["-c", `set -a; . "${out}"; printf '%s|%s|%s|%s|%s|%s' "$PGHOST" "$PGPORT" "$PGDATABASE" "$PGUSER" "$PGPASSWORD" "$PGSSLMODE"`], { encoding: "utf8" });
      expect(sourced.stdout).toBe("db.example.com|6543|market|me|s3cret-Pw|require");

      const bad = tsdbSync(["env", "--url", "mysql://me@db/market", "--out", out], { PATH: path.dirname(process.execPath) });
      expect(bad.code).toBe(2);
      expect(bad.stderr.split("\n")[0]).toBe("tsdb env: --url: the connection is not a postgresql://user@host:port/database URL or libpq key=value pairs (host=... port=... dbname=... user=...)");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
