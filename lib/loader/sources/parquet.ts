/**
 * Parquet through hyparquet (ESM-only, loaded with a real dynamic import), one row group at a time so memory
 * is bounded by the largest row group, not the file. Pages compressed with GZIP, BROTLI, LZ4, LZ4_RAW or ZSTD
 * are decompressed by hyparquet-compressors (loaded only for such files); SNAPPY is built into hyparquet.
 *
 * NautilusTrader bars (`ts_event`/`ts_init` nanoseconds) are understood: prices and volume written as
 * fixed-point raw integers - FixedSizeBinary(8) (i64, 9 decimals) or FixedSizeBinary(16) (i128, 16
 * decimals, "high-precision" builds) in current releases, plain Int64 with 9 decimals in older ones - are
 * turned back into decimal text with the file's `price_precision` / `size_precision`; `bar_type`
 * (`NFLX.XNAS-1-HOUR-LAST-EXTERNAL`) supplies symbol, exchange and timeframe. Those keys are read from the
 * Parquet key-value metadata and from the Arrow schema serialized in `ARROW:schema`, where Nautilus's Rust
 * writer keeps them. Doubles become their shortest round-trip text (`String(n)`), FLOATs (32-bit) the
 * shortest text that reads back as the same float (not the widened double's `185.10000610351562`), and DECIMAL
 * columns their exact decimal text at the declared scale, made from the unscaled integer (hyparquet would
 * compute `Number(unscaled) * 10 ** -scale`, which turns `94098.90000000` into `94098.90000000001`).
 */
import type { CompressionCodec, Compressors, FileMetaData, SchemaElement } from "hyparquet" with { "resolution-mode": "import" };
import { microsToSql } from "../timestamps";
import { arrowSchemaMetadata } from "./arrowSchema";
import { readFlatColumn } from "./parquetColumn";
import { RECORDS_PER_BATCH, type RecordSource } from "./types";

const NAUTILUS_FIXED_COLUMNS = new Set(["open", "high", "low", "close", "volume"]);
const BAR_UNITS: Record<string, string> = { MINUTE: "m", HOUR: "h", DAY: "d", WEEK: "w", MONTH: "mo" };
/** Codecs hyparquet reads by itself, and those hyparquet-compressors adds. LZO has no reader in JS. */
const BUILT_IN_CODECS: readonly CompressionCodec[] = ["UNCOMPRESSED", "SNAPPY"];
const EXTRA_CODECS: readonly CompressionCodec[] = ["GZIP", "BROTLI", "LZ4", "LZ4_RAW", "ZSTD"];

/** Decimal text of `raw / 10^scale` with `precision` decimals, or more when the value needs them. */
export function fixedToText(raw: bigint, scale: number, precision?: number): string {
  const negative = raw < 0n;
  const digits = (negative ? -raw : raw).toString().padStart(scale + 1, "0");
  const int = digits.slice(0, digits.length - scale);
  let frac = digits.slice(digits.length - scale);
  const significant = frac.replace(/0+$/, "").length;
  // The declared precision when it loses nothing; otherwise every significant digit.
  frac = frac.slice(0, precision !== undefined && precision >= significant ? precision : significant);
  return `${negative ? "-" : ""}${int}${frac ? `.${frac}` : ""}`;
}

/** A little-endian integer, two's complement when `signed` (Nautilus prices) or not (quantities). */
function readLittleEndian(bytes: Uint8Array, signed: boolean): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i] ?? 0);
  if (signed && bytes.length > 0 && ((bytes[bytes.length - 1] ?? 0) & 0x80) !== 0) v -= 1n << BigInt(bytes.length * 8);
  return v;
}

/** symbol, exchange and timeframe from a NautilusTrader bar type string such as `NFLX.XNAS-1-HOUR-LAST-EXTERNAL`. */
export function parseBarType(barType: string): { symbol?: string; exchange?: string; timeframe?: string } {
  const m = /^(.+)\.([^.-]+)-(\d+)-([A-Z]+)-/.exec(barType);
  if (!m) return {};
  const unit = BAR_UNITS[m[4] ?? ""];
  return { symbol: m[1], exchange: m[2], ...(unit ? { timeframe: `${m[3]}${unit}` } : {}) };
}

/**
 * The file's key-value metadata: plain Parquet keys, plus the Arrow schema metadata inside `ARROW:schema`
 * for keys the plain ones lack (pyarrow writes both, arrow-rs only the latter).
 */
