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
import path from "node:path";
import { Readable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import type { Client } from "pg";
import { withClient, withTransaction, type Connection } from "../db";
import { describeHolders, holdersOf } from "../migrations/core";
import { printable } from "./printable";
import { RejectsWriter } from "./rejects";
import { type ProgressReporter, silentProgress } from "./progress";
import { COLUMNS, type CheckedSource, type Chunk, type ChunkShape, type ReadEvents, type ReadOptions, type SeriesSpan, openChecked } from "./readSource";
import type { ValueColumn, ValueTypes } from "./rowValidation";
import { microsToSql } from "./timestamps";
import { type PresentSeries, type SeriesRange, canonicalValues, fetchPresent, indexOfTime, presentValues, sameValueBytes } from "./presentKeys";

/** What to do with a bar whose key is already in the target. */
export type ConflictPolicy = "skip" | "update";

/**
 * How rows reach the staging table: `copy` (COPY FROM STDIN, every real server) or `insert` (batched
 * INSERT ... SELECT FROM unnest(arrays)), for the PGlite TimescaleDB build, whose wire protocol does not
 * implement COPY FROM STDIN (the WASM backend aborts).
 */
export type StagingMode = "copy" | "insert";

/** The target table the architecture contract defines. */
export const DEFAULT_TARGET = "market_data.ohlcv_bars";

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

/** Counts for one source. */
export interface SourceSummary {
  source: string;
  /** Data rows read from the source. */
  read: number;
  /** New bars written. */
  inserted: number;
  /** Existing bars changed (policy `update`). */
  updated: number;
  /** Valid rows whose bar was already in the target unchanged (or kept, policy `skip`). */
  alreadyPresent: number;
  rejected: number;
  /** Bars kept although their OHLC are inconsistent (--inconsistent-ohlc flag or keep). */
  inconsistent: number;
}

/** Counts for a whole run. */
export interface LoadSummary extends Omit<SourceSummary, "source"> {
  sources: SourceSummary[];
  seconds: number;
  /** Rows read per second of wall time. */
  rowsPerSecond: number;
  /** Path of the rejects file when any row was rejected and a path was given. */
  rejectsFile?: string;
  /** Under --inconsistent-ohlc flag: the first FLAGGED_SHOWN bars kept with inconsistent OHLC, and why. */
  flagged?: Array<{ source: string; row: number; reason: string }>;
}

/** How many flagged bars a summary lists (validate lists what the table holds). */
const FLAGGED_SHOWN = 20;

const KEY = ["symbol", "exchange", "provider", "timeframe", "time"] as const;
const VALUES = ["open", "high", "low", "close", "volume", "adj_close"] as const;
const STAGING = "pg_temp.tsdb_ohlcv_staging";
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Bytes per COPY data message. */
const PIECE_BYTES = 1 << 18;
const INSERT_ROWS = 200;

/** The rejects threshold when none is given: a tenth of the rows read. */
export const DEFAULT_MAX_REJECTS = "10%";

/** A parsed --max-rejects: a count, or a percentage of the rows read. */
export type RejectLimit = { count: number } | { percent: number };

/** Parses `--max-rejects` (`0`, `250`, `10%`, `0.5%`); throws saying what is allowed. */
export function parseMaxRejects(text: string): RejectLimit {
  const t = text.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (pct && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
  if (/^\d+$/.test(t)) return { count: Number(t) };
  throw new Error(`--max-rejects ${JSON.stringify(text)} must be a count of rows (0 = none allowed) or a percentage of the rows read up to 100%, e.g. 250 or 10%.`);
}

/** Throws (so the transaction rolls back) when every row, or more rows than allowed, were rejected. */
function enforceRejectLimit(read: number, rejects: RejectsWriter, limitText: string): void {
  const rejected = rejects.count;
  if (rejected === 0) return;
  const limit = parseMaxRejects(limitText);
  const first = rejects.first ? ` First: ${rejects.first.source} row ${rejects.first.row}: ${rejects.first.reason}.` : "";
  const where = rejects.file ? ` All reasons: ${rejects.file}` : "";
  if (rejected === read) throw new Error(`every row was rejected (${rejected} of ${read}); nothing was loaded.${first}${where}`);
  const share = (rejected / read) * 100;
  const over = "count" in limit ? rejected > limit.count : share > limit.percent;
  if (over) {
    throw new Error(
      `${rejected} of ${read} rows rejected (${Number(share.toFixed(1))}%), more than --max-rejects ${limitText.trim()}; nothing was loaded.${first}${where}`,
    );
  }
}

/** Throws when the rejects file would overwrite one of the sources (the run deletes it first). */
function checkRejectsPath(rejectsFile: string | undefined, files: readonly string[]): void {
  if (!rejectsFile) return;
  const real = (f: string) => {
    try {
      return fs.realpathSync(f);
    } catch {
      return path.resolve(f);
    }
  };
  const target = real(rejectsFile);
  if (files.some((f) => real(f) === target)) {
    throw new Error(`--rejects ${path.resolve(rejectsFile)} is also a source of this load; write rejects elsewhere (default ${DEFAULT_REJECTS_FILE}).`);
  }
}

/** Where the CLI writes rejected rows unless told otherwise: under .tsdb/, which no source expansion reads. */
export const DEFAULT_REJECTS_FILE = ".tsdb/rejects/last-load.csv";

/** `schema.table` quoted for SQL; throws for anything that is not two plain identifiers. */
export function quoteTarget(target: string, escape: (s: string) => string): string {
  const parts = target.split(".");
  if (parts.length !== 2 || !parts.every((p) => IDENT.test(p))) {
    throw new Error(`--target ${JSON.stringify(target)} must be schema.table with plain identifiers, e.g. ${DEFAULT_TARGET}.`);
  }
  return parts.map(escape).join(".");
}

/** Rows as the database takes them: COPY text (UTF-8 bytes, one line a row) or 11 column values a row. */
type Rows = { kind: "text"; n: number; bytes: Buffer } | { kind: "values"; n: number; rows: Array<Array<string | null>> };

/** Row k of a text chunk. */
function lineOf(chunk: Chunk, k: number): string {
  return chunk.bytes.toString("utf8", k === 0 ? 0 : (chunk.ends[k - 1] as number), chunk.ends[k] as number);
}

/** The rows of `chunk` whose index `keep` accepts, in order. */
function pick(chunk: Chunk, keep: (k: number) => boolean): Rows {
  if (chunk.ends.length === 0) {
    const rows = chunk.values.filter((_, k) => keep(k));
    return { kind: "values", n: rows.length, rows };
  }
  let n = 0;
  let size = 0;
  for (let k = 0; k < chunk.n; k++) {
    if (!keep(k)) continue;
    n++;
    size += (chunk.ends[k] as number) - (k === 0 ? 0 : (chunk.ends[k - 1] as number));
  }
  if (n === chunk.n) return allRows(chunk);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  // Consecutive kept rows are copied as one range.
  let runStart = -1;
  let runEnd = 0;
  for (let k = 0; k < chunk.n && n > 0; k++) {
    if (!keep(k)) continue;
    const start = k === 0 ? 0 : (chunk.ends[k - 1] as number);
    if (runStart >= 0 && start !== runEnd) {
      at += chunk.bytes.copy(out, at, runStart, runEnd);
      runStart = -1;
    }
    if (runStart < 0) runStart = start;
    runEnd = chunk.ends[k] as number;
  }
  if (runStart >= 0) at += chunk.bytes.copy(out, at, runStart, runEnd);
  return { kind: "text", n, bytes: out };
}

function allRows(chunk: Chunk): Rows {
  return chunk.ends.length === 0
    ? { kind: "values", n: chunk.n, rows: chunk.values }
    : { kind: "text", n: chunk.n, bytes: chunk.bytes.subarray(0, chunk.used) };
}

/** Chunks read and checked ahead of the one being written. */
const CHUNKS_AHEAD = 2;

/** Rows per chunk when not given: about 4 MB of COPY text, a few hundred KB of keys fetched back. */
export const DEFAULT_CHUNK_ROWS = 32_768;

/**
 * `COPY ... FROM STDIN` as a pg-copy-streams query. Required when first used (a CLI run that loads nothing
 * never loads it) and synchronously, so a COPY is queued on the client the moment it is asked for, right
 * behind the statement before it (an `import()` per chunk cost every chunk a few event-loop turns).
 */
function copyFromStdin(into: string): import("pg-copy-streams").CopyStreamQuery {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { from } = require("pg-copy-streams") as typeof import("pg-copy-streams");
  return from(`COPY ${into} (${COLUMNS.join(", ")}) FROM STDIN`);
}

/**
 * Stage 4: writes rows into `into` (the target or staging) by COPY or by batched INSERT. A COPY is queued on
 * the client before this returns; batched INSERTs are queued one after another.
 */
async function writeRows(client: Client, into: string, rows: Rows): Promise<void> {
  if (rows.n === 0) return;
  if (rows.kind === "text") return copyIn(client, into, rows.bytes);
  // Column arrays unnested, in small statements: the PGlite socket server mishandles protocol messages split
  // across socket reads.
  const types = ["text", "text", "text", "text", "timestamptz", "numeric", "numeric", "numeric", "numeric", "numeric", "numeric"];
  const sql = `INSERT INTO ${into} (${COLUMNS.join(", ")}) SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(", ")})`;
  for (let start = 0; start < rows.rows.length; start += INSERT_ROWS) {
    const part = rows.rows.slice(start, start + INSERT_ROWS);
    await client.query(sql, COLUMNS.map((_, i) => part.map((r) => r[i] ?? null)));
  }
}

/**
 * `bytes` in pieces of PIECE_BYTES: pg-copy-streams sends one per socket drain, so the server gets data all
 * through the next chunk.
 */
function* piecesOf(bytes: Buffer): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += PIECE_BYTES) yield bytes.subarray(at, at + PIECE_BYTES);
}

