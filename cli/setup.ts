/**
 * `tsdb setup`: first run. Gets the Pulumi CLI when the machine has none (the SDK's version, downloaded once
 * by the `pulumi` npm package's installer: lib/ops/pulumiCli.ts), checks prerequisites (stops with the fix
 * for each missing one), logs in to a local file backend when none is set, creates/selects the stack and runs `pulumi up`. The config passphrase is read
 * from the environment only; setup never writes it anywhere.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { type Act, type Context, examples, packageRoot, stackOption } from "./conventions";

interface SetupFlags {
  stack: string;
}

/** Said under failed checks: a user without Docker (or Pulumi) can still use a server of their own. */
export const OWN_SERVER_HINT =
  "No Docker here? A PostgreSQL/TimescaleDB server of your own needs neither Docker nor Pulumi: `tsdb doctor --url URL`, then `tsdb db up --url URL` (README, \"Already have a server?\").";

async function setup(o: SetupFlags, ctx: Context): Promise<void> {
  const [{ checkPrerequisites, formatResults, hasFailures, stackPrerequisites }, { readStackSettings }, pulumiCli] = await Promise.all([
    import("../lib/ops/prerequisites.js"),
    import("../lib/settings.js"),
    import("../lib/ops/pulumiCli.js"),
  ]);
  const projectDir = packageRoot();
  const settings = readStackSettings(projectDir, o.stack);

  const version = pulumiCli.pinnedPulumiVersion(projectDir);
  const ensured = await pulumiCli.ensurePulumiCli(version, {
    env: ctx.io.env,
    onDownload: (root) => ctx.info(`Downloading Pulumi CLI v${version} (the version of the Pulumi SDK this project pins) into ${root}, once.`),
  });
  // Ports are checked in docker mode only (checkPrerequisites skips them for an external server).
  const checks = await checkPrerequisites({ ...stackPrerequisites(projectDir, settings, { checkPorts: true }), pulumiCli: "cli" in ensured ? ensured.cli : ensured });
  ctx.print(`tsdb setup, stack ${o.stack} (${settings.mode} mode)\n${formatResults(checks)}`);
  if (hasFailures(checks)) {
    ctx.print(`\nFix the failed checks above, then run \`tsdb setup\` (or \`npm run setup\`) again.\n${OWN_SERVER_HINT}`);
    return ctx.fail();
  }

  // zx ships types for its ESM build only, which a CommonJS file may not `import` statically; load it here.
  const { $ } = await import("zx");
  $.verbose = !ctx.quiet;
  $.cwd = projectDir;
  // `pulumi` below is the CLI checked above (never the npm launcher's bin, which would install its own version).
  $.env = { ...ctx.io.env, PATH: pulumiCli.pathForPulumi("cli" in ensured ? ensured.cli : undefined, ctx.io.env) };

  // Backend: an explicit PULUMI_BACKEND_URL or an existing login wins; otherwise a file backend in the repo.
  let backend = ctx.io.env.PULUMI_BACKEND_URL;
  if (!backend) {
    const whoami = await $`pulumi whoami --verbose`.quiet().nothrow();
    const url = /Backend URL:\s*(\S+)/.exec(whoami.stdout)?.[1];
    if (whoami.exitCode === 0 && url) {
      backend = url;
    } else {
      backend = `file://${path.join(projectDir, ".pulumi")}`;
      fs.mkdirSync(path.join(projectDir, ".pulumi"), { recursive: true });
      await $`pulumi login ${backend}`;
    }
  }
  ctx.print(`Pulumi backend: ${backend}`);

  // Local backends encrypt secrets with a passphrase; without one in the environment Pulumi would prompt (or
  // fail in CI), so say what to set instead of guessing or storing one.
  if (backend.startsWith("file://") && !ctx.io.env.PULUMI_CONFIG_PASSPHRASE && !ctx.io.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    ctx.print(
      "\nThe local backend encrypts this stack's secrets with a passphrase. Set it in your shell (keep it in a password manager;\n" +
        "losing it loses the stack's secrets), then run setup again:\n  export PULUMI_CONFIG_PASSPHRASE='<a long random passphrase>'",
    );
    return ctx.fail();
  }

  await $`pulumi stack select --create ${o.stack}`;
  await $`pulumi up --yes --stack ${o.stack}`;
  ctx.info(`\nDone. Next: \`tsdb doctor --stack ${o.stack}\`, \`tsdb env --stack ${o.stack} --role app\`.`);
}

export function registerSetup(program: Command, act: Act): void {
  const cmd = program
    .command("setup")
    .description("first run: check prerequisites, log in to a Pulumi backend, create the stack and run pulumi up (needs Docker and Pulumi)")
    .addOption(stackOption())
    .addHelpText(
      "after",
      "\nThe Pulumi CLI: the SDK's version from Pulumi's cache (~/.pulumi/versions, or PULUMI_HOME), else `pulumi` on PATH,\n" +
        "else setup downloads the SDK's version there from get.pulumi.com (once).\n" +
        "Environment: PULUMI_BACKEND_URL (backend to use; default: your current login, else a file backend in .pulumi/),\n" +
        "PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE (required with a file backend; never stored).",
    );
  examples(cmd, "PULUMI_CONFIG_PASSPHRASE='...' tsdb setup --stack dev").action(act<SetupFlags>((o, ctx) => setup(o, ctx)));
}