function fileMetadata(metadata: FileMetaData, file: string): Map<string, string> {
  const kv = new Map((metadata.key_value_metadata ?? []).map((e) => [e.key, e.value ?? ""]));
  const arrowSchema = kv.get("ARROW:schema");
  if (arrowSchema) {
    let fromArrow: Map<string, string>;
    try {
      fromArrow = arrowSchemaMetadata(arrowSchema);
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message} Rewrite the file, or drop that key.`, { cause: err });
    }
    for (const [k, v] of fromArrow) if (!kv.has(k)) kv.set(k, v);
  }
  return kv;
}

/** Throws naming the file, column and codec when a column chunk uses a codec nothing here decompresses. */
function checkCodecs(metadata: FileMetaData, file: string): Set<CompressionCodec> {
  const used = new Set<CompressionCodec>();
  const readable = [...BUILT_IN_CODECS, ...EXTRA_CODECS];
  for (const group of metadata.row_groups) {
    for (const chunk of group.columns) {
      const codec = chunk.meta_data?.codec;
      if (!codec) continue;
      if (!readable.includes(codec)) {
        throw new Error(
          `${file}: column ${chunk.meta_data?.path_in_schema.join(".")} is compressed with ${codec}, which the loader ` +
            `cannot read (it reads ${readable.join(", ")}); rewrite the file with one of those.`,
        );
      }
      used.add(codec);
    }
  }
  return used;
}

async function decompressorsFor(codecs: Set<CompressionCodec>): Promise<Compressors | undefined> {
  if (!EXTRA_CODECS.some((c) => codecs.has(c))) return undefined;
  const { compressors } = await import("hyparquet-compressors");
  // hyparquet's own SNAPPY stays in use (the hot path of the load benchmark).
  return Object.fromEntries(EXTRA_CODECS.map((c) => [c, compressors[c]]));
}

type Converter = ((v: unknown) => unknown) | undefined;

/**
 * Per leaf column, what turns a Nautilus fixed-point raw value into decimal text. The raw scale is 10^9 for
 * 64-bit values and 10^16 for 128-bit ones, or 10^precision when the precision exceeds it (Nautilus's
 * `raw_scale`, crates/model/src/types/fixed.rs); prices are signed, quantities (volume) unsigned.
 */
function nautilusConverters(leaves: SchemaElement[], kv: Map<string, string>): Converter[] {
  const isNautilus = kv.has("bar_type") || kv.has("price_precision") || leaves.some((e) => e.name === "ts_init");
  const precisionOf = (key: string) => (kv.has(key) ? Number(kv.get(key)) : undefined);
  return leaves.map((e) => {
    const name = e.name.toLowerCase();
    if (!isNautilus || !NAUTILUS_FIXED_COLUMNS.has(name)) return undefined;
    const isVolume = name === "volume";
    const precision = precisionOf(isVolume ? "size_precision" : "price_precision");
    const scaleFor = (fixedPrecision: number) => Math.max(fixedPrecision, precision ?? 0);
    if (e.type === "FIXED_LEN_BYTE_ARRAY" && (e.type_length === 8 || e.type_length === 16)) {
      const scale = scaleFor(e.type_length === 16 ? 16 : 9);
      return (v: unknown) => (v instanceof Uint8Array ? fixedToText(readLittleEndian(v, !isVolume), scale, precision) : v);
    }
    if (e.type === "INT64") {
      const scale = scaleFor(9);
      return (v: unknown) => (typeof v === "bigint" ? fixedToText(v, scale, precision) : v);
    }
    return undefined;
  });
}

/** A big-endian two's complement integer: Parquet's DECIMAL in FIXED_LEN_BYTE_ARRAY or BYTE_ARRAY. */
function readBigEndian(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  if (bytes.length > 0 && ((bytes[0] ?? 0) & 0x80) !== 0) v -= 1n << BigInt(bytes.length * 8);
  return v;
}

/**
 * The shortest decimal text that reads back as the same 32-bit float: `185.1`, where `String()` of the
 * widened double gives `185.10000610351562`. Nine significant digits always suffice for a float.
 */
export function float32Text(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const f = Math.fround(v);
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(f.toPrecision(digits));
    if (Math.fround(candidate) === f) return String(candidate);
  }
  return String(Number(f.toPrecision(9)));
}

/**
 * The schema with every DECIMAL leaf's annotation removed, so hyparquet hands over the unscaled integers
 * (INT32 numbers, INT64 bigints, byte arrays) instead of doubles; `scales` gets each such leaf's scale. A
 * BYTE_ARRAY decimal is marked as GEOMETRY, the one annotation under which hyparquet passes a BYTE_ARRAY on
 * untouched (through the geometry parser, which is the identity here) instead of decoding it as UTF-8.
 */
function withRawDecimals(schema: SchemaElement[], localTimestamps: boolean): { schema: SchemaElement[]; scales: Map<string, number>; local: Map<string, bigint> } {
  const scales = new Map<string, number>();
  const local = new Map<string, bigint>();
  const out = schema.map((e, i) => {
    const lt = e.logical_type;
    if (localTimestamps && i > 0 && lt?.type === "TIMESTAMP" && !lt.isAdjustedToUTC && e.type === "INT64") {
      // A wall-clock timestamp (pandas' and DuckDB's naive TIMESTAMP): handed on as zone-less text, so the load's
      // --timezone places it; raw units per microsecond.
      local.set(e.name, lt.unit === "MILLIS" ? -1000n : lt.unit === "NANOS" ? 1000n : 1n);
      const { converted_type: _c, logical_type: _l, ...rest } = e;
      return rest;
    }
    const decimal = e.converted_type === "DECIMAL" || e.logical_type?.type === "DECIMAL";
    if (i === 0 || e.num_children || !decimal) return e;
    const scale = e.scale ?? (e.logical_type?.type === "DECIMAL" ? e.logical_type.scale : 0);
    scales.set(e.name, scale);
    const { converted_type: _c, logical_type: _l, ...rest } = e;
    return e.type === "BYTE_ARRAY" ? { ...rest, logical_type: { type: "GEOMETRY" } as SchemaElement["logical_type"] } : rest;
  });
  return { schema: out, scales, local };
}

/** Raw units of a wall-clock TIMESTAMP as zone-less text (`2024-07-01 09:30:00`, a fraction when there is one: `09:30:00.000500`); `per` as in withRawDecimals. */
function localTimestampText(v: bigint, per: bigint): string {
  const micros = per < 0n ? v * -per : per === 1n ? v : v / per - (v % per < 0n ? 1n : 0n);
  return microsToSql(Number(micros)).slice(0, -3);
}

/** Converters for DECIMAL leaves (exact text at the declared scale) and FLOAT leaves (shortest float text). */
function valueConverters(leaves: SchemaElement[], scales: Map<string, number>, local: Map<string, bigint>): Converter[] {
  return leaves.map((e) => {
    const per = local.get(e.name);
    if (per !== undefined) return (v: unknown) => (typeof v === "bigint" ? localTimestampText(v, per) : v);
    const scale = scales.get(e.name);
    if (scale !== undefined) {
      return (v: unknown) => {
        if (typeof v === "bigint") return fixedToText(v, scale, scale);
        if (typeof v === "number" && Number.isInteger(v)) return fixedToText(BigInt(v), scale, scale);
        if (v instanceof Uint8Array) return fixedToText(readBigEndian(v), scale, scale);
        return v;
      };
    }
    if (e.type === "FLOAT") return (v: unknown) => (typeof v === "number" ? float32Text(v) : v);
    return undefined;
  });
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/**
 * A decoded column as a typed array when every value is a number (doubles, also those of a dictionary) or a
 * 64-bit integer: hyparquet returns such columns as arrays of boxed values when they span several pages or
 * use a dictionary, and those lived in V8's old space for the whole row group (peak RSS of a
 * Parquet load). Reading a typed array gives back the same values.
 */
export function compactColumn(column: ArrayLike<unknown>): ArrayLike<unknown> {
  if (!Array.isArray(column) || column.length === 0) return column;
  const first = typeof column[0];
  if (first === "number") {
    for (const v of column) if (typeof v !== "number") return column;
    return Float64Array.from(column as number[]);
  }
  if (first === "bigint") {
    for (const v of column) if (typeof v !== "bigint" || v < INT64_MIN || v > INT64_MAX) return column;
    return BigInt64Array.from(column as bigint[]);
  }
  return column;
}

/**
 * Opens a Parquet file as a record source. With `localTimestamps` (the load has a --timezone), TIMESTAMP columns
 * not adjusted to UTC are handed on as zone-less text, to be read in that zone.
 */
export async function openParquet(file: string, how: { localTimestamps?: boolean } = {}): Promise<RecordSource> {
  const hyparquet = await import("hyparquet");
  const buffer = await hyparquet.asyncBufferFromFile(file);
  let metadata: FileMetaData;
  try {
    metadata = await hyparquet.parquetMetadataAsync(buffer);
  } catch (err) {
    throw new Error(`${file}: not a readable Parquet file (${(err as Error).message}).`, { cause: err });
  }
  const compressors = await decompressorsFor(checkCodecs(metadata, file));
  const kv = fileMetadata(metadata, file);
  const raw = withRawDecimals(metadata.schema, how.localTimestamps === true);
  metadata = { ...metadata, schema: raw.schema };
  const leaves = metadata.schema.slice(1).filter((e: SchemaElement) => !e.num_children);
  const columns = leaves.map((e) => e.name);
  const nautilus = nautilusConverters(leaves, kv);
  const values = valueConverters(leaves, raw.scales, raw.local);
  const converters = leaves.map((_, i) => nautilus[i] ?? values[i]);
  const parsers = {
    // A TIMESTAMP column declares its unit: read it by that unit, not by magnitude (which takes microseconds
    // within about three years of 1970 for milliseconds). Nanoseconds are truncated to microseconds.
    timestampFromMilliseconds: (v: bigint) => new Date(Number(v)),
    timestampFromMicroseconds: (v: bigint) => microsToSql(Number(v)),
    timestampFromNanoseconds: (v: bigint) => microsToSql(Number(v / 1000n - (v % 1000n < 0n ? 1n : 0n))),
    dateFromDays: (d: number) => new Date(d * 86_400_000),
    stringFromBytes: (b: Uint8Array) => new TextDecoder().decode(b),
    geometryFromBytes: (b: Uint8Array) => b,
    geographyFromBytes: (b: Uint8Array) => b,
  };
  // One metadata per row group: hyparquet's row range test (`groupEnd >= rowStart`) would also decode the
  // group before the requested one, doubling work and memory.
  const groups = metadata.row_groups.map((g) => ({ ...metadata, num_rows: g.num_rows, row_groups: [g] }));
  const barType = kv.get("bar_type");
  // Every leaf a top-level column: values can be read per column, without hyparquet building an array per row
  // for the whole row group.
  const flat = metadata.schema[0]?.num_children === leaves.length;
  const failed = (index: number, err: unknown) =>
    new Error(`${file}: row group ${index + 1} of ${groups.length} cannot be read (${(err as Error).message}); the file is damaged or truncated.`, { cause: err });
  const options = { file: buffer, columns, parsers, ...(compressors ? { compressors } : {}) };
  // Column by column: each read is awaited whole, so a damaged column fails here, once. A flat column without
  // nulls is read by readFlatColumn (parquetColumn.ts), anything else by hyparquet.
  const { parquetReadColumn } = await import("hyparquet/src/read.js");
  const readColumns = async (g: FileMetaData, index: number): Promise<ArrayLike<unknown>[]> => {
    const data: ArrayLike<unknown>[] = [];
    const rows = Number(g.num_rows);
    try {
      for (const [i, name] of columns.entries()) {
        const chunk = g.row_groups[0]?.columns[i];
        const leaf = leaves[i];
        const fast = chunk && leaf ? await readFlatColumn(buffer, chunk, leaf, rows, options) : undefined;
        data.push(compactColumn(fast ?? (await parquetReadColumn({ ...options, metadata: g, columns: [name] }))));
      }
    } catch (err) {
      throw failed(index, err);
    }
    return data;
  };
  const readRows = async (g: FileMetaData, index: number): Promise<unknown[][]> => {
    let rows: unknown[][] = [];
    try {
      await hyparquet.parquetRead({ ...options, metadata: g, rowFormat: "array", onComplete: (r: unknown[][]) => (rows = r) });
    } catch (err) {
      throw failed(index, err);
    }
    return rows;
  };
  return {
    name: file,
    columns,
    declared: barType ? parseBarType(barType) : {},
    totalRows: Number(metadata.num_rows),
    fractionRead: () => undefined,
    async *batches() {
      for (const [index, g] of groups.entries()) {
        const data = flat ? await readColumns(g, index) : undefined;
        const rows = data ? undefined : await readRows(g, index);
        const n = data ? Number(g.num_rows) : (rows?.length ?? 0);
        // Batches of RECORDS_PER_BATCH rows made as they are needed: a whole row group as row arrays (100,000 rows and
        // more) would outlive V8's young generation and grow the heap by its garbage (peak RSS).
        for (let start = 0; start < n; start += RECORDS_PER_BATCH) {
          const end = Math.min(n, start + RECORDS_PER_BATCH);
          const batch: unknown[][] = rows ? rows.slice(start, end) : [];
          if (data) {
            for (let r = start; r < end; r++) batch.push(data.map((col) => col[r]));
          }
          if (converters.some(Boolean)) {
            for (const row of batch) {
              converters.forEach((convert, i) => {
                if (convert) row[i] = convert(row[i]);
              });
            }
          }
          yield batch;
        }
      }
    },
    close: async () => undefined,
  };
}
