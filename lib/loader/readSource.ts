/**
 * Stages 1-3 of a load, without a database: open one source, plan where each table field comes from, read
 * its records, check each row (rowValidation.ts, in-file duplicates) and gather the valid ones in chunks of
 * COPY text or column values, which OhlcvLoader.ts writes (writePlan.ts).
 */
import type { PathKey } from "./columnMapping";
import { type Field, matchPathPattern, resolveColumns } from "./columnMapping";
import { appendBinaryRow, binaryKey } from "./copyBinary";
import { TimeKeySet } from "./keySet";
import { type BarText, type InconsistentOhlcRule, type RowCheck, type ValueTypes, checkBar, normalizeTimeframe, numericText, shiftDecimal, timeframeFault } from "./rowValidation";
import { type SourceFormat, formatEntry, formatOf, optionFault } from "./formats";
import type { FaultyBatch, RecordSource } from "./sources/types";
import { longTickers } from "./sources/yfinance";
import { type AmbiguousTimeRule, LocalZone } from "./timeZone";
import { combineDateTime, isTimeOfDay, microsToSql, shown } from "./timestamps";

/** The columns of the bar table, in the order of a COPY line. */
export const COLUMNS = ["symbol", "exchange", "provider", "timeframe", "time", "open", "high", "low", "close", "volume", "adj_close"] as const;

/** What reading a source needs from a load's options (LoadOptions extends it). */
export interface ReadOptions {
  /** Source format; default from each file's extension. */
  format?: SourceFormat;
  /** SQLite table to read (default `ohlcv_data`). */
  table?: string;
  /** CSV delimiter (default: detected). */
  delimiter?: string;
  /** Column names of a CSV file without a header row (its first row is data). */
  columns?: readonly string[];
  /** Fixed values; a flag wins over a column, a column over the path pattern, that over file metadata. */
  symbol?: string;
  provider?: string;
  timeframe?: string;
  exchange?: string;
  /** e.g. `data/{provider}/{symbol}/{timeframe}/*.parquet`. */
  pathPattern?: string;
  /** Explicit field -> source column mapping. */
  map?: Partial<Record<Field, string>>;
  /** Fail (and load nothing) on the first invalid row. */
  strict?: boolean;
  /** IANA time zone of zone-less date-times (default: they are UTC); plain dates stay dates. */
  timezone?: string;
  /** A zone-less time that occurs twice in `timezone`: reject (default), or take the earlier or later instant. */
  ambiguousTime?: AmbiguousTimeRule;
  /** Bars with inconsistent OHLC: rejected (default), kept and listed (`flag`), or kept (`keep`). */
  inconsistentOhlc?: InconsistentOhlcRule;
  /** Prices (open, high, low, close, adj_close) are divided by this power of ten (QuantConnect Lean: 10000). */
  priceDivisor?: number;
}

/**
 * What a reader reports while it reads: each invalid row (the source's name, 1-based row number, reason, raw
 * values and the source's columns: RejectsWriter.add's arguments) and progress.
 */
export interface ReadEvents {
  reject(source: string, row: number, reason: string, record: readonly unknown[], columns: readonly string[]): void;
  progress(read: number, fraction: number | undefined): void;
  /** A bar kept with inconsistent OHLC under the `flag` rule: its source, row and why. */
  flagged?(source: string, row: number, reason: string): void;
}

/**
 * How chunks are made: COPY text or values, and rows per chunk (at most). CheckedSource.streamShape lowers the
 * rows and may switch text to binary COPY (copyBinary.ts) for the chunks made after it.
 */
export interface ChunkShape {
  asText: boolean;
  chunkRows: number;
  binary?: boolean;
}

/** A series' key and time range (epoch microseconds) over the rows read. */
export interface SeriesSpan {
  key: readonly string[];
  lo: number;
  hi: number;
}

/** One source being read into checked chunks. */
export interface CheckedSource {
  readonly name: string;
  readonly columns: readonly string[];
  readonly totalRows: number | undefined;
  /** Records read and rejected so far (final once `chunks()` is done). */
  readonly read: number;
  readonly rejected: number;
  /** Bars kept with inconsistent OHLC (rules `flag` and `keep`). */
  readonly inconsistent: number;
  /** The key of series `id`, for every id a yielded chunk holds. */
  seriesKey(id: number): readonly [symbol: string, exchange: string, provider: string, timeframe: string];
  /** Each series' time range, once `chunks()` is done. */
  spans(): SeriesSpan[];
  chunks(): AsyncGenerator<Chunk>;
  /**
   * For a streamed load (writePlan.ts): caps the rows of the chunks `chunks()` makes from now on (STREAM_CHUNK_ROWS)
   * and, with `binary`, makes text chunks binary COPY rows from now on.
   */
  streamShape(rows: number, binary: boolean): void;
  close(): Promise<void>;
}