/** COPY of `bytes` (COPY text) into `into`, queued on the client at once. */
function copyIn(client: Client, into: string, bytes: Buffer): Promise<void> {
  return pipeline(Readable.from(piecesOf(bytes), { objectMode: false }), client.query(copyFromStdin(into)));
}

/** The six value columns of row k (open .. adj_close), as written. */
function valuesOf(chunk: Chunk, k: number): Array<string | null> {
  if (chunk.ends.length === 0) return (chunk.values[k] ?? []).slice(5);
  return lineOf(chunk, k)
    .slice(0, -1)
    .split("\t")
    .slice(5)
    .map((v) => (v === "\\N" ? null : v));
}

/**
 * Whether row k of the chunk has the values the target holds at time j of `p`: the same bytes (a re-load of
 * the same export), else the same numbers (`10.50` = `10.5`). A value that is not a plain decimal counts as
 * different; the merge's IS DISTINCT FROM then decides.
 */
function sameValues(chunk: Chunk, k: number, p: PresentSeries, j: number): boolean {
  if (chunk.ends.length > 0) {
    // The values are the line's fields after the fifth tab, up to its newline.
    let at = k === 0 ? 0 : (chunk.ends[k - 1] as number);
    for (let tab = 0; tab < 5; tab++) at = chunk.bytes.indexOf(9, at) + 1;
    if (sameValueBytes(p, j, chunk.bytes, at, (chunk.ends[k] as number) - 1)) return true;
  }
  const mine = canonicalValues(valuesOf(chunk, k));
  return mine !== undefined && mine === canonicalValues(presentValues(p, j));
}

