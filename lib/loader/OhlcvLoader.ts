/**
 * Loads OHLCV bars from CSV, Parquet or SQLite sources into `market_data.ohlcv_bars`.
 *
 * One checked-out client, one transaction for the whole run: per source, readSource.ts reads rows in bounded
 * batches, checks them (rowValidation.ts), drops in-file duplicates (first occurrence wins) and gathers
 * chunks; here each chunk asks the target which of its keys it holds (presentKeys.ts) and COPYs only the
 * missing rows straight into it, while the client reads the next chunk; rows present with other values
 * (policy update) and rows another session inserted meanwhile go through a temporary staging table and one
 * `INSERT ... SELECT ... ON CONFLICT` at the end of the source. A failure or a killed process before COMMIT
 * leaves the target exactly as it was.
 */
import fs from "node:fs";
import type { Client } from "pg";
import { withClient, withTransaction, type Connection } from "../db";
import { DEADLOCK_ATTEMPTS, DEFAULT_LOAD_LOCK_TIMEOUT_MS, LOAD_LOCK_CLASS, type LockWait, loadLockTimeout } from "./loadLock";
import { FLAGGED_SHOWN, type LoadSummary, type SourceSummary } from "./loadSummary";
import { RejectsWriter } from "./rejects";
import { DEFAULT_MAX_REJECTS, checkRejectsPath, enforceRejectLimit } from "./rejectLimit";
import { type ProgressReporter, silentProgress } from "./progress";
import { COLUMNS, type ChunkShape, type ReadEvents, type ReadOptions, openChecked } from "./readSource";
import { DEFAULT_TARGET, checkTarget, isEmpty, quoteTarget, targetTypes } from "./target";
import { DEFAULT_CHUNK_ROWS, type WritePlan, loadSource } from "./writePlan";

// What importers of this module (the CLI, scripts, tests) use from the modules it is made of.
export { DEADLOCK_ATTEMPTS, DEFAULT_LOAD_LOCK_TIMEOUT_MS, LOAD_LOCK_CLASS } from "./loadLock";
export { formatSummary, type LoadSummary, type SourceSummary } from "./loadSummary";
export { DEFAULT_MAX_REJECTS, DEFAULT_REJECTS_FILE, type RejectLimit, parseMaxRejects } from "./rejectLimit";
export { DEFAULT_TARGET, quoteTarget } from "./target";
export { DEFAULT_CHUNK_ROWS } from "./writePlan";

/** What to do with a bar whose key is already in the target. */
export type ConflictPolicy = "skip" | "update";

/**
 * How rows reach the staging table: `copy` (COPY FROM STDIN, every real server) or `insert` (batched
 * INSERT ... SELECT FROM unnest(arrays)), for the PGlite TimescaleDB build, whose wire protocol does not
 * implement COPY FROM STDIN (the WASM backend aborts).
 */
export type StagingMode = "copy" | "insert";

/** Everything a load needs besides the connection. */
export interface LoadOptions extends ReadOptions {
  /** Files to load (see expandSource for directories and globs). */
  files: string[];
  /** Target table, `schema.table` (default market_data.ohlcv_bars). */
  target?: string;
  onConflict?: ConflictPolicy;
  /** Rejects CSV path; undefined keeps only counts. */
  rejectsFile?: string;
  /**
   * Most rejected rows a load may have and still commit: a count (`"250"`) or a share of the rows read
   * (`"10%"`); default DEFAULT_MAX_REJECTS. A load whose every row is rejected always fails.
   */
  maxRejects?: string;
  progress?: ProgressReporter;
  /** Default: `insert` on a PGlite (Emscripten) server, `copy` otherwise. */
  staging?: StagingMode;
  /**
   * `filter` (default): per chunk, fetch the keys the target already holds and write only the missing rows
   * (and, with onConflict update, stage the changed ones), or, into an empty target, one streamed COPY for a
   * regular file; `stage`: every row through staging and one ON CONFLICT merge. Both leave the same rows and
   * counts.
   */
  strategy?: "filter" | "stage";
  /** Rows per chunk (default DEFAULT_CHUNK_ROWS). */
  chunkRows?: number;
  /**
   * Longest wait for a lock (the load lock, or a bar another session wrote and has not committed) before the
   * load gives up naming the session that holds it; default DEFAULT_LOAD_LOCK_TIMEOUT_MS.
   */
  lockTimeoutMs?: number;
}

/**
 * Loads `options.files` through `client` in one transaction (BEGIN/COMMIT issued here). Throws, having rolled
 * back, on a source that cannot be read, on a database error, and with `strict` on the first invalid row. A
 * deadlock with a concurrent load is retried (DEADLOCK_ATTEMPTS) when every source is a regular file; a pipe
 * cannot be read twice.
 */
export async function loadOhlcv(client: Client, options: LoadOptions): Promise<LoadSummary> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await loadOnce(client, options, attempt > 1);
    } catch (err) {
      const code = (err as { code?: string }).code;
      // 23505 reaches here only from a streamed COPY (every other write settles its conflicts), and only
      // regular files are streamed: another session wrote one of its bars into the target it found empty, or
      // a bar after the first chunk was stored already (probeFirstChunk's guess was wrong).
      if (code === "23505" && attempt === 1) continue;
      if (code !== "40P01") throw err;
      const rereadable = options.files.every(isRegularFile);
      if (!rereadable || attempt >= DEADLOCK_ATTEMPTS) {
        throw new Error(
          `deadlock with a concurrent load of the same bars${rereadable ? ` in ${attempt} attempts` : " (a pipe cannot be read again, so no retry)"}; ` +
            "nothing was loaded: run it again once the other load has finished.",
          { cause: err },
        );
      }
    }
  }
}

