/**
 * Prerequisite checks behind `tsdb setup` and `tsdb doctor`: each one missing (simulated probes), the real
 * probes on this machine, and the real commands run in child processes with controlled PATHs.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tsdbSync } from "../fixtures/cli";
import {
  type CommandResult,
  type PrerequisiteOptions,
  type Probes,
  checkClientTools,
  checkPrerequisites,
  formatResults,
  hasFailures,
  realProbes,
  satisfiesRange,
  stackPrerequisites,
} from "../../lib/ops/prerequisites";
import { parseSettings } from "../../lib/settings";

const OPTIONS: PrerequisiteOptions = {
  nodeRange: ">=20.9 <23",
  mode: "docker",
  ports: [
    { port: 5432, setting: "tsdb:port" },
    { port: 5050, setting: "tsdb:pgadminPort" },
  ],
  bindAddress: "127.0.0.1",
  diskPath: "/work",
  minFreeDiskBytes: 2 * 1024 ** 3,
};

const ok = (stdout: string): CommandResult => ({ exitCode: 0, stdout, stderr: "" });

/** Probes for a machine where everything is present, with `overrides` taking one thing away. */
function probes(overrides: Partial<Probes> = {}, commands: Record<string, CommandResult> = {}): Probes {
  return {
    nodeVersion: () => "20.20.2",
    // `docker info --format {{.NCPU}}` answers a CPU count (8); other docker and pulumi calls a version.
    run: async (command, args = []) => commands[command] ?? (command === "pulumi" ? ok("v3.205.0\n") : args.includes("{{.NCPU}}") ? ok("8\n") : ok("28.5.1\n")),
    bindError: async () => undefined,
    freeDiskBytes: async () => 50 * 1024 ** 3,
    ...overrides,
  };
}

describe("satisfiesRange reads package.json engines ranges", () => {
  test.each([
    ["20.20.2", ">=20.9 <23", true],
    ["20.9.0", ">=20.9 <23", true],
    ["20.8.1", ">=20.9 <23", false],
    ["23.0.0", ">=20.9 <23", false],
    ["22.11.0", ">=20.9 <23", true],
    ["18.19.0", "18.19.0 || >=20", true],
    ["19.0.0", "18.19.0 || >=20", false],
  ])("%s against %s is %s", (version, range, expected) => {
    expect(satisfiesRange(version, range)).toBe(expected);
  });

  test("an operator it does not understand is an error, not a guess", () => {
    expect(() => satisfiesRange("20.1.0", "^20.1")).toThrow(/Unsupported engines comparator "\^20\.1" in "\^20\.1"/);
  });
});

