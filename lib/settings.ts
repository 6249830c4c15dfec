/**
 * Stack settings: one typed, validated object from the `tsdb:` config namespace.
 *
 * The same `parseSettings` serves the Pulumi program (values from `pulumi.Config`, all strings) and the CLIs
 * (`readStackSettings`: Pulumi.yaml defaults plus `Pulumi.<stack>.yaml`, typed YAML values). Defaults live
 * in `SETTING_DECLARATIONS` only; a unit test holds Pulumi.yaml's `config:` block to exactly these, because
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
import { SSL_MODES, type SslMode } from "./postgres/tls";

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

/** Every `tsdb:` setting, typed and validated (see docs/ARCHITECTURE.md, "Settings"). */
export interface Settings {
  /** Stack name the settings were read for. */
  stack: string;
  mode: "docker" | "external";
  timescaledb: boolean;
  image: string;
  toolkit: boolean;
  port: number;
  bindAddress: string;
  memoryMb: number;
  cpus: number;
  /** Override for `max_connections`; undefined = derived from memory. */
  maxConnections: number | undefined;
  telemetry: boolean;
  restartPolicy: "no" | "on-failure" | "always" | "unless-stopped";
  database: string;
  protectData: boolean;
  /** Generate passwords that are not configured (dev); false = every password must be set (prod). */
  generatePasswords: boolean;
  adminPassword: string | undefined;
  migratorPassword: string | undefined;
  appPassword: string | undefined;
  readonlyPassword: string | undefined;
  migratorConnectionLimit: number;
  appConnectionLimit: number;
  readonlyConnectionLimit: number;
  pgadminEnabled: boolean;
  pgadminImage: string;
  pgadminPort: number;
  pgadminEmail: string;
  pgadminPassword: string | undefined;
  /** External mode only: server host name or IP. */
  externalHost: string | undefined;
  externalPort: number;
  externalAdminUser: string;
  /** libpq sslmode, resolved: `disable` for docker mode and `require` for external mode unless set. */
  sslmode: SslMode;
  /** External mode: use `database` as it exists on the server instead of creating it. */
  existingDatabase: boolean;
  /** CA certificate for verify-ca/verify-full: a PEM file path (relative to the project) or the PEM text. */
  sslRootCert: string | undefined;
  /** External mode: PgBouncer (transaction mode) host for the app and read-only URLs; migrations stay direct. */
  poolerHost: string | undefined;
  poolerPort: number;
  /** External mode: streaming replica host for the read-only `replica` URL. */
  replicaHost: string | undefined;
  replicaPort: number;
  /** Roles besides the stack's and pg_monitor that keep CONNECT on the database (a pooler's auth_query user). */
  connectRoles: string[];
  ohlcvChunkInterval: string;
  tickChunkInterval: string;
  compressAfter: string;
  /** Retention on ticks; undefined = keep everything. */
  tickRetention: string | undefined;
  caggRefreshInterval: string;
  datasets: DatasetSetting[];
  backupDir: string;
  backupRetain: number;
}

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

/**
 * Every setting with its Pulumi.yaml type, project default (the dev values) and description. Empty string
 * (or 0 for maxConnections) means "not set": Pulumi refuses to run when a declared key has no default and the
 * stack does not set it, so optional keys need a default.
 */
