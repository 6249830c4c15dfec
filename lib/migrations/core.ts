/**
 * Applying and reverting resolved migrations on ONE connected client: the history table, the advisory lock,
 * transactions, checksum checks and errors that name the file and line. Both the CLI's MigrationRunner and
 * the Pulumi dynamic provider use these functions; the provider carries them inside its serialized closure,
 * so this module's only runtime imports are other small local modules (no `pg`, no `fs`): the caller owns
 * the connection.
 */
import type { Client, DatabaseError } from "pg";
import { withAdvisoryLock, withTransaction } from "../db";
import type { ResolvedMigration } from "./file";
import { splitStatements } from "./split";

/**
 * Session advisory-lock key held while migrations run, so two runners at once apply each migration exactly
 * once. The number is the ASCII bytes of "tsdbmigr" read as a big-endian int64 (0x747364626d696772): fixed,
 * so every runner of this project (CLI, Pulumi hook, CI) agrees on it, positive, and unlikely to collide
 * with keys other tools pick (graphile-migrate, Flyway and Rails use small or hash-derived keys).
 */
export const MIGRATION_LOCK_KEY = 0x747364626d696772n;

/** The migration the runner needs to know about to apply or revert it (a subset of ResolvedMigration). */
export type RunnableMigration = Pick<
  ResolvedMigration,
  "version" | "name" | "file" | "checksum" | "noTransaction" | "up" | "upLine" | "down" | "downLine"
>;

/** One row of `schema_migrations.applied`. */
export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  appliedAt: Date;
  durationMs: number;
  appliedBy: string;
}

/** What a call changed, as file names in the order it happened. */
export interface MigrationOutcome {
  applied: string[];
  reverted: string[];
}

/** `SET ROLE role` (quoted) so objects created afterwards are owned by it; no-op when role is empty. */
export async function setRole(client: Client, role: string | undefined): Promise<void> {
  if (role) await client.query(`SET ROLE ${client.escapeIdentifier(role)}`);
}

/** Creates `schema_migrations.applied` if absent. Call it while holding the lock (two CREATEs race). */
export async function ensureHistory(client: Client): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS schema_migrations`);
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations.applied (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer     NOT NULL,
    applied_by  text        NOT NULL DEFAULT session_user
  )`);
}

/** The history, in version order; empty when the table does not exist yet. */
export async function readHistory(client: Client): Promise<AppliedMigration[]> {
  const exists = await client.query(`SELECT to_regclass('schema_migrations.applied') IS NOT NULL AS present`);
  if (!exists.rows[0]?.present) return [];
  const res = await client.query(
    `SELECT version, name, checksum, applied_at, duration_ms, applied_by FROM schema_migrations.applied ORDER BY version`,
  );
  return res.rows.map((r) => ({
    version: Number(r.version),
    name: String(r.name),
    checksum: String(r.checksum),
    appliedAt: r.applied_at as Date,
    durationMs: Number(r.duration_ms),
    appliedBy: String(r.applied_by),
  }));
}

/** The tamper error for `file`, with what to do. */
export function checksumMismatch(file: string): Error {
  return new Error(
    `Checksum of ${file} does not match the applied one; was the file edited after it ran? ` +
      `Restore the applied content (git log -p -- sql/${file}) and put the change in a new migration; ` +
      `or, on a database you can throw away, revert it first with the old file (npm run db -- down --to <earlier version>).`,
  );
}

/**
 * Throws when an applied migration's checksum differs from its file's. `known` lists the migrations the
 * caller has files for; history rows without a file are ignored here.
 */
export function verifyChecksums(history: AppliedMigration[], known: readonly RunnableMigration[]): void {
  const byVersion = new Map(known.map((m) => [m.version, m]));
  for (const row of history) {
    const m = byVersion.get(row.version);
    if (m && m.checksum !== row.checksum) throw checksumMismatch(m.file);
  }
}

/** Migrations of `all` not yet in `history`, in version order, up to version `to` (inclusive) if given. */
export function pendingMigrations<M extends RunnableMigration>(all: readonly M[], history: AppliedMigration[], to?: number): M[] {
  const done = new Set(history.map((h) => h.version));
  return [...all]
    .filter((m) => !done.has(m.version) && (to === undefined || m.version <= to))
    .sort((a, b) => a.version - b.version);
}

/**
 * Applied migrations above version `to`, newest first, taken from `all` (which must hold their down parts).
 * Throws naming the version when an applied one has no migration in `all`.
 */
export function migrationsToRevert<M extends RunnableMigration>(all: readonly M[], history: AppliedMigration[], to: number): M[] {
  const byVersion = new Map(all.map((m) => [m.version, m]));
  return history
    .filter((h) => h.version > to)
    .sort((a, b) => b.version - a.version)
    .map((h) => {
      const m = byVersion.get(h.version);
      if (!m) {
        throw new Error(
          `Version ${h.version} (${h.name}) is applied but has no migration file, so its down part is unknown; restore the file to revert it.`,
        );
      }
      return m;
    });
}

/**
 * Runs one part of a migration statement by statement. Any statement error is re-thrown as
 * `<file> line <n>: <message>`, the line being the file's line of the failing statement (refined by the
 * Postgres error `position` when the server gives one).
 */
