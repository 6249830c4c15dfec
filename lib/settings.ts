/**
 * Stack settings: one typed, validated object from the `tsdb:` config namespace.
 *
 * The same `parseSettings` serves the Pulumi program (values from `pulumi.Config`, all strings) and the CLIs
 * (`readStackSettings`: Pulumi.yaml defaults plus `Pulumi.<stack>.yaml`, typed YAML values). Defaults live
 * in `SETTINGS` only; a unit test holds Pulumi.yaml's `config:` block to exactly these, because
 * the Pulumi CLI applies Pulumi.yaml defaults but `setMocks` and the CLIs do not.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { canonicalIp } from "./postgres/connectionInfo";
import { LOAD_FLAGS, LOAD_REQUEST_KEYS } from "./loader/loadFlags";
import { LoadRequestFields, refuseFormatOptions } from "./loader/loadRequest";
import { INTERVAL_PATTERN, MIGRATION_VARIABLES } from "./migrations/variables";
import { SSL_MODES } from "./postgres/tls";

export { INTERVAL_PATTERN };

/** Microseconds per unit, counting a month as 30 days and a year as 12 months as PostgreSQL compares intervals. */
const MICROS_PER_UNIT: Record<string, number> = {
  microsecond: 1,
  millisecond: 1e3,
  second: 1e6,
  minute: 60e6,
  hour: 3600e6,
  day: 86_400e6,
  week: 7 * 86_400e6,
  month: 30 * 86_400e6,
  year: 360 * 86_400e6,
};

/** An interval setting's length in microseconds (months as 30 days), or undefined when it is not one. */
export function intervalMicros(value: string): number | undefined {
  const m = /^(\d+)\s+([a-z]+?)s?$/.exec(value);
  if (!m || !INTERVAL_PATTERN.test(value)) return undefined;
  return Number(m[1]) * (MICROS_PER_UNIT[m[2] as string] as number);
}

/**
 * The range each interval setting accepts (inclusive), stated in its description and its error: a chunk,
 * a delay or a schedule of zero or a microsecond is accepted by the syntax but fails in the database or
 * makes no sense, and huge numbers overflow PostgreSQL's interval.
 */
export const INTERVAL_RANGES = {
  ohlcvChunkInterval: { min: "1 hour", max: "10 years" },
  tickChunkInterval: { min: "1 minute", max: "1 year" },
  compressAfter: { min: "1 hour", max: "100 years" },
  tickRetention: { min: "1 hour", max: "100 years" },
  caggRefreshInterval: { min: "1 minute", max: "1 year" },
} as const;

/**
 * One market-data load that `pulumi up` runs: a LoadRequest (lib/loader/loadRequest.ts, the same contract as
 * the CLI's `load` flags) plus a name; `source` is relative to the project directory. Rejects always go to
 * `.tsdb/rejects/<name>.csv`.
 */
export type DatasetSetting = z.infer<typeof datasetSchema>;

/** Every `tsdb:` setting, typed and validated: each key's type is what its parser in SETTINGS returns. */
export type Settings = { /** Stack name the settings were read for. */ stack: string } & {
  -readonly [K in keyof typeof SETTINGS]: SettingValue<(typeof SETTINGS)[K]>;
};
type SettingValue<S> = S extends SettingSpec<infer T> ? T : never;

/** One or more invalid settings; the message lists each bad key on its own line. */
export class SettingsError extends Error {
  /** One line per problem, each naming the key, the value and what is allowed. */
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "SettingsError";
    this.problems = problems;
  }
}

/** Pulumi.yaml config types (the CLI knows string, integer, boolean, array; `datasets` is untyped). */
export type DeclaredType = "string" | "integer" | "boolean" | "array" | undefined;

/** A setting as Pulumi.yaml declares it. */
export interface SettingDeclaration {
  type: DeclaredType;
  default: string | number | boolean | unknown[];
  description: string;
}

/** Settings that hold passwords: read as secrets, never logged. */
export const SECRET_KEYS = ["adminPassword", "migratorPassword", "appPassword", "readonlyPassword", "pgadminPassword"] as const;

const RESTART_POLICIES = ["no", "on-failure", "always", "unless-stopped"] as const;

/**
 * A dataset's keys as the `datasets` description and its error list them: the load request's keys (rejects
 * always go to .tsdb/rejects/<name>.csv) with the values of those that take a fixed list (the format registry's
 * formats among them), derived so Pulumi.yaml cannot fall behind the request.
 */
