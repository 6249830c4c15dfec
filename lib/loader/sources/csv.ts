/**
 * CSV through PapaParse's Node stream (RFC 4180 quoting; `,` `;` tab or `|` delimiters, detected from the
 * first rows unless given; a record whose quotes are malformed is handed on as a rejected row with the reason,
 * see scanRecords), gzip through zlib when the name ends in .gz or the file starts with gzip's magic
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
import { type FaultyBatch, RECORDS_PER_BATCH, type RecordSource } from "./types";
import { yfinanceCsvHeader } from "./yfinance";

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

/** Refuse to hold more than this much text waiting for a line break (a malformed file, not a long line). */
const MAX_CARRY = 64 << 20;

/**
 * Longest quoted field (characters) read as one: a quote opened and not closed within it is a quote left
 * open, and its row is rejected (issue 23.13/20: the open quote made the rest of the file one field).
 */
export const MAX_QUOTED_CHARS = 1 << 20;

/** A record the scan found malformed: its text is `[start, end)`, `reason` says why. */
export interface BadRecord {
  start: number;
  end: number;
  reason: string;
}

/** Where the complete records of some CSV text end, and which of them are malformed. */
export interface RecordScan {
  /** Just past the last complete record's line break (the text's end at end of file), or -1. */
  end: number;
  bad: BadRecord[];
  /** Fields of the first record, when the text starts the file and the scan reached its end. */
  firstFields?: number;
}

const QUOTE_LEFT_OPEN = 'a quote (") opened in this row is never closed; the rows after it were read on their own';
const STRAY_QUOTE = 'a quote (") inside an unquoted field; quote the whole field and double the quote ("")';
const BAD_CLOSE = 'a quote (") inside a quoted field is not doubled ("")';

/**
 * Finds the records of CSV `text` (starting at a record's start) as PapaParse reads them, so every piece the
 * reader cuts holds whole records: a quote opens a field only at the field's start; a quoted field ends at a
 * quote (not doubled) followed by optional spaces and the delimiter or a line break, and may hold line breaks.
 * Unlike PapaParse, it bounds what one quote can swallow. A record is malformed (listed in `bad`) when it has a
 * quote inside an unquoted field; a quote inside a quoted field that neither doubles nor closes it; a quote that
 * is not closed by the end of the file or within MAX_QUOTED_CHARS (the record is then the line it opened on,
 * and reading goes on after it); or a quoted line break that leaves it with other than `fields` fields (a
 * quote left open that a later quote closed). `atEof`: nothing follows `text`.
 *
 * Text without a quote costs one lastIndexOf; with quotes, one pass over its characters (as the quote-parity
 * scan before it did).
 */
export function scanRecords(text: string, delimiter: string, atEof: boolean, fields?: number): RecordScan {
  const n = text.length;
  if (text.indexOf('"') < 0) {
    const nl = text.lastIndexOf("\n");
    return { end: atEof ? n : nl < 0 ? -1 : nl + 1, bad: [] };
  }
  const D = delimiter.charCodeAt(0);
  const bad: BadRecord[] = [];
  let last = -1;
  let recordStart = 0;
  let fault: string | undefined;
  let count = 1;
  let multiline = false;
  let firstFields: number | undefined;
  // The next line break at or after i (n when none), found once per line.
  let nextBreak = -1;
  let i = 0;
  const endRecord = (end: number) => {
    if (firstFields === undefined && recordStart === 0) firstFields = count;
    const expected = fields ?? firstFields;
    if (fault === undefined && multiline && expected !== undefined && count !== expected) {
      fault = `a quoted field spans lines and leaves this row with ${count} fields where the first row has ${expected}; is a quote (") left open?`;
    }
    if (fault !== undefined) bad.push({ start: recordStart, end, reason: fault });
    last = end;
    recordStart = end;
    fault = undefined;
    count = 1;
    multiline = false;
  };
  outer: while (i < n) {
    if (text.charCodeAt(i) === 34) {
      // A quoted field: find the quote that closes it.
      let from = i + 1;
      let closed = -1;
      for (;;) {
        const q = text.indexOf('"', from);
        if (q < 0 || q - i > MAX_QUOTED_CHARS) break;
        if (q + 1 >= n) {
          if (atEof) closed = n;
          break;
        }
        if (text.charCodeAt(q + 1) === 34) {
          from = q + 2;
          continue;
        }
        let k = q + 1;
        while (k < n && (text.charCodeAt(k) === 32 || (text.charCodeAt(k) === 9 && D !== 9))) k++;
        const c = k < n ? text.charCodeAt(k) : -1;
        if (c === D || c === 10 || (c === 13 && (k + 1 >= n || text.charCodeAt(k + 1) === 10)) || (c === -1 && atEof)) {
          closed = k;
          break;
        }
        if (c === -1) break;
        // PapaParse's InvalidQuotes: it reads on to the next quote.
        fault ??= BAD_CLOSE;
        from = q + 1;
      }
      if (closed < 0) {
        const nl = text.indexOf("\n", i);
        // Not closed yet: wait for more text, up to the bound.
        if (!atEof && (n - i <= MAX_QUOTED_CHARS || nl < 0)) break outer;
        fault = QUOTE_LEFT_OPEN;
        endRecord(nl < 0 ? n : nl + 1);
        i = recordStart;
        continue;
      }
      if (nextBreak < i) {
        nextBreak = text.indexOf("\n", i);
        if (nextBreak < 0) nextBreak = n;
      }
      if (nextBreak < closed) multiline = true;
      i = closed;
    }
    // An unquoted field, or what follows a closing quote: up to the delimiter or the line break.
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === D) {
        count++;
        i++;
        continue outer;
      }
      if (c === 10) {
        endRecord(i + 1);
        i++;
        continue outer;
      }
      if (c === 34) fault ??= STRAY_QUOTE;
    }
  }
  if (atEof && recordStart < n && i >= n) endRecord(n);
  return { end: last, bad, ...(firstFields !== undefined ? { firstFields } : {}) };
}