const isRegularFile = (file: string) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() === true;

/**
 * One attempt of a load. `alone`: the retry after a deadlock or a conflict (below): the exclusive lock, and
 * no streamed COPY, so a key another session writes meanwhile goes through a savepoint and staging.
 */
async function loadOnce(client: Client, options: LoadOptions, alone: boolean): Promise<LoadSummary> {
  const started = Date.now();
  const target = options.target ?? DEFAULT_TARGET;
  checkRejectsPath(options.rejectsFile, options.files);
  const progress = options.progress ?? silentProgress;
  const sources: SourceSummary[] = [];
  const flagged: NonNullable<LoadSummary["flagged"]> = [];
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOAD_LOCK_TIMEOUT_MS;
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  // A two-int4 advisory key shows in pg_locks as classid, objid (hashtext's int4 as an unsigned oid), objsubid 2.
  let wait: LockWait = {
    what: `the load lock on ${target} (advisory lock ${LOAD_LOCK_CLASS}, hashtext('${target}'))`,
    where: `l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid::bigint = $1 AND l.objid::bigint = (hashtext($2)::bigint & 4294967295)`,
    params: [LOAD_LOCK_CLASS, target],
  };
  // Claims the path (or a sibling, while another load writes there) and deletes an earlier run's file.
  const rejects = new RejectsWriter(options.rejectsFile);
  try {
    await withTransaction(client, async () => {
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.round(lockTimeoutMs))}ms`]);
      await client.query(`SELECT pg_advisory_xact_lock${alone ? "" : "_shared"}($1, hashtext($2))`, [LOAD_LOCK_CLASS, target]);
      // From here a wait is for the table, or for a bar another session wrote and has not committed: its
      // session holds a write lock on the table (on a hypertable too, besides its chunk's).
      wait = {
        what: `a lock on ${target} (a bar of this load that another session wrote and has not committed, or the table itself)`,
        where: `l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.mode <> 'AccessShareLock'`,
        params: [table],
      };
      await checkTarget(client, target);
      const types = await targetTypes(client, table);
      // Same column types as the target, no constraints or indexes: COPY into it is as cheap as it gets.
      await client.query(
        `CREATE TEMP TABLE tsdb_ohlcv_staging ON COMMIT DROP AS SELECT ${COLUMNS.join(", ")} FROM ${table} WITH NO DATA`,
      );
      const version = (await client.query<{ v: string }>("SELECT version() AS v")).rows[0]?.v ?? "";
      const mode = options.staging ?? (/emscripten/i.test(version) ? "insert" : "copy");
      const shape: ChunkShape = { asText: mode === "copy", chunkRows: options.chunkRows ?? DEFAULT_CHUNK_ROWS };
      const events: ReadEvents = {
        reject: (...invalid) => rejects.add(...invalid),
        progress: (read, fraction) => progress.update(read, fraction),
        flagged: (source, row, reason) => {
          if (flagged.length < FLAGGED_SHOWN) flagged.push({ source, row, reason });
        },
      };
      for (const file of options.files) {
        // The loader's own thread reads: a reader thread (tried while making loads faster) cost 60 MB more and gained nothing.
        const source = await openChecked(file, options, shape, events, types);
        try {
          const streamable = !alone && mode === "copy" && options.strategy !== "stage" && isRegularFile(file);
          const plan: WritePlan = !streamable ? "chunks" : (await isEmpty(client, table)) ? "stream" : "probe";
          sources.push(await loadSource(client, source, options, progress, plan));
        } finally {
          await source.close();
        }
      }
      enforceRejectLimit(sources.reduce((n, s) => n + s.read, 0), rejects, options.maxRejects ?? DEFAULT_MAX_REJECTS);
    });
  } catch (err) {
    // 55P03 lock_not_available: lock_timeout struck. The transaction is rolled back; its locks are gone.
    if ((err as { code?: string }).code === "55P03") throw await loadLockTimeout(client, wait, lockTimeoutMs, err);
    throw err;
  } finally {
    rejects.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const total = (k: keyof Omit<SourceSummary, "source">) => sources.reduce((n, s) => n + s[k], 0);
  const read = total("read");
  return {
    sources,
    read,
    inserted: total("inserted"),
    updated: total("updated"),
    alreadyPresent: total("alreadyPresent"),
    rejected: total("rejected"),
    inconsistent: total("inconsistent"),
    ...(options.inconsistentOhlc === "flag" ? { flagged } : {}),
    seconds,
    rowsPerSecond: seconds > 0 ? Math.round(read / seconds) : read,
    ...(rejects.count > 0 && rejects.file ? { rejectsFile: rejects.file } : {}),
  };
}

/** Opens a client on `connection`, loads, and closes it. */
export async function loadOhlcvFrom(connection: Connection, options: LoadOptions): Promise<LoadSummary> {
  return withClient(connection, (client) => loadOhlcv(client, options));
}
