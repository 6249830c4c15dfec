/**
 * Applying and reverting resolved migrations on ONE connected client: the history table, the advisory lock,
 * transactions, checksum checks and errors that name the file and line. Both the CLI's MigrationRunner and
 * the Pulumi dynamic provider use these functions; the provider carries them inside its serialized closure,
 * so this module's only runtime imports are other small local modules (no `pg`, no `fs`): the caller owns
 * the connection.
 */
import type { Client, DatabaseError } from "pg";
import { type ConnectionLostError, connectionLost, isConnectionLost, isConnectionLostError, withTransaction } from "../db";
import type { ResolvedMigration } from "./file";
import { assertDirectSession } from "../postgres/pooler";
import { splitStatements } from "./split";

/**
 * Session advisory-lock key held only around the body of a `-- migrate:no-transaction` migration (which cannot
 * run inside the transaction that holds the history-table lock, see `lockHistory`). The number is the ASCII
 * bytes of "tsdbmigr" read as a big-endian int64 (0x747364626d696772): fixed, so every runner (CLI, Pulumi
 * hook, CI) agrees on it. Any role may take an advisory lock, so a wait for it gives up after the lock timeout
 * naming the holder; transactional migrations (all of sql/) never take it.
 */
export const MIGRATION_LOCK_KEY = 0x747364626d696772n;

/** How long a run waits for a lock (the history lock, or a lock a migration statement needs) by default. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;

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

/**
 * Creates `schema_migrations.applied` and `schema_migrations.database_mode` if absent. Two first runs at once
 * race on the catalog (a duplicate-key error from CREATE ... IF NOT EXISTS); the loser retries, and finds
 * what the winner created.
 */
export async function ensureHistory(client: Client): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await withTransaction(client, async () => {
        await client.query(`CREATE SCHEMA IF NOT EXISTS schema_migrations`);
        await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations.applied (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer     NOT NULL,
    applied_by  text        NOT NULL DEFAULT session_user
  )`);
        await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations.database_mode (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    timescaledb boolean     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_by text        NOT NULL DEFAULT session_user
  )`);
      });
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 3 || (code !== "23505" && code !== "42P06" && code !== "42P07")) throw err;
    }
  }
}

/** A session that holds (or waits for) a lock, as `pg_stat_activity` shows it to any role. */
export interface LockHolder {
  pid: number;
  user: string;
  application: string;
}

/** `pid 123, user market_migrator, application "tsdb-stack"` for each holder (the holder may have let go since). */
export function describeHolders(holders: readonly LockHolder[]): string {
  if (holders.length === 0) return "a session that has since let go";
  return holders.map((h) => `pid ${h.pid}, user ${h.user}, application ${JSON.stringify(h.application)}`).join("; ");
}

/** A lock wait that reached its timeout: which lock, who held it. A plain Error (see connectionLost in ../db). */
export interface LockTimeoutError extends Error {
  lockTimeout: true;
  holders: LockHolder[];
}

/** The one-line error for a wait of `timeoutMs` for `what`, naming who holds it. */
export function lockTimeout(what: string, holders: LockHolder[], timeoutMs: number): LockTimeoutError {
  const err = new Error(
    `waited ${Math.round(timeoutMs / 1000)} s for ${what} held by ${describeHolders(holders)}; gave up, nothing more was applied or reverted. ` +
      `Run again when that session is done (or end it: SELECT pg_terminate_backend(<pid>)).`,
  ) as LockTimeoutError;
  err.name = "LockTimeoutError";
  err.lockTimeout = true;
  err.holders = holders;
  return err;
}

/** The other sessions holding a granted lock that `where` (over pg_locks `l`) selects. */
export async function holdersOf(client: Client, where: string, params: unknown[]): Promise<LockHolder[]> {
  const res = await client.query(
    `SELECT DISTINCT a.pid, a.usename, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.granted AND l.pid <> pg_backend_pid() AND ${where} ORDER BY a.pid`,
    params,
  );
  return res.rows.map((r) => ({ pid: Number(r.pid), user: String(r.usename ?? ""), application: String(r.application_name ?? "") }));
}

/**
 * Inside the current transaction: takes the migration lock, EXCLUSIVE on `schema_migrations.applied`, waiting
 * at most `timeoutMs`. Why a table lock and not (only) an advisory lock: any role may take any advisory lock,
 * so a read-only login holding a fixed key could stop every migration; LOCK TABLE in this mode needs UPDATE,
 * DELETE or TRUNCATE on the table, which only the owner (and its members, the migrator) have, and plain
 * reads (ACCESS SHARE) do not conflict with it. The lock ends with the transaction, so each migration takes it
 * in its own transaction and re-checks the history under it. `lock_timeout` stays set for the whole
 * transaction, so a migration statement waiting on a lock someone else holds also gives up instead of hanging.
 */