async function runPart(client: Client, m: RunnableMigration, direction: "up" | "down", inTransaction: boolean): Promise<void> {
  const text = direction === "up" ? m.up : m.down;
  const firstLine = (direction === "up" ? m.upLine : m.downLine) ?? 1;
  let statements;
  try {
    statements = splitStatements(text);
  } catch (err) {
    throw new Error(`${m.file} (${direction} part): ${(err as Error).message}`, { cause: err });
  }
  let done = 0;
  for (const statement of statements) {
    try {
      await client.query(statement.sql);
      done++;
    } catch (err) {
      const pgErr = err as Partial<DatabaseError> & Error;
      let line = firstLine + statement.line - 1;
      const position = Number(pgErr.position);
      if (Number.isInteger(position) && position > 0) {
        line += (statement.sql.slice(0, position - 1).match(/\n/g) ?? []).length;
      }
      const consequence = inTransaction
        ? "rolled back; nothing of this migration was applied"
        : done === 0
          ? "no statement of this no-transaction migration had run yet"
          : `${done} earlier statement(s) of this no-transaction migration already ran and were NOT rolled back; ` +
            "make them idempotent (IF NOT EXISTS) or undo them by hand, then run again";
      const detail = pgErr.detail ? ` (${pgErr.detail})` : "";
      const wrapped = new Error(`${m.file} line ${line} (${direction}): ${pgErr.message}${detail} [${consequence}]`, {
        cause: err,
      });
      (wrapped as Error & { code?: string }).code = pgErr.code;
      throw wrapped;
    }
  }
}

/** Applies one migration: its up part and its history row in one transaction (or none, if marked so). */
export async function applyMigration(client: Client, m: RunnableMigration): Promise<void> {
  const started = Date.now();
  const record = async () => {
    await client.query(
      `INSERT INTO schema_migrations.applied (version, name, checksum, duration_ms, applied_by) VALUES ($1, $2, $3, $4, session_user)`,
      [m.version, m.name, m.checksum, Date.now() - started],
    );
  };
  if (m.noTransaction) {
    await runPart(client, m, "up", false);
    await record();
  } else {
    await withTransaction(client, async () => {
      await runPart(client, m, "up", true);
      await record();
    });
  }
}

/** Reverts one migration: its down part and the removal of its history row in one transaction (or none). */
export async function revertMigration(client: Client, m: RunnableMigration): Promise<void> {
  const forget = async () => {
    await client.query(`DELETE FROM schema_migrations.applied WHERE version = $1`, [m.version]);
  };
  if (m.noTransaction) {
    await runPart(client, m, "down", false);
    await forget();
  } else {
    await withTransaction(client, async () => {
      await runPart(client, m, "down", true);
      await forget();
    });
  }
}

/** Options of `migrateUp`. */
export interface UpOptions {
  /** Stop after this version (default: the latest). */
  to?: number;
  /** Migrations to revert first, newest first, if applied (the Pulumi hook: files removed from sql/). */
  revert?: readonly RunnableMigration[];
}

/**
 * Under the advisory lock: creates the history table, reverts `options.revert` (those applied), checks the
 * checksums of applied migrations against `migrations`, then applies the pending ones in version order.
 * A history row with no migration in `migrations` (and not being reverted) stops the run: the files and
 * the database disagree.
 */
export async function migrateUp(client: Client, migrations: readonly RunnableMigration[], options: UpOptions = {}): Promise<MigrationOutcome> {
  return withAdvisoryLock(client, MIGRATION_LOCK_KEY, async () => {
    await ensureHistory(client);
    const outcome: MigrationOutcome = { applied: [], reverted: [] };
    let history = await readHistory(client);
    const revert = [...(options.revert ?? [])].sort((a, b) => b.version - a.version);
    verifyChecksums(history, revert);
    for (const m of revert) {
      if (!history.some((h) => h.version === m.version)) continue;
      await revertMigration(client, m);
      outcome.reverted.push(m.file);
    }
    history = await readHistory(client);
    const known = new Set(migrations.map((m) => m.version));
    const stray = history.find((h) => !known.has(h.version));
    if (stray) {
      throw new Error(
        `Version ${stray.version} (${stray.name}) is applied in the database but has no migration file; ` +
          `restore its file, or revert it with the sql/ that still has it (npm run db -- down --to ${stray.version - 1}).`,
      );
    }
    verifyChecksums(history, migrations);
    for (const m of pendingMigrations(migrations, history, options.to)) {
      await applyMigration(client, m);
      outcome.applied.push(m.file);
    }
    return outcome;
  });
}

/**
 * Under the advisory lock: reverts every applied migration above version `to`, newest first, each in its
 * own transaction, after checking their checksums against `migrations` (which supply the down parts).
 */
export async function migrateDown(client: Client, migrations: readonly RunnableMigration[], to: number): Promise<MigrationOutcome> {
  return withAdvisoryLock(client, MIGRATION_LOCK_KEY, async () => {
    await ensureHistory(client);
    const history = await readHistory(client);
    verifyChecksums(history, migrations);
    const outcome: MigrationOutcome = { applied: [], reverted: [] };
    for (const m of migrationsToRevert(migrations, history, to)) {
      await revertMigration(client, m);
      outcome.reverted.push(m.file);
    }
    return outcome;
  });
}
