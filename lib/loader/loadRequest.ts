/**
 * One input contract for a load: the LoadRequest. Stack settings (`tsdb:datasets`, see lib/settings.ts), the
 * CLI's flags (scripts/data.ts) and the Pulumi hook (providers/DatasetProvider.ts -> hookWorker.ts, as JSON)
 * all produce this object and validate it with this one schema; toLoadOptions turns it into what the loader
 * runs. Adding an option means adding it here (schema + flag), nowhere else.
 *
 * Only zod and columnMapping are imported, so the Pulumi program can validate settings without loading pg.
 */
import path from "node:path";
import { z } from "zod";
import { FIELDS, LAYOUTS, expandSource, parseMapping } from "./columnMapping";
import type { LoadOptions } from "./OhlcvLoader";

const MAX_REJECTS = /^\s*(\d+|\d+(\.\d+)?%)\s*$/;

/** The schema of a load request (JSON-serializable: the hook sends it to a child process). */
export const LoadRequestSchema = z.strictObject({
  /** File, directory or glob; relative to the working directory (CLI) or the project (settings). */
  source: z.string().min(1, "must be a non-empty path"),
  format: z.enum(["csv", "parquet", "sqlite"]).optional(),
  /** SQLite table. */
  table: z.string().min(1).optional(),
  symbol: z.string().min(1).optional(),
  provider: z.string().optional(),
  timeframe: z.string().min(1).optional(),
  exchange: z.string().optional(),
  pathPattern: z.string().min(1).optional(),
  /** field -> source column. */
  map: z.partialRecord(z.enum(FIELDS), z.string().min(1)).optional(),
  /** Column names of a headerless CSV file, in order. */
  columns: z.array(z.string().min(1)).min(1).optional(),
  /** A known headerless layout instead of `columns`. */
  layout: z.enum(Object.keys(LAYOUTS) as [string, ...string[]]).optional(),
  delimiter: z.string().length(1, "must be one character").optional(),
  onConflict: z.enum(["skip", "update"]).optional(),
  /** Rejects CSV; default .tsdb/rejects/last-load.csv (CLI) or .tsdb/rejects/<dataset>.csv (hook). */
  rejects: z.string().min(1).optional(),
  maxRejects: z.union([z.string().regex(MAX_REJECTS, "must be a count like 250 or a percentage like 10%"), z.number().int().min(0)]).optional(),
  strict: z.boolean().optional(),
  target: z.string().min(1).optional(),
});

/** A validated load request. */
export type LoadRequest = z.infer<typeof LoadRequestSchema>;

/**
 * CLI flag for each request key, with its help line. The CLI builds its parser and help text from this;
 * settings use the keys themselves.
 */
export const LOAD_FLAGS: { [K in keyof LoadRequest]-?: { flag: string; type: "string" | "boolean"; help: string } } = {
  source: { flag: "source", type: "string", help: "a file, a directory (every .csv .csv.gz .tsv .txt .parquet .pq .db .sqlite below it, hidden folders skipped) or a glob with * ** ? (quote it)" },
  format: { flag: "format", type: "string", help: "csv | parquet | sqlite (default: from each file's extension; gzip is detected)" },
  table: { flag: "table", type: "string", help: "SQLite table to read (default ohlcv_data)" },
  symbol: { flag: "symbol", type: "string", help: "symbol for every row (wins over a column and the path pattern)" },
  provider: { flag: "provider", type: "string", help: "provider for every row (default: column, path, else '')" },
  timeframe: { flag: "timeframe", type: "string", help: "timeframe for every row: 1m 5m 1h 1d 1w 1mo, also D W M, H1 M5 D1, 1M (= month), daily, 60min" },
  exchange: { flag: "exchange", type: "string", help: "exchange for every row (default: column, path, else '')" },
  pathPattern: { flag: "path-pattern", type: "string", help: "values from file paths, e.g. '{provider}/{symbol}/{timeframe}/*.parquet' or '{symbol}-{timeframe}-*.csv'; placeholders take the shortest match; a file that does not match is an error" },
  map: { flag: "map", type: "string", help: `explicit column mapping FIELD=COLUMN,..., FIELD one of ${FIELDS.join(", ")}` },
  columns: { flag: "columns", type: "string", help: "NAME,NAME,... the columns of a CSV file WITHOUT a header row (its first row is data)" },
  layout: { flag: "layout", type: "string", help: `a known headerless layout: ${Object.keys(LAYOUTS).join(", ")} (recognised without the flag too)` },
  delimiter: { flag: "delimiter", type: "string", help: "CSV delimiter (default: detected among , ; tab |)" },
  onConflict: { flag: "on-conflict", type: "string", help: "skip (default: keep bars already present) | update (overwrite changed bars)" },
  rejects: { flag: "rejects", type: "string", help: "CSV of invalid rows: source,row,reason,raw (default .tsdb/rejects/last-load.csv, written only if any; never a source)" },
  maxRejects: { flag: "max-rejects", type: "string", help: "most rejected rows a load may have and still commit: N rows or P% of rows read (default 10%); a load with every row rejected always fails" },
  strict: { flag: "strict", type: "boolean", help: "fail on the first invalid row; nothing is loaded" },
  target: { flag: "target", type: "string", help: "target table, schema.table (default market_data.ohlcv_bars)" },
};

