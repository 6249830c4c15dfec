/**
 * `tsdb env`: writes DATABASE_URL, PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and PGSSLMODE (and
 * PGSSLROOTCERT) for one role, mode 0600 (lib/ops/envFile.ts):
 * - from the deployed stack's outputs (needs the Pulumi CLI);
 * - with --url and --role, on a server of your own: the URL is the admin's; the role is `<database>_<role>` made
 *   by `tsdb db roles`, given the password in TSDB_<ROLE>_PASSWORD or a new generated one (never printed);
 * - with --url alone: that URL's own login.
 */
import { type Command, Option } from "commander";
import { parseEndpoint } from "../lib/postgres/connectionString";
import { connectionWith } from "../lib/postgres/connectionInfo";
import { type Act, type Context, UsageError, examples, parseConnection, stackOption } from "./conventions";

/** The roles a .env can be written for (TSDB_ROLES in sdk/databaseOutput.ts, plus the replica; zod kept out of start-up). */
const ROLE_CHOICES = ["migrator", "app", "readonly", "replica"];

interface EnvFlags {
  stack: string;
  url?: string;
  role: "migrator" | "app" | "readonly" | "replica";
  pooler?: string;
  replica?: string;
  out: string;
  json?: boolean;
}

/** `host:port` of --pooler / --replica, or a usage error naming the flag. */
function endpoint(flag: string, raw: string | undefined, defaultPort: number): { host: string; port: number } | undefined {
  if (raw === undefined) return undefined;
  const at = parseEndpoint(raw, defaultPort);
  if (!at) throw new UsageError(`${flag} must be host or host:port (IPv6 in brackets), got ${JSON.stringify(raw)}`);
  return at;
}

/** A server of your own: the role's connection, with a password issued through the admin connection. */
async function ownServerSource(o: EnvFlags, ctx: Context) {
  const admin = parseConnection(o.url);
  const pooler = endpoint("--pooler", o.pooler, 6432);
  const replica = endpoint("--replica", o.replica, 5432);
  if (o.role === "replica" && !replica) throw new UsageError("--role replica needs --replica host[:port] (the read replica of the --url server)");
  const [{ withClient }, { issuePassword }, { databaseUrls }] = await Promise.all([import("../lib/db.js"), import("../lib/ops/ownServerAccess.js"), import("../lib/postgres/managed.js")]);
  const login = o.role === "replica" ? "readonly" : o.role;
  const issued = await withClient(admin, (c) => issuePassword(c, admin.database, login, ctx.io.env));
  const info = connectionWith(admin, { user: issued.user, password: issued.password });
  const urls = databaseUrls({ migrator: info, app: info, readonly: info, pooler, replica, sslrootcertFile: admin.sslrootcertFile });
  return { source: { urls, host: admin.host, port: admin.port, database: admin.database, sslmode: admin.sslmode }, issued };
}

async function env(o: EnvFlags, ctx: Context, roleGiven: boolean): Promise<void> {
  const [{ connectionFromOneUrl, envVariables, renderEnvFile, writeSecretFile }, { readDatabaseOutput }] = await Promise.all([
    import("../lib/ops/envFile.js"),
    import("../lib/ops/stackOutputs.js"),
  ]);
  let source;
  let issued: { user: string; from: "environment" | "generated" } | undefined;
  if (o.url && roleGiven) {
    ({ source, issued } = await ownServerSource(o, ctx));
  } else if (o.url) {
    parseConnection(o.url);
    source = connectionFromOneUrl(o.url);
  } else {
    if (o.pooler || o.replica) throw new UsageError("--pooler and --replica go with --url; a stack's outputs already name its pooler and replica");
    source = await readDatabaseOutput(o.stack);
  }
  const stackLabel = o.url ? undefined : o.stack;
  writeSecretFile(o.out, renderEnvFile(source, o.url && !roleGiven ? "app" : o.role, stackLabel));
  const variables = envVariables(source, o.url && !roleGiven ? "app" : o.role).map(([name]) => name);
  const whose = !o.url ? `role ${o.role} of stack ${o.stack}` : issued ? `${issued.user}${o.role === "replica" ? " on the replica" : ""}` : "the --url given";
  if (o.json) return ctx.json({ file: o.out, mode: "0600", ...(o.url && !roleGiven ? {} : { role: o.role }), ...(o.url ? {} : { stack: o.stack }), ...(issued ? { user: issued.user, password: issued.from } : {}), variables });
  ctx.print(`Wrote ${o.out} (mode 0600) for ${whose}: ${variables.join(", ")}.`);
  if (issued?.from === "generated") ctx.info(`${issued.user} has a new generated password (in ${o.out} only); .env files written for it before no longer work.`);
}

export function registerEnv(program: Command, act: Act): void {
  const cmd = program
    .command("env")
    .description("write a .env (mode 0600) with one role's connection: from the deployed stack's outputs (needs the Pulumi CLI), or from --url on a server of your own")
    .addOption(stackOption())
    .option("--url <url>", "a server of your own: with --role, the admin's connection (the role gets a new password, or TSDB_<ROLE>_PASSWORD); without, write this connection itself")
    .addOption(new Option("--role <role>", "whose credentials: <database>_<role>; replica = the read-only role on the read replica").choices(ROLE_CHOICES).default("app"))
    .option("--pooler <host:port>", "with --url: the app and readonly URLs go through this pooler (PgBouncer)")
    .option("--replica <host:port>", "with --url: the read replica, for --role replica")
    .option("--out <file>", "file to write", ".env")
    .option("--json", "print what was written (never the password) as JSON");
  examples(
    cmd,
    "tsdb env --stack dev --role readonly --out .env.readonly",
    "PGPASSWORD=... tsdb env --url postgresql://postgres@db.example.com:5432/market --role app",
    "tsdb env --url postgresql://me:secret@db.example.com:5432/market?sslmode=require",
  ).action(act<EnvFlags>((o, ctx, c) => env(o, ctx, c.getOptionValueSource("role") !== "default")));
}
