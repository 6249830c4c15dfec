/**
 * `tsdb env`: writes DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and PGSSLMODE for one role
 * from the deployed stack's outputs (lib/ops/envFile.ts), mode 0600; with --url, from that URL instead (a server
 * of your own: no Pulumi CLI needed).
 */
import { type Command, Option } from "commander";
import { type Act, type Context, UsageError, examples, stackOption } from "./conventions";

/** The roles the stack exports URLs for (ROLES in lib/ops/stackOutputs.ts, which loads zod: kept out of start-up). */
const ROLE_CHOICES = ["migrator", "app", "readonly"];

interface EnvFlags {
  stack: string;
  url?: string;
  role: "migrator" | "app" | "readonly";
  out: string;
  json?: boolean;
}

async function env(o: EnvFlags, ctx: Context): Promise<void> {
  const [{ connectionFromOneUrl, envVariables, renderEnvFile, writeSecretFile }, { readDatabaseOutput }] = await Promise.all([
    import("../lib/ops/envFile.js"),
    import("../lib/ops/stackOutputs.js"),
  ]);
  let source;
  try {
    source = o.url ? connectionFromOneUrl(o.url) : await readDatabaseOutput(o.stack);
  } catch (err) {
    if (o.url) throw new UsageError((err as Error).message);
    throw err;
  }
  writeSecretFile(o.out, renderEnvFile(source, o.role, o.url ? undefined : o.stack));
  const variables = envVariables(source, o.role).map(([name]) => name);
  const whose = o.url ? "the --url given" : `role ${o.role} of stack ${o.stack}`;
  if (o.json) return ctx.json({ file: o.out, mode: "0600", ...(o.url ? {} : { role: o.role, stack: o.stack }), variables });
  ctx.print(`Wrote ${o.out} (mode 0600) for ${whose}: ${variables.join(", ")}.`);
}

export function registerEnv(program: Command, act: Act): void {
  const cmd = program
    .command("env")
    .description("write a .env (mode 0600) with one role's connection from the deployed stack's outputs (needs the Pulumi CLI)")
    .addOption(stackOption())
    .option("--url <url>", "write the .env from this postgresql:// URL instead of the stack's outputs (a server of your own)")
    .addOption(new Option("--role <role>", "whose credentials, from the stack's outputs").choices(ROLE_CHOICES).default("app"))
    .option("--out <file>", "file to write", ".env")
    .option("--json", "print what was written (never the password) as JSON");
  examples(cmd, "tsdb env --stack dev --role readonly --out .env.readonly", "tsdb env --url postgresql://me:secret@db.example.com:5432/market?sslmode=require").action(act<EnvFlags>((o, ctx) => env(o, ctx)));
}
