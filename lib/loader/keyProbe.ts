/**
 * Key probing: which rows of a chunk the target already holds (presentKeys.ts), with the same values or other
 * ones, and whether a source's first chunk is all new.
 */
import type { Client } from "pg";
import { type Rows, allRows, pick, valuesOf } from "./chunkRows";
import type { ConflictPolicy } from "./OhlcvLoader";
import { type PresentSeries, type SeriesRange, canonicalValues, fetchPresent, indexOfTime, presentValues, sameValueBytes } from "./presentKeys";
import type { CheckedSource, Chunk } from "./readSource";
import { microsToSql } from "./timestamps";

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
export async function sortChunk(client: Client, table: string, chunk: Chunk, source: CheckedSource, policy: ConflictPolicy): Promise<{ fresh: Rows; changed: Rows }> {
  const { ids, ranges } = seriesRanges(chunk, source);
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

/** Each series' time range within this chunk: the series ids in order of appearance, and their ranges. */
function seriesRanges(chunk: Chunk, source: CheckedSource): { ids: number[]; ranges: SeriesRange[] } {
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
  const ranges = ids.map((id) => ({ key: source.seriesKey(id), lo: microsToSql(lo.get(id) as number), hi: microsToSql(hi.get(id) as number) }));
  return { ids, ranges };
}

/**
 * Reads the first chunk and asks the target for its keys (one probe of at most FIRST_CHUNK_ROWS bars): when
 * none is present, the source is taken for new bars (new series, or bars after the stored ones: the everyday
 * append) and streamed through one COPY, as into an empty target. A later bar the target does holds fails that
 * COPY (23505), and loadOhlcv runs the load again alone, chunk by chunk: a wrong guess costs one partial pass,
 * a right one every later probe and savepoint. `all` yields the first chunk again, then the rest.
 */
export async function probeFirstChunk(
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
