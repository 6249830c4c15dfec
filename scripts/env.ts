/**
 * `npm run env -- --stack dev [--role app|readonly|migrator] [--out .env]`: writes DATABASE_URL, PGHOST,
 * PGPORT, PGDATABASE, PGUSER, PGPASSWORD and PGSSLMODE for one role from the stack's outputs, mode 0600.
 */
import { parseFlags } from "../lib/ops/cliArgs";
import { renderEnvFile, writeSecretFile } from "../lib/ops/envFile";
import { ROLES, readDatabaseOutput, type Role } from "../lib/ops/stackOutputs";

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    stack: { type: "string", default: "dev" },
    role: { type: "string", default: "app" },
    out: { type: "string", default: ".env" },
  });
  const role = flags.role ?? "app";
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new Error(`--role must be one of ${ROLES.join(", ")}, got "${role}".`);
  }
  const stack = flags.stack ?? "dev";
  const out = flags.out ?? ".env";
  const output = await readDatabaseOutput(stack);
  writeSecretFile(out, renderEnvFile(output, role as Role, stack));
  console.log(`Wrote ${out} (mode 0600) for role ${role} of stack ${stack}: DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE.`);
}

main().catch((err: unknown) => {
  console.error(`env: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