/** One line per problem: `where key: message`. */
function describeIssues(error: z.ZodError, name: (key: string) => string): string {
  return error.issues.map((i) => `${i.path.length > 0 ? name(i.path.map(String).join(".")) : "request"}: ${i.message}`).join("; ");
}

/** Validates a request from anywhere (settings, JSON); throws one line naming each bad key. */
export function parseLoadRequest(value: unknown, where = "load request"): LoadRequest {
  const r = LoadRequestSchema.safeParse(value);
  if (!r.success) throw new Error(`${where}: ${describeIssues(r.error, (k) => k)}.`);
  return r.data;
}

/** The request the CLI's parsed flags describe (values as node:util parseArgs returns them). */
export function loadRequestFromFlags(values: Record<string, string | boolean | undefined>): LoadRequest {
  const raw: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(LOAD_FLAGS) as Array<[keyof LoadRequest, (typeof LOAD_FLAGS)[keyof LoadRequest]]>) {
    const v = values[spec.flag];
    if (v === undefined) continue;
    if (key === "map") raw.map = parseMapping(String(v));
    else if (key === "columns") raw.columns = String(v).split(",").map((c) => c.trim());
    else raw[key] = v;
  }
  const r = LoadRequestSchema.safeParse(raw);
  if (!r.success) {
    const flagOf = (k: string) => `--${LOAD_FLAGS[k.split(".")[0] as keyof LoadRequest]?.flag ?? k}`;
    throw new Error(`${describeIssues(r.error, flagOf)}; see --help.`);
  }
  return r.data;
}

/** What the loader runs for a request; `cwd` anchors relative paths; rejects default to `defaultRejects`. */
export function toLoadOptions(
  request: LoadRequest,
  context: { cwd: string; defaultRejects: string },
): LoadOptions {
  if (request.columns && request.layout) throw new Error("give --columns or --layout, not both.");
  const columns = request.columns ?? (request.layout ? LAYOUTS[request.layout] : undefined);
  const opt = <K extends keyof LoadOptions>(key: K, value: LoadOptions[K] | undefined) => (value === undefined ? {} : { [key]: value });
  return {
    files: expandSource(path.resolve(context.cwd, request.source)),
    ...opt("format", request.format),
    ...opt("sqliteTable", request.table),
    ...opt("delimiter", request.delimiter),
    ...opt("columns", columns),
    ...opt("symbol", request.symbol),
    ...opt("provider", request.provider),
    ...opt("timeframe", request.timeframe),
    ...opt("exchange", request.exchange),
    ...opt("pathPattern", request.pathPattern),
    ...opt("mapping", request.map),
    ...opt("target", request.target),
    ...opt("onConflict", request.onConflict),
    ...opt("maxRejects", request.maxRejects === undefined ? undefined : String(request.maxRejects)),
    strict: request.strict ?? false,
    rejectsFile: path.resolve(context.cwd, request.rejects ?? context.defaultRejects),
  };
}
