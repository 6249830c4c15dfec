/**
 * The Pulumi CLI comes with `npm ci` (the `pulumi` npm package's installer), at the SDK's version: setup
 * downloads it when the machine has none, says in one line what to do when it cannot, and neither setup nor
 * doctor ever runs the launcher's own `pulumi` bin (which would install the launcher's version).
 */
import dns from "node:dns/promises";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ensurePulumiCli, findPulumiCli, pathForPulumi, pinnedPulumiVersion, pulumiVersionRoot } from "../../lib/ops/pulumiCli";
import { ROOT, tsdbSync } from "../fixtures/cli";

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
const SDK = pkg.dependencies["@pulumi/pulumi"]!;
const NPM_BIN = path.join(ROOT, "node_modules", ".bin");

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-pulumi-cli-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function dir(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}
function script(file: string, body: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe("one Pulumi version for SDK and CLI", () => {
  test("the CLI setup installs is the exact @pulumi/pulumi version package.json pins, and that SDK is the one installed", () => {
    expect(SDK).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pinnedPulumiVersion(ROOT)).toBe(SDK);
    const installed = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/@pulumi/pulumi/package.json"), "utf8")) as { version: string };
    expect(installed.version).toBe(SDK);
  });

  test("the launcher is pinned exactly and does not drift from the SDK: same major, and the SDK's release or the next npm has (none for 3.248, 3.249)", () => {
    const launcher = pkg.dependencies.pulumi!;
    expect(launcher).toMatch(/^\d+\.\d+\.\d+$/);
    const installed = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/pulumi/package.json"), "utf8")) as { version: string };
    expect(installed.version).toBe(launcher);
    const [lMajor, lMinor] = launcher.split(".").map(Number) as [number, number];
    const [sMajor, sMinor] = SDK.split(".").map(Number) as [number, number];
    expect(lMajor).toBe(sMajor);
    expect(lMinor - sMinor).toBeGreaterThanOrEqual(0);
    expect(lMinor - sMinor).toBeLessThanOrEqual(2);
  });

  test("a package.json whose SDK is a range is refused, naming the dependency", () => {
    const project = dir("range-project");
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ dependencies: { "@pulumi/pulumi": "^3.248.0" } }));
    expect(() => pinnedPulumiVersion(project)).toThrow('package.json must pin @pulumi/pulumi to an exact version (x.y.z) so the Pulumi CLI can match it, got "^3.248.0".');
  });
});

describe("which Pulumi CLI runs", () => {
  test("never the npm launcher's bin on PATH (node_modules/.bin/pulumi, which downloads its own version)", () => {
    expect(fs.existsSync(path.join(NPM_BIN, "pulumi"))).toBe(true);
    const env = { PATH: `${NPM_BIN}:/usr/bin:/bin`, PULUMI_HOME: dir("empty-home") };
    expect(findPulumiCli(SDK, env)).toBeUndefined();
    expect(pathForPulumi(undefined, env).split(":")).toEqual(["/usr/bin", "/bin"]);
  });

  test("the pinned version in Pulumi's cache first, then a user's own pulumi on PATH", () => {
    const own = script(path.join(dir("own-bin"), "pulumi"), "echo v3.100.0");
    const home = dir("home-with-cache");
    const env = { PATH: `${NPM_BIN}:${path.dirname(own)}`, PULUMI_HOME: home };
    expect(findPulumiCli(SDK, env)).toBe(own);
    const cached = script(path.join(pulumiVersionRoot(SDK, env), "bin", "pulumi"), `echo v${SDK}`);
    expect(findPulumiCli(SDK, env)).toBe(cached);
    expect(pathForPulumi(cached, env).split(":")).toEqual([path.dirname(cached), path.dirname(own)]);
  });

  test("ensurePulumiCli downloads into $PULUMI_HOME/versions/<SDK version> once; a failed download is one line with the manual install", async () => {
    const env = { PATH: NPM_BIN, PULUMI_HOME: dir("home-download") };
    const installs: string[] = [];
    const install = async (version: string, root: string) => {
      installs.push(`${version} ${root}`);
      script(path.join(root, "bin", "pulumi"), `echo v${version}`);
    };
    const first = await ensurePulumiCli(SDK, { env, install });
    expect(first).toEqual({ cli: path.join(env.PULUMI_HOME, "versions", SDK, "bin", "pulumi"), downloaded: true });
    expect(await ensurePulumiCli(SDK, { env, install })).toEqual({ cli: path.join(env.PULUMI_HOME, "versions", SDK, "bin", "pulumi"), downloaded: false });
    expect(installs).toEqual([`${SDK} ${path.join(env.PULUMI_HOME, "versions", SDK)}`]);

    const failed = await ensurePulumiCli(SDK, {
      env: { PATH: NPM_BIN, PULUMI_HOME: dir("home-failed") },
      install: async () => {
        throw Object.assign(new TypeError("fetch failed"), { cause: new Error("getaddrinfo ENOTFOUND get.pulumi.com") });
      },
    });
    expect(failed).toEqual({
      error: `cannot download Pulumi CLI v${SDK} from get.pulumi.com (getaddrinfo ENOTFOUND get.pulumi.com); install it yourself: \`curl -fsSL https://get.pulumi.com | sh -s -- --version ${SDK}\` (or see https://www.pulumi.com/docs/install/), then run setup again`,
    });
  });
});