/**
 * Splits a chunk by what the target holds: rows whose key is absent (`fresh`), and under policy update the
 * rows present with other values (`changed`); the rest are present and kept.
 */
async function sortChunk(client: Client, table: string, chunk: Chunk, source: CheckedSource, policy: ConflictPolicy): Promise<{ fresh: Rows; changed: Rows }> {
  // Each series' time range within this chunk.
  const ids: number[] = [];
  const lo = new Map<number, number>();
  const hi = new Map<number, number>();
  for (let k = 0; k < chunk.n; k++) {
    const id = chunk.series[k] as number;
    const t = chunk.micros[k] as number;
    const l = lo.get(id);
    if (l === undefined) {
      ids.push(id);
      lo.set(id, t);
      hi.set(id, t);
    } else {
      if (t < l) lo.set(id, t);
      if (t > (hi.get(id) as number)) hi.set(id, t);
    }
  }
  const ranges: SeriesRange[] = ids.map((id) => ({ key: source.seriesKey(id), lo: microsToSql(lo.get(id) as number), hi: microsToSql(hi.get(id) as number) }));
  const present = await fetchPresent(client, table, ranges, policy === "update");
  const none: Rows = { kind: "values", n: 0, rows: [] };
  if (present.size === 0) return { fresh: allRows(chunk), changed: none };
  const at = new Map(ids.map((id, i) => [id, present.get(i)]));
  // Per row: 0 absent, 1 present and kept, 2 present with other values.
  const state = new Uint8Array(chunk.n);
  for (let k = 0; k < chunk.n; k++) {
    const p = at.get(chunk.series[k] as number);
    const j = p ? indexOfTime(p.times, chunk.micros[k] as number) : -1;
    if (j >= 0) state[k] = p?.values && !sameValues(chunk, k, p, j) ? 2 : 1;
  }
  return { fresh: pick(chunk, (k) => state[k] === 0), changed: policy === "update" ? pick(chunk, (k) => state[k] === 2) : none };
}