export const SETTING_DECLARATIONS: Record<string, SettingDeclaration> = {
  mode: { type: "string", default: "docker", description: "docker: run TimescaleDB (and pgAdmin) in local containers; external: use an existing server (set externalHost, externalAdminUser and the secret adminPassword)." },
  timescaledb: { type: "boolean", default: true, description: "Create the timescaledb extension and hypertables; false = plain PostgreSQL tables and materialized views. The first migration run records the mode in the database; runs in the other mode are refused." },
  image: { type: "string", default: "timescale/timescaledb:2.23.0-pg17", description: "TimescaleDB image with a pinned tag (not latest)." },
  toolkit: { type: "boolean", default: false, description: "Also create timescaledb_toolkit; needs a timescale/timescaledb-ha image." },
  port: { type: "integer", default: 5432, description: "Host port PostgreSQL is published on (1-65535)." },
  bindAddress: { type: "string", default: "127.0.0.1", description: "Host IP address ports are published on; 0.0.0.0 or :: publishes them on every interface (preview and doctor warn: sslmode defaults to disable); IPv6 such as ::1 works (URLs bracket it)." },
  memoryMb: { type: "integer", default: 2048, description: "Container memory limit in MB (at least 512), with swap off; PostgreSQL memory settings derive from it. Changing it restarts PostgreSQL (the container is replaced, the volume kept)." },
  cpus: { type: "integer", default: 2, description: "CPUs PostgreSQL may use (at least 1, at most the Docker host's; doctor and setup check); worker settings derive from it." },
  maxConnections: { type: "integer", default: 0, description: "Override max_connections; 0 = derive from memory as timescaledb-tune does." },
  telemetry: { type: "boolean", default: false, description: "Send TimescaleDB telemetry." },
  restartPolicy: { type: "string", default: "unless-stopped", description: "Docker restart policy: no, on-failure, always or unless-stopped." },
  database: { type: "string", default: "market", description: "Database name (lowercase identifier, not postgres, template0 or template1); roles are <database>_owner, _migrator, _app, _readonly. A change on a deployed stack is refused at preview unless run with TSDB_ALLOW=database, which replaces the database (the old one and its data are dropped)." },
  protectData: { type: "boolean", default: false, description: "Protect and retain the data volume, and refuse every migration revert (pulumi destroy, files removed from sql/, npm run db -- down)." },
  generatePasswords: { type: "boolean", default: true, description: "Generate passwords that are not set; false = every password must be set with pulumi config set --secret." },
  adminPassword: { type: "string", default: "", description: "Secret. Superuser password (docker) or admin password (external); blank (spaces only) is refused. Set with: pulumi config set --secret tsdb:adminPassword <value>. Docker mode: a change on a deployed stack is refused at preview; change it in the server first, then run with TSDB_ALLOW=adminPassword." },
  migratorPassword: { type: "string", default: "", description: "Secret. Password of <database>_migrator." },
  appPassword: { type: "string", default: "", description: "Secret. Password of <database>_app." },
  readonlyPassword: { type: "string", default: "", description: "Secret. Password of <database>_readonly." },
  migratorConnectionLimit: { type: "integer", default: 5, description: "Connection limit of the migrator role (-1 = unlimited)." },
  appConnectionLimit: { type: "integer", default: 50, description: "Connection limit of the app role (-1 = unlimited)." },
  readonlyConnectionLimit: { type: "integer", default: 20, description: "Connection limit of the read-only role (-1 = unlimited)." },
  pgadminEnabled: { type: "boolean", default: true, description: "Run a pgAdmin container with the server pre-registered (docker mode)." },
  pgadminImage: { type: "string", default: "dpage/pgadmin4:9.9", description: "pgAdmin image with a pinned tag." },
  pgadminPort: { type: "integer", default: 5050, description: "Host port pgAdmin is published on." },
  pgadminEmail: { type: "string", default: "admin@example.com", description: "pgAdmin login e-mail." },
  pgadminPassword: { type: "string", default: "", description: "Secret. pgAdmin login password." },
  externalHost: { type: "string", default: "", description: "External mode: host name or IP of the PostgreSQL/TimescaleDB server." },
  externalPort: { type: "integer", default: 5432, description: "External mode: server port." },
  externalAdminUser: { type: "string", default: "postgres", description: "External mode: admin user that can create roles (CREATEROLE; a superuser is not needed) and, unless existingDatabase, databases." },
  sslmode: { type: "string", default: "", description: "libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full); empty = disable for docker, require for external." },
  existingDatabase: { type: "boolean", default: false, description: "External mode: use tsdb:database as it already exists on the server (e.g. tsdb on Timescale Cloud) instead of creating it; the admin then needs no CREATEDB." },
  sslRootCert: { type: "string", default: "", description: "CA certificate that signed the server's certificate (required by sslmode verify-ca; verify-full without it trusts the public CAs): a PEM file path relative to the project, or the PEM text (set it with --secret)." },
  poolerHost: { type: "string", default: "", description: "External mode: connection pooler (PgBouncer in transaction mode) host; the app and read-only URLs go through it, migrations and loads stay direct. Empty = no pooler." },
  poolerPort: { type: "integer", default: 6432, description: "External mode: connection pooler port." },
  replicaHost: { type: "string", default: "", description: "External mode: read replica host; the database output gains a read-only urls.replica on it. Empty = no replica." },
  replicaPort: { type: "integer", default: 5432, description: "External mode: read replica port." },
  connectRoles: { type: "string", default: "", description: "Comma-separated existing roles that keep CONNECT on the database after PUBLIC's is revoked, e.g. a PgBouncer auth_query user or a monitoring role (pg_monitor always keeps it). Empty = none besides the stack's roles." },
  ohlcvChunkInterval: { type: "string", default: "30 days", description: "Hypertable chunk interval for OHLCV bars, e.g. \"7 days\"; from 1 hour to 10 years." },
  tickChunkInterval: { type: "string", default: "1 day", description: "Hypertable chunk interval for ticks and trades; from 1 minute to 1 year." },
  compressAfter: { type: "string", default: "90 days", description: "Compress (columnstore) chunks older than this; from 1 hour to 100 years." },
  tickRetention: { type: "string", default: "180 days", description: "Drop ticks older than this; from 1 hour to 100 years and at least tickChunkInterval; empty = keep everything." },
  caggRefreshInterval: { type: "string", default: "1 hour", description: "Continuous aggregate refresh schedule; from 1 minute to 1 year." },
  datasets: { type: undefined, default: [], description: `Market data loaded by pulumi up: a list of ${datasetKeys()} (docs/LOADING.md).` },
  backupDir: { type: "string", default: "./backups", description: "Directory npm run db:backup writes to." },
  backupRetain: { type: "integer", default: 7, description: "Backups kept (at least 1)." },
};

