/**
 * The Pulumi hook applying schema migrations: a dynamic provider whose inputs carry the ordered, resolved
 * migrations (SQL and checksums), so `pulumi preview` shows which would be applied or reverted, by name,
 * without touching the database, and old state carries the down SQL that `delete` and `update` need.
 *
 * Serialization: Pulumi serializes `migrationsProvider` with its closure. Local modules it captures
 * (../lib/migrations/core, ../lib/db, ../lib/postgres/*) are serialized BY VALUE (Pulumi's rule for modules outside
 * node_modules), which is why those modules keep their runtime imports to small local code; `pg` is
 * `require`d inside the methods, which the dynamic-provider host resolves from the project's node_modules.
 * These value imports are the one departure from "type-only top-level imports" in STYLE.md: a relative
 * `require` inside a method cannot work, because the serialized module has no file location. The tests in
 * test/providers load the serialized string the way the host does and run it against real databases.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { Client } from "pg";
import { clientConfig, openClient, withSettings } from "../lib/postgres/client";
import type { ConnectionInfo } from "../lib/postgres/connectionInfo";
import { type RunnableMigration, migrateDown, migrateUp, setRole } from "../lib/migrations/core";
import { checkDownAllowed, dropsIn, planDrops, protectDataRefusal } from "../lib/migrations/downPlan";

export { protectDataRefusal };

/** Current shape of the state (outs). Bump when it changes; `normalizeState` must read every older one. */
export const MIGRATIONS_STATE_VERSION = 1;

/** Inputs of the migrations resource (after Pulumi resolves them). */
export interface MigrationsInputs {
  /** Where to connect, as the migrator. Secret. */
  connection: ConnectionInfo;
  /** Role to `SET ROLE` to so objects are owned by it; empty = the login role. */
  role?: string;
  timescaledb: boolean;
  /** Settings substituted into the SQL (informational: the SQL below already carries them). */
  variables: Record<string, string>;
  /** Refuse to revert migrations (destroy, or a file removed from sql/). */
  protectData: boolean;
  /** Resolved migrations in version order. */
  migrations: RunnableMigration[];
  /** The file names, so a preview diff reads as a list of names. */
  names: string[];
  /** Set by `check`: what this deployment does, e.g. `["apply 0007_x.sql"]` (see planSummary). */
  plan?: string[];
  /** The server's image (docker mode), so an image bump updates the hook and it reads the versions again. */
  serverImage?: string;
}

/** What the server runs, read by the hook on every create and update. */
export interface ServerVersions {
  /** PostgreSQL major version (server_version_num / 10000). */
  postgresMajor: number;
  /** The installed timescaledb extension's version in this database, or null. */
  timescaledb: string | null;
}

/** State (outs): the inputs as applied, plus what is applied. */
export interface MigrationsState extends MigrationsInputs {
  stateVersion: number;
  /** Read from the server when this state was written (absent in state written before it was). */
  server?: ServerVersions;
  appliedVersions: number[];
  applied: { version: number; name: string; file: string; checksum: string }[];
}

/** Pulumi's placeholder for values not known during preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * Reads state written by any provider version. v0 (before `stateVersion`) had migrations as
 * `{version, name, checksum, up, down}` only, and no `names`, `role` or `protectData`.
 */
function normalizeState(raw: Record<string, unknown>): MigrationsState {
  const list = Array.isArray(raw.migrations) ? (raw.migrations as Partial<RunnableMigration>[]) : [];
  const migrations: RunnableMigration[] = list.map((m) => ({
    version: Number(m.version),
    name: String(m.name),
    file: m.file ?? `${String(m.version).padStart(4, "0")}_${String(m.name)}.sql`,
    checksum: String(m.checksum),
    noTransaction: m.noTransaction ?? false,
    up: String(m.up ?? ""),
    upLine: m.upLine ?? 1,
    down: String(m.down ?? ""),
    downLine: m.downLine ?? 1,
  }));
  return {
    stateVersion: Number(raw.stateVersion ?? 0),
    connection: raw.connection as ConnectionInfo,
    role: typeof raw.role === "string" ? raw.role : undefined,
    timescaledb: raw.timescaledb !== false,
    variables: (raw.variables as Record<string, string>) ?? {},
    // v0 had no protectData; treating it as unprotected keeps such stacks destroyable, as they were.
    protectData: raw.protectData === true,
    migrations,
    names: migrations.map((m) => m.file),
    appliedVersions: migrations.map((m) => m.version),
    applied: migrations.map((m) => ({ version: m.version, name: m.name, file: m.file, checksum: m.checksum })),
  };
}

