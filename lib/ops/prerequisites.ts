/**
 * Prerequisite checks for `tsdb setup` and `tsdb doctor`: Node version, Pulumi CLI, Docker daemon and its CPU
 * count against `tsdb:cpus`, free ports, free disk; and for a server of your own (`tsdb doctor --url`), the
 * PostgreSQL client tools. Every probe is injectable so tests can simulate each one missing; the real probes
 * run commands and bind sockets on this machine.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { settingWarnings, type Settings, type SettingWarning } from "../settings";

/** Outcome of one check: `fail` blocks setup, `warn` is reported but does not. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One check's result as printed by doctor and setup. */
export interface CheckResult {
  /** Short name, e.g. `Pulumi CLI`. */
  name: string;
  status: CheckStatus;
  /** What was found (version, port, error). */
  detail: string;
  /** The command or step that fixes a failed check. */
  fix?: string;
}

/** Result of running an external command; `exitCode` 127 when the program is not on PATH. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Side effects the checks need, injectable for tests. */
export interface Probes {
  nodeVersion(): string;
  run(command: string, args: string[]): Promise<CommandResult>;
  /** Resolves to `undefined` when `host:port` can be bound, else the error code (EADDRINUSE, EACCES...). */
  bindError(host: string, port: number): Promise<string | undefined>;
  freeDiskBytes(dir: string): Promise<number>;
}

/** What to check: the Node range from package.json and the ports/disk the stack needs. */
export interface PrerequisiteOptions {
  /** package.json `engines.node`, e.g. `>=20.9 <23`. */
  nodeRange: string;
  /** Docker mode needs the Docker daemon and free ports; external mode needs neither. */
  mode: "docker" | "external";
  /** Host ports the stack publishes, each with the setting that chooses it. */
  ports: { port: number; setting: string }[];
  bindAddress: string;
  /** Docker mode: `tsdb:cpus`, checked against the CPUs of the Docker host (`docker info` NCPU). */
  cpus?: number;
  /** Directory whose file system must have `minFreeDiskBytes` free (the project: state, backups). */
  diskPath: string;
  minFreeDiskBytes: number;
  /** Valid but risky settings (e.g. ports published on every interface), shown as `WARN` lines. */
  settingWarnings?: SettingWarning[];
  /**
   * The Pulumi CLI to check (lib/ops/pulumiCli.ts): its path (default: `pulumi` on PATH), or `{ error }` when
   * setup could not download one: that line is the check's failure, fix included.
   */
  pulumiCli?: string | { error: string };
}

/** package.json `engines.node` of the project in `projectDir`. */
export function nodeRangeOf(projectDir: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, "package.json"), "utf8")) as { engines?: { node?: string } };
  return pkg.engines?.node ?? ">=20";
}

/**
 * The prerequisites of a stack as `npm run setup` and `npm run doctor` check them: Node against package.json
 * `engines`, the ports the stack publishes (unless `checkPorts` is false: a deployed stack holds them itself),
 * and 2 GB free in the project directory.
 */
export function stackPrerequisites(projectDir: string, settings: Settings, { checkPorts }: { checkPorts: boolean }): PrerequisiteOptions {
  return {
    nodeRange: nodeRangeOf(projectDir),
    mode: settings.mode,
    ports: checkPorts
      ? [
          { port: settings.port, setting: "tsdb:port" },
          ...(settings.pgadminEnabled ? [{ port: settings.pgadminPort, setting: "tsdb:pgadminPort" }] : []),
        ]
      : [],
    bindAddress: settings.bindAddress,
    ...(settings.mode === "docker" ? { cpus: settings.cpus } : {}),
    diskPath: projectDir,
    minFreeDiskBytes: 2 * 1024 ** 3,
    settingWarnings: settingWarnings(settings),
  };
}

/**
 * `tsdb:cpus` against the Docker host's CPU count: Docker refuses to create a container with more CPUs than the
 * host has ("range of CPUs is from 0.01 to N"), so `pulumi up` would fail at the container after creating the
 * network, volume and image. `hostCpus` undefined = not known (the check warns instead of guessing).
 */
export function cpuCheck(requested: number, hostCpus: number | undefined): CheckResult {
  const name = "CPUs";
  if (hostCpus === undefined) {
    return { name, status: "warn", detail: `could not read the Docker host's CPU count to check tsdb:cpus ${requested}`, fix: "Check with `docker info --format '{{.NCPU}}'`." };
  }
  if (requested <= hostCpus) return { name, status: "ok", detail: `tsdb:cpus ${requested} of the Docker host's ${hostCpus}` };
  return {
    name,
    status: "fail",
    detail: `tsdb:cpus is ${requested} but the Docker host has ${hostCpus} CPU${hostCpus === 1 ? "" : "s"}; Docker would refuse to create the container`,
    fix: `Lower it: \`pulumi config set tsdb:cpus ${hostCpus}\` (or run on a host with ${requested} CPUs).`,
  };
}

