/**
 * Arrow IPC files (Feather v2, `.feather` / `.arrow` / `.ipc`) and streams through apache-arrow, one record
 * batch at a time. Values: Float64 as its shortest round-trip text, integers exactly (Int64 as BigInt), strings
 * and dictionaries as text, Timestamp columns as instants read by their declared unit. apache-arrow 20 cannot
 * decompress IPC bodies: an LZ4 or ZSTD compressed file (pandas' to_feather default, freqtrade) is refused with
 * how to rewrite it.
 */
import fs from "node:fs";
import type { RecordSource } from "./types";

/** Opens an Arrow IPC file or stream as a record source. */
export async function openArrowIpc(file: string): Promise<RecordSource> {
  const arrow = await import("apache-arrow");
  const bytes = fs.readFileSync(file);
  let reader: import("apache-arrow").RecordBatchReader;
  try {
    reader = arrow.RecordBatchReader.from(bytes);
    reader.open();
  } catch (err) {
    throw new Error(`${file}: not a readable Arrow IPC file (${(err as Error).message}).`, { cause: err });
  }
  const fields = reader.schema.fields;
  const columns = fields.map((f) => f.name);
  // Per column: how a value becomes what the loader reads.
  const converters = fields.map((f) => {
    const type = f.type as { typeId: number; unit?: number };
    if (arrow.DataType.isTimestamp(f.type)) {
      // apache-arrow hands timestamps over as epoch milliseconds (a number) whatever the unit.
      return (v: unknown) => (typeof v === "number" ? new Date(v) : typeof v === "bigint" ? new Date(Number(v)) : v);
    }
    if (arrow.DataType.isDate(f.type)) return (v: unknown) => (typeof v === "number" ? new Date(v) : v);
    if (arrow.DataType.isDecimal(f.type)) {
      const scale = (f.type as import("apache-arrow").Decimal).scale;
      return (v: unknown) => (v === null || v === undefined ? v : decimalText(v, scale));
    }
    void type;
    return undefined;
  });
  return {
    name: file,
    columns,
    declared: {},
    fractionRead: () => undefined,
    async *batches() {
      try {
        for (const batch of reader) {
          const vectors = fields.map((_, i) => batch.getChildAt(i));
          const rows: unknown[][] = new Array(batch.numRows);
          for (let r = 0; r < batch.numRows; r++) {
            rows[r] = vectors.map((v, i) => {
              const value = v?.get(r);
              const convert = converters[i];
              return convert ? convert(value) : value;
            });
          }
          yield rows;
        }
      } catch (err) {
        if (/compression not implemented/i.test((err as Error).message)) {
          throw new Error(
            `${file}: an Arrow IPC file with compressed (LZ4 or ZSTD) record batches, which the loader's Arrow reader cannot decompress; ` +
              "rewrite it uncompressed (pandas: df.to_feather(path, compression=\"uncompressed\")) or as Parquet.",
            { cause: err },
          );
        }
        throw err;
      }
    },
    close: async () => undefined,
  };
}

/** An Arrow decimal value (apache-arrow gives the unscaled 128-bit integer's words) as exact decimal text. */
function decimalText(v: unknown, scale: number): string {
  const words = v as Uint32Array;
  let raw = 0n;
  for (let i = words.length - 1; i >= 0; i--) raw = (raw << 32n) | BigInt(words[i] ?? 0);
  const bits = BigInt(words.length * 32);
  if (raw >> (bits - 1n)) raw -= 1n << bits;
  const negative = raw < 0n;
  const digits = (negative ? -raw : raw).toString().padStart(scale + 1, "0");
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale);
  return `${negative ? "-" : ""}${int}${frac ? `.${frac}` : ""}`;
}
