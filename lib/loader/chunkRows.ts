/**
 * The rows of a checked chunk (readSource.ts) as the database takes them, and picking some of them.
 */
import type { Chunk } from "./readSource";

/** Rows as the database takes them: COPY text (UTF-8 bytes, one line a row) or 11 column values a row. */
export type Rows = { kind: "text"; n: number; bytes: Buffer } | { kind: "values"; n: number; rows: Array<Array<string | null>> };

/** Row k of a text chunk. */
export function lineOf(chunk: Chunk, k: number): string {
  return chunk.bytes.toString("utf8", k === 0 ? 0 : (chunk.ends[k - 1] as number), chunk.ends[k] as number);
}

/** The rows of `chunk` whose index `keep` accepts, in order. */
export function pick(chunk: Chunk, keep: (k: number) => boolean): Rows {
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

export function allRows(chunk: Chunk): Rows {
  return chunk.ends.length === 0
    ? { kind: "values", n: chunk.n, rows: chunk.values }
    : { kind: "text", n: chunk.n, bytes: chunk.bytes.subarray(0, chunk.used) };
}

/** The six value columns of row k (open .. adj_close), as written. */
export function valuesOf(chunk: Chunk, k: number): Array<string | null> {
  if (chunk.ends.length === 0) return (chunk.values[k] ?? []).slice(5);
  return lineOf(chunk, k)
    .slice(0, -1)
    .split("\t")
    .slice(5)
    .map((v) => (v === "\\N" ? null : v));
}