describe("tsdb setup and doctor on a machine without a Pulumi CLI, run for real", () => {
  let fakeBin: string;
  beforeAll(() => {
    fakeBin = dir("fake-bin");
    script(path.join(fakeBin, "docker"), "echo 28.5.1");
    fs.symlinkSync(process.execPath, path.join(fakeBin, "node"));
    fs.symlinkSync("/bin/bash", path.join(fakeBin, "bash"));
  });

  test("setup gets the SDK's CLI through the launcher's installer: here, with no route to get.pulumi.com, one line says so and how to install it", async () => {
    const home = dir("setup-home");
    // As under `npm run setup`: node_modules/.bin (the launcher) first on PATH.
    const r = tsdbSync(["setup", "--stack", "dev"], { PATH: `${NPM_BIN}:${fakeBin}`, PULUMI_HOME: home, PULUMI_BACKEND_URL: "", PULUMI_CONFIG_PASSPHRASE: "" });
    const reachable = await dns.lookup("get.pulumi.com").then(() => true, () => false);
    expect(r.stdout).toContain(`Downloading Pulumi CLI v${SDK} (the version of the Pulumi SDK this project pins) into ${path.join(home, "versions", SDK)}, once.`);
    if (reachable) {
      // A machine with internet: the download itself, then the same checks passing for the CLI.
      expect(r.stdout).toContain(`ok   Pulumi CLI: v${SDK} (${path.join(home, "versions", SDK, "bin", "pulumi")})`);
      return;
    }
    const lines = r.stdout.split("\n");
    const pulumiLines = lines.filter((l) => /^(ok {3}|WARN |FAIL )Pulumi CLI/.test(l));
    expect(pulumiLines).toHaveLength(1);
    expect(pulumiLines[0]).toMatch(
      new RegExp(`^FAIL Pulumi CLI: cannot download Pulumi CLI v${SDK.replace(/\./g, "\\.")} from get\\.pulumi\\.com \\(getaddrinfo (ENOTFOUND|EAI_AGAIN) get\\.pulumi\\.com\\); install it yourself: \`curl -fsSL https://get\\.pulumi\\.com \\| sh -s -- --version ${SDK.replace(/\./g, "\\.")}\``),
    );
    // The line carries its own fix: the next line is the next check.
    expect(lines[lines.indexOf(pulumiLines[0]!) + 1]).toMatch(/^(ok {3}|WARN |FAIL )/);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain("pulumi: fetch failed");
    expect(fs.existsSync(path.join(home, "versions", SDK, "bin", "pulumi"))).toBe(false);
  });

  test("doctor under npm run (the launcher first on PATH) reports no Pulumi CLI and starts no download", () => {
    const home = dir("doctor-home");
    const r = tsdbSync(["doctor", "--stack", "dev"], { PATH: `${NPM_BIN}:${fakeBin}`, PULUMI_HOME: home });
    expect(r.stdout).toContain("FAIL Pulumi CLI: `pulumi` is not on PATH");
    expect(r.stdout).toContain("fix: `tsdb setup` downloads the project's version");
    expect(r.stdout + r.stderr).not.toMatch(/Downloading/);
    expect(fs.readdirSync(home)).toEqual([]);
  });

  test("doctor uses the SDK's CLI from Pulumi's cache when setup downloaded it", () => {
    const home = dir("doctor-cached-home");
    const cli = script(path.join(home, "versions", SDK, "bin", "pulumi"), `case "$1" in version) echo v${SDK};; *) echo "error: no stack named dev found" >&2; exit 255;; esac`);
    const r = tsdbSync(["doctor", "--stack", "dev"], { PATH: `${NPM_BIN}:${fakeBin}`, PULUMI_HOME: home });
    expect(r.stdout).toContain(`ok   Pulumi CLI: v${SDK} (${cli})`);
    expect(r.stdout).toContain("WARN Stack outputs: no database checks: `pulumi stack output --stack dev database` failed: error: no stack named dev found");
  });
});