// formatOf is the registry's; importers of this module (tests) find it here too.
export { formatOf } from "./formats";

/** Opens one source file with the reader for its format. */
export async function openSource(file: string, options: Pick<ReadOptions, "format" | "table" | "delimiter" | "columns" | "timezone" | "map"> = {}): Promise<RecordSource> {
  // yfinance's (price, ticker) columns as one long table, unless the mapping names such a column itself.
  return longTickers(await openRecords(file, options), new Set(Object.values(options.map ?? {})));
}

async function openRecords(file: string, options: Pick<ReadOptions, "format" | "table" | "delimiter" | "columns" | "timezone">): Promise<RecordSource> {
  const format = options.format ?? formatOf(file);
  // Headerless column names would be ignored by a format that has its own; the other format options are
  // ignored by formats they do not apply to (a directory may mix CSV and SQLite files under one --table).
  if (options.columns && optionFault("columns", format)) throw new Error(`${file}: --columns names the columns of a headerless CSV file; this is ${format}.`);
  const reader = { table: options.table, delimiter: options.delimiter, columns: options.columns, timezone: options.timezone };
  return formatEntry(format).open(file, reader, (inner) => openRecords(inner, { ...options, format: undefined }));
}

// COPY text format: backslash, tab, newline and carriage return must be escaped in text values.
function copyText(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r") : s;
}

/** Where each table field of one source comes from: a column index, or one value for every row. */
interface SourcePlan {
  idx: ReturnType<typeof resolveColumns>;
  /** Values fixed for the whole source (flag, path pattern, file metadata); undefined means "from a column". */
  constants: Partial<Record<PathKey, string>>;
  /** The zone of zone-less date-times, when the load names one. */
  zone: LocalZone | undefined;
  /** Decimal places prices are shifted right-to-left by (log10 of the price divisor); 0 for none. */
  pricePlaces: number;
}

/** Stage 1: resolves columns and fixed values; throws when symbol or timeframe has no source at all. */
function planSource(file: string, source: RecordSource, options: ReadOptions): SourcePlan {
  const fromPath = options.pathPattern ? matchPathPattern(options.pathPattern, file) : {};
  const idx = resolveColumns(source.columns, options.map, ["time", "open", "high", "low", "close"], source.name);
  const constants: Partial<Record<PathKey, string>> = {};
  for (const key of ["symbol", "exchange", "provider", "timeframe"] as const) {
    const flag = options[key];
    const fallback = fromPath[key] ?? source.declared[key];
    if (flag !== undefined) constants[key] = flag;
    else if (idx[key] === undefined) constants[key] = fallback ?? "";
    if ((key === "symbol" || key === "timeframe") && constants[key] === "") {
      throw new Error(`${source.name}: no ${key}; give --${key}, a ${key} column, or a --path-pattern with {${key}}.`);
    }
  }
  const tf = constants.timeframe;
  if (tf !== undefined) {
    const normal = normalizeTimeframe(tf);
    if (normal === undefined) {
      const from = options.timeframe !== undefined ? "--timeframe" : fromPath.timeframe !== undefined ? "--path-pattern" : "the file's metadata";
      throw new Error(`${source.name}: timeframe ${JSON.stringify(tf)} (from ${from}) ${timeframeFault(tf)}.`);
    }
    constants.timeframe = normal;
  }
  const zone = options.timezone === undefined ? undefined : new LocalZone(options.timezone, options.ambiguousTime);
  return { idx, constants, zone, pricePlaces: options.priceDivisor === undefined ? 0 : Math.round(Math.log10(options.priceDivisor)) };
}

function text(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v.trim();
  return String(v);
}

/**
 * Stage 2: one record as a bar in table terms (every value text), with the reason the timeframe column's
 * value is refused, if it is. Normalised timeframes are cached per distinct raw value.
 */
