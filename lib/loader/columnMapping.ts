/**
 * Which source column feeds which table column: explicit mapping first, then well-known names.
 * Also the path pattern (`data/{provider}/{symbol}/{timeframe}/*.parquet`) and source expansion
 * (file, directory, glob).
 */
import fs from "node:fs";
import path from "node:path";
import { KNOWN_EXTENSIONS } from "./formats";

// The registry's list, where directory expansion uses it; importers (tests) find it here too.
export { KNOWN_EXTENSIONS } from "./formats";

/** Table columns a source can feed; `date` is a calendar date whose time of day is in another column. */
export const FIELDS = [
  "time", "date", "symbol", "exchange", "provider", "timeframe", "open", "high", "low", "close", "volume", "adj_close",
] as const;
export type Field = (typeof FIELDS)[number];

/**
 * Source column names recognised for each field, the first present winning, compared after normalising
 * both sides (normalizeColumnName: case, `<...>`, spaces and dashes). Gathered from the exporters' own
 * headers: yfinance (Date/Datetime, Adj Close), backtrader and MetaTrader (Date, Time; <DATE>, <TIME>,
 * <TICKVOL>, <VOL>), Stooq (<TICKER>, <PER>, <DATE>, <TIME>, <VOL>), Binance klines (open_time, close_time),
 * Dukascopy (Gmt time, Local time), Polygon (t o h l c v; flat files' window_start), Alpaca and Alpha Vantage
 * (timestamp, adjusted_close), Tiingo (adjClose), IB (date, barCount), FXCM (TickQty), CoinAPI
 * (time_period_start, price_open, volume_traded), ccxt (timestamp), lumibot (asset_symbol, timestep, source).
 */
export const COLUMN_ALIASES: Record<Field, readonly string[]> = {
  time: [
    "ts_event", "timestamp", "timestamp_utc", "datetime", "date_time", "open_time", "window_start", "time_period_start",
    "gmt_time", "local_time", "begins_at", "time", "ts", "t",
  ],
  date: ["date", "trade_date"],
  symbol: ["symbol", "ticker", "instrument_id", "instrument", "asset_symbol", "sym"],
  exchange: ["exchange", "region", "venue", "mic"],
  provider: ["provider", "vendor", "source", "data_source"],
  timeframe: ["timeframe", "interval", "tf", "per", "period", "resolution", "bar_size", "granularity", "timestep"],
  open: ["open", "o", "open_price", "price_open", "openprice"],
  high: ["high", "h", "high_price", "price_high", "highprice"],
  low: ["low", "l", "low_price", "price_low", "lowprice"],
  close: ["close", "c", "close_price", "price_close", "closeprice"],
  volume: ["volume", "vol", "v", "volume_traded", "tick_volume", "tickvol", "tickqty"],
  adj_close: ["adj_close", "adjclose", "adjusted_close", "adjustedclose"],
};

/** Binance's kline CSV dumps (data.binance.vision) have no header; these are their 12 columns. */
export const BINANCE_KLINE_COLUMNS = [
  "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_asset_volume", "number_of_trades",
  "taker_buy_base_asset_volume", "taker_buy_quote_asset_volume", "ignore",
] as const;

/** Layouts of headerless files the loader knows by name (`--layout`). */
/**
 * QuantConnect Lean's daily and hour bar files (`20131001 00:00,6412000,6412000,6390000,6395000,123456`): no
 * header; prices in deci-cents, so they load with --price-divisor 10000.
 */
export const LEAN_BAR_COLUMNS = ["time", "open", "high", "low", "close", "volume"] as const;

export const LAYOUTS: Record<string, readonly string[]> = { "binance-kline": BINANCE_KLINE_COLUMNS, "lean-bars": LEAN_BAR_COLUMNS };

/** A header name as compared with aliases: lower case, no `<>` around it, runs of spaces, `-` and `_` as `_`. */
export function normalizeColumnName(name: string): string {
  return name.trim().toLowerCase().replace(/^<(.*)>$/, "$1").replace(/[\s_-]+/g, "_");
}

/** field -> index of the source column that feeds it. */
export type ColumnIndexes = Partial<Record<Field, number>>;

function aliasFor(field: Field): string {
  return COLUMN_ALIASES[field].join(", ");
}

/**
 * Resolves each field to a source column. `explicit` (field -> column name) wins; otherwise the first alias
 * present. A `date` column with no `time` column is the time; with one, each row's time is a time of day
 * joined to the date, or a full timestamp on its own (see OhlcvLoader's rowTime). Throws naming the missing
 * field and the columns the source has.
 */