/** The Docker host's CPU count from `docker info` (NCPU), or undefined when it cannot be read. */
async function dockerHostCpus(probes: Probes): Promise<number | undefined> {
  const result = await probes.run("docker", ["info", "--format", "{{.NCPU}}"]);
  const text = result.stdout.trim();
  return result.exitCode === 0 && /^\d+$/.test(text) ? Number(text) : undefined;
}

/** Runs a command without a shell; a missing program yields exit code 127 instead of throwing. */
export function runCommand(command: string, args: string[], timeoutMs = 20_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (err: NodeJS.ErrnoException) =>
      resolve({ exitCode: err.code === "ENOENT" ? 127 : 1, stdout, stderr: stderr || err.message }),
    );
    child.on("close", (code) => resolve({ exitCode: code ?? 1, stdout, stderr }));
  });
}

/** The real probes: this process's Node, real commands, real sockets, statfs. */
export const realProbes: Probes = {
  nodeVersion: () => process.versions.node,
  run: (command, args) => runCommand(command, args),
  bindError: (host, port) =>
    new Promise((resolve) => {
      const server = net.createServer();
      server.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
    }),
  freeDiskBytes: async (dir) => {
    const stats = await fs.promises.statfs(dir);
    return stats.bavail * stats.bsize;
  },
};

type Version = [number, number, number];

function parseVersion(text: string): Version {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  if (!m) throw new Error(`Cannot read a version from "${text}".`);
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return 0;
}

/**
 * Whether `version` satisfies an npm `engines` range made of comparators (`>=20.9 <23`, `||` alternatives).
 * Only the operators package.json uses here are accepted; anything else is an error, not a guess.
 */
export function satisfiesRange(version: string, range: string): boolean {
  const v = parseVersion(version);
  return range.split("||").some((set) =>
    set
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .every((comparator) => {
        const m = /^(>=|<=|>|<|=)?\s*(v?\d+(?:\.\d+){0,2})$/.exec(comparator);
        if (!m) throw new Error(`Unsupported engines comparator "${comparator}" in "${range}"; use >=, >, <=, < or = with x.y.z.`);
        const c = compare(v, parseVersion(m[2] as string));
        switch (m[1] ?? "=") {
          case ">=": return c >= 0;
          case ">": return c > 0;
          case "<=": return c <= 0;
          case "<": return c < 0;
          default: return c === 0;
        }
      }),
  );
}

function firstLine(text: string): string {
  return text.trim().split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
}

/** Node.js against package.json `engines.node`. */
export function checkNode(nodeRange: string, probes: Probes = realProbes): CheckResult {
  const node = probes.nodeVersion();
  return satisfiesRange(node, nodeRange)
    ? { name: "Node.js", status: "ok", detail: `v${node} satisfies ${nodeRange}` }
    : {
        name: "Node.js",
        status: "fail",
        detail: `v${node} does not satisfy package.json engines.node "${nodeRange}"`,
        fix: "Install Node 20 LTS (e.g. `nvm install 20 && nvm use 20`), then `npm ci`.",
      };
}

/**
 * How to install the PostgreSQL client `major` (or newer). Debian and Ubuntu ship one PostgreSQL version per
 * release (Debian 12: 15), so `apt-get install postgresql-client-17` finds nothing there; the PostgreSQL
 * project's apt repository (apt.postgresql.org) has every supported version, and Debian's own postgresql-common
 * ships the script that adds it (/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh).
 */
export function clientInstallAdvice(major: number | undefined): string {
  const pkg = major ? `postgresql-client-${major}` : "postgresql-client";
  const debian = major
    ? `\`sudo apt-get install -y postgresql-common && sudo /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y && sudo apt-get install -y ${pkg}\` (the PostgreSQL project's apt repository: Debian and Ubuntu ship one version each)`
    : `\`sudo apt-get install -y ${pkg}\``;
  return `Install the PostgreSQL client${major ? ` ${major} or newer` : ""} (Debian/Ubuntu: ${debian}; macOS: \`brew install libpq\`; RHEL: the PGDG repository's ${major ? `postgresql${major}` : "postgresql"} package).`;
}

/** The PostgreSQL client programs that backups use on this machine (`tsdb backup --url`, `tsdb restore --url`). */
export const CLIENT_TOOLS = ["pg_dump", "pg_restore", "psql"] as const;

/**
 * The client tools for backups of a server of your own: each on PATH and, for pg_dump and pg_restore, of a
 * major version at least the server's (pg_dump refuses to dump a newer server). Missing or old tools are
 * warnings: loading, migrations and validation do not need them.
 */
export async function checkClientTools(serverMajor: number | undefined, probes: Probes = realProbes): Promise<CheckResult[]> {
  const install = clientInstallAdvice(serverMajor);
  const results: CheckResult[] = [];
  for (const tool of CLIENT_TOOLS) {
    const r = await probes.run(tool, ["--version"]);
    const version = /(\d+)(?:\.(\d+))?/.exec(firstLine(r.stdout))?.[0];
    if (r.exitCode !== 0 || !version) {
      const detail = r.exitCode === 127 ? `\`${tool}\` is not on PATH; backups need it` : `\`${tool} --version\` failed: ${firstLine(r.stderr) || `exit code ${r.exitCode}`}`;
      results.push({ name: tool, status: "warn", detail, fix: install });
    } else if (tool !== "psql" && serverMajor !== undefined && Number(version.split(".")[0]) < serverMajor) {
      results.push({ name: tool, status: "warn", detail: `${version} is older than the server (${serverMajor}): it cannot ${tool === "pg_dump" ? "dump" : "restore a dump of"} that server`, fix: install });
    } else {
      results.push({ name: tool, status: "ok", detail: firstLine(r.stdout) });
    }
  }
  return results;
}