function barReader(plan: SourcePlan): { read(row: unknown[]): BarText; fault: string | undefined } {
  const { idx, constants: c } = plan;
  const timeframes = new Map<string, string | undefined>();
  const pick = (row: unknown[], field: Field): unknown => {
    const i = idx[field];
    return i === undefined ? undefined : row[i];
  };
  const dateIdx = idx.date;
  const timeIdx = idx.time;
  const places = plan.pricePlaces;
  const price = (value: unknown): string | undefined => {
    const t = numericText(value);
    return places === 0 || t === undefined || t === "" ? t : shiftDecimal(t, places);
  };
  const values = new Float64Array(4);
  const bar: BarText = {
    symbol: "", exchange: "", provider: "", timeframe: "", time: undefined, parsedTime: undefined, priceValues: undefined,
    open: undefined, high: undefined, low: undefined, close: undefined, volume: undefined, adjClose: undefined,
  };
  // One object for the whole source: `fault` is the last row's timeframe problem (no allocation per row).
  const reader = {
    fault: undefined as string | undefined,
    read(row: unknown[]): BarText {
      let timeframe = c.timeframe;
      reader.fault = undefined;
      if (timeframe === undefined) {
        const raw = text(pick(row, "timeframe"));
        if (!timeframes.has(raw)) timeframes.set(raw, normalizeTimeframe(raw));
        timeframe = timeframes.get(raw) ?? "";
        if (raw !== "" && timeframe === "") reader.fault = `timeframe ${shown(raw)} ${timeframeFault(raw)}`;
      }
      const time = timeIdx === undefined ? undefined : row[timeIdx];
      // One object for every row of the source, overwritten: nothing keeps a bar past the row (a million
      // short-lived objects were a good part of the garbage collector's work).
      bar.symbol = c.symbol ?? text(pick(row, "symbol"));
      bar.exchange = c.exchange ?? text(pick(row, "exchange"));
      bar.provider = c.provider ?? text(pick(row, "provider"));
      bar.timeframe = timeframe;
      bar.time = time;
      const o = pick(row, "open");
      const h = pick(row, "high");
      const l = pick(row, "low");
      const cl = pick(row, "close");
      bar.open = price(o);
      bar.high = price(h);
      bar.low = price(l);
      bar.close = price(cl);
      if (places === 0 && typeof o === "number" && typeof h === "number" && typeof l === "number" && typeof cl === "number") {
        values[0] = o;
        values[1] = h;
        values[2] = l;
        values[3] = cl;
        bar.priceValues = values;
      } else {
        bar.priceValues = undefined;
      }
      bar.volume = idx.volume === undefined ? undefined : numericText(pick(row, "volume"));
      bar.adjClose = idx.adj_close === undefined ? undefined : price(pick(row, "adj_close"));
      // Date and time in two columns: a time of day joins the date; a full timestamp stands alone.
      bar.parsedTime = dateIdx !== undefined && isTimeOfDay(time) ? combineDateTime(row[dateIdx], time, plan.zone) : undefined;
      return bar;
    },
  };
  return reader;
}

/** One series of a source: its key, the times seen (in-file duplicates) and its time range. */
interface Series {
  key: [symbol: string, exchange: string, provider: string, timeframe: string];
  times: TimeKeySet;
  lo: number;
  hi: number;
}

/** The series of one source, numbered in order of appearance. */
class SeriesTracker {
  private readonly byKey = new Map<string, number>();
  readonly list: Series[] = [];
  private last: Series | undefined;
  private lastId = -1;

  /** The id of the bar's series (rows of one series usually follow each other: no key string then). */
  idOf(bar: BarText): number {
    const l = this.last;
    if (l && l.key[0] === bar.symbol && l.key[3] === bar.timeframe && l.key[1] === bar.exchange && l.key[2] === bar.provider) return this.lastId;
    const name = `${bar.symbol}\u0000${bar.exchange}\u0000${bar.provider}\u0000${bar.timeframe}`;
    let id = this.byKey.get(name);
    if (id === undefined) {
      id = this.list.length;
      this.byKey.set(name, id);
      this.list.push({ key: [bar.symbol, bar.exchange, bar.provider, bar.timeframe], times: new TimeKeySet(), lo: Infinity, hi: -Infinity });
    }
    this.last = this.list[id];
    this.lastId = id;
    return id;
  }

