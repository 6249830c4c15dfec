/**
 * `npm run data -- load|validate|export ...`: market data in and out from the command line.
 * Run `npm run data -- --help` for every flag.
 */
import { parseArgs } from "node:util";
import { COLUMN_ALIASES, FIELDS, expandSource, parseMapping } from "../lib/loader/columnMapping";
import { DEFAULT_TARGET, type LoadOptions, formatSummary, loadOhlcvFrom } from "../lib/loader/OhlcvLoader";
import { defaultProgress, silentProgress } from "../lib/loader/progress";
import { formatValidation, validateOhlcv, validationFilter } from "../lib/loader/validateReport";
import { exportOhlcvTo, formatExportSummary } from "../lib/loader/export";
import { failureLine, isConnectionLost, withClient } from "../lib/db";

const HELP = `Usage:
  npm run data -- load --source PATH [options]     load OHLCV bars into ${DEFAULT_TARGET}
  npm run data -- validate [--url URL] [filters]   report rows, date ranges, NULLs, duplicates and gaps
  npm run data -- export --out FILE [filters]      write bars as CSV or Parquet, values exactly as stored

Connection:
  --url URL              postgresql:// URL (default: $DATABASE_URL)

load options:
  --source PATH          a file, a directory (every .csv .csv.gz .tsv .parquet .pq .db .sqlite below it) or a
                         glob with * ** ? (quote it): 'data/ALPACA/**/*.parquet'
  --format F             csv | parquet | sqlite (default: from each file's extension; gzip is detected)
  --table NAME           SQLite table to read (default ohlcv_data)
  --symbol S             symbol for every row (wins over a column and the path pattern)
  --provider P           provider for every row (default: column, path, else '')
  --timeframe T          timeframe for every row: 1m 5m 15m 1h 4h 1d 1w 1mo (also 1H, 1day, daily, 60min)
  --exchange E           exchange for every row (default: column, path, else '')
  --path-pattern PAT     take values from file paths, e.g. 'data/{provider}/{symbol}/{timeframe}/*.parquet'
                         (placeholders: {symbol} {provider} {timeframe} {exchange})
  --map F=COL,...        explicit column mapping, F one of ${FIELDS.join(", ")}
  --delimiter C          CSV delimiter (default: detected among , ; tab |)
  --on-conflict MODE     skip (default: keep bars already present) | update (overwrite changed bars)
  --rejects FILE         CSV of invalid rows: source,row,reason,raw (default: rejects.csv, written only if any)
  --strict               fail on the first invalid row; nothing is loaded
  --target TABLE         target table (default ${DEFAULT_TARGET})
  --quiet                no progress output
  --json                 print the summary as JSON (for scripts and the Pulumi hook)

validate options:
  --symbol S, --exchange E, --provider P, --timeframe T
                         check only the series that match (exit 1 when no bar matches); --target as for load

export options:
  --out FILE             .csv or .parquet (.pq); refuses an existing file unless --force
  --format F             csv | parquet (default: from --out's extension)
  --symbol S, --exchange E, --provider P, --timeframe T, --from TIME, --to TIME
                         which bars (all by default); --from/--to inclusive, a plain date is a whole UTC day
  --force                replace --out if it exists
  --target TABLE, --json as for load

Precedence for symbol/provider/timeframe/exchange: flag, then column, then --path-pattern, then Parquet
bar_type metadata (NautilusTrader). Rows are checked: timestamp parses; open/high/low/close finite and > 0;
high >= max(open, close); low <= min(open, close); volume >= 0 (empty volume = 0); no duplicate key in a file.

Accepted column names (case-insensitive; the first present wins):
${FIELDS.map((f) => `  ${f.padEnd(10)} ${COLUMN_ALIASES[f].join(", ")}`).join("\n")}

Timestamps: ISO-8601 with a zone as written; WITHOUT a zone, and plain dates, mean UTC; epoch numbers by
magnitude: < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds.
`;