export async function lockHistory(client: Client, timeoutMs: number): Promise<void> {
  await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.round(timeoutMs))}ms`]);
  try {
    await client.query(`LOCK TABLE schema_migrations.applied IN EXCLUSIVE MODE`);
  } catch (err) {
    if ((err as { code?: string }).code !== "55P03") throw err;
    await client.query("ROLLBACK");
    const holders = await holdersOf(client, `l.relation = 'schema_migrations.applied'::regclass`, []);
    await client.query("BEGIN"); // withTransaction rolls back again; keep its BEGIN/ROLLBACK pairing valid
    throw lockTimeout("the migration lock (schema_migrations.applied)", holders, timeoutMs);
  }
}

/** Runs `fn` in a transaction holding the migration lock (see lockHistory). */
export async function underHistoryLock<T>(client: Client, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  return withTransaction(client, async () => {
    await lockHistory(client, timeoutMs);
    return fn();
  });
}

/**
 * Holds the session advisory lock MIGRATION_LOCK_KEY while `fn` runs, polling for at most `timeoutMs`;
 * a timeout names the holder. Always released.
 */
async function withMigrationAdvisoryLock<T>(client: Client, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const key = MIGRATION_LOCK_KEY.toString();
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await client.query(`SELECT pg_try_advisory_lock($1::bigint) AS ok`, [key]);
    if (got.rows[0]?.ok) break;
    if (Date.now() >= end) {
      // A bigint advisory key shows in pg_locks as classid = high 32 bits, objid = low 32 bits, objsubid = 1.
      const holders = await holdersOf(
        client,
        `l.locktype = 'advisory' AND l.objsubid = 1 AND l.classid::bigint = ($1::bigint >> 32) AND l.objid::bigint = ($1::bigint & 4294967295)`,
        [key],
      );
      throw lockTimeout("the no-transaction migration lock (advisory lock 0x747364626d696772)", holders, timeoutMs);
    }
    await new Promise((r) => setTimeout(r, Math.min(200, Math.max(10, end - Date.now()))));
  }
  try {
    return await fn();
  } finally {
    await client.query(`SELECT pg_advisory_unlock($1::bigint)`, [key]).catch(() => undefined);
  }
}

/** The mode a database was migrated in: TimescaleDB (hypertables, caggs) or vanilla PostgreSQL. */
export type DatabaseMode = "timescaledb" | "vanilla";

const modeName = (timescaledb: boolean): DatabaseMode => (timescaledb ? "timescaledb" : "vanilla");

/** The one-line error for a run whose mode differs from the database's. */
export function modeMismatch(recorded: DatabaseMode, requested: DatabaseMode): Error {
  const fix =
    recorded === "vanilla"
      ? "pass --no-timescaledb (CLI) or set tsdb:timescaledb false (stack)"
      : "run without --no-timescaledb with a stack whose tsdb:timescaledb is true";
  return new Error(
    `This database was migrated ${recorded === "vanilla" ? "without TimescaleDB (vanilla PostgreSQL)" : "with TimescaleDB"}, ` +
      `but this run is for ${requested === "vanilla" ? "vanilla PostgreSQL" : "TimescaleDB"}; nothing was changed: ${fix}.`,
  );
}

/**
 * The mode recorded in the database; for a database migrated before the mode was recorded (history rows but
 * no mode row), what it evidently is: TimescaleDB mode needs the extension, vanilla mode never creates it.
 * Undefined for a database nothing was applied to.
 */
export async function readDatabaseMode(client: Client): Promise<DatabaseMode | undefined> {
  const present = await client.query(`SELECT to_regclass('schema_migrations.database_mode') IS NOT NULL AS mode,
      to_regclass('schema_migrations.applied') IS NOT NULL AS history`);
  if (!present.rows[0]?.history) return undefined;
  // A mode recorded by a first run that applied nothing (it failed) binds nothing yet.
  const applied = await client.query(`SELECT count(*)::int AS n FROM schema_migrations.applied`);
  if (applied.rows[0]?.n === 0) return undefined;
  if (present.rows[0]?.mode) {
    const row = await client.query(`SELECT timescaledb FROM schema_migrations.database_mode`);
    if (row.rows.length > 0) return modeName(row.rows[0].timescaledb === true);
  }
  const ext = await client.query(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'`);
  return modeName(ext.rows[0]?.n > 0);
}