  /** Records the time in its series; the reason it is a duplicate when an earlier row had it. */
  add(id: number, micros: number): string | undefined {
    const s = this.list[id] as Series;
    if (!s.times.add(micros)) {
      return `duplicate key (${s.key.join(", ")}, ${microsToSql(micros)}) already seen earlier in this source`;
    }
    if (micros < s.lo) s.lo = micros;
    if (micros > s.hi) s.hi = micros;
    return undefined;
  }

  ranges(): SeriesSpan[] {
    return this.list.filter((s) => s.lo <= s.hi);
  }
}

/**
 * Consecutive valid rows of one source: each row's series id and time, and the row itself, either as COPY
 * text in one buffer (`ends[k]` is where row k ends) or as column values. Text goes into a buffer as it is
 * made: the line strings then die young, where holding a chunk of them would move them into V8's old space
 * and grow the heap by their garbage (peak RSS). A `binary` chunk holds binary COPY rows instead of text
 * (copyBinary.ts): only a streamed COPY takes it, never a probe or a pick (chunkRows.ts reads text).
 */
export interface Chunk {
  n: number;
  binary: boolean;
  series: Int32Array;
  micros: Float64Array;
  ends: Int32Array;
  bytes: Buffer;
  used: number;
  values: Array<Array<string | null>>;
}

function newChunk(size: number, asText: boolean, binary = false): Chunk {
  return {
    n: 0,
    binary: asText && binary,
    series: new Int32Array(size),
    micros: new Float64Array(size),
    ends: new Int32Array(asText ? size : 0),
    bytes: Buffer.allocUnsafe(asText ? size * 128 : 0),
    used: 0,
    values: [],
  };
}

function appendLine(chunk: Chunk, line: string): void {
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  if (chunk.bytes.length - chunk.used < line.length * 3) {
    const grown = Buffer.allocUnsafe(Math.max(chunk.bytes.length * 2, chunk.used + line.length * 3));
    chunk.bytes.copy(grown, 0, 0, chunk.used);
    chunk.bytes = grown;
  }
  chunk.used += chunk.bytes.write(line, chunk.used);
}

/**
 * Rows of the first chunk; each next one doubles, up to the chunk size. Small, so the server starts on the
 * first rows about 20 ms after the file opens rather than after the first 4,096 (into an empty
 * table the server then never waits on the client again).
 */
const FIRST_CHUNK_ROWS = 256;

/** The last field of a row without adj_close: NULL and the line's end. */
const NULL_LINE_END = "\\N\n";

/**
 * Stage 3: reads the source's batches, checks each row (rowValidation.ts, in-file duplicates), sends invalid
 * rows to the rejects (`events.reject`) and yields the valid ones in chunks of up to `chunkRows`.
 */