export function resolveColumns(
  columns: readonly string[],
  explicit: Partial<Record<Field, string>> = {},
  required: readonly Field[] = ["time", "open", "high", "low", "close"],
  sourceName = "source",
): ColumnIndexes {
  const names = columns.map(normalizeColumnName);
  const out: ColumnIndexes = {};
  for (const field of FIELDS) {
    const want = explicit[field];
    if (want !== undefined) {
      let i = columns.findIndex((c) => c.trim().toLowerCase() === want.trim().toLowerCase());
      if (i < 0 && want.trim() !== "") i = names.indexOf(normalizeColumnName(want));
      if (i < 0) {
        throw new Error(`${sourceName}: mapped column ${JSON.stringify(want)} for ${field} is not among its columns (${columns.join(", ")}).`);
      }
      out[field] = i;
      continue;
    }
    for (const alias of COLUMN_ALIASES[field]) {
      const i = names.indexOf(alias);
      if (i >= 0) {
        out[field] = i;
        break;
      }
    }
  }
  // pandas' to_csv() writes an unnamed index (a DatetimeIndex) as a first column without a name.
  if (out.time === undefined && out.date === undefined && columns.length > 1 && (columns[0] ?? "").trim() === "" && !Object.values(out).includes(0)) out.time = 0;
  if (out.time === undefined || out.time === out.date) {
    out.time = out.date;
    delete out.date;
  }
  for (const field of required) {
    if (out[field] === undefined) {
      const also = field === "time" ? `, or a date column (${aliasFor("date")}) with or without a time column` : "";
      throw new Error(
        `${sourceName}: no column for ${field}; expected one of ${aliasFor(field)}${also} ` +
          `(or map one with --map ${field}=COLUMN). Columns: ${columns.join(", ")}.`,
      );
    }
  }
  return out;
}

const MAP_FORMS =
  'FIELD=COLUMN,... (a COLUMN with a comma or quote in double quotes, "" for a quote: close="(\'Close\', \'AAPL\')"; ' +
  'time= or time="" for a column without a name), or a JSON object {"FIELD": "COLUMN"}';

/**
 * Parses the CLI's --map into an explicit mapping: `field=column,field=column`, where a column in double quotes
 * may hold commas (`close="('Close', 'AAPL')"`, `""` inside for a quote) and an empty column names the one
 * without a name (pandas' unnamed index); or the same as a JSON object.
 */
export function parseMapping(text: string): Partial<Record<Field, string>> {
  const out: Partial<Record<Field, string>> = {};
  const set = (field: string, column: string, entry: string) => {
    if (!(FIELDS as readonly string[]).includes(field)) {
      throw new Error(`--map entry ${JSON.stringify(entry)}: ${JSON.stringify(field)} is not a field: FIELD one of ${FIELDS.join(", ")}; the forms are ${MAP_FORMS}.`);
    }
    out[field as Field] = column;
  };
  if (text.trim().startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`--map ${JSON.stringify(text)} starts with { but is not JSON (${(err as Error).message}); the forms are ${MAP_FORMS}.`, { cause: err });
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`--map JSON must be an object of FIELD: COLUMN; the forms are ${MAP_FORMS}.`);
    for (const [field, column] of Object.entries(parsed)) {
      if (typeof column !== "string") throw new Error(`--map JSON: the column for ${field} must be a string.`);
      set(field, column, `${field}=${column}`);
    }
    return out;
  }
  let i = 0;
  while (i < text.length) {
    const start = i;
    const eq = text.indexOf("=", i);
    const comma = text.indexOf(",", i);
    if (eq < 0 || (comma >= 0 && comma < eq)) {
      const entry = text.slice(start, comma < 0 ? text.length : comma).trim();
      if (entry !== "") throw new Error(`--map entry ${JSON.stringify(entry)} must be FIELD=COLUMN; the forms are ${MAP_FORMS}.`);
      i = comma < 0 ? text.length : comma + 1;
      continue;
    }
    const field = text.slice(i, eq).trim();
    i = eq + 1;
    while (text[i] === " ") i++;
    let column = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error(`--map entry ${JSON.stringify(text.slice(start))}: the quoted column has no closing "; the forms are ${MAP_FORMS}.`);
        if (text[i] === '"' && text[i + 1] === '"') {
          column += '"';
          i += 2;
        } else if (text[i] === '"') {
          i++;
          break;
        } else column += text[i++];
      }
      while (text[i] === " ") i++;
      if (i < text.length && text[i] !== ",") throw new Error(`--map entry ${JSON.stringify(text.slice(start))}: text after the closing quote; the forms are ${MAP_FORMS}.`);
    } else {
      const end = text.indexOf(",", i);
      column = text.slice(i, end < 0 ? text.length : end).trim();
      i = end < 0 ? text.length : end;
    }
    set(field, column, text.slice(start, i).trim());
    i++;
  }
  return out;
}