/** Throws `modeMismatch` when the database's mode (recorded or evident) differs from `timescaledb`. */
export async function checkDatabaseMode(client: Client, timescaledb: boolean): Promise<void> {
  const recorded = await readDatabaseMode(client);
  if (recorded && recorded !== modeName(timescaledb)) throw modeMismatch(recorded, modeName(timescaledb));
}

/**
 * Under the history lock: checks the mode and records it when the database has none (first `up`, or a
 * database migrated before the mode was recorded). Before a first TimescaleDB run, checks that the server
 * has the extension at all, so a plain PostgreSQL server gets told what to pass.
 */
async function checkAndRecordMode(client: Client, timescaledb: boolean, timeoutMs: number): Promise<void> {
  await underHistoryLock(client, timeoutMs, async () => {
    const recorded = await readDatabaseMode(client);
    if (recorded && recorded !== modeName(timescaledb)) throw modeMismatch(recorded, modeName(timescaledb));
    if (!recorded && timescaledb) {
      const available = await client.query(`SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'timescaledb'`);
      if (available.rows[0]?.n === 0) {
        throw new Error(
          `This server has no timescaledb extension, so TimescaleDB mode cannot work; nothing was changed: ` +
            `pass --no-timescaledb (CLI) or set tsdb:timescaledb false (stack) for plain PostgreSQL, or use a TimescaleDB server.`,
        );
      }
    }
    await client.query(
      `INSERT INTO schema_migrations.database_mode (timescaledb) VALUES ($1)
       ON CONFLICT (singleton) DO UPDATE SET timescaledb = EXCLUDED.timescaledb, recorded_at = now(), recorded_by = session_user
       WHERE schema_migrations.database_mode.timescaledb IS DISTINCT FROM EXCLUDED.timescaledb`,
      [timescaledb],
    );
  });
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
      const hint = pgErr.hint ? ` (hint: ${pgErr.hint.replace(/\s*\n\s*/g, " ").trim()})` : "";
      const wrapped = new Error(`${m.file} line ${line} (${direction}): ${pgErr.message}${detail}${hint} [${consequence}]`, {
        cause: err,
      });
      (wrapped as Error & { code?: string }).code = pgErr.code;
      throw wrapped;
    }
  }
}

/** What a lost connection left of migration `m` run in `direction`. */
function lostDuring(m: RunnableMigration, direction: "up" | "down", err: unknown): ConnectionLostError {
  const verb = direction === "up" ? "applying" : "reverting";
  const committed = m.noTransaction
    ? `it is a no-transaction migration, so statements that ran before the loss stay; check them before running again`
    : `nothing of it was committed`;
  return connectionLost(`${verb} ${m.file}`, committed, err);
}

/**
 * Runs one step of migration `m` under the history lock: `present` says whether its history row must exist
 * for the step to be due (false for apply, true for revert); a step another runner already did is skipped.
 * Returns whether the step ran.
 */
async function runStep(
  client: Client,
  m: RunnableMigration,
  direction: "up" | "down",
  timeoutMs: number,
  present: boolean,
  record: () => Promise<void>,
): Promise<boolean> {
  const due = async () => {
    const res = await client.query(`SELECT count(*)::int AS n FROM schema_migrations.applied WHERE version = $1`, [m.version]);
    return (res.rows[0]?.n > 0) === present;
  };
  try {
    if (!m.noTransaction) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await underHistoryLock(client, timeoutMs, async () => {
            if (!(await due())) return false;
            await runPart(client, m, direction, true);
            await record();
            return true;
          });
        } catch (err) {
          // A deadlock with TimescaleDB's own jobs (a policy's run holds its job lock and waits for a table this
          // migration has locked; seen in 0006's down on a live server): the transaction rolled back whole, so
          // the migration runs again, up to three times.
          const code = (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
          if (code !== "40P01" || attempt >= 3) throw err;
          await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
        }
      }
    }
    // The body of a no-transaction migration cannot sit inside the locking transaction: the advisory lock
    // keeps a second runner out meanwhile, and the history is re-checked under the table lock before and after.
    return await withMigrationAdvisoryLock(client, timeoutMs, async () => {
      if (!(await underHistoryLock(client, timeoutMs, due))) return false;
      await runPart(client, m, direction, false);
      await underHistoryLock(client, timeoutMs, record);
      return true;
    });
  } catch (err) {
    if (isConnectionLost(err)) throw lostDuring(m, direction, err);
    throw err;
  }
}

