/**
 * Which Pulumi CLI `tsdb setup` and `tsdb doctor` run, and how setup gets one when the machine has none.
 *
 * The CLI comes from the `pulumi` npm package (a dependency): Pulumi's launcher, which downloads the CLI from
 * get.pulumi.com with Pulumi's install script and caches it under `$PULUMI_HOME/versions/<version>` (default
 * `~/.pulumi`), the directory Pulumi's Automation API uses too. npm has no launcher release for every CLI
 * version (none for 3.248 or 3.249), so we do not take the launcher's own version: we install the version of
 * the SDK we pin (`@pulumi/pulumi` in package.json), which the launcher's installer accepts for any release.
 * That keeps CLI and SDK on one version with one place to change it.
 *
 * Only the launcher's installer is used, not its `pulumi` bin: that bin (node_modules/.bin/pulumi, on PATH
 * under `npm run` and `npx`) installs the launcher's version on first use, which is neither the SDK's version
 * nor a download doctor should start. So the CLI we run is found here, and the launcher's directory is taken
 * off PATH for the commands tsdb runs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** Where the launcher downloads from (its install script), for messages. */
export const PULUMI_DOWNLOAD_SITE = "get.pulumi.com";

/** Installs Pulumi CLI `version` into `root` (`root/bin/pulumi`); the launcher's installer by default. */
export type PulumiInstaller = (version: string, root: string) => Promise<void>;

/** The Pulumi CLI version this project runs: the exact `@pulumi/pulumi` version package.json pins. */
export function pinnedPulumiVersion(projectDir: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const sdk = pkg.dependencies?.["@pulumi/pulumi"];
  if (!sdk || !/^\d+\.\d+\.\d+$/.test(sdk)) {
    throw new Error(`package.json must pin @pulumi/pulumi to an exact version (x.y.z) so the Pulumi CLI can match it, got ${JSON.stringify(sdk)}.`);
  }
  return sdk;
}

/** `$PULUMI_HOME/versions/<version>` (default `~/.pulumi/versions/<version>`): the launcher's and Automation API's cache. */
export function pulumiVersionRoot(version: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.PULUMI_HOME || path.join(os.homedir(), ".pulumi"), "versions", version);
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The launcher's `pulumi` bin (node_modules/pulumi/run.js), resolved through symlinks; undefined if not installed. */
function launcherBin(): string | undefined {
  try {
    return fs.realpathSync(require.resolve("pulumi/run.js"));
  } catch {
    return undefined;
  }
}

function isLauncher(file: string, launcher: string | undefined): boolean {
  if (launcher === undefined) return false;
  try {
    return fs.realpathSync(file) === launcher;
  } catch {
    return false;
  }
}

/**
 * The Pulumi CLI to run: the pinned version in Pulumi's cache, else a `pulumi` on PATH that is a real CLI (a
 * user's own install, any version), not the npm launcher. Undefined when there is neither.
 */
export function findPulumiCli(version: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const cached = path.join(pulumiVersionRoot(version, env), "bin", "pulumi");
  if (executable(cached)) return cached;
  const launcher = launcherBin();
  for (const dir of (env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, "pulumi");
    if (executable(candidate) && !isLauncher(candidate, launcher)) return candidate;
  }
  return undefined;
}

/**
 * PATH for the commands tsdb runs: `cli`'s directory first (the pinned CLI keeps its language hosts beside it),
 * and without directories whose `pulumi` is the npm launcher, so a plain `pulumi` never starts a download.
 */
export function pathForPulumi(cli: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const launcher = launcherBin();
  const dirs = (env.PATH ?? "").split(path.delimiter).filter((d) => d && !isLauncher(path.join(d, "pulumi"), launcher));
  return [...(cli ? [path.dirname(cli)] : []), ...dirs.filter((d) => !cli || d !== path.dirname(cli))].join(path.delimiter);
}

/** The launcher's installer (Pulumi's install script for `version`, run into `root`). */
export const launcherInstaller: PulumiInstaller = async (version, root) => {
  // The launcher has no types and no `exports`; its installer module is the pinned version's own file.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { installCLI } = require("pulumi/lib/download") as { installCLI: (v: string, r: string) => Promise<void> };
  await installCLI(version, root);
};

/** Why a download failed, in a few words: the network error under fetch's "fetch failed", else the message. */
function downloadFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const text = cause?.message ?? (err instanceof Error ? err.message : String(err));
  return text.replace(/\s*\n[\s\S]*/, "");
}

/**
 * The one line setup prints when it cannot download the Pulumi CLI: what failed and the manual alternative.
 * Pulumi's install script takes `--version`, so the alternative installs the same pinned version.
 */
export function downloadFailedLine(version: string, err: unknown): string {
  return (
    `cannot download Pulumi CLI v${version} from ${PULUMI_DOWNLOAD_SITE} (${downloadFailure(err)}); ` +
    `install it yourself: \`curl -fsSL https://${PULUMI_DOWNLOAD_SITE} | sh -s -- --version ${version}\` (or see https://www.pulumi.com/docs/install/), then run setup again`
  );
}

/** The outcome of `ensurePulumiCli`: the CLI's path, or the one line saying why there is none. */
export type EnsuredCli = { cli: string; downloaded: boolean } | { error: string };

/**
 * The Pulumi CLI for setup: one found by `findPulumiCli`, else the pinned version downloaded into Pulumi's
 * cache (once; `onDownload` is told before it starts). Never throws: a failed download is `{ error }`.
 */
export async function ensurePulumiCli(
  version: string,
  { env = process.env, install = launcherInstaller, onDownload }: { env?: NodeJS.ProcessEnv; install?: PulumiInstaller; onDownload?: (root: string) => void } = {},
): Promise<EnsuredCli> {
  const found = findPulumiCli(version, env);
  if (found) return { cli: found, downloaded: false };
  const root = pulumiVersionRoot(version, env);
  onDownload?.(root);
  try {
    // The launcher's installer reads PULUMI_HOME only through `root`; the script itself writes nowhere else.
    await install(version, root);
  } catch (err) {
    return { error: downloadFailedLine(version, err) };
  }
  const cli = path.join(root, "bin", "pulumi");
  return executable(cli) ? { cli, downloaded: true } : { error: downloadFailedLine(version, new Error(`the installer left no ${cli}`)) };
}