/** The Pulumi CLI: `pulumi version` of the one given (or on PATH), or the line saying why setup has none. */
async function checkPulumiCli(cli: PrerequisiteOptions["pulumiCli"], probes: Probes): Promise<CheckResult> {
  const name = "Pulumi CLI";
  if (typeof cli === "object") return { name, status: "fail", detail: cli.error };
  const pulumi = await probes.run(cli ?? "pulumi", ["version"]);
  if (pulumi.exitCode === 0) return { name, status: "ok", detail: `${firstLine(pulumi.stdout)}${cli ? ` (${cli})` : ""}` };
  return {
    name,
    status: "fail",
    detail: pulumi.exitCode === 127 ? "`pulumi` is not on PATH" : `\`pulumi version\` failed: ${firstLine(pulumi.stderr)}`,
    fix: "`tsdb setup` downloads the project's version (the `pulumi` npm package's installer), or install it: `curl -fsSL https://get.pulumi.com | sh` and add ~/.pulumi/bin to PATH (see https://www.pulumi.com/docs/install/).",
  };
}

/** Runs every prerequisite check; never throws for a missing prerequisite (it becomes a `fail`). */
export async function checkPrerequisites(options: PrerequisiteOptions, probes: Probes = realProbes): Promise<CheckResult[]> {
  const results: CheckResult[] = [];

  results.push(checkNode(options.nodeRange, probes));

  results.push(await checkPulumiCli(options.pulumiCli, probes));

  if (options.mode === "docker") {
    const docker = await probes.run("docker", ["info", "--format", "{{.ServerVersion}}"]);
    if (docker.exitCode === 0 && firstLine(docker.stdout) !== "") {
      results.push({ name: "Docker daemon", status: "ok", detail: `server ${firstLine(docker.stdout)}` });
      if (options.cpus !== undefined) results.push(cpuCheck(options.cpus, await dockerHostCpus(probes)));
    } else if (docker.exitCode === 127) {
      results.push({
        name: "Docker daemon",
        status: "fail",
        detail: "`docker` is not on PATH",
        fix: "Install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop, then start it.",
      });
    } else {
      const reason = firstLine(docker.stderr) || firstLine(docker.stdout) || `exit code ${docker.exitCode}`;
      results.push({
        name: "Docker daemon",
        status: "fail",
        detail: `the docker client cannot reach a daemon: ${reason}`,
        fix: "Start the daemon: `sudo systemctl start docker` (Linux) or open Docker Desktop; check with `docker info`.",
      });
    }

    for (const { port, setting } of options.ports) {
      const error = await probes.bindError(options.bindAddress, port);
      results.push(
        error === undefined
          ? { name: `Port ${port}`, status: "ok", detail: `free on ${options.bindAddress} (${setting})` }
          : {
              name: `Port ${port}`,
              status: "fail",
              detail: `cannot bind ${options.bindAddress}:${port} for ${setting}: ${error === "EADDRINUSE" ? "already in use" : error}`,
              fix: `Stop what listens there (\`ss -ltnp 'sport = :${port}'\`) or choose another port: \`pulumi config set ${setting} <port>\`.`,
            },
      );
    }
  }

  for (const w of options.settingWarnings ?? []) results.push({ name: `Setting ${w.key}`, status: "warn", detail: w.detail, fix: w.fix });

  const free = await probes.freeDiskBytes(options.diskPath);
  const gb = (n: number) => `${(n / 1024 ** 3).toFixed(1)} GB`;
  results.push(
    free >= options.minFreeDiskBytes
      ? { name: "Disk space", status: "ok", detail: `${gb(free)} free at ${options.diskPath}` }
      : {
          name: "Disk space",
          status: "fail",
          detail: `${gb(free)} free at ${options.diskPath}, need at least ${gb(options.minFreeDiskBytes)}`,
          fix: `Free space on that file system (old backups: \`ls ${options.diskPath}/backups\`, Docker: \`docker system prune\`).`,
        },
  );
  return results;
}

/** Renders results one per line, with the fix under each failure; used by doctor and setup. */
export function formatResults(results: CheckResult[]): string {
  const mark: Record<CheckStatus, string> = { ok: "ok  ", warn: "WARN", fail: "FAIL" };
  return results
    .map((r) => `${mark[r.status]} ${r.name}: ${r.detail}${r.fix ? `\n     fix: ${r.fix}` : ""}`)
    .join("\n");
}

/** True when any result is a failure (the CLI then exits non-zero). */
export function hasFailures(results: CheckResult[]): boolean {
  return results.some((r) => r.status === "fail");
}
