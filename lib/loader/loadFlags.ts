/**
 * The CLI flag of each LoadRequest key (lib/loader/loadRequest.ts), with its help line: `tsdb data load` builds
 * its options and help from this, and loadRequestFromFlags maps flags back to keys. Kept apart from the zod
 * schema so building the command line (every `tsdb` run) does not load zod; the type requires one flag per key.
 */
import { FIELDS, KNOWN_EXTENSIONS, LAYOUTS } from "./columnMapping";
import type { LoadRequest } from "./loadRequest";

/**
 * CLI flag for each request key, with its help line. The CLI builds its parser and help text from this;
 * settings use the keys themselves.
 */
export const LOAD_FLAGS: { [K in keyof LoadRequest]-?: { flag: string; type: "string" | "boolean"; help: string } } = {
  source: { flag: "source", type: "string", help: `a file, a directory (every ${KNOWN_EXTENSIONS.join(" ")} below it, hidden folders skipped) or a glob with * ** ? (quote it); repeat it to load several (each file once)` },
  format: { flag: "format", type: "string", help: "csv | parquet | sqlite | duckdb | arrow | json | zip (default: from each file's first bytes, else its extension; gzip is detected)" },
  table: { flag: "table", type: "string", help: "SQLite table to read (default ohlcv_data), or DuckDB table (default: its only table)" },
  symbol: { flag: "symbol", type: "string", help: "symbol for every row (wins over a column and the path pattern)" },
  provider: { flag: "provider", type: "string", help: "provider for every row (default: column, path, else '')" },
  timeframe: { flag: "timeframe", type: "string", help: "timeframe for every row: 1m 5m 1h 1d 1w 1mo, also D W M, H1 M5 D1, 1M (= month), daily, 60min" },
  exchange: { flag: "exchange", type: "string", help: "exchange for every row (default: column, path, else '')" },
  pathPattern: { flag: "path-pattern", type: "string", help: "values from file paths, e.g. '{provider}/{symbol}/{timeframe}/*.parquet' or '{symbol}-{timeframe}-*.csv'; placeholders take the shortest match; {timeframe:minutes} reads a count of minutes (EURUSD1440.csv, XBTUSD_60.csv); a file that does not match is an error" },
  map: { flag: "map", type: "string", help: `explicit column mapping FIELD=COLUMN,..., FIELD one of ${FIELDS.join(", ")}; a COLUMN with commas in double quotes (close="('Close', 'AAPL')"), time= for a column without a name, or a JSON object {"close": "..."}` },
  columns: { flag: "columns", type: "string", help: "NAME,NAME,... the columns of a CSV file WITHOUT a header row (its first row is data)" },
  layout: { flag: "layout", type: "string", help: `a known headerless layout: ${Object.keys(LAYOUTS).join(", ")} (recognised without the flag too)` },
  delimiter: { flag: "delimiter", type: "string", help: "CSV delimiter (default: detected among , ; tab |)" },
  onConflict: { flag: "on-conflict", type: "string", help: "skip (default: keep bars already present) | update (overwrite changed bars)" },
  rejects: { flag: "rejects", type: "string", help: "CSV of invalid rows: source,row,reason,raw (default .tsdb/rejects/last-load.csv, written only if any; never a source)" },
  maxRejects: { flag: "max-rejects", type: "string", help: "most rejected rows a load may have and still commit: N rows or P% of rows read (default 10%); a load with every row rejected always fails" },
  strict: { flag: "strict", type: "boolean", help: "fail on the first invalid row; nothing is loaded" },
  target: { flag: "target", type: "string", help: "target table, schema.table (default market_data.ohlcv_bars)" },
  timezone: { flag: "timezone", type: "string", help: "IANA time zone of times written without one, e.g. America/New_York (default: they are UTC); plain dates stay dates; a local time the clocks skip is rejected" },
  inconsistentOhlc: { flag: "inconsistent-ohlc", type: "string", help: "a bar whose high is below its open or close, or low above them: reject (default) | flag (keep, count and list it) | keep (keep and count it); validate lists such bars" },
  priceDivisor: { flag: "price-divisor", type: "string", help: "divide open, high, low, close and adj_close by this power of ten, exactly (QuantConnect Lean's deci-cents: 10000)" },
  ambiguousTime: { flag: "ambiguous-time", type: "string", help: "a local time that occurs twice (clocks set back): reject (default) | earlier | later" },
  lockTimeout: { flag: "lock-timeout", type: "string", help: "give up waiting for a lock (the load lock, or a bar another session wrote and has not committed) after SECONDS, naming the session holding it (default 60)" },
};
