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
import type { ConflictPolicy } from "./loadFlags";
import { DEADLOCK_ATTEMPTS, DEFAULT_LOAD_LOCK_TIMEOUT_MS, advisoryLockWait, loadLockTimeout, tableLockWait, takeLoadLock } from "./loadLock";
import { FLAGGED_SHOWN, type LoadSummary, type SourceSummary, summarize } from "./loadSummary";
import { RejectsWriter } from "./rejects";
import { DEFAULT_MAX_REJECTS, checkRejectsPath, enforceRejectLimit, parseMaxRejects } from "./rejectLimit";
import { type ProgressReporter, silentProgress } from "./progress";
import { type ChunkShape, type ReadEvents, type ReadOptions, openChecked } from "./readSource";
import type { ValueTypes } from "./rowValidation";
import { createStaging } from "./staging";
import { DEFAULT_TARGET, binaryCopyFits, checkTarget, isEmpty, liftDecompressionLimit, quoteTarget, targetTypes } from "./target";
import { DEFAULT_CHUNK_ROWS, type WritePlan, loadSource } from "./writePlan";

// What importers of this module (the CLI, scripts, tests) use from the modules it is made of.
export { DEADLOCK_ATTEMPTS, DEFAULT_LOAD_LOCK_TIMEOUT_MS, LOAD_LOCK_CLASS } from "./loadLock";
export { formatSummary, type LoadSummary, type SourceSummary } from "./loadSummary";
export { DEFAULT_MAX_REJECTS, DEFAULT_REJECTS_FILE, type RejectLimit, parseMaxRejects } from "./rejectLimit";
export { DEFAULT_TARGET, quoteTarget } from "./target";
export { DEFAULT_CHUNK_ROWS } from "./writePlan";

/** What to do with a bar whose key is already in the target (the one list is the request's, loadFlags.ts). */
export type { ConflictPolicy } from "./loadFlags";

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
  /** Rejects CSV path (the request's `rejects`); undefined keeps only counts. */
  rejects?: string;
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
  checkRejectsPath(options.rejects, options.files);
  // A bad threshold is refused before any row is read.
  const maxRejects = options.maxRejects ?? DEFAULT_MAX_REJECTS;
  const rejectLimit = parseMaxRejects(maxRejects);
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOAD_LOCK_TIMEOUT_MS;
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  const flagged: NonNullable<LoadSummary["flagged"]> = [];
  let sources: SourceSummary[] = [];
  let wait = advisoryLockWait(target);
  // Claims the path (or a sibling, while another load writes there) and deletes an earlier run's file.
  const rejects = new RejectsWriter(options.rejects);
  try {
    await withTransaction(client, async () => {
      await takeLoadLock(client, target, alone, lockTimeoutMs);
      await liftDecompressionLimit(client);
      wait = tableLockWait(target, table);
      const prepared = await prepareTarget(client, target, table, options);
      const events = readEvents(rejects, options.progress ?? silentProgress, flagged);
      sources = await loadFiles(client, options, { ...prepared, table, alone, events });
      enforceRejectLimit(sources.reduce((n, s) => n + s.read, 0), rejects, maxRejects, rejectLimit);
    });
  } catch (err) {
    // 55P03 lock_not_available: lock_timeout struck. The transaction is rolled back; its locks are gone.
    if ((err as { code?: string }).code === "55P03") throw await loadLockTimeout(client, wait, lockTimeoutMs, err);
    throw err;
  } finally {
    rejects.close();
  }
  return summarize(sources, {
    seconds: (Date.now() - started) / 1000,
    ...(options.inconsistentOhlc === "flag" ? { flagged } : {}),
    ...(rejects.count > 0 && rejects.file ? { rejectsFile: rejects.file } : {}),
  });
}

/** What writing into the target needs, found once per attempt. */
interface PreparedTarget {
  /** The target's constrained value column types, for the row checks (target.ts targetTypes). */
  types: ValueTypes | undefined;
  /** COPY, or batched INSERTs on PGlite. */
  mode: StagingMode;
  /** Whether a streamed COPY may use the binary format (target.ts binaryCopyFits). */
  binary: boolean;
}

/** Checks the target, reads its value column types, creates the staging table and picks the staging mode. */
async function prepareTarget(client: Client, target: string, table: string, options: LoadOptions): Promise<PreparedTarget> {
  await checkTarget(client, target);
  const types = await targetTypes(client, table);
  await createStaging(client, table);
  const version = (await client.query<{ v: string }>("SELECT version() AS v")).rows[0]?.v ?? "";
  const mode = options.staging ?? (/emscripten/i.test(version) ? "insert" : "copy");
  return { types, mode, binary: mode === "copy" && (await binaryCopyFits(client, table)) };
}

/** The reader's events: rejects to the rejects file, progress to the reporter, flagged bars to `flagged`. */
function readEvents(rejects: RejectsWriter, progress: ProgressReporter, flagged: NonNullable<LoadSummary["flagged"]>): ReadEvents {
  return {
    reject: (...invalid) => rejects.add(...invalid),
    progress: (read, fraction) => progress.update(read, fraction),
    flagged: (source, row, reason) => {
      if (flagged.length < FLAGGED_SHOWN) flagged.push({ source, row, reason });
    },
  };
}

/** Reads and writes each file in turn, with the write plan each one allows. */
async function loadFiles(
  client: Client,
  options: LoadOptions,
  run: PreparedTarget & { table: string; alone: boolean; events: ReadEvents },
): Promise<SourceSummary[]> {
  const shape: ChunkShape = { asText: run.mode === "copy", chunkRows: options.chunkRows ?? DEFAULT_CHUNK_ROWS };
  const sources: SourceSummary[] = [];
  for (const file of options.files) {
    // The loader's own thread reads: a reader thread (tried while making loads faster) cost 60 MB more and gained nothing.
    const source = await openChecked(file, options, shape, run.events, run.types);
    try {
      const streamable = !run.alone && run.mode === "copy" && options.strategy !== "stage" && isRegularFile(file);
      const plan: WritePlan = !streamable ? "chunks" : (await isEmpty(client, run.table)) ? "stream" : "probe";
      sources.push(await loadSource(client, source, options, options.progress ?? silentProgress, plan, run.binary));
    } finally {
      await source.close();
    }
  }
  return sources;
}

/** Opens a client on `connection`, loads, and closes it. */
export async function loadOhlcvFrom(connection: Connection, options: LoadOptions): Promise<LoadSummary> {
  return withClient(connection, (client) => loadOhlcv(client, options));
}