async function* checkedChunks(
  source: RecordSource,
  plan: SourcePlan,
  ctx: {
    strict: boolean;
    ohlc: InconsistentOhlcRule;
    events: ReadEvents;
    counts: { read: number; rejected: number; inconsistent: number };
    series: SeriesTracker;
    types: ValueTypes | undefined;
  },
  shape: ChunkShape,
): AsyncGenerator<Chunk> {
  const { events, counts, series } = ctx;
  const { asText } = shape;
  const reader = barReader(plan);
  // The first chunks are small, so the server starts writing while the client is still on its first rows.
  // shape is read at every chunk: streamShape may change it once the write plan is known.
  let size = Math.min(shape.chunkRows, FIRST_CHUNK_ROWS);
  let chunk = newChunk(size, asText, shape.binary);
  // A row's COPY line: its series' key fields (the same every row of the series, escaped once), then time and values.
  const line: string[] = new Array<string>(COLUMNS.length - 3).fill("");
  const keyText: string[] = [];
  // A binary row's key fields and values (open .. adj_close), likewise.
  const keyBinary: Buffer[] = [];
  const values: Array<string | undefined> = new Array<string | undefined>(6);
  for await (const batch of source.batches()) {
    // Records the reader found malformed (sources/types.ts FaultyBatch), by index in the batch.
    const faults = (batch as FaultyBatch).faults;
    let index = -1;
    for (const row of batch) {
      counts.read++;
      index++;
      const bar = reader.read(row);
      const fault = faults === undefined ? reader.fault : (faults.get(index) ?? reader.fault);
      let check: RowCheck = fault === undefined ? checkBar(bar, ctx.types, plan.zone, ctx.ohlc) : { ok: false, reason: fault };
      let id = -1;
      if (check.ok) {
        id = series.idOf(bar);
        const duplicate = series.add(id, check.micros);
        if (duplicate) check = { ok: false, reason: duplicate };
      }
      if (!check.ok) {
        counts.rejected++;
        events.reject(source.name, counts.read, check.reason, row, source.columns);
        if (ctx.strict) {
          throw new Error(`${source.name} row ${counts.read}: ${check.reason} (--strict stops on the first invalid row; nothing was loaded).`);
        }
        continue;
      }
      if (check.inconsistent !== undefined) {
        counts.inconsistent++;
        if (ctx.ohlc === "flag") events.flagged?.(source.name, counts.read, check.inconsistent);
      }
      const k = chunk.n++;
      chunk.series[k] = id;
      chunk.micros[k] = check.micros;
      if (chunk.binary) {
        values[0] = bar.open;
        values[1] = bar.high;
        values[2] = bar.low;
        values[3] = bar.close;
        values[4] = bar.volume || "0";
        values[5] = bar.adjClose;
        appendBinaryRow(chunk, (keyBinary[id] ??= binaryKey((series.list[id] as Series).key)), check.micros, values);
        chunk.ends[k] = chunk.used;
      } else if (asText) {
        // One join, not a template: a template of 22 parts builds about twenty intermediate strings a row
        // (1 KB of garbage a row, half of a CSV load's allocations).
        line[0] = keyText[id] ??= `${copyText(bar.symbol)}\t${copyText(bar.exchange)}\t${copyText(bar.provider)}\t${bar.timeframe}`;
        line[1] = microsToSql(check.micros);
        line[2] = bar.open ?? "";
        line[3] = bar.high ?? "";
        line[4] = bar.low ?? "";
        line[5] = bar.close ?? "";
        line[6] = bar.volume || "0";
        line[7] = bar.adjClose ? `${bar.adjClose}\n` : NULL_LINE_END;
        appendLine(chunk, line.join("\t"));
        chunk.ends[k] = chunk.used;
      } else {
        chunk.values.push([bar.symbol, bar.exchange, bar.provider, bar.timeframe, microsToSql(check.micros),
          bar.open ?? "", bar.high ?? "", bar.low ?? "", bar.close ?? "", bar.volume || "0", bar.adjClose || null]);
      }
      if (chunk.n === size) {
        yield chunk;
        size = Math.min(shape.chunkRows, size * 2);
        chunk = newChunk(size, asText, shape.binary);
      }
      // A macrotask turn every 256 rows: the socket sends the previous chunk's COPY while this one is parsed.
      // pg-copy-streams writes one piece per socket drain, and drains are only seen between turns; a source
      // whose reads never wait on I/O (SQLite, a Parquet row group) would otherwise starve the server.
      if ((chunk.n & 255) === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    events.progress(counts.read, source.fractionRead());
  }
  if (chunk.n > 0) yield chunk;
}

/**
 * Opens `file` and plans it (throwing what a bad file or missing symbol/timeframe says), then reads it on
 * this thread as chunks() is iterated. `types`: the target's value column types when they are not
 * unconstrained numeric (rowValidation.ts checkBar).
 */
export async function openChecked(file: string, options: ReadOptions, shape: ChunkShape, events: ReadEvents, types?: ValueTypes): Promise<CheckedSource> {
  const source = await openSource(file, options);
  let plan: SourcePlan;
  try {
    plan = planSource(file, source, options);
  } catch (err) {
    await source.close();
    throw err;
  }
  const series = new SeriesTracker();
  const counts = { read: 0, rejected: 0, inconsistent: 0 };
  // This source's own: a cap on its chunks leaves the other sources of the load as they are.
  const sizing: ChunkShape = { ...shape };
  return {
    name: source.name,
    columns: source.columns,
    totalRows: source.totalRows,
    get read() {
      return counts.read;
    },
    get rejected() {
      return counts.rejected;
    },
    get inconsistent() {
      return counts.inconsistent;
    },
    seriesKey: (id) => (series.list[id] as Series).key,
    spans: () => series.ranges(),
    chunks: () => checkedChunks(source, plan, { strict: options.strict === true, ohlc: options.inconsistentOhlc ?? "reject", events, counts, series, types }, sizing),
    streamShape: (rows, binary) => {
      sizing.chunkRows = Math.min(sizing.chunkRows, rows);
      sizing.binary = binary;
    },
    close: () => source.close(),
  };
}