/**
 * Writes new rows straight into the target under a savepoint; when another session inserted one of their
 * keys meanwhile (unique violation) the savepoint is rolled back and the rows go to staging, whose merge then
 * settles them. Returns how many went each way.
 */
async function writeFresh(client: Client, table: string, rows: Rows): Promise<{ direct: number; staged: number }> {
  if (rows.n === 0) return { direct: 0, staged: 0 };
  const savepoint = client.query("SAVEPOINT tsdb_chunk");
  const write = writeRows(client, table, rows);
  // A COPY is one statement, queued at once: RELEASE queues right behind it and the server runs the three back
  // to back instead of waiting between them for the client's next turn (about 5 ms a chunk). Batched
  // INSERTs queue one after another, so RELEASE follows the last of them, inside the savepoint's reach.
  const release = rows.kind === "text" ? client.query("RELEASE SAVEPOINT tsdb_chunk") : write.then(() => client.query("RELEASE SAVEPOINT tsdb_chunk"));
  const steps = [savepoint, write, release];
  const failures = (await Promise.allSettled(steps)).flatMap((r) => (r.status === "rejected" ? [r.reason as { code?: string }] : []));
  if (failures.length === 0) return { direct: rows.n, staged: 0 };
  // A failed COPY aborts the subtransaction; the queued RELEASE then fails as well (25P02), leaving the savepoint.
  const cause = failures[0];
  if (cause?.code !== "23505") throw cause;
  await client.query("ROLLBACK TO SAVEPOINT tsdb_chunk");
  await client.query("RELEASE SAVEPOINT tsdb_chunk");
  await writeRows(client, STAGING, rows);
  return { direct: 0, staged: rows.n };
}

/** COPY pieces waiting for the socket, at most, while the next chunk is read: about 4 MB. */
const STREAM_PENDING_PIECES = 16;

/**
 * Writes every chunk of `source` through one COPY into `table`, fed while the next chunk is read: the load of
 * new bars into an empty target (the first import) then costs the server what `psql \copy` costs it, with no
 * probe, savepoint or statement between chunks. The caller makes sure nothing can conflict: the
 * target was empty; a concurrent writer's key fails the COPY (23505) and loadOhlcv runs the load again alone.
 * Returns the rows written.
 */
