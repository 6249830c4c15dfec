/**
 * The CLI flag of each LoadRequest key (lib/loader/loadRequest.ts): its name, its value's name in the usage,
 * its help line, the values it accepts when they are a fixed list, and how its text becomes the request's
 * value. `tsdb data load` builds its options and help from this, and loadRequestFromFlags maps flags back to
 * keys. The fixed lists are the same constants the zod schema takes its enums from, so commander's check and
 * the schema's cannot disagree. Kept apart from the zod schema so building the command line (every `tsdb`
 * run) does not load zod; the type requires one flag per key.
 */
import { FIELDS, KNOWN_EXTENSIONS, LAYOUTS, parseMapping } from "./columnMapping";
import { SOURCE_FORMATS, formatHelp } from "./formats";
import type { LoadRequest } from "./loadRequest";
import { INCONSISTENT_OHLC_RULES } from "./rowValidation";
import { AMBIGUOUS_TIME_RULES } from "./timeZone";

/** What to do with a bar whose key is already in the target (`onConflict`). */
export const CONFLICT_POLICIES = ["skip", "update"] as const;
export type ConflictPolicy = (typeof CONFLICT_POLICIES)[number];

/** The names of the known headerless layouts (`layout`). */
export const LAYOUT_NAMES = Object.keys(LAYOUTS) as [string, ...string[]];

/** One load flag. */
export interface LoadFlag {
  /** `--<flag>`. */
  flag: string;
  /** The value's name in the usage (`--source <path>`); absent for a switch. */
  value?: string;
  help: string;
  /** The values it accepts when they are a fixed list. */
  choices?: readonly string[];
  /** Given several times, every value is kept (one stays a string, several are a list). */
  repeatable?: boolean;
  /** The request's value from the flag's text, when it is not the text itself. */
  fromText?: (text: string) => unknown;
}

/**
 * CLI flag for each request key, with its help line. The CLI builds its parser and help text from this;
 * settings use the keys themselves.
 */
export const LOAD_FLAGS: { [K in keyof LoadRequest]-?: LoadFlag } = {
  source: { flag: "source", value: "path", repeatable: true, help: `a file, a directory (every ${KNOWN_EXTENSIONS.join(" ")} below it, hidden folders skipped) or a glob with * ** ? (quote it); repeat it to load several (each file once)` },
  format: { flag: "format", value: "format", choices: SOURCE_FORMATS, help: formatHelp() },
  table: { flag: "table", value: "name", help: "SQLite table to read (default ohlcv_data), or DuckDB table (default: its only table)" },
  symbol: { flag: "symbol", value: "symbol", help: "symbol for every row (wins over a column and the path pattern)" },
  provider: { flag: "provider", value: "provider", help: "provider for every row (default: column, path, else '')" },
  timeframe: { flag: "timeframe", value: "timeframe", help: "timeframe for every row: 1m 5m 1h 1d 1w 1mo, also D W M, H1 M5 D1, 1M (= month), daily, 60min" },
  exchange: { flag: "exchange", value: "exchange", help: "exchange for every row (default: column, path, else '')" },
  pathPattern: { flag: "path-pattern", value: "pattern", help: "values from file paths, e.g. '{provider}/{symbol}/{timeframe}/*.parquet' or '{symbol}-{timeframe}-*.csv'; placeholders take the shortest match; {timeframe:minutes} reads a count of minutes (EURUSD1440.csv, XBTUSD_60.csv); a file that does not match is an error" },
  map: { flag: "map", value: "F=COL,...", fromText: parseMapping, help: `explicit column mapping FIELD=COLUMN,..., FIELD one of ${FIELDS.join(", ")}; a COLUMN with commas in double quotes (close="('Close', 'AAPL')"), time= for a column without a name, or a JSON object {"close": "..."}` },
  columns: { flag: "columns", value: "names", fromText: (text) => text.split(",").map((c) => c.trim()), help: "NAME,NAME,... the columns of a CSV file WITHOUT a header row (its first row is data)" },
  layout: { flag: "layout", value: "layout", choices: LAYOUT_NAMES, help: `a known headerless layout: ${LAYOUT_NAMES.join(", ")} (recognised without the flag too)` },
  delimiter: { flag: "delimiter", value: "char", help: "CSV delimiter (default: detected among , ; tab |)" },
  onConflict: { flag: "on-conflict", value: "mode", choices: CONFLICT_POLICIES, help: "skip (default: keep bars already present) | update (overwrite changed bars)" },
  rejects: { flag: "rejects", value: "file", help: "CSV of invalid rows: source,row,reason,raw (default .tsdb/rejects/last-load.csv, written only if any; never a source)" },
  maxRejects: { flag: "max-rejects", value: "limit", help: "most rejected rows a load may have and still commit: N rows or P% of rows read (default 10%); a load with every row rejected always fails" },
  strict: { flag: "strict", help: "fail on the first invalid row; nothing is loaded" },
  target: { flag: "target", value: "table", help: "target table, schema.table (default market_data.ohlcv_bars)" },
  timezone: { flag: "timezone", value: "zone", help: "IANA time zone of times written without one, e.g. America/New_York (default: they are UTC); plain dates stay dates; a local time the clocks skip is rejected" },
  inconsistentOhlc: { flag: "inconsistent-ohlc", value: "rule", choices: INCONSISTENT_OHLC_RULES, help: "a bar whose high is below its open or close, or low above them: reject (default) | flag (keep, count and list it) | keep (keep and count it); validate lists such bars" },
  priceDivisor: { flag: "price-divisor", value: "n", help: "divide open, high, low, close and adj_close by this power of ten, exactly (QuantConnect Lean's deci-cents: 10000)" },
  ambiguousTime: { flag: "ambiguous-time", value: "rule", choices: AMBIGUOUS_TIME_RULES, help: "a local time that occurs twice (clocks set back): reject (default) | earlier | later" },
  lockTimeout: { flag: "lock-timeout", value: "seconds", help: "give up waiting for a lock (the load lock, or a bar another session wrote and has not committed) after SECONDS, naming the session holding it (default 60)" },
};

/** The request keys in declaration order (the settings' description lists them so). */
export const LOAD_REQUEST_KEYS = Object.keys(LOAD_FLAGS) as Array<keyof LoadRequest>;