/** Applies one migration: its up part and its history row in one transaction (or none, if marked so). */
export async function applyMigration(client: Client, m: RunnableMigration, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): Promise<boolean> {
  const started = Date.now();
  return runStep(client, m, "up", timeoutMs, false, async () => {
    await client.query(
      `INSERT INTO schema_migrations.applied (version, name, checksum, duration_ms, applied_by) VALUES ($1, $2, $3, $4, session_user)`,
      [m.version, m.name, m.checksum, Date.now() - started],
    );
  });
}

/** Reverts one migration: its down part and the removal of its history row in one transaction (or none). */
export async function revertMigration(client: Client, m: RunnableMigration, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): Promise<boolean> {
  return runStep(client, m, "down", timeoutMs, true, async () => {
    await client.query(`DELETE FROM schema_migrations.applied WHERE version = $1`, [m.version]);
  });
}

/** Options shared by `migrateUp` and `migrateDown`. */
export interface RunOptions {
  /** The run's mode: checked against the mode the database records (and recorded by a first `up`). */
  timescaledb: boolean;
  /** How long to wait for the migration lock, or a lock a statement needs (default DEFAULT_LOCK_TIMEOUT_MS). */
  lockTimeoutMs?: number;
}

/** Options of `migrateUp`. */
export interface UpOptions extends RunOptions {
  /** Stop after this version (default: the latest). */
  to?: number;
  /** Migrations to revert first, newest first, if applied (the Pulumi hook: files removed from sql/). */
  revert?: readonly RunnableMigration[];
}

/** Adds what this run had already committed to a lost-connection error; other errors pass unchanged. */
function withProgress(err: unknown, outcome: MigrationOutcome, during: string): unknown {
  if (!isConnectionLost(err)) return err;
  const lost = isConnectionLostError(err) ? err : connectionLost(during, "nothing was committed", err);
  const done = [...outcome.reverted.map((f) => `reverted ${f}`), ...outcome.applied.map((f) => `applied ${f}`)];
  if (done.length === 0) return lost;
  return connectionLost(lost.during, `${lost.committed}; committed before it: ${done.join(", ")}`, err);
}

/**
 * Creates the history tables, checks (and on a first run records) the database's mode, reverts
 * `options.revert` (those applied), checks the checksums of applied migrations against `migrations`, then
 * applies the pending ones in version order, each under the history lock (see lockHistory). A history row
 * with no migration in `migrations` (and not being reverted) stops the run: the files and the database disagree.
 */
export async function migrateUp(client: Client, migrations: readonly RunnableMigration[], options: UpOptions): Promise<MigrationOutcome> {
  // The migration lock and SET ROLE hold for a session: through a transaction-mode pooler they silently would not.
  await assertDirectSession(client, "Migrations");
  const timeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const outcome: MigrationOutcome = { applied: [], reverted: [] };
  try {
    await ensureHistory(client);
    await checkAndRecordMode(client, options.timescaledb, timeoutMs);
    let history = await readHistory(client);
    const revert = [...(options.revert ?? [])].sort((a, b) => b.version - a.version);
    verifyChecksums(history, revert);
    for (const m of revert) {
      if (!history.some((h) => h.version === m.version)) continue;
      if (await revertMigration(client, m, timeoutMs)) outcome.reverted.push(m.file);
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
      if (await applyMigration(client, m, timeoutMs)) outcome.applied.push(m.file);
    }
    return outcome;
  } catch (err) {
    throw withProgress(err, outcome, "the migration run, before any migration started");
  }
}

/**
 * Reverts every applied migration above version `to`, newest first, each in its own transaction under the
 * history lock, after checking the mode and their checksums against `migrations` (which supply the down parts).
 * Callers decide first whether the drops are allowed (see ./downPlan).
 */
export async function migrateDown(client: Client, migrations: readonly RunnableMigration[], to: number, options: RunOptions): Promise<MigrationOutcome> {
  // The migration lock and SET ROLE hold for a session: through a transaction-mode pooler they silently would not.
  await assertDirectSession(client, "Migrations");
  const timeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const outcome: MigrationOutcome = { applied: [], reverted: [] };
  try {
    await ensureHistory(client);
    await checkDatabaseMode(client, options.timescaledb);
    const history = await readHistory(client);
    verifyChecksums(history, migrations);
    for (const m of migrationsToRevert(migrations, history, to)) {
      if (await revertMigration(client, m, timeoutMs)) outcome.reverted.push(m.file);
    }
    return outcome;
  } catch (err) {
    throw withProgress(err, outcome, "the revert run, before any migration was reverted");
  }
}
