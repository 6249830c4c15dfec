/**
 * One input contract for a load: the LoadRequest. Stack settings (`tsdb:datasets`, see lib/settings.ts), the
 * CLI's flags (cli/data.ts) and the Pulumi hook (providers/DatasetProvider.ts -> hookWorker.ts, as JSON)
 * all produce this object and validate it with this one schema; toLoadOptions turns it into what the loader
 * runs. Adding an option means adding it to the schema here and its flag in ./loadFlags.ts, nowhere else.
 *
 * Only zod and loader modules without database code are imported, so the Pulumi program can validate settings without loading pg.
 */
import path from "node:path";
import { z } from "zod";
import { FIELDS, LAYOUTS, expandSources, parseMapping } from "./columnMapping";
import { LOAD_FLAGS } from "./loadFlags";
import { INCONSISTENT_OHLC_RULES } from "./rowValidation";
import { SOURCE_FORMATS } from "./sources/types";
import { AMBIGUOUS_TIME_RULES, isTimeZone } from "./timeZone";
import type { LoadOptions } from "./OhlcvLoader";

const MAX_REJECTS = /^\s*(\d+|\d+(\.\d+)?%)\s*$/;

/** The schema of a load request (JSON-serializable: the hook sends it to a child process). */
export const LoadRequestSchema = z.strictObject({
  /**
   * File, directory or glob, or a list of them (every file of each is loaded, each file once); relative to the
   * working directory (CLI) or the project (settings).
   */
  source: z.union([z.string().min(1, "must be a non-empty path"), z.array(z.string().min(1, "must be a non-empty path")).min(1, "must name at least one path")]),
  format: z.enum(SOURCE_FORMATS).optional(),
  /** SQLite or DuckDB table. */
  table: z.string().min(1).optional(),
  symbol: z.string().min(1).optional(),
  provider: z.string().optional(),
  timeframe: z.string().min(1).optional(),
  exchange: z.string().optional(),
  pathPattern: z.string().min(1).optional(),
  /** field -> source column. */
  map: z.partialRecord(z.enum(FIELDS), z.string()).optional(),
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
  /** IANA time zone of zone-less date-times (default UTC); plain dates stay dates. */
  timezone: z.string().refine(isTimeZone, "must be an IANA time zone name such as America/New_York, Europe/London or UTC").optional(),
  /** Bars with inconsistent OHLC: rejected (default), kept and listed, or kept. */
  inconsistentOhlc: z.enum(INCONSISTENT_OHLC_RULES).optional(),
  /** Prices are divided by this power of ten (QuantConnect Lean's deci-cents: 10000). */
  priceDivisor: z
    .union([z.number(), z.string().regex(/^\s*\d+\s*$/, "must be a power of ten such as 100 or 10000").transform(Number)])
    .refine((n) => [10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000].includes(n), "must be a power of ten from 10 to 100000000, such as 10000 for deci-cents")
    .optional(),
  /** A zone-less time that occurs twice in `timezone` (clocks set back). */
  ambiguousTime: z.enum(AMBIGUOUS_TIME_RULES).optional(),
  /** Seconds to wait for a lock before giving up naming its holder (default 60). */
  lockTimeout: z.union([z.number().positive(), z.string().regex(/^\s*\d+(\.\d+)?\s*$/, "must be a number of seconds such as 60")]).optional(),
});

/** A validated load request. */
export type LoadRequest = z.infer<typeof LoadRequestSchema>;

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

/** The request the CLI's parsed flags describe (values as commander returns them: strings, string lists for repeatable flags, or booleans for switches). */
export function loadRequestFromFlags(values: Record<string, string | readonly string[] | boolean | undefined>): LoadRequest {
  const raw: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(LOAD_FLAGS) as Array<[keyof LoadRequest, (typeof LOAD_FLAGS)[keyof LoadRequest]]>) {
    const v = values[spec.flag];
    if (v === undefined) continue;
    if (key === "map") raw.map = parseMapping(String(v));
    else if (key === "columns") raw.columns = String(v).split(",").map((c) => c.trim());
    // --source may be repeated: one path stays a string, several are a list.
    else if (key === "source") raw.source = Array.isArray(v) && v.length === 1 ? v[0] : v;
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
    files: expandSources((typeof request.source === "string" ? [request.source] : request.source).map((s) => path.resolve(context.cwd, s))),
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
    ...opt("timezone", request.timezone),
    ...opt("ambiguousTime", request.ambiguousTime),
    ...opt("priceDivisor", request.priceDivisor),
    ...opt("inconsistentOhlc", request.inconsistentOhlc),
    ...opt("lockTimeoutMs", request.lockTimeout === undefined ? undefined : Number(request.lockTimeout) * 1000),
    strict: request.strict ?? false,
    rejectsFile: path.resolve(context.cwd, request.rejects ?? context.defaultRejects),
  };
}
