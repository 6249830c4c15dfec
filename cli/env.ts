/**
 * `tsdb env`: writes DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and PGSSLMODE for one role
 * from the deployed stack's outputs (lib/ops/envFile.ts), mode 0600. Needs the stack: a server of your own
 * needs no env file (pass --url or set DATABASE_URL yourself).
 */
import { type Command, Option } from "commander";
import { type Act, type Context, examples, stackOption } from "./conventions";

/** The roles the stack exports URLs for (ROLES in lib/ops/stackOutputs.ts, which loads zod: kept out of start-up). */
const ROLE_CHOICES = ["migrator", "app", "readonly"];

interface EnvFlags {
  stack: string;
  role: "migrator" | "app" | "readonly";
  out: string;
  json?: boolean;
}

async function env(o: EnvFlags, ctx: Context): Promise<void> {
  const [{ renderEnvFile, writeSecretFile }, { readDatabaseOutput }] = await Promise.all([import("../lib/ops/envFile.js"), import("../lib/ops/stackOutputs.js")]);
  const output = await readDatabaseOutput(o.stack);
  writeSecretFile(o.out, renderEnvFile(output, o.role, o.stack));
  const variables = ["DATABASE_URL", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE"];
  if (o.json) return ctx.json({ file: o.out, mode: "0600", role: o.role, stack: o.stack, variables });
  ctx.print(`Wrote ${o.out} (mode 0600) for role ${o.role} of stack ${o.stack}: ${variables.join(", ")}.`);
}

export function registerEnv(program: Command, act: Act): void {
  const cmd = program
    .command("env")
    .description("write a .env (mode 0600) with one role's connection from the deployed stack's outputs (needs the Pulumi CLI)")
    .addOption(stackOption())
    .addOption(new Option("--role <role>", "whose credentials").choices(ROLE_CHOICES).default("app"))
    .option("--out <file>", "file to write", ".env")
    .option("--json", "print what was written (never the password) as JSON");
  examples(cmd, "tsdb env --stack dev --role readonly --out .env.readonly").action(act<EnvFlags>((o, ctx) => env(o, ctx)));
}