/** The index just past the last complete record of comma-separated `text`, or -1 (scanRecords). */
export function lastRecordEnd(text: string): number {
  return scanRecords(text, ",", false).end;
}

type LineBreak = "\r" | "\n" | "\r\n";

/** Rows of one piece of a CSV file, and the reasons some of them are malformed (index in `rows` -> reason). */
export interface CsvPiece {
  rows: string[][];
  faults?: Map<number, string>;
}

/**
 * Rows of CSV text read in chunks: each chunk is cut after its last complete record (scanRecords) and the
 * rest carried into the next; the records between malformed ones are parsed whole by PapaParse, and each
 * malformed record on its own, to be rejected with its reason and raw values. (PapaParse's own Node stream
 * re-slices its input every time a consumer applies backpressure, which made a 1M-row load quadratic.)
 */
async function* csvRows(
  Papa: typeof import("papaparse"),
  input: AsyncIterable<string>,
  file: string,
  delimiter: string | undefined,
): AsyncGenerator<CsvPiece> {
  let delim = delimiter;
  let newline: LineBreak | undefined;
  let fields: number | undefined;
  const parse = (text: string): string[][] => {
    const result = Papa.parse<string[]>(text, {
      delimiter: delim ?? "",
      delimitersToGuess: [",", ";", "\t", "|"],
      skipEmptyLines: true,
      ...(newline ? { newline } : {}),
    });
    // The line break guessed from the first piece holds for the whole file (guessing it splits each piece
    // into lines twice more: a tenth of the parse).
    newline ??= result.meta.linebreak as LineBreak;
    return result.data;
  };
  const piece = (text: string, scan: RecordScan): CsvPiece => {
    if (scan.bad.length === 0) return { rows: parse(text) };
    const rows: string[][] = [];
    const faults = new Map<number, string>();
    let at = 0;
    for (const b of scan.bad) {
      if (b.start > at) for (const r of parse(text.slice(at, b.start))) rows.push(r);
      const recordText = text.slice(b.start, b.end);
      const own = parse(recordText);
      faults.set(rows.length, b.reason);
      rows.push(own.length === 1 ? (own[0] as string[]) : [recordText.replace(/\r?\n$/, "")]);
      at = b.end;
    }
    if (at < text.length) for (const r of parse(text.slice(at))) rows.push(r);
    return { rows, faults };
  };
  let carry = "";
  let first = true;
  const cut = (text: string, atEof: boolean): CsvPiece | undefined => {
    if (first && delim === undefined) {
      // The scan needs the delimiter: PapaParse guesses it from the first rows.
      const head = text.slice(0, 1 << 16);
      delim = Papa.parse<string[]>(head, { delimitersToGuess: [",", ";", "\t", "|"], preview: 20, skipEmptyLines: true }).meta.delimiter || ",";
    }
    const scan = scanRecords(text, delim as string, atEof, fields);
    if (first && scan.end >= 0) {
      first = false;
      // The first record's fields (the header's, as a rule) are what a record spanning lines must keep.
      fields = scan.firstFields ?? (text.slice(0, text.indexOf("\n") < 0 ? text.length : text.indexOf("\n")).split(delim as string).length);
    }
    if (scan.end < 0) {
      carry = text;
      return undefined;
    }
    carry = text.slice(scan.end);
    const out = piece(text.slice(0, scan.end), scan);
    return out.rows.length > 0 ? out : undefined;
  };
  for await (const chunk of input) {
    const text = carry + chunk;
    const out = cut(text, false);
    if (carry.length > MAX_CARRY) {
      throw new Error(`${file}: more than 64 MiB without a line break outside quotes; is a quote (") left open?`);
    }
    if (out) yield out;
  }
  while (carry.length > 0) {
    const before = carry.length;
    const out = cut(carry, true);
    if (out) yield out;
    if (carry.length >= before) break;
  }
}

