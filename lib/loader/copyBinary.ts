/**
 * Bars in COPY's binary format (PostgreSQL, "COPY ... File Formats, Binary Format"), for a streamed load into a
 * target of the contract's column types (target.ts binaryCopyFits). The server then takes each time and value as
 * it stores it (timestamptz_recv, numeric_recv) instead of parsing text (timestamptz_in, numeric_in): about a
 * tenth less server CPU a bar on the native TimescaleDB server (1M bars: 6.05-7.26 s against 6.97-7.43 s), where
 * a load into an empty or appended-to hypertable is server-bound (bench/load.md).
 *
 * Each value is encoded from the same checked text the text format would send, so both formats store the same
 * numeric (digits and display scale) and the same instant.
 */
import { valuesOf } from "./chunkRows";
import type { Chunk } from "./readSource";
import { MAX_FRAC_DIGITS, MAX_INT_DIGITS, parseDecimal, writtenScale } from "./rowValidation";

/** The binary COPY header: signature, flags (no OIDs), header extension length 0. */
export const BINARY_HEADER = Buffer.concat([Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)]);
/** The binary COPY trailer: a field count of -1. */
export const BINARY_TRAILER = Buffer.from([0xff, 0xff]);

/** Fields of a row: COLUMNS in readSource.ts. */
const FIELDS = 11;
/** 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix epoch microseconds. */
const PG_EPOCH_MICROS = 946_684_800_000_000;
const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
/** Most base-10000 digits a checked value has: groups of four digits each side of the point. */
const MAX_GROUPS = Math.ceil(MAX_INT_DIGITS / 4) + Math.ceil(MAX_FRAC_DIGITS / 4);
/** Bytes a value can take: length, header (ndigits, weight, sign, dscale), digits. */
const MAX_VALUE_BYTES = 4 + 8 + 2 * MAX_GROUPS;
/** Bytes a row can take beyond its key: field count, time, six values. */
const MAX_ROW_BYTES = 2 + 12 + 6 * MAX_VALUE_BYTES;

/** The four key fields (symbol, exchange, provider, timeframe) as binary COPY fields: the same for every row of a series. */
export function binaryKey(key: readonly string[]): Buffer {
  const parts = key.map((s) => Buffer.from(s, "utf8"));
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    at = out.writeInt32BE(p.length, at);
    at += p.copy(out, at);
  }
  return out;
}

/** Writes a 32-bit big-endian integer at `at` (plain stores: Buffer's writeInt32BE checks and dispatches, a row writes about 30). */
function put32(buf: Buffer, at: number, v: number): number {
  buf[at] = v >>> 24;
  buf[at + 1] = v >>> 16;
  buf[at + 2] = v >>> 8;
  buf[at + 3] = v;
  return at + 4;
}

function put16(buf: Buffer, at: number, v: number): number {
  buf[at] = v >>> 8;
  buf[at + 1] = v;
  return at + 2;
}

/**
 * Appends one row to a binary chunk: the series' key fields (binaryKey), the time (Unix epoch microseconds) and
 * the six values open .. adj_close as checked decimal text; a missing value (undefined, null, "") is NULL.
 */
export function appendBinaryRow(chunk: Chunk, key: Buffer, micros: number, values: ReadonlyArray<string | null | undefined>): void {
  if (chunk.bytes.length - chunk.used < key.length + MAX_ROW_BYTES) {
    const grown = Buffer.allocUnsafe(Math.max(chunk.bytes.length * 2, chunk.used + key.length + MAX_ROW_BYTES));
    chunk.bytes.copy(grown, 0, 0, chunk.used);
    chunk.bytes = grown;
  }
  const buf = chunk.bytes;
  let at = put16(buf, chunk.used, FIELDS);
  at += key.copy(buf, at);
  at = put32(buf, at, 8);
  // An int64 written as two halves: exact for every microsecond a double holds exactly (|t| < 2^53, 285 years).
  const t = micros - PG_EPOCH_MICROS;
  const high = Math.floor(t / 4_294_967_296);
  at = put32(buf, at, high);
  at = put32(buf, at, t - high * 4_294_967_296);
  for (let i = 0; i < 6; i++) {
    const v = values[i];
    at = v === undefined || v === null || v === "" ? put32(buf, at, -1) : writeNumeric(buf, at, v);
  }
  chunk.used = at;
}

/**
 * Writes decimal text as a binary numeric field: the value and display scale numeric_in gives the same text
 * (`10.50` keeps scale 2, `1.5e-3` has scale 4, `-0` is 0). A plain decimal (the hot path) is read in place;
 * signs, a leading or trailing point and exponents go through parseDecimal.
 */
