/**
 * Writing one source: the write plans (one streamed COPY, or chunk by chunk with each chunk's keys probed, or
 * every row through staging) and the counts they produce.
 */
import type { Client } from "pg";
import { allRows, type Rows } from "./chunkRows";
import { binaryChunk, binaryKey } from "./copyBinary";
import { streamSource, writeRows } from "./copyStream";
import { probeFirstChunk, sortChunk } from "./keyProbe";
import type { ConflictPolicy, LoadOptions, SourceSummary } from "./OhlcvLoader";
import type { ProgressReporter } from "./progress";
import type { CheckedSource, Chunk } from "./readSource";
import { STAGING, merge } from "./staging";
import { DEFAULT_TARGET, quoteTarget } from "./target";

/** Chunks read and checked ahead of the one being written. */
const CHUNKS_AHEAD = 2;

/**
 * Rows per chunk when not given: about 4 MB of COPY text, a few hundred KB of keys fetched back. A chunk the
 * target is asked about costs a probe; fewer, larger ones keep a re-load fast (with 8,192 rows a re-load of 1M bars
 * took 10.4 s / 14.9 s (skip / update) against 7-8 s / 9-10 s).
 */
export const DEFAULT_CHUNK_ROWS = 32_768;

/**
 * Rows per chunk, at most, once a source is streamed through one COPY (no probes): a 1 MB COPY text buffer
 * (readSource.ts newChunk). Every chunk allocates its buffers anew through malloc, and glibc, which raises its
 * mmap threshold to the size of the largest block freed, then serves 4 MB blocks from its heap and keeps their
 * pages: with 32,768 rows a streamed CSV load peaked at 147-149 MB over 10M bars against 134-136 MB over 1M;
 * with 8,192 at 138-144 against 129-136 (with MALLOC_MMAP_THRESHOLD_=131072, glibc's own fix, 125 against 131).
 * The server's time a row is the same either way.
 */
export const STREAM_CHUNK_ROWS = 8_192;

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

/**
 * Loads one source, read and checked by readSource.ts: per chunk, write what the target lacks; finally merge
 * staging into the target.
 *
 * Strategy `filter` (default): each chunk first asks the target which of its keys are present
 * (presentKeys.ts); absent rows go straight into the target, present ones are counted (skip) or, when their
 * values differ (update), staged for the merge. The chunk's write runs on the server while the client reads
 * and checks the next chunk. Strategy `stage`: every row goes to staging and one INSERT ... ON CONFLICT merges
 * it (the reference path the tests compare with). `stream`: one COPY for the whole source (streamSource), for a
 * target that held no bar when the source began, or (`probe`) whose first chunk the target holds none of; in
 * binary COPY format when `binary` (the target has the contract's column types: target.ts binaryCopyFits).
 */
export async function loadSource(
  client: Client,
  source: CheckedSource,
  options: LoadOptions,
  progress: ProgressReporter,
  plan: WritePlan,
  binary = false,
): Promise<SourceSummary> {
  const policy = options.onConflict ?? "skip";
  const target = options.target ?? DEFAULT_TARGET;
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  let written: Written;
  progress.start(source.name, source.totalRows);
  try {
    const chunks = source.chunks();
    const { stream, all } = plan === "probe" ? await probeFirstChunk(client, table, source, policy, chunks) : { stream: plan === "stream", all: chunks };
    if (stream) {
      // Chunks are made only as the stream asks for them: all of them (plan stream) or all after the probed first.
      source.streamShape(STREAM_CHUNK_ROWS, binary);
      const rows = await streamSource(client, table, binary ? binaryChunks(all, source) : all, binary);
      written = { valid: rows, direct: rows, staged: 0 };
    } else {
      written = await writeInChunks(client, table, source, options, policy, all);
    }
  } finally {
    progress.stop();
  }
  let merged = { inserted: 0, updated: 0 };
  if (written.staged > 0) {
    merged = await merge(client, target, policy, source.spans());
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

/** `chunks` as binary chunks: the probed first one, made as text, converted; the rest are made binary. */
async function* binaryChunks(chunks: AsyncIterable<Chunk>, source: CheckedSource): AsyncGenerator<Chunk> {
  const keys: Buffer[] = [];
  for await (const chunk of chunks) yield binaryChunk(chunk, (id) => (keys[id] ??= binaryKey(source.seriesKey(id))));
}

/**
 * How a source is written: `stream` (one COPY: the target holds no bar), `probe` (the target holds bars: stream
 * when it holds none of the first chunk's, see probeFirstChunk), or `chunks` (chunk by chunk, each probed).
 */
export type WritePlan = "stream" | "probe" | "chunks";

/** A failed background write, kept as a value until the loader awaits it. */
class Failure {
  constructor(readonly error: unknown) {}
}
