/**
 * `.env` files for other apps (`npm run env`): DATABASE_URL and the libpq variables for one role, written
 * with mode 0600 because they hold a password.
 *
 * One format, read identically by every common reader: `KEY=value` lines whose values are unquoted and use
 * only {@link PORTABLE_VALUE} characters. No quoting works everywhere: Docker's `--env-file` takes the value
 * verbatim (docker/cli pkg/kvfile: 28.2 keeps quotes, later versions strip one matching pair), while
 * POSIX sh (`set -a; . ./.env`) runs `$(...)` and backquotes and Node's `--env-file` and python-dotenv
 * (src/dotenv/parser.py, variables.py) cut at ` #` and expand `${...}`. A value outside the set is refused.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { connectionUrl, urlParts, withSslRootCert } from "../postgres/connectionInfo";
import { isConnectionUrl } from "../postgres/connectionString";
import { checkOutputPath } from "../outputPath";
import { type DatabaseOutput, type Role, connectionFromUrl } from "./stackOutputs";

/** Whose connection a .env holds: a login role, or `replica` (the read-only role on the read replica). */
export type EnvRole = Role | "replica";

/**
 * Characters a value may hold: letters, digits and `_ . / : @ % + , - = ? [ ]`. None of them is special in a
 * sh assignment (no field splitting or pathname expansion happens there; `~`, `$`, quotes, backquotes,
 * `\`, `#`, `&`, `;`, `|`, `<`, `>`, `(`, `)`, spaces and newlines are left out), in Docker's verbatim
 * values, or in dotenv's unquoted values (no leading quote, no ` #`, no `$`).
 */
export const PORTABLE_VALUE = /^[A-Za-z0-9_./:@%+,=?[\]-]*$/;

/** The .env readers the format is proven against (test/unit/ops-env.test.ts). */
export const ENV_READERS = "POSIX sh (`set -a; . ./.env`), Docker --env-file, Node --env-file and python-dotenv";

/** Percent-encodes everything but RFC 3986 unreserved letters, digits and `-._`: no `'`, `!`, `*`, `(`, `)`, `~`. */
function strictEncode(part: string): string {
  return encodeURIComponent(part).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The role's URL with its user and password percent-encoded strictly, so it is a portable value. The CA file
 * goes to PGSSLROOTCERT instead of an `&sslrootcert=` parameter: `&` ends an assignment in sh.
 */
function portableUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has("sslrootcert")) parsed.searchParams.delete("sslrootcert");
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  parsed.username = strictEncode(user);
  parsed.password = strictEncode(password);
  return parsed.toString();
}

/** What a .env is written from: the stack's `database` output, or one URL (see {@link connectionFromOneUrl}). */
export type EnvSource = Pick<DatabaseOutput, "urls" | "host" | "port" | "database" | "sslmode">;

/**
 * A source for `tsdb env --url`: a server of your own, one login. Every role reads the same URL; its sslmode
 * (libpq's default `prefer` when absent) is PGSSLMODE.
 */
export function connectionFromOneUrl(url: string, env: NodeJS.ProcessEnv = {}): EnvSource {
  // The CLIs' one parser (lib/postgres/connectionString.ts): a key=value string becomes the URL it means.
  const c = connectionFromUrl(url, env);
  const asUrl = isConnectionUrl(url) ? url : withSslRootCert(connectionUrl(c), c.sslrootcertFile);
  return { urls: { migrator: asUrl, app: asUrl, readonly: asUrl }, host: c.host, port: c.port, database: c.database, sslmode: c.sslmode };
}

/** The URL of `role` in `output`; `replica` only when the stack (or --replica) has one. */
export function envUrl(output: EnvSource, role: EnvRole): string {
  const url = role === "replica" ? output.urls.replica : output.urls[role];
  if (!url) throw new Error("there is no read replica: set tsdb:replicaHost on the stack, or pass --replica host:port with --url");
  return url;
}

/** Variables for `role`, in the order they are written. */
export function envVariables(output: EnvSource, role: EnvRole): [string, string][] {
  const url = envUrl(output, role);
  const parsed = urlParts(url);
  const rootCert = parsed.params.get("sslrootcert");
  // Host and port from the role's URL: app and readonly may go through the stack's pooler.
  return [
    ["DATABASE_URL", portableUrl(url)],
    ["PGHOST", parsed.host || output.host],
    ["PGPORT", String(parsed.port ?? output.port)],
    ["PGDATABASE", output.database],
    ["PGUSER", parsed.user],
    ["PGPASSWORD", parsed.password],
    ["PGSSLMODE", output.sslmode],
    ...(rootCert ? [["PGSSLROOTCERT", rootCert] as [string, string]] : []),
  ];
}

/** A `KEY=value` line, or an error (never showing the value: it may be the password) when it is not portable. */
export function envLine(name: string, value: string, role: EnvRole): string {
  if (!PORTABLE_VALUE.test(value)) {
    throw new Error(
      `${name} of role ${role} has characters that ${ENV_READERS} would read differently; a .env file holds only ` +
        "letters, digits and _ . / : @ % + , - = ? [ ] (unquoted). Give the role a password of those characters " +
        "(generated passwords are) or connect with the stack's DATABASE_URL output instead.",
    );
  }
  return `${name}=${value}`;
}

/** The `.env` text for `role`. */
export function renderEnvFile(output: EnvSource, role: EnvRole, stack: string | undefined): string {
  const lines = envVariables(output, role).map(([k, v]) => envLine(k, v, role));
  const from = stack === undefined ? "the --url given" : `tsdb stack ${stack}, role ${role}`;
  return `# ${from}: written by tsdb env; holds a password, keep it out of git.\n${lines.join("\n")}\n`;
}

/**
 * Writes `content` to `file` with mode 0600: through a temporary file created 0600 in the same directory and
 * renamed over the target, so the secret is never readable by others, even when the file existed with a wider mode.
 */
export function writeSecretFile(file: string, content: string): void {
  checkOutputPath(file);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, "wx", 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // the umask cannot widen it, but be explicit
    fs.writeFileSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
