/**
 * CSV through PapaParse's Node stream (RFC 4180 quoting; `,` `;` tab or `|` delimiters, detected from the
 * first rows unless given), gzip through zlib when the name ends in .gz or the file starts with gzip's magic
 * bytes. Every value stays text, so prices reach COPY exactly as written. A file without a header row is read
 * with the column names given (`--columns`), or recognised as a Binance kline dump; any other headerless file
 * is refused with how to name its columns. Bytes that are not UTF-8 decode to U+FFFD, which the row checks
 * reject in keys (rowValidation.ts) and which makes a number or time unreadable.
 *
 * PapaParse rather than csv-parse: on 1M bars it parses in about 0.6 s where csv-parse takes 3.5 s, and the
 * parse is most of a CSV load's CPU time (bench/load.md).
 */
import fs from "node:fs";
import zlib from "node:zlib";
import { BINANCE_KLINE_COLUMNS, COLUMN_ALIASES, normalizeColumnName } from "../columnMapping";
import { parseTimestamp } from "../timestamps";
import type { RecordSource } from "./types";
import { yfinanceCsvHeader } from "./yfinance";

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
  /** Names of the columns of a file WITHOUT a header row: its first row is data. */
  columns?: readonly string[];
}

const KNOWN_NAMES = new Set(Object.values(COLUMN_ALIASES).flat());
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const EPOCH_MS_OR_US = /^\d{13}$|^\d{16}$/;

/**
 * True when the first row of a file is data, not a header: none of its cells is a known column name and
 * some cell is a number or a date.
 */
export function looksLikeData(row: readonly string[]): boolean {
  if (row.some((c) => KNOWN_NAMES.has(normalizeColumnName(c)))) return false;
  return row.some((c) => NUMBER.test(c.trim()) || parseTimestamp(c).ok);
}

/**
 * Binance's kline dump layout: 12 numeric columns, the first (open time) and seventh (close time) epoch
 * milliseconds, or microseconds in dumps since 2025.
 */
export function isBinanceKline(row: readonly string[]): boolean {
  return row.length === BINANCE_KLINE_COLUMNS.length && row.every((c) => NUMBER.test(c.trim())) &&
    EPOCH_MS_OR_US.test((row[0] ?? "").trim()) && EPOCH_MS_OR_US.test((row[6] ?? "").trim());
}

/** The columns of a file from its first row, and whether that row is data; throws for an unknown headerless layout. */
function headerOf(file: string, first: string[], given: readonly string[] | undefined): { columns: string[]; firstIsData: boolean } {
  if (given) return { columns: [...given], firstIsData: true };
  // PapaParse keeps a UTF-8 byte order mark in the first header cell.
  const cells = first.map((c, i) => (i === 0 ? c.replace(/^\uFEFF/, "") : c).trim());
  if (!looksLikeData(cells)) return { columns: cells, firstIsData: false };
  if (isBinanceKline(cells)) return { columns: [...BINANCE_KLINE_COLUMNS], firstIsData: true };
  throw new Error(
    `${file} has no header row (its first row, ${JSON.stringify(cells.slice(0, 4).join(","))}..., is data); ` +
      "name its columns in order with --columns, e.g. --columns date,time,open,high,low,close,volume, or use --layout binance-kline for Binance kline dumps.",
  );
}

/** Refuse to hold more than this much text waiting for a closing quote (a malformed file, not a long field). */
const MAX_CARRY = 64 << 20;

/**
 * The index just past the last line break that is outside quotes, or -1. RFC 4180 escapes a quote inside a
 * quoted field as `""`, so quote parity tells whether a position is inside a field.
 */
export function lastRecordEnd(text: string): number {
  if (text.indexOf('"') < 0) {
    const nl = text.lastIndexOf("\n");
    return nl < 0 ? -1 : nl + 1;
  }
  let inQuotes = false;
  let last = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) inQuotes = !inQuotes;
    else if (c === 10 && !inQuotes) last = i + 1;
  }
  return last;
}

type LineBreak = "\r" | "\n" | "\r\n";

