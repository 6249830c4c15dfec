/**
 * `tsdb data load|validate|export`: market data in and out (lib/loader) from the command line. The load
 * flags are built from LOAD_FLAGS (lib/loader/loadRequest.ts), the one contract the Pulumi dataset hook's
 * requests use too, so a flag and a `tsdb:datasets` key cannot drift apart.
 */
import { type Command, Option } from "commander";
import { COLUMN_ALIASES, FIELDS } from "../lib/loader/columnMapping";
import { LOAD_FLAGS } from "../lib/loader/loadFlags";
import type { LoadRequest } from "../lib/loader/loadRequest";
import { TIMEFRAME_FORMS } from "../lib/loader/rowValidation";
import { FORMATS } from "../lib/loader/formats";
import { type Act, type Context, UsageError, asGroup, examples, requireUrl, urlOption, whileConnected } from "./conventions";

/** Shown in help only; the loader's own default (DEFAULT_TARGET in lib/loader/target.ts) applies. */
const TARGET_HELP = "target table, schema.table (default: market_data.ohlcv_bars)";

type LoadFlags = Partial<Record<keyof LoadRequest, string | string[] | boolean>> & { url?: string; json?: boolean };

interface SeriesFilter {
  symbol?: string;
  exchange?: string;
  provider?: string;
  timeframe?: string;
}

interface ValidateFlags extends SeriesFilter {
  url?: string;
  target?: string;
  json?: boolean;
}

interface ExportFlags extends SeriesFilter {
  url?: string;
  out: string;
  format?: "csv" | "parquet";
  from?: string;
  to?: string;
  force?: boolean;
  target?: string;
  json?: boolean;
}

const LOAD_NOTES = `
Exit codes: 0 loaded (or nothing new); 1 an error, every row rejected, or more rejects than --max-rejects
(nothing is loaded then; the reasons are in the rejects file); 2 bad usage.

Precedence for symbol/provider/timeframe/exchange: flag, then column, then --path-pattern, then Parquet
bar_type metadata (NautilusTrader). Rows are checked: timestamp parses; open/high/low/close finite and > 0;
high >= max(open, close); low <= min(open, close); volume >= 0 (empty volume = 0); no duplicate key in a file;
symbol, exchange, provider at most 128 characters, valid UTF-8, no NUL, control, bidi or invisible character;
numbers at most 40 digits before and 40 after the decimal point, and fitting the target column's type; a CSV
quote left open or stray rejects its row. docs/LOADING.md has every rule.

Accepted column names (case-insensitive; <NAME>, spaces, - and _ alike; the first present wins):
${FIELDS.map((f) => `  ${f.padEnd(10)} ${COLUMN_ALIASES[f].join(", ")}`).join("\n")}
A date column plus a time column (Date,Time) are joined when the time is a time of day (09:05, 0905, 093000).

Timeframes: ${TIMEFRAME_FORMS}.

Timestamps: ISO-8601 with a zone as written (offsets -14:00..+14:00); WITHOUT a zone they mean UTC, or local time
in --timezone (a time the clocks skip is rejected, one they repeat follows --ambiguous-time); plain dates stay dates;
also 2024.01.02 (MetaTrader), 01/02/2024 (month/day/year), 02.01.2024 (day.month.year), 20240102 (YYYYMMDD);
epoch numbers by magnitude: < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds, except
8-digit numbers, which are YYYYMMDD dates. Years 1800..2199.`;

/** The formats `data load` reads, as its group's description lists them (the format registry's titles). */
const FORMAT_TITLES = ((titles) => `${titles.slice(0, -1).join(", ")} or ${titles.at(-1)}`)(Object.values(FORMATS).map((f) => f.title));

/** The flags as LoadRequest keys (commander's camelCase attribute names are the LoadRequest keys) -> flag names. */
function flagValues(o: LoadFlags): Record<string, string | string[] | boolean | undefined> {
  const values: Record<string, string | string[] | boolean | undefined> = {};
  for (const [key, spec] of Object.entries(LOAD_FLAGS)) values[spec.flag] = o[key as keyof LoadRequest];
  return values;
}

async function load(o: LoadFlags, ctx: Context): Promise<void> {
  const url = requireUrl(o.url);
  const [{ loadRequestFromFlags }, { runLoadRequest }, { formatSummary }, { defaultProgress, silentProgress }] = await Promise.all([
    import("../lib/loader/loadRequest.js"),
    import("../lib/loader/runLoad.js"),
    import("../lib/loader/OhlcvLoader.js"),
    import("../lib/loader/progress.js"),
  ]);
  let request: LoadRequest;
  try {
    request = loadRequestFromFlags(flagValues(o));
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/; see --help\.$/, ""));
  }
  const progress = ctx.quiet ? silentProgress : await defaultProgress();
  const summary = await whileConnected("the load", "nothing was committed", () => runLoadRequest(url, request, { cwd: process.cwd(), progress }));
  ctx.print(o.json ? JSON.stringify(summary) : formatSummary(summary));
}

function seriesFilter(o: SeriesFilter): SeriesFilter {
  return Object.fromEntries(Object.entries({ symbol: o.symbol, exchange: o.exchange, provider: o.provider, timeframe: o.timeframe }).filter(([, v]) => v !== undefined));
}

