import type { PathKey } from "../columnMapping";

/**
 * Records in each batch a reader hands the loader. Small on purpose: a whole row group, record batch or read
 * turned into row arrays at once would outlive V8's young generation and grow the heap by its garbage (peak RSS).
 */
export const RECORDS_PER_BATCH = 4096;

/** Rows of one source (a file, or a table of a SQLite file), read in bounded batches. */
export interface RecordSource {
  /** Shown in summaries and the rejects file: the file path, plus `:table` for SQLite. */
  readonly name: string;
  /** Column names in the order of each record's values. */
  readonly columns: string[];
  /** Values the file itself declares (NautilusTrader's `bar_type` metadata), below flags and columns. */
  readonly declared: Partial<Record<PathKey, string>>;
  /** Rows in the source when known without reading it (Parquet, SQLite). */
  readonly totalRows?: number;
  /** Fraction of the source read so far, when only bytes are known (CSV). */
  fractionRead(): number | undefined;
  /** Batches of records; each record holds one value per column. */
  batches(): AsyncIterable<unknown[][]>;
  close(): Promise<void>;
}

/**
 * A batch in which the reader found some records malformed (a CSV quote left open): `faults` maps a record's
 * index in the batch to the reason, and the row checks reject it with that reason.
 */
export type FaultyBatch = unknown[][] & { faults?: Map<number, string> };