/**
 * Rows of CSV text read in chunks: each chunk is cut after its last complete record and the rest carried
 * into the next, and each cut piece is parsed whole by PapaParse. (PapaParse's own Node stream re-slices its
 * input every time a consumer applies backpressure, which made a 1M-row load quadratic.)
 */
async function* csvRows(
  Papa: typeof import("papaparse"),
  input: AsyncIterable<string>,
  file: string,
  delimiter: string | undefined,
): AsyncGenerator<string[][]> {
  let delim = delimiter;
  let newline: LineBreak | undefined;
  const parse = (text: string): string[][] => {
    const result = Papa.parse<string[]>(text, {
      delimiter: delim ?? "",
      delimitersToGuess: [",", ";", "\t", "|"],
      skipEmptyLines: true,
      ...(newline ? { newline } : {}),
    });
    // The delimiter and line break guessed from the first piece hold for the whole file (guessing the line
    // break splits each piece into lines twice more: a tenth of the parse, issue 11).
    delim ??= result.meta.delimiter;
    newline ??= result.meta.linebreak as LineBreak;
    return result.data;
  };
  let carry = "";
  for await (const chunk of input) {
    const text = carry + chunk;
    const end = lastRecordEnd(text);
    if (end < 0) {
      if (text.length > MAX_CARRY) {
        throw new Error(`${file}: more than 64 MiB without a line break outside quotes; is a quote (") left open?`);
      }
      carry = text;
      continue;
    }
    carry = text.slice(end);
    const rows = parse(text.slice(0, end));
    if (rows.length > 0) yield rows;
  }
  if (carry.length > 0) {
    const rows = parse(carry);
    if (rows.length > 0) yield rows;
  }
}

/** Opens a CSV file (first row = header) as a record source. */
export async function openCsv(file: string, options: CsvOptions = {}): Promise<RecordSource> {
  const Papa = (await import("papaparse")).default;
  const size = fs.statSync(file).size;
  // 256 KiB reads (about 3,000 rows): each read's parsed rows are garbage before V8 would move them into its
  // old space, which 1 MiB reads did, growing the heap by tens of MB (issue 11: peak RSS).
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 18 });
  const input = isGzip(file) ? raw.pipe(zlib.createGunzip()) : raw;
  // pipe() does not forward the file's errors to the gunzip stream the reader iterates.
  if (input !== raw) raw.on("error", (err: Error) => input.destroy(err));
  // Decode UTF-8 on the stream, so a character split between two reads stays whole.
  input.setEncoding("utf8");
  // Rows come out as arrays of strings; a short or long row is passed on (and becomes a reject with its
  // reason), never an exception that stops the load.
  const pieces = csvRows(Papa, input as AsyncIterable<string>, file, options.delimiter);
  let pending: string[][] = [];
  let first: string[] | undefined;
  while (first === undefined) {
    const next = await pieces.next();
    if (next.done) {
      raw.destroy();
      throw new Error(`${file}: the CSV file is empty; it needs a header row naming the columns (or data rows and --columns).`);
    }
    [first, ...pending] = next.value;
  }
  let columns: string[];
  try {
    const header = headerOf(file, first, options.columns);
    columns = header.columns;
    if (header.firstIsData) pending.unshift(first);
    // yfinance >= 0.2.51: two more header rows (tickers, index name); lib/loader/sources/yfinance.ts.
    const yfinance = header.firstIsData ? undefined : yfinanceCsvHeader(columns, pending);
    if (yfinance) {
      columns = yfinance;
      pending = pending.slice(2);
    }
  } catch (err) {
    raw.destroy();
    throw err;
  }
  return {
    name: file,
    columns,
    declared: {},
    fractionRead: () => (size > 0 ? Math.min(1, raw.bytesRead / size) : 1),
    async *batches() {
      for (let rows: string[][] | undefined = pending; rows !== undefined; ) {
        for (let i = 0; i < rows.length; i += BATCH) yield rows.slice(i, i + BATCH);
        const next = await pieces.next();
        rows = next.done ? undefined : next.value;
      }
    },
    close: async () => {
      raw.destroy();
      input.destroy();
      await pieces.return(undefined);
    },
  };
}
