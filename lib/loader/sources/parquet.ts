/**
 * Parquet through hyparquet (ESM-only, loaded with a real dynamic import), one row group at a time so memory
 * is bounded by the largest row group, not the file.
 *
 * NautilusTrader bars (`ts_event` int64/uint64 nanoseconds) are understood: prices and volume written as
 * fixed-point raw integers - FixedSizeBinary(8) (int64, 9 decimals) or FixedSizeBinary(16) (int128, 16
 * decimals) in current releases, plain int64 with 9 decimals in older ones - are turned back into decimal
 * text with the file's `price_precision` / `size_precision`; `bar_type` metadata (`NFLX.XNAS-1-HOUR-LAST-
 * EXTERNAL`) supplies symbol, exchange and timeframe. Doubles become their shortest round-trip text
 * (`String(n)`); DECIMAL columns arrive from hyparquet as doubles and are treated the same way.
 */
import type { FileMetaData, SchemaElement } from "hyparquet" with { "resolution-mode": "import" };
import { microsToSql } from "../timestamps";
import type { RecordSource } from "./types";

const NAUTILUS_FIXED_COLUMNS = new Set(["open", "high", "low", "close", "volume"]);
const BAR_UNITS: Record<string, string> = { MINUTE: "m", HOUR: "h", DAY: "d", WEEK: "w", MONTH: "mo" };

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

function readLittleEndian(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i] ?? 0);
  // Two's complement sign.
  if (bytes.length > 0 && ((bytes[bytes.length - 1] ?? 0) & 0x80) !== 0) v -= 1n << BigInt(bytes.length * 8);
  return v;
}

/** symbol, exchange and timeframe from a NautilusTrader bar type string such as `NFLX.XNAS-1-HOUR-LAST-EXTERNAL`. */
export function parseBarType(barType: string): { symbol?: string; exchange?: string; timeframe?: string } {
  const m = /^(.+)\.([^.-]+)-(\d+)-([A-Z]+)-/.exec(barType);
  if (!m) return {};
  const unit = BAR_UNITS[m[4] ?? ""];
  return { symbol: m[1], exchange: m[2], ...(unit ? { timeframe: `${m[3]}${unit}` } : {}) };
}

/** Opens a Parquet file as a record source. */
export async function openParquet(file: string): Promise<RecordSource> {
  const hyparquet = await import("hyparquet");
  const buffer = await hyparquet.asyncBufferFromFile(file);
  let metadata: FileMetaData;
  try {
    metadata = await hyparquet.parquetMetadataAsync(buffer);
  } catch (err) {
    throw new Error(`${file}: not a readable Parquet file (${(err as Error).message}).`, { cause: err });
  }
  const kv = new Map((metadata.key_value_metadata ?? []).map((e) => [e.key, e.value ?? ""]));
  const leaves = metadata.schema.slice(1).filter((e: SchemaElement) => !e.num_children);
  const columns = leaves.map((e) => e.name);
  const isNautilus = kv.has("bar_type") || kv.has("price_precision") || columns.includes("ts_init");
  const pricePrecision = kv.has("price_precision") ? Number(kv.get("price_precision")) : undefined;
  const sizePrecision = kv.has("size_precision") ? Number(kv.get("size_precision")) : undefined;
  const converters = leaves.map((e) => {
    if (!isNautilus || !NAUTILUS_FIXED_COLUMNS.has(e.name.toLowerCase())) return undefined;
    const precision = e.name.toLowerCase() === "volume" ? sizePrecision : pricePrecision;
    if (e.type === "FIXED_LEN_BYTE_ARRAY") {
      const scale = e.type_length === 16 ? 16 : 9;
      return (v: unknown) => (v instanceof Uint8Array ? fixedToText(readLittleEndian(v), scale, precision) : v);
    }
    if (e.type === "INT64") return (v: unknown) => (typeof v === "bigint" ? fixedToText(v, 9, precision) : v);
    return undefined;
  });
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
  return {
    name: file,
    columns,
    declared: barType ? parseBarType(barType) : {},
    totalRows: Number(metadata.num_rows),
    fractionRead: () => undefined,
    async *batches() {
      for (const g of groups) {
        let rows: unknown[][] = [];
        await hyparquet.parquetRead({
          file: buffer,
          metadata: g,
          columns,
          rowFormat: "array",
          parsers,
          onComplete: (r: unknown[][]) => {
            rows = r;
          },
        });
        if (converters.some(Boolean)) {
          for (const row of rows) {
            converters.forEach((convert, i) => {
              if (convert) row[i] = convert(row[i]);
            });
          }
        }
        // Smaller batches downstream keep the staged copies of a large row group short-lived.
        for (let i = 0; i < rows.length; i += 8192) yield rows.slice(i, i + 8192);
      }
    },
    close: async () => undefined,
  };
}
