/**
 * Reading a connection the way libpq (psql, pg_dump) reads it, in one place for every command, hook and the SDK:
 * a `postgresql://` URL or a `key=value` string, then the PG* variables for every keyword the string leaves out,
 * then libpq's defaults (https://www.postgresql.org/docs/current/libpq-connect.html, "Connection Strings" and
 * "Environment Variables"). So a `.env` written by `tsdb env` (DATABASE_URL plus PGSSLROOTCERT) means the same to
 * `tsdb` as to psql, and a URL without `sslmode` is `prefer`: TLS when the server offers it (./client.ts falls back
 * to plain text when it does not, as libpq does).
 *
 * URLs are split by pg-connection-string (node-postgres's own parser: percent-decoding, IPv6 brackets, an empty
 * host, `?host=` for a socket directory); it reads only URLs, so the small `key=value` grammar of libpq is here.
 * TLS options are not taken from it: ./tls.ts maps libpq's sslmode itself.
 *
 * Serialized by value into the migrations hook (through ./client.ts): its one runtime import is ./connectionInfo.ts (no imports of its own); Node built-ins and
 * pg-connection-string are required inside the functions that need them.
 */
import { type ConnectionInfo, bareHost, hidePassword } from "./connectionInfo";
import { SSL_MODES } from "./tls";

/** The libpq variables read for keywords a connection string leaves out. */
export const LIBPQ_ENV: Record<string, string> = {
  host: "PGHOST",
  hostaddr: "PGHOSTADDR",
  port: "PGPORT",
  dbname: "PGDATABASE",
  user: "PGUSER",
  password: "PGPASSWORD",
  sslmode: "PGSSLMODE",
  sslrootcert: "PGSSLROOTCERT",
  application_name: "PGAPPNAME",
  connect_timeout: "PGCONNECT_TIMEOUT",
};

/** libpq's connection keywords (PostgreSQL 17); anything else is refused, as libpq refuses it. */
const KEYWORDS = [
  "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth", "channel_binding", "connect_timeout",
  "client_encoding", "options", "application_name", "fallback_application_name", "keepalives", "keepalives_idle",
  "keepalives_interval", "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode", "sslnegotiation",
  "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni",
  "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation",
  "service", "target_session_attrs", "load_balance_hosts",
];


/** A connection as libpq resolves it, with what node-postgres and libpq programs need besides. */
export interface ResolvedConnection extends ConnectionInfo {
  /** PGAPPNAME / application_name, when given. */
  applicationName?: string;
  /** The CA file `sslrootcert` (or PGSSLROOTCERT, or ~/.postgresql/root.crt) named; `system` for the public CAs. */
  sslrootcertFile?: string;
  /** Read from a connection string and the PG* variables (not the stack's settings): advice names those. */
  fromConnectionString: true;
}

/**
 * An error in a connection string: bad usage, not a failed connection (the CLI exits 2 for it). A plain Error
 * with a flag, not a subclass: Pulumi's closure serializer loses an Error subclass's message (see lib/db.ts).
 * The message never repeats the string: it may hold a password.
 */
export interface ConnectionStringError extends Error {
  badConnectionString: true;
}

function badConnectionString(message: string, cause?: unknown): ConnectionStringError {
  const err = new Error(message, cause === undefined ? undefined : { cause }) as ConnectionStringError;
  err.name = "ConnectionStringError";
  err.badConnectionString = true;
  return err;
}

/** True for an error made while reading a connection string (see {@link ConnectionStringError}). */
export function isConnectionStringError(err: unknown): err is ConnectionStringError {
  return (err as Partial<ConnectionStringError> | undefined)?.badConnectionString === true;
}

/** What a connection string must look like, for error messages. */
export const CONNECTION_STRING_FORMS = "a postgresql://user@host:port/database URL or libpq key=value pairs (host=... port=... dbname=... user=...)";

/** True when `text` is a URL (`postgresql://` or `postgres://`), the other form being `key=value` pairs. */
export function isConnectionUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text.trim());
}

/**
 * The keywords a connection string sets (libpq's names: `dbname`, not `database`), URL or `key=value`. Throws a
 * {@link ConnectionStringError} for anything else, an unknown keyword, or a malformed value.
 */
export function parseConnectionString(text: string): Record<string, string> {
  const trimmed = text.trim();
  if (isConnectionUrl(trimmed)) return urlKeywords(trimmed);
  if (/^[A-Za-z_]+\s*=/.test(trimmed)) return checkKeywords(keywordValuePairs(trimmed));
  throw badConnectionString(`the connection is not ${CONNECTION_STRING_FORMS}`);
}

function checkKeywords(keywords: Record<string, string>): Record<string, string> {
  for (const key of Object.keys(keywords)) {
    if (!KEYWORDS.includes(key)) throw badConnectionString(`the connection names "${key}", which is not a libpq connection keyword (e.g. host, port, dbname, user, sslmode, sslrootcert)`);
  }
  return keywords;
}

