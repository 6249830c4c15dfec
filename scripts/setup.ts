/**
 * `npm run setup -- [--stack dev]`: first run. Checks prerequisites (stops with the fix for each missing one),
 * logs in to a local file backend when none is set, creates/selects the stack and runs `pulumi up`.
 * The config passphrase is read from the environment only; setup never writes it anywhere.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseFlags } from "../lib/ops/cliArgs";
import { checkPrerequisites, formatResults, hasFailures, stackPrerequisites } from "../lib/ops/prerequisites";
import { readStackSettings } from "../lib/settings";

const projectDir = path.resolve(__dirname, "..");

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), { stack: { type: "string", default: "dev" } });
  const stack = flags.stack ?? "dev";
  const settings = readStackSettings(projectDir, stack);

  // Ports are checked in docker mode only (checkPrerequisites skips them for an external server).
  const checks = await checkPrerequisites(stackPrerequisites(projectDir, settings, { checkPorts: true }));
  console.log(`tsdb setup, stack ${stack} (${settings.mode} mode)\n${formatResults(checks)}`);
  if (hasFailures(checks)) {
    console.log("\nFix the failed checks above, then run `npm run setup` again.");
    return 1;
  }

  // zx ships types for its ESM build only, which a CommonJS file may not `import` statically; load it here.
  const { $ } = await import("zx");
  $.verbose = true;
  $.cwd = projectDir;

  // Backend: an explicit PULUMI_BACKEND_URL or an existing login wins; otherwise a file backend in the repo.
  let backend = process.env.PULUMI_BACKEND_URL;
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
  console.log(`Pulumi backend: ${backend}`);

  // Local backends encrypt secrets with a passphrase; without one in the environment Pulumi would prompt (or
  // fail in CI), so say what to set instead of guessing or storing one.
  if (backend.startsWith("file://") && !process.env.PULUMI_CONFIG_PASSPHRASE && !process.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    console.log(
      "\nThe local backend encrypts this stack's secrets with a passphrase. Set it in your shell (keep it in a password manager;\n" +
        "losing it loses the stack's secrets), then run setup again:\n  export PULUMI_CONFIG_PASSPHRASE='<a long random passphrase>'",
    );
    return 1;
  }

  await $`pulumi stack select --create ${stack}`;
  await $`pulumi up --yes --stack ${stack}`;
  console.log(`\nDone. Next: \`npm run doctor -- --stack ${stack}\`, \`npm run env -- --stack ${stack} --role app\`.`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`setup: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