/** Runs `fn` on one client connected per `info`, after `SET ROLE role`; always closes the client. */
async function withMigratorClient<T>(info: ConnectionInfo, role: string | undefined, fn: (client: Client) => Promise<T>): Promise<T> {
  // `pg` is required here, not imported at top level: the host resolves it from the project's node_modules.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pg = require("pg") as typeof import("pg");
  // openClient guards against the unhandled 'error' event a server restart mid-run would raise, which would
  // kill the provider process, and tries again without TLS for sslmode prefer, as libpq does.
  const client = await openClient(pg, withSettings({ application_name: "tsdb-stack migrations hook" }, clientConfig(info)));
  try {
    await setRole(client, role);
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The server's PostgreSQL major and installed TimescaleDB version (not the image tag's). */
async function readServerVersions(client: Client): Promise<ServerVersions> {
  const { rows } = await client.query<{ num: string; ts: string | null }>(
    "SELECT current_setting('server_version_num') AS num, (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS ts",
  );
  return { postgresMajor: Math.floor(Number(rows[0]?.num) / 10000), timescaledb: rows[0]?.ts ?? null };
}

/**
 * The outs after applying `news`: for versions already applied with the same checksum the old entry is
 * kept, because its down SQL is what matches the objects in the database (settings may have changed since).
 */
function stateAfter(news: MigrationsInputs, old: MigrationsState | undefined): MigrationsState {
  const previous = new Map((old?.migrations ?? []).map((m) => [m.version, m]));
  const migrations = news.migrations.map((m) => {
    const p = previous.get(m.version);
    return p && p.checksum === m.checksum ? p : m;
  });
  return {
    stateVersion: 1,
    ...(news.serverImage !== undefined ? { serverImage: news.serverImage } : {}),
    connection: news.connection,
    role: news.role,
    timescaledb: news.timescaledb,
    variables: news.variables,
    protectData: news.protectData,
    migrations,
    names: migrations.map((m) => m.file),
    appliedVersions: migrations.map((m) => m.version),
    applied: migrations.map((m) => ({ version: m.version, name: m.name, file: m.file, checksum: m.checksum })),
  };
}

/** What an update would do: migrations to apply and to revert (by file), and changed applied files. */
export function migrationChanges(olds: Pick<MigrationsInputs, "migrations">, news: Pick<MigrationsInputs, "migrations">): {
  apply: string[];
  revert: string[];
  changed: string[];
} {
  const before = new Map(olds.migrations.map((m) => [m.version, m]));
  const after = new Map(news.migrations.map((m) => [m.version, m]));
  return {
    apply: news.migrations.filter((m) => !before.has(m.version)).map((m) => m.file),
    revert: olds.migrations.filter((m) => !after.has(m.version)).map((m) => m.file),
    changed: news.migrations.filter((m) => before.has(m.version) && before.get(m.version)?.checksum !== m.checksum).map((m) => m.file),
  };
}

/**
 * A readable summary of what an update would do, in the order it would do it, e.g.
 * `["revert 0005_old_view.sql (drops research.notes)", "apply 0007_factor_scores.sql"]`. `check` stores it in the inputs, so
 * `pulumi preview --diff` prints it next to the `names` diff.
 */
export function planSummary(olds: Pick<MigrationsInputs, "migrations">, news: Pick<MigrationsInputs, "migrations">): string[] {
  const { apply, revert, changed } = migrationChanges(olds, news);
  // The tables a revert drops, read from its down SQL (the rows they hold are counted when it runs).
  const downs = new Map(olds.migrations.map((m) => [m.file, m.down]));
  const drops = (file: string) => {
    const tables = dropsIn(downs.get(file) ?? "").tables;
    return tables.length > 0 ? ` (drops ${tables.join(", ")})` : "";
  };
  return [
    ...[...revert].reverse().map((f) => `revert ${f}${drops(f)}`),
    ...changed.map((f) => `refuse ${f}: changed after it was applied`),
    ...apply.map((f) => `apply ${f}`),
  ];
}

/** The dynamic provider (see the module comment for how it is serialized). */
export const migrationsProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Record<string, unknown>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
    const before = Array.isArray(olds?.migrations) ? normalizeState(olds).migrations : [];
    const after = Array.isArray(news.migrations) ? (news.migrations as RunnableMigration[]) : [];
    return { inputs: { ...news, plan: planSummary({ migrations: before }, { migrations: after }) } };
  },

  async diff(_id: string, oldOuts: Record<string, unknown>, news: MigrationsInputs): Promise<pulumi.dynamic.DiffResult> {
    const olds = normalizeState(oldOuts);
    const newList = Array.isArray(news.migrations) ? news.migrations : [];
    const { apply, revert, changed } = migrationChanges(olds, { migrations: newList });
    const replaces: string[] = [];
    const oldDb = olds.connection?.database;
    const newDb = news.connection?.database;
    // Another database is another schema instance; host, port, user or password changes are not.
    if (typeof oldDb === "string" && typeof newDb === "string" && newDb !== UNKNOWN && oldDb !== newDb) replaces.push("connection");
    if (typeof news.timescaledb === "boolean" && olds.timescaledb !== news.timescaledb) replaces.push("timescaledb");
    const changes =
      apply.length > 0 ||
      revert.length > 0 ||
      changed.length > 0 ||
      replaces.length > 0 ||
      olds.stateVersion !== MIGRATIONS_STATE_VERSION ||
      JSON.stringify(olds.connection) !== JSON.stringify(news.connection) ||
      (olds.role ?? "") !== (news.role ?? "") ||
      olds.protectData !== news.protectData ||
      (typeof news.serverImage === "string" && news.serverImage !== UNKNOWN && (oldOuts.serverImage ?? news.serverImage) !== news.serverImage) ||
      JSON.stringify(olds.variables) !== JSON.stringify(news.variables);
    return { changes, replaces, deleteBeforeReplace: replaces.length > 0 };
  },

  async create(inputs: MigrationsInputs): Promise<pulumi.dynamic.CreateResult> {
    const server = await withMigratorClient(inputs.connection, inputs.role, async (client) => {
      await migrateUp(client, inputs.migrations, { timescaledb: inputs.timescaledb });
      return readServerVersions(client);
    });
    return { id: `schema_migrations@${inputs.connection.database}`, outs: { ...stateAfter(inputs, undefined), server } };
  },

  async update(_id: string, oldOuts: Record<string, unknown>, news: MigrationsInputs): Promise<pulumi.dynamic.UpdateResult> {
    const olds = normalizeState(oldOuts);
    const removed = new Set(migrationChanges(olds, news).revert);
    const revert = olds.migrations.filter((m) => removed.has(m.file)).sort((a, b) => b.version - a.version);
    const server = await withMigratorClient(news.connection, news.role, async (client) => {
      if (revert.length > 0) {
        // The same rule as `db down` (lib/migrations/downPlan); removing the files and running pulumi up is the consent.
        const steps = await planDrops(client, revert);
        checkDownAllowed(steps, {
          protectData: news.protectData,
          force: true,
          action: `reverting ${revert.map((m) => m.file).join(", ")} (removed from sql/)`,
        });
      }
      await migrateUp(client, news.migrations, { revert, timescaledb: news.timescaledb });
      return readServerVersions(client);
    });
    return { outs: { ...stateAfter(news, olds), server } };
  },

  async delete(_id: string, oldOuts: Record<string, unknown>): Promise<void> {
    const olds = normalizeState(oldOuts);
    if (olds.protectData) throw new Error(protectDataRefusal("destroying the schema"));
    await withMigratorClient(olds.connection, olds.role, async (client) => {
      const steps = await planDrops(client, [...olds.migrations].sort((a, b) => b.version - a.version));
      checkDownAllowed(steps, { protectData: olds.protectData, force: true, action: "destroying the schema" });
      return migrateDown(client, olds.migrations, 0, { timescaledb: olds.timescaledb });
    });
  },
};