function urlKeywords(url: string): Record<string, string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parse } = require("pg-connection-string") as typeof import("pg-connection-string");
  const query = new Map<string, string>();
  let withoutTls = url;
  try {
    // TLS parameters stay out of the parser: it would read sslrootcert's file itself and judge sslmode its way.
    const parsed = new URL(url);
    for (const [key, value] of parsed.searchParams) query.set(key, value);
    for (const key of ["sslmode", "sslrootcert", "sslcert", "sslkey"]) parsed.searchParams.delete(key);
    withoutTls = parsed.toString();
  } catch {
    // pg-connection-string accepts URLs that Node's parser refuses (an empty host: postgresql:///db).
  }
  let config: ReturnType<typeof parse>;
  try {
    config = parse(withoutTls, { useLibpqCompat: true });
  } catch (err) {
    throw badConnectionString(`the connection URL cannot be read (${(err as Error).message}); give ${CONNECTION_STRING_FORMS}`, err);
  }
  const keywords: Record<string, string> = {};
  for (const [key, value] of query) keywords[key] = value;
  const set = (key: string, value: unknown) => {
    if (typeof value === "string" && value !== "") keywords[key] = value;
  };
  set("host", config.host);
  set("port", config.port);
  set("dbname", config.database);
  set("user", config.user);
  set("password", config.password);
  return checkKeywords(keywords);
}

/** libpq's `key = value` pairs: whitespace-separated; a value in single quotes may hold spaces, `\'` and `\\`. */
function keywordValuePairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) return out;
    const key = /^[A-Za-z_]+/.exec(text.slice(i))?.[0];
    if (!key) throw badConnectionString(`the connection's key=value pairs are malformed at character ${i + 1}; give ${CONNECTION_STRING_FORMS}`);
    i += key.length;
    skipSpace();
    if (text[i] !== "=") throw badConnectionString(`the connection's keyword "${key}" has no "=value"`);
    i++;
    skipSpace();
    let value = "";
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length) throw badConnectionString(`the connection's value of "${key}" has no closing quote`);
        const c = text[i++]!;
        if (c === "'") break;
        value += c === "\\" && i < text.length ? text[i++]! : c;
      }
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        const c = text[i++]!;
        value += c === "\\" && i < text.length ? text[i++]! : c;
      }
    }
    out[key] = value;
  }
}

/**
 * The connection `text` (a URL, `key=value` pairs, or nothing) means, as libpq resolves it: keywords from the
 * string, else from the PG* variables in `env`, else libpq's defaults (port 5432, the OS user, a database named
 * like the user, sslmode prefer, ~/.postgresql/root.crt when it exists). The host defaults to `localhost`:
 * node-postgres does not speak over libpq's default Unix socket unless PGHOST names its directory.
 * A CA file is read here (`sslrootcert` PEM); `sslrootcert=system` means the public CAs, as in libpq 16+.
 */
export function resolveConnection(text: string | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  const given = text === undefined || text.trim() === "" ? {} : parseConnectionString(text);
  const pick = (key: string): string | undefined => {
    const v = given[key] ?? env[LIBPQ_ENV[key] ?? ""];
    return v === undefined || v === "" ? undefined : v;
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require("node:os") as typeof import("node:os");
  const rawPort = pick("port") ?? "5432";
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort) || port < 1 || port > 65535) throw badConnectionString(`the connection's port must be a number from 1 to 65535, got "${rawPort}"`);
  const sslmode = pick("sslmode") ?? "prefer";
  if (!(SSL_MODES as readonly string[]).includes(sslmode)) throw badConnectionString(`the connection's sslmode must be one of ${SSL_MODES.join(", ")}, got "${sslmode}"`);
  const user = pick("user") ?? os.userInfo().username;
  const host = pick("host") ?? pick("hostaddr") ?? "localhost";
  const rootFile = pick("sslrootcert") ?? defaultRootCert(env);
  const applicationName = pick("application_name");
  const resolved = {
    host,
    port,
    database: pick("dbname") ?? user,
    user,
    sslmode,
    ...readRootCert(rootFile, sslmode),
    ...(applicationName ? { applicationName } : {}),
    fromConnectionString: true as const,
  };
  // Non-enumerable, as node-postgres keeps it: out of JSON, util.inspect and errors the object is attached to.
  return hidePassword(resolved as ResolvedConnection, pick("password") ?? "");
}

/** libpq's default CA file, ~/.postgresql/root.crt, when it exists (libpq reads it for any TLS connection). */
function defaultRootCert(env: NodeJS.ProcessEnv): string | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("node:fs") as typeof import("node:fs");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const path = require("node:path") as typeof import("node:path");
  const home = env.HOME;
  if (!home) return undefined;
  const file = path.join(home, ".postgresql", "root.crt");
  return fs.existsSync(file) ? file : undefined;
}

function readRootCert(file: string | undefined, sslmode: string): { sslrootcert?: string; sslrootcertFile?: string } {
  if (!file || sslmode === "disable") return {};
  if (file === "system") {
    if (sslmode !== "verify-full") throw badConnectionString(`sslrootcert=system needs sslmode=verify-full (as in libpq), got sslmode ${sslmode}`);
    return { sslrootcertFile: file };
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("node:fs") as typeof import("node:fs");
  let pem: string;
  try {
    pem = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw badConnectionString(`sslrootcert ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}); give the file of the CA certificate that issued the server's certificate`, err);
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw badConnectionString(`sslrootcert ${file} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`);
  return { sslrootcert: pem, sslrootcertFile: file };
}

/** `host[:port]` (an IPv6 address in brackets) as a pooler or replica is named on the command line; undefined if malformed. */
export function parseEndpoint(raw: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(raw.trim());
  const port = Number(m?.[2] ?? defaultPort);
  if (!m || port < 1 || port > 65535) return undefined;
  return { host: bareHost(m[1]!), port };
}
