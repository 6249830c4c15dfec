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
import { LoadRequestSchema } from "./loader/loadRequest";

/** A PostgreSQL interval as the migration contract accepts it: a number and one unit, e.g. `7 days`. */
export const INTERVAL_PATTERN = /^\d+\s+(microsecond|millisecond|second|minute|hour|day|week|month|year)s?$/;

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
  sslmode: "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";
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
const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;

/**
 * Every setting with its Pulumi.yaml type, project default (the dev values) and description. Empty string
 * (or 0 for maxConnections) means "not set": Pulumi refuses to run when a declared key has no default and the
 * stack does not set it, so optional keys need a default.
 */
export const SETTING_DECLARATIONS: Record<string, SettingDeclaration> = {
  mode: { type: "string", default: "docker", description: "docker: run TimescaleDB (and pgAdmin) in local containers; external: use an existing server (set externalHost, externalAdminUser and the secret adminPassword)." },
  timescaledb: { type: "boolean", default: true, description: "Create the timescaledb extension and hypertables; false = plain PostgreSQL tables and materialized views." },
  image: { type: "string", default: "timescale/timescaledb:2.23.0-pg17", description: "TimescaleDB image with a pinned tag (not latest)." },
  toolkit: { type: "boolean", default: false, description: "Also create timescaledb_toolkit; needs a timescale/timescaledb-ha image." },
  port: { type: "integer", default: 5432, description: "Host port PostgreSQL is published on (1-65535)." },
  bindAddress: { type: "string", default: "127.0.0.1", description: "Host IP address ports are published on; 0.0.0.0 exposes them to the network." },
  memoryMb: { type: "integer", default: 2048, description: "Container memory limit in MB (at least 512); PostgreSQL memory settings derive from it." },
  cpus: { type: "integer", default: 2, description: "CPUs PostgreSQL may use (at least 1); worker settings derive from it." },
  maxConnections: { type: "integer", default: 0, description: "Override max_connections; 0 = derive from memory as timescaledb-tune does." },
  telemetry: { type: "boolean", default: false, description: "Send TimescaleDB telemetry." },
  restartPolicy: { type: "string", default: "unless-stopped", description: "Docker restart policy: no, on-failure, always or unless-stopped." },
  database: { type: "string", default: "market", description: "Database name (lowercase identifier); roles are <database>_owner, _migrator, _app, _readonly." },
  protectData: { type: "boolean", default: false, description: "Protect and retain the data volume, and refuse destructive migration downs." },
  generatePasswords: { type: "boolean", default: true, description: "Generate passwords that are not set; false = every password must be set with pulumi config set --secret." },
  adminPassword: { type: "string", default: "", description: "Secret. Superuser password (docker) or admin password (external). Set with: pulumi config set --secret tsdb:adminPassword <value>." },
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
  externalAdminUser: { type: "string", default: "postgres", description: "External mode: admin user that can create roles and databases." },
  sslmode: { type: "string", default: "", description: "libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full); empty = disable for docker, require for external." },
  ohlcvChunkInterval: { type: "string", default: "30 days", description: "Hypertable chunk interval for OHLCV bars, e.g. \"7 days\"." },
  tickChunkInterval: { type: "string", default: "1 day", description: "Hypertable chunk interval for ticks and trades." },
  compressAfter: { type: "string", default: "90 days", description: "Compress (columnstore) chunks older than this." },
  tickRetention: { type: "string", default: "180 days", description: "Drop ticks older than this; empty = keep everything." },
  caggRefreshInterval: { type: "string", default: "1 hour", description: "Continuous aggregate refresh schedule." },
  datasets: { type: undefined, default: [], description: "Market data loaded by pulumi up: a list of {name, source, format?, table?, symbol?, provider?, timeframe?, exchange?, pathPattern?, map?, columns?, layout?, delimiter?, onConflict?, maxRejects?, strict?, target?} (docs/LOADING.md)." },
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

const intervalField = stringField((s) => INTERVAL_PATTERN.test(s), INTERVAL_ALLOWED);
// Docker reference with an explicit tag or digest; `latest` is not a pin.
const IMAGE_PATTERN = /^[a-z0-9][a-z0-9._\-/]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$/;
const imageField = stringField(
  (s) => IMAGE_PATTERN.test(s) && !s.endsWith(":latest"),
  'an image with a pinned tag, such as "timescale/timescaledb:2.23.0-pg17" (not "latest")',
);
const DATABASE_PATTERN = /^[a-z_][a-z0-9_]{0,53}$/;
const anyString = stringField((s) => s.length > 0, "a non-empty string");

const datasetSchema = LoadRequestSchema.omit({ rejects: true }).extend({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be a slug (lowercase letters, digits, - and _)"),
});

const datasetsField: FieldParser<DatasetSetting[]> = (value) => {
  const allowed =
    "a list of datasets, each {name (slug), source (path), format? (csv|parquet|sqlite), table?, symbol?, provider?, timeframe?, exchange?, pathPattern?, map?, columns?, layout?, delimiter?, onConflict? (skip|update), maxRejects?, strict?, target?} (docs/LOADING.md)";
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
  bindAddress: stringField((s) => net.isIP(s) !== 0, 'an IP address such as "127.0.0.1" or "0.0.0.0"'),
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
    (s) => DATABASE_PATTERN.test(s),
    "a lowercase identifier of at most 54 characters (letters, digits, _; not starting with a digit)",
  ),
  protectData: boolField,
  generatePasswords: boolField,
  adminPassword: optionalField(anyString, "to generate it"),
  migratorPassword: optionalField(anyString, "to generate it"),
  appPassword: optionalField(anyString, "to generate it"),
  readonlyPassword: optionalField(anyString, "to generate it"),
  migratorConnectionLimit: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)"),
  appConnectionLimit: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)"),
  readonlyConnectionLimit: intField(-1, 10_000, "an integer of at least -1 (-1 = unlimited)"),
  pgadminEnabled: boolField,
  pgadminImage: imageField,
  pgadminPort: intField(1, 65535, "an integer port from 1 to 65535"),
  pgadminEmail: stringField((s) => z.email().safeParse(s).success, 'an e-mail address such as "admin@example.com"'),
  pgadminPassword: optionalField(anyString, "to generate it"),
  externalHost: optionalField(
    stringField((s) => /^[A-Za-z0-9.:\-[\]]+$/.test(s), "a host name or IP address"),
    "in docker mode",
  ),
  externalPort: intField(1, 65535, "an integer port from 1 to 65535"),
  externalAdminUser: stringField((s) => /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(s), "a PostgreSQL role name"),
  sslmode: enumField(SSL_MODES),
  ohlcvChunkInterval: intervalField,
  tickChunkInterval: intervalField,
  compressAfter: intervalField,
  tickRetention: optionalField(intervalField, "to keep all ticks"),
  caggRefreshInterval: intervalField,
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
    if (!(key in SETTING_DECLARATIONS)) {
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

/**
 * Settings for `stack` as the CLIs see them: Pulumi.yaml defaults overlaid with `Pulumi.<stack>.yaml`
 * `tsdb:` values. Encrypted (`secure:`) values are ignored, so passwords are undefined and never required.
 */
export function readStackSettings(projectDir: string, stack: string): Settings {
  const projectFile = path.join(projectDir, "Pulumi.yaml");
  const stackFile = path.join(projectDir, `Pulumi.${stack}.yaml`);
  const raw: Record<string, unknown> = {};
  const project = readYamlObject(projectFile);
  const projectConfig = (project.config ?? {}) as Record<string, unknown>;
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
  const stackConfig = (readYamlObject(stackFile).config ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(stackConfig)) {
    if (!key.startsWith("tsdb:")) continue;
    if (value !== null && typeof value === "object" && !Array.isArray(value) && "secure" in value) continue;
    raw[key.slice(5)] = value;
  }
  for (const key of Object.keys(raw)) if (raw[key] === undefined) delete raw[key];
  return parseSettings(raw, { stack, requireSecrets: false });
}

function readYamlObject(file: string): Record<string, unknown> {
  const parsed: unknown = parseYaml(fs.readFileSync(file, "utf8"));
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SettingsError([`[${path.basename(file)}] must be a YAML mapping, got ${typeof parsed}.`]);
  }
  return parsed as Record<string, unknown>;
}

/** The `{{variable}}` values migrations use (see the migration contract). */
export function migrationVariables(s: Settings): Record<string, string> {
  return {
    ohlcvChunkInterval: s.ohlcvChunkInterval,
    tickChunkInterval: s.tickChunkInterval,
    compressAfter: s.compressAfter,
    tickRetention: s.tickRetention ?? "",
    caggRefreshInterval: s.caggRefreshInterval,
  };
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