export function writeNumeric(buf: Buffer, at: number, text: string): number {
  const len = text.length;
  let point = -1;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 && point < 0 && i > 0 && i < len - 1) point = i;
    else if (c < 48 || c > 57) return writeOther(buf, at, text);
  }
  const intEnd = point < 0 ? len : point;
  let intStart = 0;
  while (intStart < intEnd && text.charCodeAt(intStart) === 48) intStart++;
  const fracStart = point < 0 ? len : point + 1;
  let fracEnd = len;
  while (fracEnd > fracStart && text.charCodeAt(fracEnd - 1) === 48) fracEnd--;
  return writeDigits(buf, at, text, intStart, intEnd, fracStart, fracEnd, false, len - fracStart);
}

/** writeNumeric for text that is not a plain unsigned decimal: `+5`, `-0.5`, `.5`, `5.`, `1.50E1`. */
function writeOther(buf: Buffer, at: number, text: string): number {
  const d = parseDecimal(text);
  if (!d) throw new Error(`binary COPY: ${JSON.stringify(text)} is not a decimal (the row checks pass only decimals; this is a loader bug)`);
  const digits = `${d.int}.${d.frac}`;
  return writeDigits(buf, at, digits, 0, d.int.length, d.int.length + 1, digits.length, d.negative, writtenScale(text));
}

/**
 * Writes the numeric whose integer digits are text[intStart, intEnd) (no leading zero) and fraction digits
 * text[fracStart, fracEnd) (no trailing zero), as numeric_send does: length, digit count, weight (of the first
 * digit), sign, display scale, then base-10000 digits aligned on the point, without leading or trailing zero
 * digits. The digits are written as they are made, the header after them.
 */
function writeDigits(buf: Buffer, at: number, text: string, intStart: number, intEnd: number, fracStart: number, fracEnd: number, negative: boolean, scale: number): number {
  const intLen = intEnd - intStart;
  if (intLen > MAX_INT_DIGITS || fracEnd - fracStart > MAX_FRAC_DIGITS) {
    throw new Error(`binary COPY: ${JSON.stringify(text)} has more digits than the row checks allow (a loader bug)`);
  }
  const digitsAt = at + 12;
  let end = digitsAt;
  // The end of the last nonzero digit written: trailing zero digits are cut back to it.
  let kept = digitsAt;
  let weight = intLen > 0 ? ((intLen + 3) >> 2) - 1 : -1;
  let i = intStart;
  // The first digit takes what is left over of the integer digits after whole groups of four.
  let take = intLen % 4 || 4;
  while (i < intEnd) {
    let g = 0;
    for (let c = 0; c < take; c++) g = g * 10 + text.charCodeAt(i++) - 48;
    end = put16(buf, end, g);
    if (g !== 0) kept = end;
    take = 4;
  }
  for (i = fracStart; i < fracEnd; ) {
    let g = 0;
    for (let c = 0; c < 4; c++) g = g * 10 + (i < fracEnd ? text.charCodeAt(i++) - 48 : 0);
    // Leading zero digits (a value below 1: 0.00001234) are not written; each lowers the weight.
    if (g === 0 && end === digitsAt) {
      weight--;
      continue;
    }
    end = put16(buf, end, g);
    if (g !== 0) kept = end;
  }
  const ndigits = (kept - digitsAt) >> 1;
  put32(buf, at, 8 + 2 * ndigits);
  put16(buf, at + 4, ndigits);
  put16(buf, at + 6, ndigits === 0 ? 0 : weight);
  put16(buf, at + 8, negative && ndigits > 0 ? NUMERIC_NEG : NUMERIC_POS);
  put16(buf, at + 10, scale);
  return kept;
}

/**
 * A text chunk's rows as a binary chunk (the probed first chunk of a streamed load, made before the stream's
 * format was known); `keyOf` gives a series id's key fields (binaryKey).
 */
export function binaryChunk(chunk: Chunk, keyOf: (series: number) => Buffer): Chunk {
  if (chunk.binary || chunk.ends.length === 0) return chunk;
  const out: Chunk = { ...chunk, binary: true, ends: new Int32Array(chunk.n), bytes: Buffer.allocUnsafe(chunk.used + 64 * chunk.n), used: 0 };
  for (let k = 0; k < chunk.n; k++) {
    appendBinaryRow(out, keyOf(chunk.series[k] as number), chunk.micros[k] as number, valuesOf(chunk, k));
    out.ends[k] = out.used;
  }
  return out;
}
