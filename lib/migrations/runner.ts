/**
 * MigrationRunner: plan, up, down and status over ONE connection (the TimescaleDB test engine accepts only
 * one). Plain module, no Pulumi import: the CLI (`tsdb db`, cli/db.ts), the benchmark and the tests use it; the
 * Pulumi hook uses the same client-level functions from ./core.
 */
import { type Connection, withClient } from "../db";
import {
  type AppliedMigration,
  type MigrationOutcome,
  checkDatabaseMode,
  migrateDown,
  migrateUp,
  migrationsToRevert,
  pendingMigrations,
  readHistory,
  setRole,
  verifyChecksums,
} from "./core";
import { type DownPolicy, type DownStep, checkDownAllowed, planDrops } from "./downPlan";
import { type MigrationFile, type ResolvedMigration, readMigrationsDir, resolveMigration } from "./file";

export interface MigrationRunnerOptions {
  /** Where to connect (URL or node-postgres settings). */
  connection: Connection;
  /** Parsed or resolved migrations, or a directory of `NNNN_name.sql` files. */
  migrations: string | readonly MigrationFile[] | readonly ResolvedMigration[];
  /** TimescaleDB enabled (keeps `-- if:timescaledb` blocks) or vanilla PostgreSQL. */
  timescaledb: boolean;
  /** Settings for `{{name}}` placeholders (see MIGRATION_VARIABLES). */
  variables: Partial<Record<string, string>>;
  /** Role to `SET ROLE` to after connecting, so created objects are owned by it (e.g. `market_owner`). */
  role?: string;
  /**
   * Used when `role` is not given: `SET ROLE` to this role if it exists and the login may use it (the CLI
   * passes `<database>_owner`, so a migrator who forgets --role still creates owner-owned objects that the
   * Pulumi hook, which runs as the owner, can later alter).
   */
  defaultRole?: string;
  /** How long to wait for the migration lock (or a lock a statement needs) before giving up (default 60 s). */
  lockTimeoutMs?: number;
}

/** Options of `down`: the target and the rule deciding whether the drops may happen (see ./downPlan). */
export interface DownOptions extends Partial<DownPolicy> {
  to: number;
  /** Called with what will be dropped, before the rule is applied and before anything runs (the CLI prints it). */
  onPlan?: (steps: DownStep[]) => void;
}

/** One line of `status`. */
export interface MigrationStatus {
  version: number;
  name: string;
  file: string;
  /** applied; pending; changed = applied but the file's checksum differs; missing = applied, no file. */
  state: "applied" | "pending" | "changed" | "missing";
  appliedAt?: Date;
  appliedBy?: string;
  durationMs?: number;
}

/** A planned step: the migration and the SQL that would run. */
export interface PlannedMigration {
  version: number;
  file: string;
  action: "apply" | "revert";
  sql: string;
}

/** A version target: a non-negative integer (0 = nothing applied). */
function checkTarget(to: number | undefined): void {
  if (to !== undefined && !(Number.isInteger(to) && to >= 0)) {
    throw new Error(`Target version must be a whole number >= 0, got ${String(to)}.`);
  }
}

export class MigrationRunner {
  /** The migrations resolved for the runner's mode and settings, in version order. */
  readonly migrations: readonly ResolvedMigration[];

  constructor(private readonly options: MigrationRunnerOptions) {
    const source = typeof options.migrations === "string" ? readMigrationsDir(options.migrations) : options.migrations;
    this.migrations = source
      .map((m) => (typeof m.up === "string" ? (m as ResolvedMigration) : resolveMigration(m as MigrationFile, options)))
      .sort((a, b) => a.version - b.version);
  }

  /** Runs `fn` on one connection, after `SET ROLE` when a role is given. */
  private session<T>(fn: (client: import("pg").Client) => Promise<T>): Promise<T> {
    return withClient(this.options.connection, async (client) => {
      let role = this.options.role;
      if (!role && this.options.defaultRole) {
        const res = await client.query(
          `SELECT pg_has_role(session_user, oid, 'MEMBER') AS usable FROM pg_roles WHERE rolname = $1`,
          [this.options.defaultRole],
        );
        if (res.rows[0]?.usable) role = this.options.defaultRole;
      }
      await setRole(client, role);
      return fn(client);
    });
  }

