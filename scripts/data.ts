/**
 * `npm run data -- load|validate|export ...`: market data in and out from the command line.
 * Run `npm run data -- --help` for every flag.
 */
import { parseArgs } from "node:util";
import { COLUMN_ALIASES, FIELDS } from "../lib/loader/columnMapping";
import { LOAD_FLAGS, loadRequestFromFlags } from "../lib/loader/loadRequest";
import { DEFAULT_TARGET, formatSummary } from "../lib/loader/OhlcvLoader";
import { defaultProgress, silentProgress } from "../lib/loader/progress";
import { TIMEFRAME_FORMS } from "../lib/loader/rowValidation";
import { runLoadRequest } from "../lib/loader/runLoad";
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
${Object.values(LOAD_FLAGS).map((f) => `  --${`${f.flag}${f.type === "string" ? " V" : ""}`.padEnd(20)} ${f.help}`).join("\n")}
  --quiet                no progress output
  --json                 print the summary as JSON

Exit codes: 0 loaded (or nothing new); 1 an error, every row rejected, or more rejects than --max-rejects
(nothing is loaded then; the reasons are in the rejects file).

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
high >= max(open, close); low <= min(open, close); volume >= 0 (empty volume = 0); no duplicate key in a file;
symbol, exchange, provider at most 128 characters, no NUL, valid UTF-8; numbers at most 40 digits before and
40 after the decimal point. docs/LOADING.md has every rule.

Accepted column names (case-insensitive; <NAME>, spaces, - and _ alike; the first present wins):
${FIELDS.map((f) => `  ${f.padEnd(10)} ${COLUMN_ALIASES[f].join(", ")}`).join("\n")}
A date column plus a time column (Date,Time) are joined when the time is a time of day (09:05, 0905, 093000).

Timeframes: ${TIMEFRAME_FORMS}.

Timestamps: ISO-8601 with a zone as written (offsets -14:00..+14:00); WITHOUT a zone, and plain dates, mean UTC;
also 2024.01.02 (MetaTrader), 01/02/2024 (month/day/year), 02.01.2024 (day.month.year), 20240102 (YYYYMMDD);
epoch numbers by magnitude: < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds, except
8-digit numbers, which are YYYYMMDD dates. Years 1800..2199.
`;

const OPTIONS = {
  url: { type: "string" },
  ...Object.fromEntries(Object.values(LOAD_FLAGS).map((f) => [f.flag, { type: f.type }])),
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
  const flags = values as Record<string, string | boolean | undefined>;
  const target = typeof flags.target === "string" ? flags.target : DEFAULT_TARGET;
  if (command === "validate") {
    const filter = validationFilter(pickDefined(flags, ["symbol", "exchange", "provider", "timeframe"]));
    const report = await withClient(url, (c) => validateOhlcv(c, target, filter));
    process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : `${formatValidation(report)}\n`);
    const nothingMatched = Object.keys(filter).length > 0 && report.totalRows === 0;
    if (nothingMatched || report.duplicateKeys > 0 || Object.values(report.nulls).some((n) => n > 0)) process.exitCode = 1;
    return;
  }
  if (command === "export") {
    const format = flags.format;
    if (format !== undefined && format !== "csv" && format !== "parquet") fail(`--format must be csv or parquet for export, got ${JSON.stringify(format)}.`);
    const summary = await exportOhlcvTo(url, {
      file: values.out ?? fail("export needs --out FILE (.csv or .parquet)."),
      ...(format ? { format } : {}),
      ...pickDefined(flags, ["symbol", "exchange", "provider", "timeframe", "from", "to"]),
      target,
      overwrite: values.force ?? false,
    });
    process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `${formatExportSummary(summary)}\n`);
    return;
  }
  if (command !== "load") fail(`unknown command ${JSON.stringify(command)}; use load, validate or export (see --help).`);
  if (flags.source === undefined) fail("load needs --source PATH (a file, directory or glob).");
  const request = loadRequestFromFlags(flags);
  const progress = values.quiet ? silentProgress : await defaultProgress();
  const summary = await runLoadRequest(url, { ...request, target }, { cwd: process.cwd(), progress });
  process.stdout.write(values.json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`data: ${isConnectionLost(err) ? failureLine(err, "the load") : (err as Error).message.split("\n")[0]}\n`);
  process.exitCode = 1;
});