const PATTERN_KEYS = ["symbol", "provider", "timeframe", "exchange"] as const;
export type PathKey = (typeof PATTERN_KEYS)[number];
/** The timeframe as a count of minutes in a file name. */
const TIMEFRAME_MINUTES = "timeframe:minutes";
const PLACEHOLDERS = [...PATTERN_KEYS, TIMEFRAME_MINUTES].map((k) => `{${k}}`).join(", ");

/**
 * A count of minutes as a timeframe: 43200 is a month (MetaTrader's MN1), otherwise the largest whole unit of
 * weeks, days, hours or minutes (1440 is `1d`, 240 `4h`, 10080 `1w`, 90 `90m`). Undefined for 0.
 */
export function minutesToTimeframe(minutes: string): string | undefined {
  const n = Number(minutes);
  if (!Number.isSafeInteger(n) || n <= 0) return undefined;
  if (n === 43_200) return "1mo";
  if (n % 10_080 === 0) return `${n / 10_080}w`;
  if (n % 1440 === 0) return `${n / 1440}d`;
  if (n % 60 === 0) return `${n / 60}h`;
  return `${n}m`;
}

/**
 * Why `pattern` cannot be a path pattern (a placeholder that is not one of PLACEHOLDERS, or is not closed);
 * undefined when it can. Neutral: the caller names the flag or setting.
 */
export function pathPatternFault(pattern: string): string | undefined {
  for (let i = pattern.indexOf("{"); i >= 0; i = pattern.indexOf("{", i + 1)) {
    const end = pattern.indexOf("}", i);
    if (end < 0) return `{${pattern.slice(i + 1)} has no closing }; placeholders are ${PLACEHOLDERS}`;
    const key = pattern.slice(i + 1, end);
    if (!([...PATTERN_KEYS, TIMEFRAME_MINUTES] as readonly string[]).includes(key)) return `{${key}} is not one of ${PLACEHOLDERS}`;
  }
  return undefined;
}

function escapeRegex(s: string): string {
  return s.replace(/[.+^$()|\\]/g, "\\$&");
}

/** A glob (`*`, `**`, `?`, `{name}` captures) as a regex anchored at the end of a `/`-separated path. */
function patternRegex(pattern: string, captures: boolean): RegExp {
  const fault = captures ? pathPatternFault(pattern) : undefined;
  if (fault) throw new Error(`--path-pattern ${JSON.stringify(pattern)}: ${fault}.`);
  let re = "";
  const p = pattern.replace(/\\/g, "/").replace(/^\.\//, "");
  for (let i = 0; i < p.length; i++) {
    const ch = p[i] as string;
    if (ch === "*" && p[i + 1] === "*") {
      re += ".*";
      i++;
      if (p[i + 1] === "/") i++;
    } else if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else if (ch === "{" && captures) {
      const end = p.indexOf("}", i);
      const key = p.slice(i + 1, end);
      if (key === TIMEFRAME_MINUTES) {
        // A count of minutes (MetaTrader's EURUSD1440.csv, Kraken's XBTUSD_60.csv): digits only, so it ends
        // where the digits do.
        re += "(?<timeframeMinutes>\\d+)";
        i = end;
        continue;
      }
      // Lazy: `{symbol}-*.txt` on `nvda-1999-2014.txt` takes `nvda`, the shortest value that fits.
      re += `(?<${key}>[^/]+?)`;
      i = end;
    } else re += escapeRegex(ch);
  }
  return new RegExp(`(?:^|/)${re}$`);
}

/**
 * Values for symbol/provider/timeframe/exchange taken from a file path by a pattern. Each placeholder takes
 * the shortest text that lets the rest match. Throws when the path does not match: empty values from a
 * pattern that missed would load every row under the wrong key.
 */
export function matchPathPattern(pattern: string, filePath: string): Partial<Record<PathKey, string>> {
  const file = filePath.replace(/\\/g, "/");
  const m = patternRegex(pattern, true).exec(file);
  if (!m) {
    throw new Error(`${filePath} does not match --path-pattern ${JSON.stringify(pattern)}; the pattern must match the end of every file's path (placeholders ${PLACEHOLDERS}, wildcards * ** ?).`);
  }
  const { timeframeMinutes, ...values } = m.groups ?? {};
  if (timeframeMinutes !== undefined) {
    const timeframe = minutesToTimeframe(timeframeMinutes);
    if (timeframe === undefined) throw new Error(`${filePath}: {timeframe:minutes} took ${JSON.stringify(timeframeMinutes)}, which is not a positive count of minutes.`);
    values.timeframe = timeframe;
  }
  return values;
}

/**
 * The files of several sources (each as expandSource reads it), in the order given, each file once even when
 * two sources name it (a directory and a glob inside it).
 */
export function expandSources(sources: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const source of sources) {
    for (const f of expandSource(source)) {
      const key = path.resolve(f);
      if (!seen.has(key)) {
        seen.add(key);
        out.push(f);
      }
    }
  }
  return out;
}