  /**
   * What `up({to})` (default) or `down({to})` would do, with the resolved SQL, without changing anything.
   * Fails like `up` would on a changed applied migration.
   */
  async plan(options: { to?: number; direction?: "up" | "down" } = {}): Promise<PlannedMigration[]> {
    checkTarget(options.to);
    return this.session(async (client) => {
      await checkDatabaseMode(client, this.options.timescaledb);
      const history = await readHistory(client);
      verifyChecksums(history, this.migrations);
      if (options.direction === "down") {
        return migrationsToRevert(this.migrations, history, options.to ?? 0).map((m) => ({
          version: m.version,
          file: m.file,
          action: "revert" as const,
          sql: m.down,
        }));
      }
      return pendingMigrations(this.migrations, history, options.to).map((m) => ({
        version: m.version,
        file: m.file,
        action: "apply" as const,
        sql: m.up,
      }));
    });
  }

  /** Applies pending migrations up to `to` (default: all). */
  async up(options: { to?: number } = {}): Promise<MigrationOutcome> {
    checkTarget(options.to);
    return this.session((client) =>
      migrateUp(client, this.migrations, { to: options.to, timescaledb: this.options.timescaledb, lockTimeoutMs: this.options.lockTimeoutMs }),
    );
  }

  /** What `down({to})` would drop: each migration it reverts with the tables its down part drops and their rows. */
  async downPlan(options: { to: number }): Promise<DownStep[]> {
    checkTarget(options.to);
    return this.session(async (client) => {
      await checkDatabaseMode(client, this.options.timescaledb);
      const history = await readHistory(client);
      verifyChecksums(history, this.migrations);
      return planDrops(client, migrationsToRevert(this.migrations, history, options.to));
    });
  }

  /**
   * Reverts applied migrations above `to`, newest first, after showing what they drop (`onPlan`) and applying
   * the rule: `protectData` refuses, tables holding rows need `force` (both default false: a caller that says
   * nothing may drop only empty tables).
   */
  async down(options: DownOptions): Promise<MigrationOutcome> {
    checkTarget(options.to);
    return this.session(async (client) => {
      await checkDatabaseMode(client, this.options.timescaledb);
      const history = await readHistory(client);
      verifyChecksums(history, this.migrations);
      const steps = await planDrops(client, migrationsToRevert(this.migrations, history, options.to));
      options.onPlan?.(steps);
      checkDownAllowed(steps, {
        protectData: options.protectData ?? false,
        force: options.force ?? false,
        action: options.action ?? `down --to ${options.to}`,
      });
      return migrateDown(client, this.migrations, options.to, { timescaledb: this.options.timescaledb, lockTimeoutMs: this.options.lockTimeoutMs });
    });
  }

  /** Every migration file and every applied version, in version order, with its state. */
  async status(): Promise<MigrationStatus[]> {
    return this.session(async (client) => statusOf(this.migrations, await readHistory(client)));
  }
}

/** Combines files and history into status lines (pure; exported for tests). */
export function statusOf(migrations: readonly ResolvedMigration[], history: AppliedMigration[]): MigrationStatus[] {
  const byVersion = new Map(history.map((h) => [h.version, h]));
  const lines: MigrationStatus[] = migrations.map((m) => {
    const h = byVersion.get(m.version);
    if (!h) return { version: m.version, name: m.name, file: m.file, state: "pending" };
    return {
      version: m.version,
      name: m.name,
      file: m.file,
      state: h.checksum === m.checksum ? "applied" : "changed",
      appliedAt: h.appliedAt,
      appliedBy: h.appliedBy,
      durationMs: h.durationMs,
    };
  });
  const files = new Set(migrations.map((m) => m.version));
  for (const h of history) {
    if (files.has(h.version)) continue;
    lines.push({
      version: h.version,
      name: h.name,
      file: `${String(h.version).padStart(4, "0")}_${h.name}.sql`,
      state: "missing",
      appliedAt: h.appliedAt,
      appliedBy: h.appliedBy,
      durationMs: h.durationMs,
    });
  }
  return lines.sort((a, b) => a.version - b.version);
}