async function validate(o: ValidateFlags, ctx: Context): Promise<void> {
  const url = requireUrl(o.url);
  const [{ withClient }, { formatValidation, validateOhlcv, validationFilter }] = await Promise.all([import("../lib/db.js"), import("../lib/loader/validateReport.js")]);
  const filter = validationFilter(o);
  const report = await withClient(url, (c) => validateOhlcv(c, o.target, filter));
  ctx.print(o.json ? JSON.stringify(report) : formatValidation(report));
  const nothingMatched = Object.keys(filter).length > 0 && report.totalRows === 0;
  if (nothingMatched || report.duplicateKeys > 0 || Object.values(report.nulls).some((n) => n > 0)) ctx.fail();
}

async function exportBars(o: ExportFlags, ctx: Context): Promise<void> {
  const url = requireUrl(o.url);
  const { exportOhlcvTo, formatExportSummary } = await import("../lib/loader/export.js");
  const summary = await exportOhlcvTo(url, {
    file: o.out,
    ...(o.format ? { format: o.format } : {}),
    ...seriesFilter(o),
    ...(o.from !== undefined ? { from: o.from } : {}),
    ...(o.to !== undefined ? { to: o.to } : {}),
    ...(o.target ? { target: o.target } : {}),
    overwrite: o.force ?? false,
  });
  ctx.print(o.json ? JSON.stringify(summary) : formatExportSummary(summary));
}

/** The load flags, one per LOAD_FLAGS entry; --source is required. */
function addLoadFlags(cmd: Command): Command {
  for (const spec of Object.values(LOAD_FLAGS)) {
    const option = new Option(`--${spec.flag}${spec.value ? ` <${spec.value}>` : ""}`, spec.flag === "source" ? `${spec.help} (required)` : spec.help);
    if (spec.choices) option.choices([...spec.choices]);
    // Every --source is kept (commander keeps only the last of a repeated option otherwise).
    if (spec.repeatable) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    cmd.addOption(option);
  }
  return cmd.hook("preAction", (_parent, action) => {
    if (action.getOptionValue("source") === undefined) throw new UsageError("required option '--source <path>' not specified");
  });
}

function seriesFlags(cmd: Command, what: string): Command {
  return cmd
    .option("--symbol <symbol>", `only ${what} of this symbol`)
    .option("--exchange <exchange>", `only ${what} of this exchange`)
    .option("--provider <provider>", `only ${what} of this provider`)
    .option("--timeframe <timeframe>", `only ${what} of this timeframe (any spelling the loader accepts)`);
}

export function registerData(program: Command, act: Act): void {
  const data = asGroup(program.command("data").description(`load OHLCV bars from ${FORMAT_TITLES}, validate what is loaded, export it again`));
  examples(
    data,
    "tsdb data load --url postgresql://postgres@127.0.0.1:5432/market --source data/sample/csv/ohlcv.csv",
    "tsdb data validate --url postgresql://postgres@127.0.0.1:5432/market",
    "tsdb data export --url postgresql://postgres@127.0.0.1:5432/market --out bars.parquet --symbol AAPL",
  );

  const loadCmd = addLoadFlags(
    data.command("load").description("load OHLCV bars into market_data.ohlcv_bars (validated, deduplicated; a failed load changes nothing)").addOption(urlOption()),
  )
    .option("--json", "print the summary as JSON (for scripts)")
    .addHelpText("after", LOAD_NOTES);
  examples(
    loadCmd,
    "tsdb data load --url postgresql://postgres@127.0.0.1:5432/market --source data/sample/csv/ohlcv.csv",
    "tsdb data load --source binance/ --path-pattern '{symbol}-{timeframe}-*.csv' --provider BINANCE",
  ).action(act<LoadFlags>((o, ctx) => load(o, ctx)));

  const validateCmd = seriesFlags(
    data
      .command("validate")
      .description("report rows, date ranges, NULLs, duplicate keys and gaps per series; exit 1 on NULLs, duplicates, or a filter no bar matches")
      .addOption(urlOption()),
    "series",
  )
    .option("--target <table>", TARGET_HELP)
    .option("--json", "print the report as JSON");
  examples(validateCmd, "tsdb data validate --url postgresql://postgres@127.0.0.1:5432/market --symbol AAPL").action(act<ValidateFlags>((o, ctx) => validate(o, ctx)));

  const exportCmd = seriesFlags(
    data
      .command("export")
      .description("write bars as CSV or Parquet, values exactly as stored (a failed export leaves no file)")
      .addOption(urlOption())
      .requiredOption("--out <file>", ".csv or .parquet (.pq); an existing file is refused unless --force")
      .addOption(new Option("--format <format>", "file format (default: from --out's extension)").choices(["csv", "parquet"])),
    "bars",
  )
    .option("--from <time>", "first bar time, inclusive (ISO-8601, epoch; a plain date is 00:00 UTC)")
    .option("--to <time>", "last bar time, inclusive (a plain date includes its whole UTC day)")
    .option("--force", "replace --out if it exists")
    .option("--target <table>", TARGET_HELP)
    .option("--json", "print the summary as JSON");
  examples(exportCmd, "tsdb data export --out aapl-1d.csv --symbol AAPL --timeframe 1d --from 2008-01-01 --to 2008-12-31").action(act<ExportFlags>((o, ctx) => exportBars(o, ctx)));
}
