/**
 * One input contract for a load: the LoadRequest. Stack settings (`tsdb:datasets`, see lib/settings.ts), the
 * CLI's flags (cli/data.ts) and the Pulumi hook (providers/DatasetProvider.ts -> hookWorker.ts, as JSON)
 * all produce this object and validate it with this one schema; toLoadOptions turns it into what the loader
 * runs (its type requires a line for every key). Each option is parsed here once: its fixed list of values
 * comes from one constant (the format registry ./formats.ts, CONFLICT_POLICIES, LAYOUT_NAMES, the time and
 * OHLC rules), and maxRejects is checked by the loader's own parser. Adding an option means adding it to the
 * schema and to toLoadOptions here and its flag in ./loadFlags.ts, nowhere else.
 *
 * Only zod and loader modules without database code are imported, so the Pulumi program can validate settings without loading pg.
 */
import path from "node:path";
import { z } from "zod";
import { FIELDS, LAYOUTS, expandSources, pathPatternFault } from "./columnMapping";
import { FORMAT_OPTIONS, type FormatOption, SOURCE_FORMATS, optionFault } from "./formats";
import { CONFLICT_POLICIES, LAYOUT_NAMES, LOAD_FLAGS } from "./loadFlags";
import { parseMaxRejects } from "./rejectLimit";
import { INCONSISTENT_OHLC_RULES } from "./rowValidation";
import { AMBIGUOUS_TIME_RULES, isTimeZone } from "./timeZone";
import type { LoadOptions } from "./OhlcvLoader";

/** Whether `text` is a --max-rejects the loader takes (its own parser: a count, or a percentage up to 100%). */
function isMaxRejects(text: string): boolean {
  try {
    parseMaxRejects(text);
    return true;
  } catch {
    return false;
  }
}

/** Each option of a load request and how it is checked. */
export const LoadRequestFields = z.strictObject({
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
  pathPattern: z
    .string()
    .min(1)
    .superRefine((pattern, ctx) => {
      const fault = pathPatternFault(pattern);
      if (fault) ctx.addIssue({ code: "custom", message: fault });
    })
    .optional(),
  /** field -> source column. */
  map: z.partialRecord(z.enum(FIELDS), z.string()).optional(),
  /** Column names of a headerless CSV file, in order. */
  columns: z.array(z.string().min(1)).min(1).optional(),
  /** A known headerless layout instead of `columns`. */
  layout: z.enum(LAYOUT_NAMES).optional(),
  delimiter: z.string().length(1, "must be one character").optional(),
  onConflict: z.enum(CONFLICT_POLICIES).optional(),
  /** Rejects CSV; default .tsdb/rejects/last-load.csv (CLI) or .tsdb/rejects/<dataset>.csv (hook). */
  rejects: z.string().min(1).optional(),
  maxRejects: z.union([z.string().refine(isMaxRejects, "must be a count like 250 or a percentage like 10% (at most 100%)"), z.number().int().min(0)]).optional(),
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

/**
 * The schema of a load request (JSON-serializable: the hook sends it to a child process). With `format`
 * given, a format option that does not apply to it (the registry's list) is refused, naming the option.
 */
export const LoadRequestSchema = LoadRequestFields.superRefine(refuseFormatOptions);

/** The rule LoadRequestSchema adds to its fields (settings add it to theirs, which extend them). */
export function refuseFormatOptions(request: Pick<z.infer<typeof LoadRequestFields>, "format" | FormatOption>, ctx: z.RefinementCtx): void {
  if (request.format === undefined) return;
  for (const option of FORMAT_OPTIONS) {
    const fault = request[option] === undefined ? undefined : optionFault(option, request.format);
    if (fault) ctx.addIssue({ code: "custom", path: [option], message: fault });
  }
}

/** A validated load request. */
export type LoadRequest = z.infer<typeof LoadRequestFields>;

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
  for (const [key, spec] of Object.entries(LOAD_FLAGS)) {
    const v = values[spec.flag];
    if (v === undefined) continue;
    // A repeatable flag given once is a string, several times a list.
    if (spec.repeatable) raw[key] = Array.isArray(v) && v.length === 1 ? v[0] : v;
    else raw[key] = spec.fromText ? spec.fromText(String(v)) : v;
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
  const options: Partial<LoadOptions> = {};
  for (const key of Object.keys(TO_OPTIONS) as Array<keyof LoadRequest>) Object.assign(options, TO_OPTIONS[key](request as never, context));
  return options as LoadOptions;
}

/** What each request key becomes in LoadOptions: a line for every key, so none can be left out. */
const TO_OPTIONS: { [K in keyof LoadRequest]-?: (request: LoadRequest, context: { cwd: string; defaultRejects: string }) => Partial<LoadOptions> } = {
  source: (r, c) => ({ files: expandSources((typeof r.source === "string" ? [r.source] : r.source).map((s) => path.resolve(c.cwd, s))) }),
  format: (r) => opt("format", r.format),
  table: (r) => opt("table", r.table),
  symbol: (r) => opt("symbol", r.symbol),
  provider: (r) => opt("provider", r.provider),
  timeframe: (r) => opt("timeframe", r.timeframe),
  exchange: (r) => opt("exchange", r.exchange),
  pathPattern: (r) => opt("pathPattern", r.pathPattern),
  map: (r) => opt("map", r.map),
  // A layout is its column names.
  columns: (r) => opt("columns", r.columns ?? (r.layout ? LAYOUTS[r.layout] : undefined)),
  layout: () => ({}),
  delimiter: (r) => opt("delimiter", r.delimiter),
  onConflict: (r) => opt("onConflict", r.onConflict),
  rejects: (r, c) => ({ rejects: path.resolve(c.cwd, r.rejects ?? c.defaultRejects) }),
  maxRejects: (r) => opt("maxRejects", r.maxRejects === undefined ? undefined : String(r.maxRejects)),
  strict: (r) => ({ strict: r.strict ?? false }),
  target: (r) => opt("target", r.target),
  timezone: (r) => opt("timezone", r.timezone),
  inconsistentOhlc: (r) => opt("inconsistentOhlc", r.inconsistentOhlc),
  priceDivisor: (r) => opt("priceDivisor", r.priceDivisor),
  ambiguousTime: (r) => opt("ambiguousTime", r.ambiguousTime),
  lockTimeout: (r) => opt("lockTimeoutMs", r.lockTimeout === undefined ? undefined : Number(r.lockTimeout) * 1000),
};

/** `{ [key]: value }`, or nothing when the value is undefined (LoadOptions' keys are optional, not undefined). */
function opt<K extends keyof LoadOptions>(key: K, value: LoadOptions[K] | undefined): Partial<LoadOptions> {
  return value === undefined ? {} : ({ [key]: value } as Partial<LoadOptions>);
}