export function datasetKeys(): string {
  const keys = LOAD_REQUEST_KEYS.filter((k) => k !== "rejects" && k !== "source").map((k) => {
    const choices = LOAD_FLAGS[k].choices;
    return choices ? `${k}? (${choices.join("|")})` : `${k}?`;
  });
  return `{${["name (slug)", "source (path, or a list of paths)", ...keys].join(", ")}}`;
}



const INTERVAL_ALLOWED =
  'a PostgreSQL interval such as "7 days" (a number and one of microsecond, millisecond, second, minute, hour, day, week, month, year)';

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
}

/** A parser for one key: returns the typed value or a description of what is allowed. */
type FieldParser<T> = (value: unknown) => { ok: true; value: T } | { ok: false; allowed: string };

/** One setting: how Pulumi.yaml declares it, how the docs' tables describe it, and how its raw value is read. */
export interface SettingSpec<T> extends SettingDeclaration {
  /** What a value may be, in a few words (docs/ARCHITECTURE.md's type column). */
  rule: string;
  /** What the setting does, in a few words (the tables' meaning column; may be empty). */
  summary: string;
  parse: FieldParser<T>;
}

/** A setting's declaration, its parser's type kept for `Settings`. */
function setting<T>(spec: SettingSpec<T>): SettingSpec<T> {
  return spec;
}

function intField(min: number, max: number, allowed: string): FieldParser<number> {
  return (value) => {
    const n = typeof value === "number" ? value : typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
    return Number.isInteger(n) && n >= min && n <= max ? { ok: true, value: n } : { ok: false, allowed };
  };
}

const boolField: FieldParser<boolean> = (value) => {
  if (typeof value === "boolean") return { ok: true, value };
  if (value === "true" || value === "false") return { ok: true, value: value === "true" };
  return { ok: false, allowed: "true or false" };
};

function enumField<T extends string>(options: readonly T[]): FieldParser<T> {
  return (value) =>
    typeof value === "string" && (options as readonly string[]).includes(value)
      ? { ok: true, value: value as T }
      : { ok: false, allowed: `one of ${options.join(", ")}` };
}

function stringField(test: (s: string) => boolean, allowed: string): FieldParser<string> {
  return (value) => (typeof value === "string" && test(value) ? { ok: true, value } : { ok: false, allowed });
}

/** Optional string: "" (or absent) = undefined. */
function optionalField<T>(inner: FieldParser<T>, emptyMeaning: string): FieldParser<T | undefined> {
  return (value) => {
    if (value === undefined || value === null || value === "") return { ok: true, value: undefined };
    const r = inner(value);
    return r.ok ? r : { ok: false, allowed: `${r.allowed}, or empty ${emptyMeaning}` };
  };
}

/** An interval within `range`: the syntax the migrations accept, and a length the setting can use. */
function intervalField(range: { min: string; max: string }): FieldParser<string> {
  const allowed = `${INTERVAL_ALLOWED}, from ${range.min} to ${range.max}`;
  const [min, max] = [intervalMicros(range.min) as number, intervalMicros(range.max) as number];
  return stringField((s) => {
    const micros = intervalMicros(s);
    return micros !== undefined && micros >= min && micros <= max;
  }, allowed);
}
// Docker reference with an explicit tag or digest; `latest` is not a pin.
const IMAGE_PATTERN = /^[a-z0-9][a-z0-9._\-/]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$/;
const imageField = stringField(
  (s) => IMAGE_PATTERN.test(s) && !s.endsWith(":latest"),
  'an image with a pinned tag, such as "timescale/timescaledb:2.23.0-pg17" (not "latest")',
);
const DATABASE_PATTERN = /^[a-z_][a-z0-9_]{0,53}$/;
const anyString = stringField((s) => s.length > 0, "a non-empty string");
const secretString = stringField((s) => s.trim().length > 0, "a password that is not blank (spaces only)");
/** Names PostgreSQL keeps for itself: the maintenance database and the templates every CREATE DATABASE copies. */
const RESERVED_DATABASES = ["postgres", "template0", "template1"];

const datasetSchema = LoadRequestFields.omit({ rejects: true })
  .extend({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be a slug (lowercase letters, digits, - and _)"),
  })
  .superRefine(refuseFormatOptions);