const OPTIONS = {
  url: { type: "string" },
  source: { type: "string" },
  format: { type: "string" },
  table: { type: "string" },
  symbol: { type: "string" },
  provider: { type: "string" },
  timeframe: { type: "string" },
  exchange: { type: "string" },
  "path-pattern": { type: "string" },
  map: { type: "string" },
  delimiter: { type: "string" },
  "on-conflict": { type: "string" },
  rejects: { type: "string" },
  strict: { type: "boolean" },
  target: { type: "string" },
  quiet: { type: "boolean" },
  json: { type: "boolean" },
  out: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  force: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function pickDefined<K extends string>(values: Partial<Record<K, string | boolean>>, keys: K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  for (const k of keys) {
    const v = values[k];
    if (typeof v === "string") out[k] = v;
  }
  return out;
}

function fail(message: string): never {
  throw new Error(message);
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const command = positionals[0];
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  if (positionals.length > 1) fail(`unexpected argument ${JSON.stringify(positionals[1])}; see --help.`);
  const url = values.url ?? process.env.DATABASE_URL ?? fail("no database: give --url URL or set DATABASE_URL.");
  const target = values.target ?? DEFAULT_TARGET;
  if (command === "validate") {
    const filter = validationFilter(values);
    const report = await withClient(url, (c) => validateOhlcv(c, target, filter));
    process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatValidation(report)}\n`);
    const nothingMatched = Object.keys(filter).length > 0 && report.totalRows === 0;
    if (nothingMatched || report.duplicateKeys > 0 || Object.values(report.nulls).some((n) => n > 0)) process.exitCode = 1;
    return;
  }
  if (command === "export") {
    const format = values.format;
    if (format !== undefined && format !== "csv" && format !== "parquet") fail(`--format must be csv or parquet for export, got ${JSON.stringify(format)}.`);
    const summary = await exportOhlcvTo(url, {
      file: values.out ?? fail("export needs --out FILE (.csv or .parquet)."),
      ...(format ? { format } : {}),
      ...pickDefined(values, ["symbol", "exchange", "provider", "timeframe", "from", "to"]),
      target,
      overwrite: values.force ?? false,
    });
    process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `${formatExportSummary(summary)}\n`);
    return;
  }
  if (command !== "load") fail(`unknown command ${JSON.stringify(command)}; use load, validate or export (see --help).`);
  const source = values.source ?? fail("load needs --source PATH (a file, directory or glob).");
  const format = values.format;
  if (format !== undefined && !["csv", "parquet", "sqlite"].includes(format)) fail(`--format must be csv, parquet or sqlite, got ${JSON.stringify(format)}.`);
  const onConflict = values["on-conflict"] ?? "skip";
  if (onConflict !== "skip" && onConflict !== "update") fail(`--on-conflict must be skip or update, got ${JSON.stringify(onConflict)}.`);
  const options: LoadOptions = {
    files: expandSource(source),
    ...(format ? { format: format as LoadOptions["format"] } : {}),
    ...(values.table ? { sqliteTable: values.table } : {}),
    ...(values.delimiter ? { delimiter: values.delimiter } : {}),
    ...(values.symbol ? { symbol: values.symbol } : {}),
    ...(values.provider !== undefined ? { provider: values.provider } : {}),
    ...(values.timeframe ? { timeframe: values.timeframe } : {}),
    ...(values.exchange !== undefined ? { exchange: values.exchange } : {}),
    ...(values["path-pattern"] ? { pathPattern: values["path-pattern"] } : {}),
    ...(values.map ? { mapping: parseMapping(values.map) } : {}),
    target,
    onConflict,
    rejectsFile: values.rejects ?? "rejects.csv",
    strict: values.strict ?? false,
    progress: values.quiet ? silentProgress : await defaultProgress(),
  };
  const summary = await loadOhlcvFrom(url, options);
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`data: ${isConnectionLost(err) ? failureLine(err, "the load") : (err as Error).message.split("\n")[0]}\n`);
  process.exitCode = 1;
});