/**
 * Every regular file below `base` (following symbolic links), as paths relative to it with `/` between parts,
 * sorted. A directory is entered once however many links lead to it (a `up -> ..` link made Node's recursive
 * readdir list every file 41 times; two links made it exponential, issue 23.23), and a file reached by several
 * paths is listed once: by its path without links when it has one (links are followed only after the tree
 * without them is walked), else by the first link in sorted order. Hidden entries are skipped unless
 * `hidden`; a dangling link is skipped.
 */
function filesBelow(base: string, hidden: boolean): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const links: Array<{ full: string; rel: string }> = [];
  const firstVisit = (st: fs.Stats) => {
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  };
  const visit = (full: string, rel: string, st: fs.Stats) => {
    if (!firstVisit(st)) return;
    if (st.isFile()) {
      out.push(rel);
      return;
    }
    if (!st.isDirectory()) return;
    for (const entry of fs.readdirSync(full, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))) {
      if (!hidden && entry.name.startsWith(".")) continue;
      const child = path.join(full, entry.name);
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) links.push({ full: child, rel: childRel });
      else if (entry.isDirectory() || entry.isFile()) visit(child, childRel, fs.statSync(child));
    }
  };
  const root = fs.statSync(base, { throwIfNoEntry: false });
  if (root) visit(base, "", root);
  // Links in the order met; a linked directory's own links join the end of the queue.
  for (let i = 0; i < links.length; i++) {
    const link = links[i] as { full: string; rel: string };
    const st = fs.statSync(link.full, { throwIfNoEntry: false });
    if (st) visit(link.full, link.rel, st);
  }
  return out.sort();
}

/**
 * The files a `--source` names, sorted: a file; a directory (every file below it with a known extension);
 * or a glob with `*`, `**`, `?`. Each real file once (filesBelow). Throws when nothing matches.
 */
export function expandSource(source: string): string[] {
  const wild = /[*?[]/.test(source);
  if (!wild) {
    const stat = fs.statSync(source, { throwIfNoEntry: false });
    if (!stat) throw new Error(`--source ${source} does not exist.`);
    // Files, and also FIFOs and devices (`/dev/stdin`): anything that is not a directory is read as one source.
    if (!stat.isDirectory()) return [source];
    // Hidden entries (.tsdb with the rejects files, .git) are never data.
    const files = filesBelow(source, false)
      .filter((f) => KNOWN_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e)))
      .map((f) => path.join(source, f));
    if (files.length === 0) throw new Error(`--source ${source} is a directory with no ${KNOWN_EXTENSIONS.join(" ")} files.`);
    return files;
  }
  const parts = source.replace(/\\/g, "/").split("/");
  const firstWild = parts.findIndex((p) => /[*?[]/.test(p));
  const base = parts.slice(0, firstWild).join("/") || ".";
  const re = patternRegex(parts.slice(firstWild).join("/"), false);
  // As for directories: hidden entries only when the pattern names them.
  const hidden = /(^|\/)\./.test(parts.slice(firstWild).join("/"));
  const files = fs.existsSync(base)
    ? filesBelow(base, hidden)
        .filter((f) => re.test(f) && re.exec(f)?.index === 0)
        .map((f) => path.join(base, f))
    : [];
  if (files.length === 0) throw new Error(`--source ${source} matches no files.`);
  return files;
}