describe("checkPrerequisites with each prerequisite missing", () => {
  test("everything present: every check passes", async () => {
    const results = await checkPrerequisites(OPTIONS, probes());
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ["Node.js", "ok"],
      ["Pulumi CLI", "ok"],
      ["Docker daemon", "ok"],
      ["Port 5432", "ok"],
      ["Port 5050", "ok"],
      ["Disk space", "ok"],
    ]);
    expect(hasFailures(results)).toBe(false);
  });

  test.each<[string, Partial<Probes>, Record<string, CommandResult>, string, RegExp, RegExp]>([
    ["an old Node", { nodeVersion: () => "18.20.4" }, {}, "Node.js", /v18\.20\.4 does not satisfy package\.json engines\.node ">=20\.9 <23"/, /nvm install 20/],
    ["no Pulumi CLI", {}, { pulumi: { exitCode: 127, stdout: "", stderr: "spawn pulumi ENOENT" } }, "Pulumi CLI", /`pulumi` is not on PATH/, /get\.pulumi\.com/],
    ["a broken Pulumi CLI", {}, { pulumi: { exitCode: 1, stdout: "", stderr: "error: plugin crashed\n" } }, "Pulumi CLI", /`pulumi version` failed: error: plugin crashed/, /get\.pulumi\.com/],
    ["no docker client", {}, { docker: { exitCode: 127, stdout: "", stderr: "" } }, "Docker daemon", /`docker` is not on PATH/, /docs\.docker\.com\/engine\/install/],
    [
      "a docker client without a daemon",
      {},
      { docker: { exitCode: 1, stdout: "\n", stderr: "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n" } },
      "Docker daemon",
      /the docker client cannot reach a daemon: Cannot connect to the Docker daemon at unix:\/\/\/var\/run\/docker\.sock/,
      /systemctl start docker/,
    ],
    ["port 5432 taken", { bindError: async (_h, p) => (p === 5432 ? "EADDRINUSE" : undefined) }, {}, "Port 5432", /cannot bind 127\.0\.0\.1:5432 for tsdb:port: already in use/, /pulumi config set tsdb:port <port>/],
    ["no permission for port 5050", { bindError: async (_h, p) => (p === 5050 ? "EACCES" : undefined) }, {}, "Port 5050", /cannot bind 127\.0\.0\.1:5050 for tsdb:pgadminPort: EACCES/, /pulumi config set tsdb:pgadminPort <port>/],
    ["a full disk", { freeDiskBytes: async () => 512 * 1024 ** 2 }, {}, "Disk space", /0\.5 GB free at \/work, need at least 2\.0 GB/, /Free space/],
  ])("%s: that check fails with what is wrong and the fix, and only that one", async (_label, override, commands, name, detail, fix) => {
    const results = await checkPrerequisites(OPTIONS, probes(override, commands));
    const failed = results.filter((r) => r.status === "fail");
    expect(failed.map((r) => r.name)).toEqual([name]);
    expect(failed[0]?.detail).toMatch(detail);
    expect(failed[0]?.fix).toMatch(fix);
    expect(hasFailures(results)).toBe(true);
    expect(formatResults(results)).toContain(`FAIL ${name}: `);
  });

  test("doctor warns (without failing) when tsdb:bindAddress publishes the database on every interface", async () => {
    const projectDir = path.resolve(__dirname, "../..");
    for (const bindAddress of ["0.0.0.0", "::"]) {
      const options = stackPrerequisites(projectDir, parseSettings({ bindAddress }, { stack: "dev" }), { checkPorts: false });
      const results = await checkPrerequisites(options, probes());
      expect(formatResults(results)).toContain(
        `WARN Setting bindAddress: [tsdb:bindAddress] ${bindAddress} publishes PostgreSQL (port 5432) and pgAdmin (port 5050) on every network interface of this host, and tsdb:sslmode is disable: passwords and data cross it unencrypted.\n     fix: Keep it on this host: \`pulumi config set tsdb:bindAddress 127.0.0.1 --stack dev\``,
      );
      expect(hasFailures(results)).toBe(false);
    }
    const loopback = await checkPrerequisites(stackPrerequisites(projectDir, parseSettings({}, { stack: "dev" }), { checkPorts: false }), probes());
    expect(loopback.filter((r) => r.status === "warn")).toEqual([]);
  });

  test("external mode needs neither Docker nor free local ports", async () => {
    const results = await checkPrerequisites(
      { ...OPTIONS, mode: "external" },
      probes({ bindError: async () => "EADDRINUSE" }, { docker: { exitCode: 127, stdout: "", stderr: "" } }),
    );
    expect(results.map((r) => r.name)).toEqual(["Node.js", "Pulumi CLI", "Disk space"]);
    expect(hasFailures(results)).toBe(false);
  });
});

