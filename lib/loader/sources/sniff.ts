/**
 * What a file is, from its first bytes: the readers' formats, and the kinds the loader names instead of
 * reading a binary header as CSV columns.
 */
import fs from "node:fs";

/** A file's kind by its magic bytes; undefined for text (or nothing known). */
export type SniffedKind = "parquet" | "sqlite" | "duckdb" | "arrow" | "zip" | "gzip" | "utf16" | "binary";

/** Names users know the kinds by, for messages. */
export const KIND_NAMES: Record<SniffedKind, string> = {
  parquet: "Parquet",
  sqlite: "SQLite",
  duckdb: "DuckDB",
  arrow: "Arrow IPC (Feather v2)",
  zip: "zip",
  gzip: "gzip",
  utf16: "UTF-16 text (Excel's \"Unicode text\"; save it as UTF-8 CSV)",
  binary: "binary (not text)",
};

/** The kind of `file` by its first 64 bytes; undefined for text, and for anything that is not a regular file. */
export function sniffKind(file: string): SniffedKind | undefined {
  let head: Buffer;
  try {
    if (!fs.statSync(file).isFile()) return undefined;
    const fd = fs.openSync(file, "r");
    try {
      head = Buffer.alloc(64);
      head = head.subarray(0, fs.readSync(fd, head, 0, 64, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const starts = (s: string, at = 0) => head.subarray(at, at + s.length).toString("latin1") === s;
  if (starts("PAR1")) return "parquet";
  if (starts("SQLite format 3\u0000")) return "sqlite";
  // DuckDB's main header: an 8-byte checksum, then the magic "DUCK".
  if (starts("DUCK", 8)) return "duckdb";
  // The IPC file format (Feather v2) starts with ARROW1; the stream format with the continuation marker.
  if (starts("ARROW1") || (head.length >= 8 && head.readUInt32LE(0) === 0xffffffff)) return "arrow";
  if (starts("PK\u0003\u0004") || starts("PK\u0005\u0006")) return "zip";
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  // UTF-16 with its byte order mark (Excel's "Unicode text"); otherwise text has no NUL bytes in its first 64.
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) return "utf16";
  if (head.includes(0)) return "binary";
  return undefined;
}
