/**
 * Rows into a table: COPY FROM STDIN (a chunk at a time, or one COPY fed a whole source while it is read), or
 * batched INSERTs where COPY is not available (PGlite).
 */
import { Readable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import type { Client } from "pg";
import type { Rows } from "./chunkRows";
import { BINARY_HEADER, BINARY_TRAILER } from "./copyBinary";
import { COLUMNS, type Chunk } from "./readSource";

/** Bytes per COPY data message. */
const PIECE_BYTES = 1 << 18;
const INSERT_ROWS = 200;

/**
 * `COPY ... FROM STDIN` as a pg-copy-streams query. Required when first used (a CLI run that loads nothing
 * never loads it) and synchronously, so a COPY is queued on the client the moment it is asked for, right
 * behind the statement before it (an `import()` per chunk cost every chunk a few event-loop turns).
 */
function copyFromStdin(into: string, binary = false): import("pg-copy-streams").CopyStreamQuery {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { from } = require("pg-copy-streams") as typeof import("pg-copy-streams");
  return from(`COPY ${into} (${COLUMNS.join(", ")}) FROM STDIN${binary ? " (FORMAT binary)" : ""}`);
}

/**
 * Stage 4: writes rows into `into` (the target or staging) by COPY or by batched INSERT. A COPY is queued on
 * the client before this returns; batched INSERTs are queued one after another.
 */
export async function writeRows(client: Client, into: string, rows: Rows): Promise<void> {
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

/** COPY pieces waiting for the socket, at most, while the next chunk is read: about 4 MB. */
const STREAM_PENDING_PIECES = 16;

/**
 * Writes every chunk of `source` through one COPY into `table`, fed while the next chunk is read: the load of
 * new bars into an empty target (the first import) then costs the server what `psql \copy` costs it, with no
 * probe, savepoint or statement between chunks. The caller makes sure nothing can conflict: the
 * target was empty; a concurrent writer's key fails the COPY (23505) and loadOhlcv runs the load again alone.
 * `binary`: the COPY is in binary format and every chunk holds binary rows (copyBinary.ts). Returns the rows written.
 */
export async function streamSource(client: Client, table: string, chunks: AsyncIterable<Chunk>, binary = false): Promise<number> {
  const copy = client.query(copyFromStdin(table, binary));
  const done = finished(copy);
  // Awaited below, or not at all when the server's error is thrown first: never an unhandled rejection.
  done.catch(() => undefined);
  const feed = copyFeeder(copy);
  let rows = 0;
  try {
    if (binary) feed.push([BINARY_HEADER]);
    for await (const chunk of chunks) {
      if (feed.failed) throw feed.failed;
      if (chunk.binary !== binary) throw new Error(`streamSource: a ${chunk.binary ? "binary" : "text"} chunk in a ${binary ? "binary" : "text"} COPY (a loader bug)`);
      rows += chunk.n;
      feed.push(piecesOf(chunk.bytes.subarray(0, chunk.used)));
      await feed.until((queued) => queued <= STREAM_PENDING_PIECES);
    }
    if (binary) feed.push([BINARY_TRAILER]);
    await feed.until((queued, inFlight) => queued === 0 && !inFlight);
    copy.end();
    await done;
  } catch (err) {
    if (feed.failed) throw feed.failed;
    // Our side failed (a --strict reject, an unreadable row group): CopyFail ends the COPY on the server, and the
    // transaction then rolls back.
    copy.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  return rows;
}

/**
 * Feeds `copy` its pieces one at a time, each when the one before is on the socket: pg-copy-streams keeps a
 * socket 'drain' listener for pieces it holds, which throws once the server has failed the COPY. The server's
 * error (a concurrent writer's key, 23505) ends the COPY on its side: `failed` holds it and `until` stops at
 * once, also when waiting for the socket.
 */
function copyFeeder(copy: import("pg-copy-streams").CopyStreamQuery) {
  let failed: unknown;
  let wake: (() => void) | undefined;
  const nudge = () => {
    wake?.();
    wake = undefined;
  };
  copy.on("error", (err) => {
    failed ??= err;
    nudge();
  });
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
  return {
    get failed(): unknown {
      return failed;
    },
    push(pieces: Iterable<Buffer>): void {
      queue.push(...pieces);
      pump();
    },
    /** Waits until `ready` (pieces queued, one on the socket) holds; throws the server's error. */
    async until(ready: (queued: number, inFlight: boolean) => boolean): Promise<void> {
      while (!ready(queue.length, inFlight) && !failed) await new Promise<void>((resolve) => (wake = resolve));
      if (failed) throw failed;
    },
  };
}
