/**
 * Arrow IPC files (Feather v2, `.feather` / `.arrow` / `.ipc`) and streams through apache-arrow, read from disk
 * one record batch at a time: apache-arrow reads an IPC file's footer, then each batch where the footer puts it,
 * and a stream message by message, from a Node FileHandle. Memory is bounded by the largest record batch
 * (pandas writes 65,536 rows a batch), not the file. Values: Float64 as its shortest round-trip text, integers
 * exactly (Int64 as BigInt), strings and dictionaries as text, Timestamp columns as instants read by their
 * declared unit. apache-arrow 20 cannot decompress IPC bodies: an LZ4 or ZSTD compressed file (pandas'
 * to_feather default, freqtrade) is refused with how to rewrite it.
 */
import fs from "node:fs";
import { RECORDS_PER_BATCH, type RecordSource } from "./types";

/** Opens an Arrow IPC file or stream as a record source. */
export async function openArrowIpc(file: string): Promise<RecordSource> {
  const arrow = await import("apache-arrow");
  const handle = await fs.promises.open(file, "r");
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  let size = 0;
  let bytesRead = 0;
  // The handle apache-arrow reads through, counting the bytes for the fraction read. apache-arrow closes it
  // too when it reaches the end; close() is idempotent.
  const counted = new Proxy(handle, {
    get(target, key) {
      if (key === "read") {
        return async (...args: Parameters<typeof handle.read>) => {
          const result = await target.read(...args);
          bytesRead += result.bytesRead;
          return result;
        };
      }
      if (key === "close") return close;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  // From a FileHandle: an AsyncRecordBatchFileReader when the file starts with ARROW1, else a stream reader.
  let reader: import("apache-arrow").RecordBatchReader;
  try {
    size = (await handle.stat()).size;
    reader = await arrow.RecordBatchReader.from(counted);
    await reader.open();
    // A stream with no schema message (an empty file) opens as a closed reader with no schema.
    if (!reader.schema) throw new Error("no schema message");
  } catch (err) {
    await close();
    throw new Error(`${file}: not a readable Arrow IPC file (${(err as Error).message}).`, { cause: err });
  }
  const fields = reader.schema.fields;
  const columns = fields.map((f) => f.name);
  // Per column: how a value becomes what the loader reads.
  const converters = fields.map((f) => {
    if (arrow.DataType.isTimestamp(f.type)) {
      // apache-arrow hands timestamps over as epoch milliseconds (a number) whatever the unit.
      return (v: unknown) => (typeof v === "number" ? new Date(v) : typeof v === "bigint" ? new Date(Number(v)) : v);
    }
    if (arrow.DataType.isDate(f.type)) return (v: unknown) => (typeof v === "number" ? new Date(v) : v);
    if (arrow.DataType.isDecimal(f.type)) {
      const scale = (f.type as import("apache-arrow").Decimal).scale;
      return (v: unknown) => (v === null || v === undefined ? v : decimalText(v, scale));
    }
    return undefined;
  });
  return {
    name: file,
    columns,
    declared: {},
    // Bytes taken from the file so far: an IPC file's footer, then each batch once; a stream in order.
    fractionRead: () => (size > 0 ? Math.min(1, bytesRead / size) : 1),
    async *batches() {
      try {
        for await (const batch of reader) {
          const vectors = fields.map((_, i) => batch.getChildAt(i));
          for (let start = 0; start < batch.numRows; start += RECORDS_PER_BATCH) {
            const end = Math.min(batch.numRows, start + RECORDS_PER_BATCH);
            const rows: unknown[][] = new Array(end - start);
            for (let r = start; r < end; r++) {
              rows[r - start] = vectors.map((v, i) => {
                const value = v?.get(r);
                const convert = converters[i];
                return convert ? convert(value) : value;
              });
            }
            yield rows;
          }
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
      } finally {
        // At the end, on an error, or when the consumer stops early.
        await close();
      }
    },
    close,
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
