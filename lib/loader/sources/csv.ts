/**
 * CSV through csv-parse (streaming, RFC 4180 quoting, `,` `;` tab or `|` delimiters), gzip through zlib when
 * the name ends in .gz or the file starts with gzip's magic bytes. Every value stays text, so prices reach COPY
 * exactly as written.
 */
import fs from "node:fs";
import zlib from "node:zlib";
import type { RecordSource } from "./types";

const BATCH = 4096;

function isGzip(file: string): boolean {
  if (file.toLowerCase().endsWith(".gz")) return true;
  // Sniffing a pipe would consume its first bytes.
  if (!fs.statSync(file).isFile()) return false;
  const fd = fs.openSync(file, "r");
  try {
    const head = Buffer.alloc(2);
    return fs.readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Options for reading CSV. */
export interface CsvOptions {
  /** Field delimiter; default: detected among `,` `;` tab `|`. */
  delimiter?: string;
}

/** Opens a CSV file (first row = header) as a record source. */
export async function openCsv(file: string, options: CsvOptions = {}): Promise<RecordSource> {
  const { parse } = await import("csv-parse");
  const size = fs.statSync(file).size;
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let bytesRead = 0;
  raw.on("data", (chunk) => {
    bytesRead += chunk.length;
  });
  const parser = parse({
    delimiter: options.delimiter ?? [",", ";", "\t", "|"],
    bom: true,
    skip_empty_lines: true,
    // A short or long row becomes a reject with its reason, not an exception that stops the load.
    relax_column_count: true,
  });
  const input = isGzip(file) ? raw.pipe(zlib.createGunzip()) : raw;
  input.on("error", (err: Error) => parser.destroy(err));
  input.pipe(parser);
  const iterator = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>;
  const first = await iterator.next();
  if (first.done) {
    raw.destroy();
    throw new Error(`${file}: the CSV file is empty; it needs a header row naming the columns.`);
  }
  const columns = first.value.map((c) => c.trim());
  return {
    name: file,
    columns,
    declared: {},
    fractionRead: () => (size > 0 ? Math.min(1, bytesRead / size) : 1),
    async *batches() {
      let batch: unknown[][] = [];
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        batch.push(next.value);
        if (batch.length >= BATCH) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    },
    close: async () => {
      raw.destroy();
      parser.destroy();
    },
  };
}
