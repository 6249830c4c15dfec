/**
 * `tsdb data load` and `tsdb data validate`: market data loading (lib/loader) from the command line.
 * The Pulumi dataset hook runs the same load in a child process (scripts/data.ts).
 */
import { type Command, Option } from "commander";
import { COLUMN_ALIASES, FIELDS } from "../lib/loader/columnMapping";
import type { LoadOptions } from "../lib/loader/OhlcvLoader";
import { type Act, type Context, type Io, asGroup, examples, requireUrl, required, urlOption } from "./conventions";

/** Shown in help only; the loader's own default (DEFAULT_TARGET in lib/loader/OhlcvLoader.ts) applies. */
const TARGET_HELP = "target table (default: market_data.ohlcv_bars)";

interface LoadFlags {
  url?: string;
  source: string;
  format?: "csv" | "parquet" | "sqlite";
  table?: string;
  symbol?: string;
  provider?: string;
  timeframe?: string;
  exchange?: string;
  pathPattern?: string;
  map?: string;
  delimiter?: string;
  onConflict: "skip" | "update";
  rejects: string;
  strict?: boolean;
  target?: string;
  json?: boolean;
}

interface ValidateFlags {
  url?: string;
  target?: string;
  json?: boolean;
}

const LOAD_NOTES = `
Precedence for symbol/provider/timeframe/exchange: flag, then column, then --path-pattern, then Parquet
bar_type metadata (NautilusTrader). Rows are checked: timestamp parses; open/high/low/close finite and > 0;
high >= max(open, close); low <= min(open, close); volume >= 0 (empty volume = 0); no duplicate key in a file.

Accepted column names (case-insensitive; the first present wins):
${FIELDS.map((f) => `  ${f.padEnd(10)} ${COLUMN_ALIASES[f].join(", ")}`).join("\n")}

Timestamps: ISO-8601 with a zone as written; WITHOUT a zone, and plain dates, mean UTC; epoch numbers by
magnitude: < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds.`;

async function load(o: LoadFlags, ctx: Context): Promise<void> {
  const url = requireUrl(o.url);
  const [{ expandSource, parseMapping }, { formatSummary, loadOhlcvFrom }, { defaultProgress, silentProgress }] = await Promise.all([
    import("../lib/loader/columnMapping.js"),
    import("../lib/loader/OhlcvLoader.js"),
    import("../lib/loader/progress.js"),
  ]);
  const options: LoadOptions = {
    files: expandSource(o.source),
    ...(o.format ? { format: o.format } : {}),
    ...(o.table ? { sqliteTable: o.table } : {}),
    ...(o.delimiter ? { delimiter: o.delimiter } : {}),
    ...(o.symbol ? { symbol: o.symbol } : {}),
    ...(o.provider !== undefined ? { provider: o.provider } : {}),
    ...(o.timeframe ? { timeframe: o.timeframe } : {}),
    ...(o.exchange !== undefined ? { exchange: o.exchange } : {}),
    ...(o.pathPattern ? { pathPattern: o.pathPattern } : {}),
    ...(o.map ? { mapping: parseMapping(o.map) } : {}),
    ...(o.target ? { target: o.target } : {}),
    onConflict: o.onConflict,
    rejectsFile: o.rejects,
    strict: o.strict ?? false,
    progress: ctx.quiet ? silentProgress : await defaultProgress(),
  };
  const summary = await loadOhlcvFrom(url, options);
  if (o.json) ctx.print(JSON.stringify(summary));
  else ctx.print(formatSummary(summary));
}

async function validate(o: ValidateFlags, ctx: Context): Promise<void> {
  const url = requireUrl(o.url);
  const [{ withClient }, { formatValidation, validateOhlcv }] = await Promise.all([import("../lib/db.js"), import("../lib/loader/validateReport.js")]);
  const report = await withClient(url, (c) => validateOhlcv(c, o.target));
  if (o.json) ctx.print(JSON.stringify(report));
  else ctx.print(formatValidation(report));
  if (report.duplicateKeys > 0 || Object.values(report.nulls).some((n) => n > 0)) ctx.fail();
}

export function registerData(program: Command, act: Act, io: Io): void {
  const data = asGroup(program.command("data").description("load OHLCV bars from CSV, Parquet or SQLite, and validate what is loaded"), io);

  const loadCmd = data
    .command("load")
    .description("load OHLCV bars into market_data.ohlcv_bars (validated, deduplicated; a failed load changes nothing)")
    .addOption(urlOption());
  required(loadCmd, "--source <path>", "a file, a directory (every .csv .csv.gz .tsv .parquet .pq .db .sqlite below it) or a quoted glob with * ** ?")
    .addOption(new Option("--format <format>", "file format (default: from each file's extension; gzip is detected)").choices(["csv", "parquet", "sqlite"]))
    .option("--table <name>", "SQLite table to read (default: ohlcv_data)")
    .option("--symbol <symbol>", "symbol for every row (wins over a column and the path pattern)")
    .option("--provider <provider>", "provider for every row (default: column, path, else '')")
    .option("--timeframe <timeframe>", "timeframe for every row: 1m 5m 15m 1h 4h 1d 1w 1mo (also 1H, 1day, daily, 60min)")
    .option("--exchange <exchange>", "exchange for every row (default: column, path, else '')")
    .option("--path-pattern <pattern>", "take values from file paths, e.g. 'data/{provider}/{symbol}/{timeframe}/*.parquet'")
    .option("--map <F=COL,...>", `explicit column mapping, F one of ${FIELDS.join(", ")}`)
    .option("--delimiter <char>", "CSV delimiter (default: detected among , ; tab |)")
    .addOption(new Option("--on-conflict <mode>", "skip: keep bars already present; update: overwrite changed bars").choices(["skip", "update"]).default("skip"))
    .option("--rejects <file>", "CSV of invalid rows: source,row,reason,raw (written only if any)", "rejects.csv")
    .option("--strict", "fail on the first invalid row; nothing is loaded")
    .option("--target <table>", TARGET_HELP)
    .option("--json", "print the summary as JSON (for scripts and the Pulumi hook)")
    .addHelpText("after", LOAD_NOTES);
  examples(loadCmd, "tsdb data load --url postgresql://postgres@127.0.0.1:5432/market --source data/sample/csv/ohlcv.csv").action(act<LoadFlags>((o, ctx) => load(o, ctx)));

  const validateCmd = data
    .command("validate")
    .description("report rows, date ranges, NULLs, duplicate keys and gaps per series; exit 1 on NULLs or duplicates")
    .addOption(urlOption())
    .option("--target <table>", TARGET_HELP)
    .option("--json", "print the report as JSON");
  examples(validateCmd, "tsdb data validate --url postgresql://postgres@127.0.0.1:5432/market").action(act<ValidateFlags>((o, ctx) => validate(o, ctx)));
}