describe("the real probes on this machine", () => {
  let server: net.Server;
  let busyPort: number;
  beforeAll(async () => {
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    busyPort = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("a port something listens on is reported in use, a free one is not", async () => {
    expect(await realProbes.bindError("127.0.0.1", busyPort)).toBe("EADDRINUSE");
    const free = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    expect(await realProbes.bindError("127.0.0.1", free)).toBeUndefined();
  });

  test("a program that does not exist exits 127 instead of throwing; disk space is a positive number", async () => {
    expect((await realProbes.run("tsdb-no-such-program", ["version"])).exitCode).toBe(127);
    expect(await realProbes.freeDiskBytes(os.tmpdir())).toBeGreaterThan(0);
  });
});

describe("the PostgreSQL client tools a server of your own needs for backups (tsdb doctor --url)", () => {
  const version = (v: string) => ok(`${v}\n`);

  test("each present and at least the server's major: ok, with the version found", async () => {
    const results = await checkClientTools(17, probes({}, { pg_dump: version("pg_dump (PostgreSQL) 17.5"), pg_restore: version("pg_restore (PostgreSQL) 17.5"), psql: version("psql (PostgreSQL) 15.14") }));
    expect(results.map((r) => [r.name, r.status, r.detail])).toEqual([
      ["pg_dump", "ok", "pg_dump (PostgreSQL) 17.5"],
      ["pg_restore", "ok", "pg_restore (PostgreSQL) 17.5"],
      ["psql", "ok", "psql (PostgreSQL) 15.14"],
    ]);
  });

  test("pg_dump older than the server: a warning saying it cannot dump it, with the package to install", async () => {
    const results = await checkClientTools(17, probes({}, { pg_dump: version("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"), pg_restore: version("pg_restore (PostgreSQL) 15.14"), psql: version("psql (PostgreSQL) 15.14") }));
    expect(results[0]).toEqual({
      name: "pg_dump",
      status: "warn",
      detail: "15.14 is older than the server (17): it cannot dump that server",
      fix: "Install the PostgreSQL client 17 or newer (Debian/Ubuntu: `sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install -y postgresql-client-17` (the PostgreSQL project's apt repository: Debian and Ubuntu ship one version each); macOS: `brew install libpq`; RHEL: the PGDG repository's postgresql17 package).",
    });
    expect(results[1]?.status).toBe("warn");
    expect(results[2]?.status).toBe("ok"); // psql talks to newer servers
  });

  test("missing tools are warnings, never failures: migrations, loading and validation do not need them", async () => {
    const missing = { exitCode: 127, stdout: "", stderr: "" };
    const results = await checkClientTools(17, probes({}, { pg_dump: missing, pg_restore: missing, psql: missing }));
    expect(results.map((r) => `${r.status} ${r.detail}`)).toEqual([
      "warn `pg_dump` is not on PATH; backups need it",
      "warn `pg_restore` is not on PATH; backups need it",
      "warn `psql` is not on PATH; backups need it",
    ]);
    expect(hasFailures(results)).toBe(false);
  });
});

describe("tsdb doctor and tsdb setup, run for real in child processes", () => {
  let bin: string;
  let nodeOnly: string;
  beforeAll(() => {
    bin = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-fakebin-"));
    nodeOnly = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-nodebin-"));
    fs.symlinkSync(process.execPath, path.join(nodeOnly, "node"));
    // zx runs commands through bash.
    fs.symlinkSync("/bin/bash", path.join(nodeOnly, "bash"));
  });
  afterAll(() => {
    fs.rmSync(bin, { recursive: true, force: true });
    fs.rmSync(nodeOnly, { recursive: true, force: true });
  });

  const run = (command: string, args: string[], env: NodeJS.ProcessEnv) => {
    const r = tsdbSync([command, ...args], env);
    return { status: r.code, stdout: r.stdout, stderr: r.stderr };
  };
  const fake = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });

  test("on this machine (a docker client without an engine, no Pulumi CLI) doctor names both with their fixes and exits 1", () => {
    const result = run("doctor", [], {});
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("FAIL Pulumi CLI: `pulumi` is not on PATH");
    expect(result.stdout).toContain("fix: `tsdb setup` downloads the project's version (the `pulumi` npm package's installer), or install it: `curl -fsSL https://get.pulumi.com | sh`");
    expect(result.stdout).toMatch(/FAIL Docker daemon: the docker client cannot reach a daemon: Cannot connect to the Docker daemon/);
    expect(result.stdout).toContain("fix: Start the daemon: `sudo systemctl start docker`");
    expect(result.stdout).toMatch(/check\(s\) failed: Pulumi CLI, Docker daemon/);
  });

  test("with neither docker nor pulumi on PATH, doctor says both are not on PATH", () => {
    const result = run("doctor", [], { PATH: nodeOnly });
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("FAIL Pulumi CLI: `pulumi` is not on PATH");
    expect(result.stdout).toContain("FAIL Docker daemon: `docker` is not on PATH");
    expect(result.stdout).toContain("fix: Install Docker Engine");
  });

  test("with a working pulumi but a stopped Docker daemon, only Docker fails", () => {
    fake("pulumi", 'case "$1" in version) echo v3.205.0;; *) echo "error: no stack named dev found" >&2; exit 255;; esac');
    fake("docker", 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1');
    const result = run("doctor", ["--stack", "dev"], { PATH: `${bin}:${nodeOnly}` });
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("ok   Pulumi CLI: v3.205.0");
    expect(result.stdout).toContain("FAIL Docker daemon: the docker client cannot reach a daemon");
    expect(result.stdout).toMatch(/WARN Stack outputs: no database checks: `pulumi stack output --stack dev database` failed: error: no stack named dev found/);
    expect(result.stdout).not.toContain("FAIL Pulumi CLI");
  });

  test("an unknown flag is an error naming it (and the flag meant), then the usage", () => {
    const result = run("doctor", ["--stak", "dev"], {});
    expect(result.status).toBe(2);
    expect(result.stderr).toBe("tsdb doctor: unknown option '--stak' (Did you mean --stack?)\nUsage: tsdb doctor [options] (see `tsdb doctor --help`)\n");
  });

  test("doctor --url checks the server path only: no Pulumi CLI, no Docker, no ports (none on PATH here)", () => {
    const result = run("doctor", ["--url", "postgresql://nobody@127.0.0.1:1/nothing"], { PATH: nodeOnly });
    expect(result.status).toBe(1);
    expect(result.stdout.split("\n").filter((l) => /^(ok {2}|WARN|FAIL) /.test(l)).map((l) => l.replace(/:.*/, ""))).toEqual([
      "ok   Node.js", "FAIL Database", "WARN pg_dump", "WARN pg_restore", "WARN psql",
    ]);
    expect(result.stdout).toContain("FAIL Database: cannot connect: connect ECONNREFUSED 127.0.0.1:1");
    expect(result.stdout).toMatch(/1 check\(s\) failed: Database\.$/m);
  });

  test("setup stops at the prerequisite checks, before any pulumi command, when one is missing", () => {
    const log = path.join(bin, "pulumi.log");
    fake("pulumi", `echo "$*" >> ${log}; case "$1" in version) echo v3.205.0;; esac`);
    fake("docker", "exit 1");
    const result = run("setup", [], { PATH: `${bin}:${nodeOnly}` });
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("FAIL Docker daemon");
    expect(result.stdout).toContain("Fix the failed checks above, then run `tsdb setup` (or `npm run setup`) again.");
    // A user without Docker learns there is a path that needs none.
    expect(result.stdout).toContain(
      'No Docker here? A PostgreSQL/TimescaleDB server of your own needs neither Docker nor Pulumi: `tsdb doctor --url URL`, then `tsdb db up --url URL` (README, "Already have a server?").',
    );
    expect(fs.readFileSync(log, "utf8")).toBe("version\n");
  });

  test("setup with every prerequisite present: asks for the passphrase of a local backend instead of storing one", () => {
    const log = path.join(bin, "pulumi2.log");
    fake("pulumi", `echo "$*" >> ${log}; case "$1" in version) echo v3.205.0;; whoami) echo "User: me"; echo "Backend URL: file://~";; esac`);
    fake("docker", "echo 28.5.1");
    const result = run("setup", ["--stack", "dev"], { PATH: `${bin}:${nodeOnly}`, PULUMI_BACKEND_URL: "", PULUMI_CONFIG_PASSPHRASE: "", PULUMI_CONFIG_PASSPHRASE_FILE: "" });
    // Needs the dev stack's ports 5432 and 5050 free on 127.0.0.1; if not, the output below says "FAIL Port".
    expect(result.stdout).not.toContain("FAIL");
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("Pulumi backend: file://~");
    expect(result.stdout).toContain("export PULUMI_CONFIG_PASSPHRASE=");
    expect(fs.readFileSync(log, "utf8")).toBe("version\nwhoami --verbose\n");
  });

  test("setup with a passphrase set: selects (creating) the stack and runs pulumi up, never passing the passphrase as an argument", () => {
    const log = path.join(bin, "pulumi3.log");
    fake("pulumi", `echo "$*" >> ${log}; case "$1" in version) echo v3.205.0;; whoami) exit 1;; esac`);
    fake("docker", "echo 28.5.1");
    const result = run("setup", ["--stack", "dev"], {
      PATH: `${bin}:${nodeOnly}`,
      PULUMI_BACKEND_URL: "file:///tmp/tsdb-test-backend",
      PULUMI_CONFIG_PASSPHRASE: "correct horse battery staple",
    });
    expect(result.stdout).not.toContain("FAIL");
    expect(result.status).toBe(0);
    expect(fs.readFileSync(log, "utf8")).toBe("version\nstack select --create dev\nup --yes --stack dev\n");
    expect(result.stdout + result.stderr).not.toContain("correct horse battery staple");
  });

  test("setup with no backend configured logs in to a file backend in the repository, then asks for the passphrase", () => {
    const log = path.join(bin, "pulumi4.log");
    fake("pulumi", `echo "$*" >> ${log}; case "$1" in version) echo v3.205.0;; whoami) echo "error: not logged in" >&2; exit 255;; esac`);
    fake("docker", "echo 28.5.1");
    const result = run("setup", [], { PATH: `${bin}:${nodeOnly}`, PULUMI_BACKEND_URL: "", PULUMI_CONFIG_PASSPHRASE: "", PULUMI_CONFIG_PASSPHRASE_FILE: "" });
    expect(result.stdout).not.toContain("FAIL");
    const backend = `file://${path.resolve(".pulumi")}`;
    expect(fs.readFileSync(log, "utf8")).toBe(`version\nwhoami --verbose\nlogin ${backend}\n`);
    expect(result.stdout).toContain(`Pulumi backend: ${backend}`);
    expect(result.stdout).toContain("export PULUMI_CONFIG_PASSPHRASE=");
    expect(result.status).toBe(1);
  });

});