const datasetsField: FieldParser<DatasetSetting[]> = (value) => {
  const allowed = `a list of datasets, each ${datasetKeys()} (docs/LOADING.md)`;
  let list: unknown = value;
  if (typeof value === "string") {
    try {
      list = value.trim() === "" ? [] : JSON.parse(value);
    } catch {
      return { ok: false, allowed: `${allowed} (the value is not valid JSON)` };
    }
  }
  const result = z.array(datasetSchema).safeParse(list);
  if (!result.success) {
    const where = result.error.issues
      .map((i) => `${i.path.map(String).join(".") || "value"}: ${i.message}`)
      .join("; ");
    return { ok: false, allowed: `${allowed} (${where})` };
  }
  const seen = new Set<string>();
  for (const d of result.data) {
    if (seen.has(d.name)) return { ok: false, allowed: `${allowed} (dataset name "${d.name}" appears twice)` };
    seen.add(d.name);
  }
  return { ok: true, value: result.data };
};


/**
 * Every setting, declared once: its Pulumi.yaml type, project default (the dev values) and description, the
 * docs' rule and summary, and the parser of its raw value. `Settings`, `SETTING_DECLARATIONS`, Pulumi.yaml's
 * `config:` block and the settings tables of README.md and docs/ARCHITECTURE.md derive from it (a unit test
 * holds each to it; `npm run docs:settings` rewrites them). Empty string (or 0 for maxConnections) means "not
 * set": Pulumi refuses to run when a declared key has no default and the stack does not set it, so optional
 * keys need a default.
 */
