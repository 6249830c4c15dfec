/**
 * Which source column feeds which table column: explicit mapping first, then well-known names.
 * Also the path pattern (`data/{provider}/{symbol}/{timeframe}/*.parquet`) and source expansion
 * (file, directory, glob).
 */
import fs from "node:fs";
import path from "node:path";

/** Table columns a source can feed. */
export const FIELDS = [
  "time", "symbol", "exchange", "provider", "timeframe", "open", "high", "low", "close", "volume", "adj_close",
] as const;
export type Field = (typeof FIELDS)[number];

/** Source column names recognised for each field, compared case-insensitively after trimming. */
export const COLUMN_ALIASES: Record<Field, readonly string[]> = {
  time: ["ts_event", "timestamp", "datetime", "time", "ts", "date", "t"],
  symbol: ["symbol", "ticker", "instrument_id"],
  exchange: ["exchange", "region", "venue"],
  provider: ["provider", "vendor"],
  timeframe: ["timeframe", "interval", "tf"],
  open: ["open", "o"],
  high: ["high", "h"],
  low: ["low", "l"],
  close: ["close", "c"],
  volume: ["volume", "vol", "v"],
  adj_close: ["adj_close", "adjclose", "adj close", "adjusted_close"],
};

/** field -> index of the source column that feeds it. */
export type ColumnIndexes = Partial<Record<Field, number>>;

/**
 * Resolves each field to a source column. `explicit` (field -> column name) wins; otherwise the first alias
 * present. Throws naming the missing field and the columns the source has.
 */
export function resolveColumns(
  columns: readonly string[],
  explicit: Partial<Record<Field, string>> = {},
  required: readonly Field[] = ["time", "open", "high", "low", "close"],
  sourceName = "source",
): ColumnIndexes {
  const lower = columns.map((c) => c.trim().toLowerCase());
  const out: ColumnIndexes = {};
  for (const field of FIELDS) {
    const want = explicit[field];
    if (want !== undefined) {
      const i = lower.indexOf(want.trim().toLowerCase());
      if (i < 0) {
        throw new Error(`${sourceName}: mapped column ${JSON.stringify(want)} for ${field} is not among its columns (${columns.join(", ")}).`);
      }
      out[field] = i;
      continue;
    }
    for (const alias of COLUMN_ALIASES[field]) {
      const i = lower.indexOf(alias);
      if (i >= 0) {
        out[field] = i;
        break;
      }
    }
  }
  for (const field of required) {
    if (out[field] === undefined) {
      throw new Error(
        `${sourceName}: no column for ${field}; expected one of ${COLUMN_ALIASES[field].join(", ")} ` +
          `(or map one with --map ${field}=COLUMN). Columns: ${columns.join(", ")}.`,
      );
    }
  }
  return out;
}

/** Parses `field=column,field=column` (the CLI's --map) into an explicit mapping. */
export function parseMapping(text: string): Partial<Record<Field, string>> {
  const out: Partial<Record<Field, string>> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    const field = part.slice(0, eq).trim() as Field;
    if (eq < 1 || !FIELDS.includes(field)) {
      throw new Error(`--map entry ${JSON.stringify(part)} must be FIELD=COLUMN with FIELD one of ${FIELDS.join(", ")}.`);
    }
    out[field] = part.slice(eq + 1).trim();
  }
  return out;
}

const PATTERN_KEYS = ["symbol", "provider", "timeframe", "exchange"] as const;
export type PathKey = (typeof PATTERN_KEYS)[number];

function escapeRegex(s: string): string {
  return s.replace(/[.+^$()|\\]/g, "\\$&");
}

/** A glob (`*`, `**`, `?`, `{name}` captures) as a regex anchored at the end of a `/`-separated path. */
function patternRegex(pattern: string, captures: boolean): RegExp {
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
      if (end < 0 || !(PATTERN_KEYS as readonly string[]).includes(key)) {
        throw new Error(`--path-pattern ${JSON.stringify(pattern)}: {${key}} is not one of ${PATTERN_KEYS.map((k) => `{${k}}`).join(", ")}.`);
      }
      re += `(?<${key}>[^/]+)`;
      i = end;
    } else re += escapeRegex(ch);
  }
  return new RegExp(`(?:^|/)${re}$`);
}

/** Values for symbol/provider/timeframe/exchange taken from a file path by a pattern; {} when it does not match. */
export function matchPathPattern(pattern: string, filePath: string): Partial<Record<PathKey, string>> {
  const m = patternRegex(pattern, true).exec(filePath.replace(/\\/g, "/"));
  return m?.groups ? { ...m.groups } : {};
}

const KNOWN_EXTENSIONS = [".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".parquet", ".pq", ".db", ".sqlite", ".sqlite3"];

/**
 * The files a `--source` names, sorted: a file; a directory (every file below it with a known extension);
 * or a glob with `*`, `**`, `?`. Throws when nothing matches.
 */
export function expandSource(source: string): string[] {
  const wild = /[*?[]/.test(source);
  if (!wild) {
    const stat = fs.statSync(source, { throwIfNoEntry: false });
    if (!stat) throw new Error(`--source ${source} does not exist.`);
    // Files, and also FIFOs and devices (`/dev/stdin`): anything that is not a directory is read as one source.
    if (!stat.isDirectory()) return [source];
    const files = (fs.readdirSync(source, { recursive: true }) as string[])
      .map((f) => path.join(source, f))
      .filter((f) => KNOWN_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e)) && fs.statSync(f).isFile())
      .sort();
    if (files.length === 0) throw new Error(`--source ${source} is a directory with no ${KNOWN_EXTENSIONS.join(" ")} files.`);
    return files;
  }
  const parts = source.replace(/\\/g, "/").split("/");
  const firstWild = parts.findIndex((p) => /[*?[]/.test(p));
  const base = parts.slice(0, firstWild).join("/") || ".";
  const re = patternRegex(parts.slice(firstWild).join("/"), false);
  const files = fs.existsSync(base)
    ? (fs.readdirSync(base, { recursive: true }) as string[])
        .map((f) => f.replace(/\\/g, "/"))
        .filter((f) => re.test(f) && re.exec(f)?.index === 0)
        .map((f) => path.join(base, f))
        .filter((f) => fs.statSync(f).isFile())
        .sort()
    : [];
  if (files.length === 0) throw new Error(`--source ${source} matches no files.`);
  return files;
}