/** All setting keys, without the `tsdb:` prefix. */
export const SETTING_KEYS = Object.keys(SETTING_DECLARATIONS);

const INTERVAL_ALLOWED =
  'a PostgreSQL interval such as "7 days" (a number and one of microsecond, millisecond, second, minute, hour, day, week, month, year)';

function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
}

/** A parser for one key: returns the typed value or a description of what is allowed. */
type FieldParser<T> = (value: unknown) => { ok: true; value: T } | { ok: false; allowed: string };

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

const FIELD_PARSERS: { [K in Exclude<keyof Settings, "stack">]: FieldParser<Settings[K]> } = {
  mode: enumField(["docker", "external"] as const),
  timescaledb: boolField,
  image: imageField,
  toolkit: boolField,
  port: intField(1, 65535, "an integer port from 1 to 65535"),
  // Canonical, as Docker reports a published port's address back (lib/postgres/connectionInfo.ts canonicalIp): "0:0::1" is "::1".
  bindAddress: (value) => {
    const r = stringField((s) => net.isIP(s) !== 0, 'an IP address such as "127.0.0.1" or "0.0.0.0"')(value);
    return r.ok ? { ok: true, value: canonicalIp(r.value) } : r;
  },
  memoryMb: intField(512, 4_194_304, "an integer number of MB, at least 512"),
  cpus: intField(1, 1024, "an integer number of CPUs, at least 1"),
  maxConnections: (value) => {
    const r = intField(0, 100_000, "an integer from 10 to 100000, or 0 to derive it from memory")(value);
    if (!r.ok) return r;
    if (r.value === 0) return { ok: true, value: undefined };
    return r.value >= 10 ? r : { ok: false, allowed: "an integer from 10 to 100000, or 0 to derive it from memory" };
  },
  telemetry: boolField,
  restartPolicy: enumField(RESTART_POLICIES),
  database: stringField(
    (s) => DATABASE_PATTERN.test(s) && !RESERVED_DATABASES.includes(s),
    "a lowercase identifier of at most 54 characters (letters, digits, _; not starting with a digit), not postgres, template0 or template1",
  ),
  protectData: boolField,
  generatePasswords: boolField,
  adminPassword: optionalField(secretString, "to generate it"),
  migratorPassword: optionalField(secretString, "to generate it"),
  appPassword: optionalField(secretString, "to generate it"),
  readonlyPassword: optionalField(secretString, "to generate it"),
  migratorConnectionLimit: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)"),
  appConnectionLimit: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)"),
  readonlyConnectionLimit: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)"),
  pgadminEnabled: boolField,
  pgadminImage: imageField,
  pgadminPort: intField(1, 65535, "an integer port from 1 to 65535"),
  pgadminEmail: stringField((s) => z.email().safeParse(s).success, 'an e-mail address such as "admin@example.com"'),
  pgadminPassword: optionalField(secretString, "to generate it"),
  externalHost: optionalField(
    stringField((s) => /^[A-Za-z0-9.:\-[\]]+$/.test(s), "a host name or IP address"),
    "in docker mode",
  ),
  externalPort: intField(1, 65535, "an integer port from 1 to 65535"),
  externalAdminUser: stringField((s) => /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(s), "a PostgreSQL role name"),
  sslmode: enumField(SSL_MODES),
  existingDatabase: boolField,
  sslRootCert: optionalField(anyString, "for no CA"),
  poolerHost: optionalField(stringField((s) => /^[A-Za-z0-9.:\-[\]]+$/.test(s), "a host name or IP address"), "for no pooler"),
  poolerPort: intField(1, 65535, "an integer port from 1 to 65535"),
  replicaHost: optionalField(stringField((s) => /^[A-Za-z0-9.:\-[\]]+$/.test(s), "a host name or IP address"), "for no replica"),
  replicaPort: intField(1, 65535, "an integer port from 1 to 65535"),
  connectRoles: (value) => {
    const list = value === undefined || value === null || value === "" ? [] : typeof value === "string" ? value.split(",").map((r) => r.trim()) : undefined;
    return list && list.every((r) => /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(r))
      ? { ok: true, value: list }
      : { ok: false, allowed: "a comma-separated list of PostgreSQL role names, or empty for none" };
  },
  ohlcvChunkInterval: intervalField(INTERVAL_RANGES.ohlcvChunkInterval),
  tickChunkInterval: intervalField(INTERVAL_RANGES.tickChunkInterval),
  compressAfter: intervalField(INTERVAL_RANGES.compressAfter),
  tickRetention: optionalField(intervalField(INTERVAL_RANGES.tickRetention), "to keep all ticks"),
  caggRefreshInterval: intervalField(INTERVAL_RANGES.caggRefreshInterval),
  datasets: datasetsField,
  backupDir: anyString,
  backupRetain: intField(1, 10_000, "an integer of at least 1"),
};

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
    if (!Object.hasOwn(SETTING_DECLARATIONS, key)) {
      problems.push(`[tsdb:${key}] is not a known setting; known settings are ${SETTING_KEYS.join(", ")}.`);
    }
  }
  const out: Record<string, unknown> = { stack: context.stack };
  for (const [key, parser] of Object.entries(FIELD_PARSERS) as [string, FieldParser<unknown>][]) {
    const given = raw[key];
    // sslmode's "" default means "suited to the mode", resolved below.
    if (key === "sslmode" && (given === undefined || given === "")) continue;
    const value = given === undefined ? SETTING_DECLARATIONS[key]?.default : given;
    const result = parser(value);
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