export const SETTINGS = {
  mode: setting({ type: "string", default: "docker", description: "docker: run TimescaleDB (and pgAdmin) in local containers; external: use an existing server (set externalHost, externalAdminUser and the secret adminPassword).", rule: "`docker` | `external`", summary: "containers here, or an existing server", parse: enumField(["docker", "external"] as const) }),
  timescaledb: setting({ type: "boolean", default: true, description: "Create the timescaledb extension and hypertables; false = plain PostgreSQL tables and materialized views. The first migration run records the mode in the database; runs in the other mode are refused.", rule: "bool", summary: "false = vanilla PostgreSQL (plain tables, materialized views)", parse: boolField }),
  image: setting({ type: "string", default: "timescale/timescaledb:2.23.0-pg17", description: "TimescaleDB image with a pinned tag (not latest).", rule: "string", summary: "TimescaleDB image", parse: imageField }),
  toolkit: setting({ type: "boolean", default: false, description: "Also create timescaledb_toolkit; needs a timescale/timescaledb-ha image.", rule: "bool", summary: "also create `timescaledb_toolkit` (needs a `timescale/timescaledb-ha` image)", parse: boolField }),
  port: setting({ type: "integer", default: 5432, description: "Host port PostgreSQL is published on (1-65535).", rule: "int 1..65535", summary: "published PostgreSQL port", parse: intField(1, 65535, "an integer port from 1 to 65535") }),
  // Canonical, as Docker reports a published port's address back (lib/postgres/connectionInfo.ts canonicalIp): "0:0::1" is "::1".
  bindAddress: setting({ type: "string", default: "127.0.0.1", description: "Host IP address ports are published on; 0.0.0.0 or :: publishes them on every interface (preview and doctor warn: sslmode defaults to disable); IPv6 such as ::1 works (URLs bracket it).", rule: "IP", summary: "host address the ports are published on; beyond loopback (`0.0.0.0`, `::`: every interface) preview and doctor warn", parse: (value) => {
    const r = stringField((s) => net.isIP(s) !== 0, 'an IP address such as "127.0.0.1" or "0.0.0.0"')(value);
    return r.ok ? { ok: true, value: canonicalIp(r.value) } : r;
  } }),
  memoryMb: setting({ type: "integer", default: 2048, description: "Container memory limit in MB (at least 512), with swap off; PostgreSQL memory settings derive from it. Changing it restarts PostgreSQL (the container is replaced, the volume kept).", rule: "int >= 512", summary: "container memory limit; PostgreSQL settings derive from it", parse: intField(512, 4_194_304, "an integer number of MB, at least 512") }),
  cpus: setting({ type: "integer", default: 2, description: "CPUs PostgreSQL may use (at least 1, at most the Docker host's; doctor and setup check); worker settings derive from it.", rule: "number > 0", summary: "CPUs; worker settings derive from it", parse: intField(1, 1024, "an integer number of CPUs, at least 1") }),
  maxConnections: setting<number | undefined>({ type: "integer", default: 0, description: "Override max_connections; 0 = derive from memory as timescaledb-tune does.", rule: "int, optional", summary: "override `max_connections`", parse: (value) => {
    const r = intField(0, 100_000, "an integer from 10 to 100000, or 0 to derive it from memory")(value);
    if (!r.ok) return r;
    if (r.value === 0) return { ok: true, value: undefined };
    return r.value >= 10 ? r : { ok: false, allowed: "an integer from 10 to 100000, or 0 to derive it from memory" };
  } }),
  telemetry: setting({ type: "boolean", default: false, description: "Send TimescaleDB telemetry.", rule: "bool", summary: "TimescaleDB telemetry", parse: boolField }),
  restartPolicy: setting({ type: "string", default: "unless-stopped", description: "Docker restart policy: no, on-failure, always or unless-stopped.", rule: "no | on-failure | always | unless-stopped", summary: "Docker restart policy of the containers", parse: enumField(RESTART_POLICIES) }),
  database: setting({ type: "string", default: "market", description: "Database name (lowercase identifier, not postgres, template0 or template1); roles are <database>_owner, _migrator, _app, _readonly. A change on a deployed stack is refused at preview unless run with TSDB_ALLOW=database, which replaces the database (the old one and its data are dropped).", rule: "identifier, not postgres/template0/template1", summary: "database name; roles are `<database>_owner` etc.", parse: stringField(
    (s) => DATABASE_PATTERN.test(s) && !RESERVED_DATABASES.includes(s),
    "a lowercase identifier of at most 54 characters (letters, digits, _; not starting with a digit), not postgres, template0 or template1",
  ) }),
  protectData: setting({ type: "boolean", default: false, description: "Protect and retain the data volume, and refuse every migration revert (pulumi destroy, files removed from sql/, npm run db -- down).", rule: "bool", summary: "volume protected + retained; destroy/down of migrations refused", parse: boolField }),
  generatePasswords: setting({ type: "boolean", default: true, description: "Generate passwords that are not set; false = every password must be set with pulumi config set --secret.", rule: "bool", summary: "false: every password must be set as a secret; preview says which and how", parse: boolField }),
  adminPassword: setting({ type: "string", default: "", description: "Secret. Superuser password (docker) or admin password (external); blank (spaces only) is refused. Set with: pulumi config set --secret tsdb:adminPassword <value>. Docker mode: a change on a deployed stack is refused at preview; change it in the server first, then run with TSDB_ALLOW=adminPassword.", rule: "secret, not blank", summary: "superuser password (container) / admin password (external)", parse: optionalField(secretString, "to generate it") }),
  migratorPassword: setting({ type: "string", default: "", description: "Secret. Password of <database>_migrator.", rule: "secret", summary: "password of `<database>_migrator`", parse: optionalField(secretString, "to generate it") }),
  appPassword: setting({ type: "string", default: "", description: "Secret. Password of <database>_app.", rule: "secret", summary: "password of `<database>_app`", parse: optionalField(secretString, "to generate it") }),
  readonlyPassword: setting({ type: "string", default: "", description: "Secret. Password of <database>_readonly.", rule: "secret", summary: "password of `<database>_readonly`", parse: optionalField(secretString, "to generate it") }),
  migratorConnectionLimit: setting({ type: "integer", default: 5, description: "Connection limit of the migrator role (-1 = unlimited).", rule: "int >= -1", summary: "connections the migrator role may hold (-1 = unlimited)", parse: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)") }),
  appConnectionLimit: setting({ type: "integer", default: 50, description: "Connection limit of the app role (-1 = unlimited).", rule: "int >= -1", summary: "connections the app role may hold (-1 = unlimited)", parse: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)") }),
  readonlyConnectionLimit: setting({ type: "integer", default: 20, description: "Connection limit of the read-only role (-1 = unlimited).", rule: "int >= -1", summary: "connections the read-only role may hold (-1 = unlimited)", parse: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)") }),
  pgadminEnabled: setting({ type: "boolean", default: true, description: "Run a pgAdmin container with the server pre-registered (docker mode).", rule: "bool", summary: "run pgAdmin with the server registered (docker mode)", parse: boolField }),
  pgadminImage: setting({ type: "string", default: "dpage/pgadmin4:9.9", description: "pgAdmin image with a pinned tag.", rule: "string", summary: "pgAdmin image", parse: imageField }),
  pgadminPort: setting({ type: "integer", default: 5050, description: "Host port pgAdmin is published on.", rule: "int", summary: "published pgAdmin port", parse: intField(1, 65535, "an integer port from 1 to 65535") }),
  pgadminEmail: setting({ type: "string", default: "admin@example.com", description: "pgAdmin login e-mail.", rule: "email", summary: "pgAdmin login e-mail", parse: stringField((s) => z.email().safeParse(s).success, 'an e-mail address such as "admin@example.com"') }),
  pgadminPassword: setting({ type: "string", default: "", description: "Secret. pgAdmin login password.", rule: "secret", summary: "pgAdmin login password", parse: optionalField(secretString, "to generate it") }),
  externalHost: setting({ type: "string", default: "", description: "External mode: host name or IP of the PostgreSQL/TimescaleDB server.", rule: "string", summary: "external mode only", parse: optionalField(
    stringField((s) => /^[A-Za-z0-9.:\-[\]]+$/.test(s), "a host name or IP address"),
    "in docker mode",
  ) }),
  externalPort: setting({ type: "integer", default: 5432, description: "External mode: server port.", rule: "int", summary: "external mode only", parse: intField(1, 65535, "an integer port from 1 to 65535") }),
  externalAdminUser: setting({ type: "string", default: "postgres", description: "External mode: admin user that can create roles (CREATEROLE; a superuser is not needed) and, unless existingDatabase, databases.", rule: "string", summary: "external mode only", parse: stringField((s) => /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(s), "a PostgreSQL role name") }),
  sslmode: setting({ type: "string", default: "", description: "libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full); empty = disable for docker, require for external.", rule: "libpq sslmode", summary: "libpq sslmode; empty = disable (docker) / require (external)", parse: enumField(SSL_MODES) }),
  existingDatabase: setting({ type: "boolean", default: false, description: "External mode: use tsdb:database as it already exists on the server (e.g. tsdb on Timescale Cloud) instead of creating it; the admin then needs no CREATEDB.", rule: "bool", summary: "external only: use the database, do not create it", parse: boolField }),
  sslRootCert: setting({ type: "string", default: "", description: "CA certificate that signed the server's certificate (required by sslmode verify-ca; verify-full without it trusts the public CAs): a PEM file path relative to the project, or the PEM text (set it with --secret).", rule: "path or PEM (secret)", summary: "CA for verify-ca (required) / verify-full (else public CAs) (lib/postgres/tls.ts)", parse: optionalField(anyString, "for no CA") }),
  poolerHost: setting({ type: "string", default: "", description: "External mode: connection pooler (PgBouncer in transaction mode) host; the app and read-only URLs go through it, migrations and loads stay direct. Empty = no pooler.", rule: "string", summary: "external only: app/readonly URLs through PgBouncer", parse: optionalField(stringField((s) => /^[A-Za-z0-9.:\-[\]]+$/.test(s), "a host name or IP address"), "for no pooler") }),
  poolerPort: setting({ type: "integer", default: 6432, description: "External mode: connection pooler port.", rule: "int", summary: "external only: app/readonly URLs through PgBouncer", parse: intField(1, 65535, "an integer port from 1 to 65535") }),
  replicaHost: setting({ type: "string", default: "", description: "External mode: read replica host; the database output gains a read-only urls.replica on it. Empty = no replica.", rule: "string", summary: "external only: `urls.replica`", parse: optionalField(stringField((s) => /^[A-Za-z0-9.:\-[\]]+$/.test(s), "a host name or IP address"), "for no replica") }),
  replicaPort: setting({ type: "integer", default: 5432, description: "External mode: read replica port.", rule: "int", summary: "external only: `urls.replica`", parse: intField(1, 65535, "an integer port from 1 to 65535") }),
  connectRoles: setting({ type: "string", default: "", description: "Comma-separated existing roles that keep CONNECT on the database after PUBLIC's is revoked, e.g. a PgBouncer auth_query user or a monitoring role (pg_monitor always keeps it). Empty = none besides the stack's roles.", rule: "comma-separated role names", summary: "existing roles that keep CONNECT on the database (a PgBouncer auth_query user, monitoring); pg_monitor always does", parse: (value) => {
    const list = value === undefined || value === null || value === "" ? [] : typeof value === "string" ? value.split(",").map((r) => r.trim()) : undefined;
    return list && list.every((r) => /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(r))
      ? { ok: true, value: list }
      : { ok: false, allowed: "a comma-separated list of PostgreSQL role names, or empty for none" };
  } }),
  ohlcvChunkInterval: setting({ type: "string", default: "30 days", description: "Hypertable chunk interval for OHLCV bars, e.g. \"7 days\"; from 1 hour to 10 years.", rule: "interval, 1 hour..10 years", summary: "hypertable chunk interval for bars", parse: intervalField(INTERVAL_RANGES.ohlcvChunkInterval) }),
  tickChunkInterval: setting({ type: "string", default: "1 day", description: "Hypertable chunk interval for ticks and trades; from 1 minute to 1 year.", rule: "interval, 1 minute..1 year", summary: "chunk interval for ticks/trades", parse: intervalField(INTERVAL_RANGES.tickChunkInterval) }),
  compressAfter: setting({ type: "string", default: "90 days", description: "Compress (columnstore) chunks older than this; from 1 hour to 100 years.", rule: "interval, 1 hour..100 years", summary: "columnstore policy threshold", parse: intervalField(INTERVAL_RANGES.compressAfter) }),
  tickRetention: setting({ type: "string", default: "180 days", description: "Drop ticks older than this; from 1 hour to 100 years and at least tickChunkInterval; empty = keep everything.", rule: "interval 1 hour..100 years and >= `tickChunkInterval`, or empty", summary: "retention policy on ticks", parse: optionalField(intervalField(INTERVAL_RANGES.tickRetention), "to keep all ticks") }),
  caggRefreshInterval: setting({ type: "string", default: "1 hour", description: "Continuous aggregate refresh schedule; from 1 minute to 1 year.", rule: "interval, 1 minute..1 year", summary: "continuous aggregate refresh schedule", parse: intervalField(INTERVAL_RANGES.caggRefreshInterval) }),
  datasets: setting({ type: undefined, default: [], description: `Market data loaded by pulumi up: a list of ${datasetKeys()} (docs/LOADING.md).`, rule: "list", summary: "market data loaded by `pulumi up`", parse: datasetsField }),
  backupDir: setting({ type: "string", default: "./backups", description: "Directory npm run db:backup writes to.", rule: "path", summary: "where `tsdb backup` writes", parse: anyString }),
  backupRetain: setting({ type: "integer", default: 7, description: "Backups kept (at least 1).", rule: "int", summary: "backups kept", parse: intField(1, 10_000, "an integer of at least 1") }),
};

/** Every setting as Pulumi.yaml declares it (type, default, description). */
export const SETTING_DECLARATIONS: Readonly<Record<string, SettingDeclaration>> = SETTINGS;

/** All setting keys, without the `tsdb:` prefix. */
export const SETTING_KEYS = Object.keys(SETTINGS);

/** How `parseSettings` treats secrets. */
export interface ParseContext {
  /** Stack name, used in messages (the exact `pulumi config set` command). */
  stack: string;
  /**
   * Whether missing passwords are an error when `generatePasswords` is false or in external mode. The Pulumi
   * program requires them (default true); CLIs reading stack files cannot decrypt secrets and pass false.
   */
  requireSecrets?: boolean;
}

/**
 * Validates raw settings (keys without the `tsdb:` prefix; strings as Pulumi config gives them, or typed
 * YAML values) into `Settings`, applying defaults. Throws one `SettingsError` listing every bad key.
 */
export function parseSettings(raw: Record<string, unknown>, context: ParseContext): Settings {
  const problems: string[] = [];
  for (const key of Object.keys(raw)) {
    // Own keys only: `toString` or `__proto__` are properties of every object, not settings.
    if (!Object.hasOwn(SETTINGS, key)) {
      problems.push(`[tsdb:${key}] is not a known setting; known settings are ${SETTING_KEYS.join(", ")}.`);
    }
  }
  const out: Record<string, unknown> = { stack: context.stack };
  for (const [key, spec] of Object.entries(SETTINGS) as [string, SettingSpec<unknown>][]) {
    const given = raw[key];
    // sslmode's "" default means "suited to the mode", resolved below.
    if (key === "sslmode" && (given === undefined || given === "")) continue;
    const value = given === undefined ? spec.default : given;
    const result = spec.parse(value);
    if (result.ok) out[key] = result.value;
    else if ((SECRET_KEYS as readonly string[]).includes(key)) problems.push(`[tsdb:${key}] must be ${result.allowed}; the value given is not shown (it is a secret).`);
    else problems.push(`[tsdb:${key}] must be ${result.allowed}, got ${show(value)}.`);
  }
  if (problems.length > 0) throw new SettingsError(problems);

  const s = out as unknown as Settings;
  s.sslmode ??= s.mode === "external" ? "require" : "disable";

  if (s.toolkit && !s.image.startsWith("timescale/timescaledb-ha:")) {
    problems.push(
      `[tsdb:toolkit] needs a timescale/timescaledb-ha image (the plain timescaledb image has no toolkit), got image ${show(s.image)}; set tsdb:image to e.g. "timescale/timescaledb-ha:pg17" or tsdb:toolkit to false.`,
    );
  }
  if (s.toolkit && !s.timescaledb) {
    problems.push("[tsdb:toolkit] needs tsdb:timescaledb true, got toolkit true with timescaledb false.");
  }
  if (s.mode === "external" && s.externalHost === undefined) {
    problems.push('[tsdb:externalHost] is required in external mode: the server\'s host name or IP, got "".');
  }
  if (s.tickRetention !== undefined && (intervalMicros(s.tickRetention) as number) < (intervalMicros(s.tickChunkInterval) as number)) {
    problems.push(
      `[tsdb:tickRetention] must be at least tsdb:tickChunkInterval (${s.tickChunkInterval}): retention drops whole chunks, got ${show(s.tickRetention)}.`,
    );
  }
  problems.push(...managedServiceProblems(s));
  if (s.mode === "docker" && s.pgadminEnabled && s.pgadminPort === s.port) {
    problems.push(`[tsdb:pgadminPort] must differ from tsdb:port, got ${s.pgadminPort} for both.`);
  }
  if (context.requireSecrets ?? true) {
    const required: string[] = [];
    if (!s.generatePasswords) {
      required.push("adminPassword", "migratorPassword", "appPassword", "readonlyPassword");
      if (s.mode === "docker" && s.pgadminEnabled) required.push("pgadminPassword");
    } else if (s.mode === "external") {
      required.push("adminPassword");
    }
    for (const key of required) {
      if (s[key as (typeof SECRET_KEYS)[number]] !== undefined) continue;
      const why =
        key === "adminPassword" && s.mode === "external"
          ? `in external mode (the password of ${s.externalAdminUser} on the server)`
          : "when tsdb:generatePasswords is false";
      problems.push(
        `[tsdb:${key}] is required ${why} and is not set for stack ${context.stack}; set it with: pulumi config set --secret tsdb:${key} <value> --stack ${context.stack}`,
      );
    }
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return s;
}

/** Settings for managed services that only make sense together or in external mode. */
function managedServiceProblems(s: Settings): string[] {
  const problems: string[] = [];
  if (s.mode === "docker") {
    const externalOnly: [keyof Settings, boolean][] = [
      ["existingDatabase", s.existingDatabase],
      ["poolerHost", s.poolerHost !== undefined],
      ["replicaHost", s.replicaHost !== undefined],
    ];
    for (const [key, set] of externalOnly) {
      if (set) problems.push(`[tsdb:${key}] applies to external mode only (the container is created with its own database and has no pooler or replica), got ${show(s[key])} with tsdb:mode docker.`);
    }
  }
  // verify-full may rely on the public CAs (a service with a publicly trusted certificate); verify-ca may not.
  if (s.sslmode === "verify-ca" && s.sslRootCert === undefined) {
    problems.push(
      "[tsdb:sslRootCert] is required with tsdb:sslmode verify-ca: the CA certificate that signed the server's certificate, as a PEM file path or its text (your service's console offers it for download); or use verify-full, which can rely on the public CAs.",
    );
  }
  return problems;
}

/**
 * Settings for `stack` as the CLIs see them: Pulumi.yaml defaults overlaid with `Pulumi.<stack>.yaml`
 * `tsdb:` values. Encrypted (`secure:`) values are ignored, so passwords are undefined and never required.
 */
/**
 * The settings every stack starts from (the declarations' defaults, as Pulumi.yaml states them), for commands
 * on a server of your own that name no stack: never another stack's file.
 */
export function defaultSettings(): Settings {
  return parseSettings({}, { stack: "", requireSecrets: false });
}

export function readStackSettings(projectDir: string, stack: string): Settings {
  const projectFile = path.join(projectDir, "Pulumi.yaml");
  const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
  // No prototype: a key named `__proto__` must become an own key (and be refused), not replace the prototype.
  const raw = Object.create(null) as Record<string, unknown>;
  const projectConfig = configMapping(readYamlObject(projectFile), projectFile);
  for (const [key, decl] of Object.entries(projectConfig)) {
    const bare = key.startsWith("tsdb:") ? key.slice(5) : key;
    if (bare.includes(":")) continue; // another namespace (e.g. docker:host)
    raw[bare] = decl !== null && typeof decl === "object" && !Array.isArray(decl) ? (decl as { default?: unknown }).default : decl;
  }
  if (!fs.existsSync(stackFile)) {
    throw new SettingsError([
      `[stack] ${stackFile} does not exist; known stacks are those with a Pulumi.<stack>.yaml in ${projectDir} (e.g. dev, prod).`,
    ]);
  }
  const stackConfig = configMapping(readYamlObject(stackFile), stackFile);
  for (const [key, value] of Object.entries(stackConfig)) {
    if (!key.startsWith("tsdb:")) continue;
    if (value !== null && typeof value === "object" && !Array.isArray(value) && "secure" in value) continue;
    raw[key.slice(5)] = value;
  }
  for (const key of Object.keys(raw)) if (raw[key] === undefined) delete raw[key];
  return parseSettings(raw, { stack, requireSecrets: false });
}

/** The `config:` block of a project or stack file: a mapping of keys, or absent. A list is refused, not skipped. */
function configMapping(document: Record<string, unknown>, file: string): Record<string, unknown> {
  const config = document.config;
  if (config === undefined || config === null) return {};
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new SettingsError([
      `[${path.basename(file)}] config: must be a mapping of keys such as "tsdb:port: 5432", got ${Array.isArray(config) ? "a list" : typeof config}; no setting in it would apply.`,
    ]);
  }
  return config as Record<string, unknown>;
}

function readYamlObject(file: string): Record<string, unknown> {
  const parsed: unknown = parseYaml(fs.readFileSync(file, "utf8"));
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SettingsError([`[${path.basename(file)}] must be a YAML mapping, got ${typeof parsed}.`]);
  }
  return parsed as Record<string, unknown>;
}

/** A setting that is valid but risky: shown by `pulumi preview`/`up` (pulumi.log.warn) and `npm run doctor`. */
export interface SettingWarning {
  key: string;
  detail: string;
  fix: string;
}

/** True for 0.0.0.0, :: and their spellings: every interface of the host. */
export function isAllInterfaces(address: string): boolean {
  return net.isIPv4(address) ? address.split(".").every((p) => Number(p) === 0) : net.isIPv6(address) && /^[0:]+$/.test(address);
}

/** True for 127.0.0.0/8 and ::1: reachable from this host only. */
function isLoopback(address: string): boolean {
  return net.isIPv4(address) ? address.startsWith("127.") : /^(0{0,4}:){2,7}0{0,3}1$/.test(address) || address === "::1";
}

/**
 * Warnings about valid settings that expose the stack: a docker stack whose ports are published beyond this
 * host. With sslmode disable (the docker default) passwords and data would cross that network unencrypted.
 */
export function settingWarnings(s: Settings): SettingWarning[] {
  if (s.mode !== "docker" || isLoopback(s.bindAddress)) return [];
  const ports = `PostgreSQL (port ${s.port})${s.pgadminEnabled ? ` and pgAdmin (port ${s.pgadminPort})` : ""}`;
  const where = isAllInterfaces(s.bindAddress) ? "on every network interface of this host" : `on the network of ${s.bindAddress}`;
  return [
    {
      key: "bindAddress",
      detail: `[tsdb:bindAddress] ${s.bindAddress} publishes ${ports} ${where}, and tsdb:sslmode is ${s.sslmode}${s.sslmode === "disable" ? ": passwords and data cross it unencrypted" : ""}.`,
      fix: `Keep it on this host: \`pulumi config set tsdb:bindAddress 127.0.0.1 --stack ${s.stack}\`; to serve other hosts, bind one address behind a firewall and use TLS (server certificates, tsdb:sslmode verify-full).`,
    },
  ];
}

/** The `{{variable}}` values migrations use (see the migration contract). */
export function migrationVariables(s: Settings): Record<string, string> {
  return Object.fromEntries(MIGRATION_VARIABLES.map((name) => [name, s[name] ?? ""]));
}

/** Versions read from an image tag: `timescale/timescaledb:2.23.0-pg17` or `...-ha:pg17.6-ts2.22.1`. */
export function imageVersions(image: string): { postgresMajor: number | undefined; timescaledb: string | undefined } {
  const tag = image.includes("@") ? "" : (image.split(":").pop() ?? "");
  const plain = /^(\d+\.\d+\.\d+)-pg(\d+)/.exec(tag);
  if (plain) return { timescaledb: plain[1], postgresMajor: Number(plain[2]) };
  const ha = /^pg(\d+)(?:\.\d+)*(?:-ts(\d+\.\d+\.\d+))?/.exec(tag);
  if (ha) return { postgresMajor: Number(ha[1]), timescaledb: ha[2] };
  return { postgresMajor: undefined, timescaledb: undefined };
}