async function streamSource(client: Client, table: string, chunks: AsyncIterable<Chunk>): Promise<number> {
  const copy = client.query(copyFromStdin(table));
  const done = finished(copy);
  // Awaited below, or not at all when the server's error is thrown first: never an unhandled rejection.
  done.catch(() => undefined);
  let failed: unknown;
  let wake: (() => void) | undefined;
  const nudge = () => {
    wake?.();
    wake = undefined;
  };
  // The server's error (a concurrent writer's key, 23505) ends the COPY on its side: stop at once, also when
  // waiting for the socket.
  copy.on("error", (err) => {
    failed ??= err;
    nudge();
  });
  // Pieces go to the COPY stream one at a time, each when the one before is on the socket: pg-copy-streams
  // keeps a socket 'drain' listener for pieces it holds, which throws once the server has failed the COPY.
  const queue: Buffer[] = [];
  let inFlight = false;
  const pump = () => {
    const piece = inFlight || failed ? undefined : queue.shift();
    if (!piece) return nudge();
    inFlight = true;
    copy.write(piece, () => {
      inFlight = false;
      pump();
    });
  };
  const until = async (ready: () => boolean) => {
    while (!ready() && !failed) await new Promise<void>((resolve) => (wake = resolve));
    if (failed) throw failed;
  };
  let rows = 0;
  try {
    for await (const chunk of chunks) {
      if (failed) throw failed;
      rows += chunk.n;
      queue.push(...piecesOf(chunk.bytes.subarray(0, chunk.used)));
      pump();
      await until(() => queue.length <= STREAM_PENDING_PIECES);
    }
    await until(() => queue.length === 0 && !inFlight);
    copy.end();
    await done;
  } catch (err) {
    if (failed) throw failed;
    // Our side failed (a --strict reject, an unreadable row group): CopyFail ends the COPY on the server, and the
    // transaction then rolls back.
    copy.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  return rows;
}

/**
 * Loads one source, read and checked by readSource.ts: per chunk, write what the target lacks; finally merge
 * staging into the target.
 *
 * Strategy `filter` (default): each chunk first asks the target which of its keys are present
 * (presentKeys.ts); absent rows go straight into the target, present ones are counted (skip) or, when their
 * values differ (update), staged for the merge. The chunk's write runs on the server while the client reads
 * and checks the next chunk. Strategy `stage`: every row goes to staging and one INSERT ... ON CONFLICT merges
 * it (the reference path the tests compare with). `stream`: one COPY for the whole source (streamSource), for a
 * target that held no bar when the source began, or (`probe`) whose first chunk the target holds none of.
 */
async function loadSource(client: Client, source: CheckedSource, options: LoadOptions, progress: ProgressReporter, plan: WritePlan): Promise<SourceSummary> {
  const policy = options.onConflict ?? "skip";
  const table = quoteTarget(options.target ?? DEFAULT_TARGET, (s) => client.escapeIdentifier(s));
  let written: Written;
  progress.start(source.name, source.totalRows);
  try {
    const chunks = source.chunks();
    const { stream, all } = plan === "probe" ? await probeFirstChunk(client, table, source, policy, chunks) : { stream: plan === "stream", all: chunks };
    if (stream) {
      const rows = await streamSource(client, table, all);
      written = { valid: rows, direct: rows, staged: 0 };
    } else {
      written = await writeInChunks(client, table, source, options, policy, all);
    }
  } finally {
    progress.stop();
  }
  let merged = { inserted: 0, updated: 0 };
  if (written.staged > 0) {
    merged = await merge(client, options.target ?? DEFAULT_TARGET, policy, source.spans());
    await client.query(`TRUNCATE ${STAGING}`);
  }
  const inserted = written.direct + merged.inserted;
  return {
    source: source.name,
    read: source.read,
    inserted,
    updated: merged.updated,
    alreadyPresent: written.valid - inserted - merged.updated,
    rejected: source.rejected,
    inconsistent: source.inconsistent,
  };
}

/** Rows of one source: valid ones, written straight into the target, and staged for the merge. */
interface Written {
  valid: number;
  direct: number;
  staged: number;
}

/**
 * Writes `source` chunk by chunk (strategies `filter` and `stage`, see loadSource). Chunks are written one after
 * another in a promise chain: each one's probe and COPY start the moment the one before is written (a promise
 * callback), not at the reader's next stop, and the reader runs up to CHUNKS_AHEAD chunks ahead, so the server
 * never waits on one slow chunk. A failure is kept as a value (never an unhandled rejection), skips
 * the chunks after it and is rethrown when awaited.
 */
async function writeInChunks(client: Client, table: string, source: CheckedSource, options: LoadOptions, policy: ConflictPolicy, chunks: AsyncIterable<Chunk>): Promise<Written> {
  const written: Written = { valid: 0, direct: 0, staged: 0 };
  const writeChunk = async (chunk: Chunk) => {
    if (options.strategy === "stage") {
      await writeRows(client, STAGING, allRows(chunk));
      written.staged += chunk.n;
      return;
    }
    const { fresh, changed } = await sortChunk(client, table, chunk, source, policy);
    const w = await writeFresh(client, table, fresh);
    written.direct += w.direct;
    written.staged += w.staged;
    await writeRows(client, STAGING, changed);
    written.staged += changed.n;
  };
  let tail: Promise<unknown> = Promise.resolve();
  const unwritten: Array<Promise<unknown>> = [];
  const settle = async (write: Promise<unknown> | undefined) => {
    const r = await write;
    if (r instanceof Failure) throw r.error;
  };
  try {
    for await (const chunk of chunks) {
      written.valid += chunk.n;
      while (unwritten.length >= CHUNKS_AHEAD) await settle(unwritten.shift());
      tail = tail.then((before): unknown => (before instanceof Failure ? before : writeChunk(chunk))).catch((e: unknown) => new Failure(e));
      unwritten.push(tail);
    }
    await settle(tail);
  } finally {
    // Never leave a write running behind a failure (the ROLLBACK must follow it, not interleave).
    await tail;
  }
  return written;
}

/**
 * How a source is written: `stream` (one COPY: the target holds no bar), `probe` (the target holds bars: stream
 * when it holds none of the first chunk's, see probeFirstChunk), or `chunks` (chunk by chunk, each probed).
 */
type WritePlan = "stream" | "probe" | "chunks";

/**
 * Reads the first chunk and asks the target for its keys (one probe of at most FIRST_CHUNK_ROWS bars): when
 * none is present, the source is taken for new bars (new series, or bars after the stored ones: the everyday
 * append) and streamed through one COPY, as into an empty target. A later bar the target does holds fails that
 * COPY (23505), and loadOhlcv runs the load again alone, chunk by chunk: a wrong guess costs one partial pass,
 * a right one every later probe and savepoint. `all` yields the first chunk again, then the rest.
 */
async function probeFirstChunk(
  client: Client,
  table: string,
  source: CheckedSource,
  policy: ConflictPolicy,
  chunks: AsyncGenerator<Chunk>,
): Promise<{ stream: boolean; all: AsyncIterable<Chunk> }> {
  const first = await chunks.next();
  if (first.done) return { stream: false, all: chunks };
  const { fresh } = await sortChunk(client, table, first.value, source, policy);
  async function* again(head: Chunk): AsyncGenerator<Chunk> {
    yield head;
    yield* chunks;
  }
  return { stream: fresh.n === first.value.n, all: again(first.value) };
}

/** A failed background write, kept as a value until the loader awaits it. */
class Failure {
  constructor(readonly error: unknown) {}
}

async function merge(
  client: Client,
  target: string,
  policy: ConflictPolicy,
  ranges: readonly SeriesSpan[],
): Promise<{ inserted: number; updated: number }> {
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  const cols = COLUMNS.join(", ");
  // Fast path for new data (the usual bulk import): when no series of this source has a bar in the target
  // within the source's time range, no key can conflict, and a plain INSERT skips ON CONFLICT's speculative
  // insertion (about a third of the merge's time). A concurrent load could still insert an overlapping key in
  // between; the savepoint turns that unique violation into the normal merge below.
  const overlap = await client.query<{ any: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
                      AS s(symbol, exchange, provider, timeframe, lo, hi)
                     WHERE EXISTS (SELECT 1 FROM ${table} t WHERE t.symbol = s.symbol AND t.exchange = s.exchange
                                     AND t.provider = s.provider AND t.timeframe = s.timeframe AND t.time BETWEEN s.lo AND s.hi)) AS any`,
    [0, 1, 2, 3].map((i) => ranges.map((r) => r.key[i])).concat([ranges.map((r) => microsToSql(r.lo)), ranges.map((r) => microsToSql(r.hi))]),
  );
  if (!overlap.rows[0]?.any) {
    await client.query("SAVEPOINT tsdb_plain_insert");
    try {
      const r = await client.query(`INSERT INTO ${table} (${cols}) SELECT ${cols} FROM ${STAGING}`);
      await client.query("RELEASE SAVEPOINT tsdb_plain_insert");
      return { inserted: r.rowCount ?? 0, updated: 0 };
    } catch (err) {
      await client.query("ROLLBACK TO SAVEPOINT tsdb_plain_insert");
      if ((err as { code?: string }).code !== "23505") throw err;
    }
  }
  // In key order: two merges of overlapping keys then queue behind each other instead of deadlocking.
  const insert = `INSERT INTO ${table} AS t (${cols}) SELECT ${cols} FROM ${STAGING} ORDER BY ${KEY.join(", ")} ON CONFLICT (${KEY.join(", ")})`;
  if (policy === "skip") {
    const r = await client.query(`${insert} DO NOTHING`);
    return { inserted: r.rowCount ?? 0, updated: 0 };
  }
  // xmax = 0 marks a freshly inserted tuple; an updated one carries the updating transaction's id.
  const r = await client.query<{ inserted: number; updated: number }>(
    `WITH m AS (${insert} DO UPDATE SET ${VALUES.map((c) => `${c} = EXCLUDED.${c}`).join(", ")} ` +
      `WHERE (${VALUES.map((c) => `t.${c}`).join(", ")}) IS DISTINCT FROM (${VALUES.map((c) => `EXCLUDED.${c}`).join(", ")}) ` +
      `RETURNING (xmax = 0) AS ins) ` +
      `SELECT (count(*) FILTER (WHERE ins))::int AS inserted, (count(*) FILTER (WHERE NOT ins))::int AS updated FROM m`,
  );
  return r.rows[0] ?? { inserted: 0, updated: 0 };
}

/** The value columns' SQL names, in ValueColumn spelling. */
const VALUE_COLUMNS: readonly ValueColumn[] = VALUES;

/**
 * The target's value column types that differ from the contract's unconstrained numeric, for the row checks
 * (a value a column cannot hold failed the whole load, issue 23.19); undefined when every one is unconstrained
 * numeric. A type the checks do not know (double precision, or text) is left to the server.
 */
async function targetTypes(client: Client, table: string): Promise<ValueTypes | undefined> {
  const r = await client.query<{ attname: ValueColumn; type: string; typmod: number; name: string }>(
    `SELECT attname, atttypid::regtype::text AS type, atttypmod AS typmod, format_type(atttypid, atttypmod) AS name
       FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY($2) AND NOT attisdropped`,
    [table, VALUE_COLUMNS],
  );
  const types: ValueTypes = {};
  const ints: Record<string, [bigint, bigint]> = {
    smallint: [-(2n ** 15n), 2n ** 15n - 1n], integer: [-(2n ** 31n), 2n ** 31n - 1n], bigint: [-(2n ** 63n), 2n ** 63n - 1n],
  };
  for (const c of r.rows) {
    if (c.type === "numeric" && c.typmod >= 4) {
      // typmod - 4 holds precision in its high 16 bits and scale in its low 11 bits, signed (PostgreSQL 15+).
      const t = c.typmod - 4;
      types[c.attname] = { kind: "numeric", precision: (t >> 16) & 0xffff, scale: ((t & 0x7ff) ^ 1024) - 1024, name: c.name };
    } else if (ints[c.type]) {
      const [min, max] = ints[c.type] as [bigint, bigint];
      types[c.attname] = { kind: "integer", min, max, name: c.name };
    } else if (c.type === "real") types[c.attname] = { kind: "real", name: c.name };
  }
  return Object.keys(types).length > 0 ? types : undefined;
}

async function checkTarget(client: Client, target: string): Promise<void> {
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  const r = await client.query<{ attname: string }>(
    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
    [table],
  );
  if (r.rows.length === 0) {
    throw new Error(`Table ${target} does not exist; apply the migrations first (tsdb db up, or pulumi up).`);
  }
  const have = new Set(r.rows.map((row) => row.attname));
  const missing = COLUMNS.filter((c) => !have.has(c));
  if (missing.length > 0) throw new Error(`Table ${target} lacks column(s) ${missing.join(", ")}; it must match docs/ARCHITECTURE.md.`);
}

/**
 * How many times a load runs when it loses a deadlock (PostgreSQL 40P01) to a concurrent load writing the same
 * bars in another order (a COPY streams in file order, which no lock order can fix): the loser's transaction is
 * rolled back whole and the load runs again, alone (LOAD_LOCK_CLASS), finding the other load's bars present.
 */
export const DEADLOCK_ATTEMPTS = 3;

/**
 * First key of the transaction advisory lock (classid, hashtext(target)) every load takes on its target: shared
 * normally, so loads run in parallel; exclusive when retrying after a deadlock, so the retry waits for the
 * loads under way to commit instead of meeting them again. 0x74736462 is "tsdb" in ASCII; PostgreSQL keeps
 * two-int4 keys apart from bigint keys such as the migration runner's (lib/migrations/core.ts).
 */
export const LOAD_LOCK_CLASS = 0x74736462;

/**
 * How long a load waits for a lock by default, as the migration runner does: any role may take the load's
 * advisory lock (the read-only one included), and a session that inserted one of the load's bars without
 * committing holds it up; a load used to wait for either forever, silently (issue 23.22).
 */
export const DEFAULT_LOAD_LOCK_TIMEOUT_MS = 60_000;

/** What a load waits for when its lock timeout strikes, and the pg_locks rows of whoever holds it. */
type LockWait = { what: string; where: string; params: unknown[] };

/** The one-line error for a load that waited `timeoutMs` for `wait`, naming the holders. */
async function loadLockTimeout(client: Client, wait: LockWait, timeoutMs: number, cause: unknown): Promise<Error> {
  const holders = await holdersOf(client, wait.where, wait.params).catch(() => []);
  return new Error(
    `waited ${Math.round(timeoutMs / 1000)} s for ${wait.what} held by ${describeHolders(holders)}; gave up, nothing was loaded. ` +
      "Run again when that session is done (or end it: SELECT pg_terminate_backend(<pid>)), or give a longer --lock-timeout.",
    { cause },
  );
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

/** Whether `table` holds no row, as this transaction sees it (one index or heap probe). */
async function isEmpty(client: Client, table: string): Promise<boolean> {
  const r = await client.query<{ empty: boolean }>(`SELECT NOT EXISTS (SELECT 1 FROM ${table}) AS empty`);
  return r.rows[0]?.empty === true;
}

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

/** The summary as the CLI prints it, ending with "nothing new" when a re-run added no rows. */
export function formatSummary(s: LoadSummary): string {
  const lines = s.sources.map(
    (x) => `  ${printable(x.source)}: read ${x.read}, inserted ${x.inserted}, updated ${x.updated}, already present ${x.alreadyPresent}, rejected ${x.rejected}`,
  );
  lines.push(
    `total: read ${s.read}, loaded ${s.inserted + s.updated} (inserted ${s.inserted}, updated ${s.updated}), ` +
      `already present ${s.alreadyPresent}, rejected ${s.rejected} in ${s.seconds.toFixed(2)} s (${s.rowsPerSecond} rows/s)`,
  );
  if (s.inserted + s.updated === 0 && s.alreadyPresent > 0) lines.push("nothing new: every valid row was already in the table.");
  if (s.rejectsFile) lines.push(`rejected rows with reasons: ${printable(s.rejectsFile)}`);
  if (s.inconsistent > 0) {
    lines.push(`kept ${s.inconsistent} bars with inconsistent OHLC (--inconsistent-ohlc); tsdb data validate lists them`);
    for (const f of s.flagged ?? []) lines.push(`  ${printable(f.source)} row ${f.row}: ${f.reason}`);
    if (s.flagged && s.inconsistent > s.flagged.length) lines.push(`  ... and ${s.inconsistent - s.flagged.length} more`);
  }
  return lines.join("\n");
}