/** `piece` without its first `n` rows; the faults' row numbers move with them. */
function withoutFirstRows(piece: CsvPiece, n: number): CsvPiece {
  if (!piece.faults) return { rows: piece.rows.slice(n) };
  const faults = new Map([...piece.faults].filter(([k]) => k >= n).map(([k, v]) => [k - n, v]));
  return { rows: piece.rows.slice(n), ...(faults.size > 0 ? { faults } : {}) };
}

/** Opens a CSV file (first row = header) as a record source. */
export async function openCsv(file: string, options: CsvOptions = {}): Promise<RecordSource> {
  const Papa = (await import("papaparse")).default;
  const size = fs.statSync(file).size;
  // 64 KiB reads (about 800 rows): each read's parsed rows are garbage before V8 would move them into its old
  // space. 1 MiB reads grew the heap by tens of MB; 256 KiB reads still let the peak grow with the file's
  // length (read path alone, 1M vs 10M bars: 134 vs 167 MB at 256 KiB, 125 vs 141 MB at 64 KiB).
  const raw = fs.createReadStream(file, { highWaterMark: 1 << 16 });
  const input = isGzip(file) ? raw.pipe(zlib.createGunzip()) : raw;
  // pipe() does not forward the file's errors to the gunzip stream the reader iterates.
  if (input !== raw) raw.on("error", (err: Error) => input.destroy(err));
  // Decode UTF-8 on the stream, so a character split between two reads stays whole.
  input.setEncoding("utf8");
  // Rows come out as arrays of strings; a short or long row is passed on (and becomes a reject with its
  // reason), never an exception that stops the load.
  const pieces = csvRows(Papa, input as AsyncIterable<string>, file, options.delimiter);
  let pending: CsvPiece = { rows: [] };
  let first: string[] | undefined;
  while (first === undefined) {
    const next = await pieces.next();
    if (next.done) {
      raw.destroy();
      throw new Error(`${file}: the CSV file is empty; it needs a header row naming the columns (or data rows and --columns).`);
    }
    pending = next.value;
    first = pending.rows[0];
  }
  let columns: string[];
  try {
    const header = headerOf(file, first, options.columns);
    columns = header.columns;
    if (!header.firstIsData) {
      const fault = pending.faults?.get(0);
      if (fault !== undefined) throw new Error(`${file}: the header row is malformed: ${fault}.`);
      pending = withoutFirstRows(pending, 1);
      // yfinance >= 0.2.51: two more header rows (tickers, index name); lib/loader/sources/yfinance.ts.
      const yfinance = yfinanceCsvHeader(columns, pending.rows);
      if (yfinance) {
        columns = yfinance;
        pending = withoutFirstRows(pending, 2);
      }
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
      for (let p: CsvPiece | undefined = pending; p !== undefined; ) {
        for (let i = 0; i < p.rows.length; i += RECORDS_PER_BATCH) {
          const batch: FaultyBatch = p.rows.slice(i, i + RECORDS_PER_BATCH);
          if (p.faults) {
            for (const [k, reason] of p.faults) {
              if (k >= i && k < i + RECORDS_PER_BATCH) (batch.faults ??= new Map()).set(k - i, reason);
            }
          }
          yield batch;
        }
        const next = await pieces.next();
        p = next.done ? undefined : next.value;
      }
    },
    close: async () => {
      raw.destroy();
      input.destroy();
      await pieces.return(undefined);
    },
  };
}
