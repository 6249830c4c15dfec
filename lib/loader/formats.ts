/**
 * The one registry of the file formats the loader reads: per format its name, file extensions, magic bytes,
 * reader and the load-request options it accepts. Everything else is derived from it: `--format`'s choices and
 * help, directory expansion (KNOWN_EXTENSIONS), format detection (formatOf), the "no kind the loader reads" and
 * "does not apply to format" errors, the `tsdb:datasets` description in Pulumi.yaml and the table in
 * docs/LOADING.md (a unit test holds both equal to what this module renders). Adding a format is a reader in
 * sources/ plus one entry here.
 *
 * Readers are imported when a file is opened, not with this module: the CLI builds its help from the registry
 * on every run, and the Pulumi program validates settings with it, without loading any reader.
 */
import { readHead, otherKind, OTHER_KIND_NAMES, type OtherKind } from "./sources/sniff";
import type { RecordSource } from "./sources/types";

/** Load-request options whose meaning depends on the file's format; every other option applies to all. */
export const FORMAT_OPTIONS = ["table", "delimiter", "columns", "layout"] as const;
export type FormatOption = (typeof FORMAT_OPTIONS)[number];

/** What a reader is given: the request's format options (layout already turned into columns) and the zone. */
export interface ReaderOptions {
  table?: string;
  delimiter?: string;
  columns?: readonly string[];
  /** Set when zone-less times are local times (Parquet's naive TIMESTAMP is then wall-clock time). */
  timezone?: string;
}

/** One format: everything the loader, the CLI, the settings and the docs know about it. */
export interface FormatDeclaration {
  /** How help, errors and the docs name it. */
  title: string;
  /** File names that are this format when the first bytes do not say; lower case, with the dot. */
  extensions: readonly string[];
  /** Whether the first 64 bytes are this format's magic; absent: known by extension only. */
  magic?: (head: Buffer) => boolean;
  /** How a file whose magic is found is named ("a Parquet file"); default `title`. */
  kindName?: string;
  /** The format options it accepts (FORMAT_OPTIONS). */
  options: readonly FormatOption[];
  /** Whether a zip archive's data file may be of this format. */
  inZip: boolean;
  /** Who writes such files, for the docs. */
  writtenBy: string;
  /** Opens `file`; `openInner` opens another file by its own format (a zip's data file). */
  open(file: string, options: ReaderOptions, openInner: (inner: string) => Promise<RecordSource>): Promise<RecordSource>;
}

/** `s` at byte `at` of `head` (latin1). */
const startsWith = (head: Buffer, s: string, at = 0) => head.subarray(at, at + s.length).toString("latin1") === s;

/** The registry, in the order the magic bytes are tried and formats are listed. */
export const FORMATS = {
  csv: {
    title: "CSV",
    extensions: [".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt"],
    options: ["delimiter", "columns", "layout"],
    inZip: true,
    writtenBy: "pandas, yfinance, MetaTrader, Stooq, Binance, Kraken, QuantConnect Lean and most exporters; gzip-compressed too",
    async open(file, o) {
      // A forced --format csv on a binary file would print its header bytes as column names.
      const kind = sniffKind(file);
      if (kind !== undefined && kind !== "gzip") throw new Error(`${file} is a ${kindName(kind)} file, not CSV (--format csv).`);
      const { openCsv } = await import("./sources/csv.js");
      return openCsv(file, { ...(o.delimiter ? { delimiter: o.delimiter } : {}), ...(o.columns ? { columns: o.columns } : {}) });
    },
  },
  parquet: {
    title: "Parquet",
    extensions: [".parquet", ".pq"],
    magic: (head) => startsWith(head, "PAR1"),
    options: [],
    inZip: true,
    writtenBy: "pandas, pyarrow, polars, DuckDB, NautilusTrader",
    async open(file, o) {
      const { openParquet } = await import("./sources/parquet.js");
      return openParquet(file, { localTimestamps: o.timezone !== undefined });
    },
  },
  sqlite: {
    title: "SQLite",
    extensions: [".db", ".sqlite", ".sqlite3"],
    magic: (head) => startsWith(head, "SQLite format 3\u0000"),
    options: ["table"],
    inZip: false,
    writtenBy: "the runbook's ohlcv_data database, yfinance caches",
    async open(file, o) {
      const { openSqlite } = await import("./sources/sqlite.js");
      return openSqlite(file, o.table);
    },
  },
  duckdb: {
    title: "DuckDB",
    extensions: [".duckdb"],
    // DuckDB's main header: an 8-byte checksum, then the magic "DUCK".
    magic: (head) => startsWith(head, "DUCK", 8),
    options: ["table"],
    inZip: false,
    writtenBy: "Lumibot's storage, DuckDB",
    async open(file, o) {
      const { openDuckdb } = await import("./sources/duckdb.js");
      return openDuckdb(file, o.table);
    },
  },
  arrow: {
    title: "Arrow IPC/Feather",
    extensions: [".feather", ".arrow", ".ipc"],
    // The IPC file format (Feather v2) starts with ARROW1; the stream format with the continuation marker.
    magic: (head) => startsWith(head, "ARROW1") || (head.length >= 8 && head.readUInt32LE(0) === 0xffffffff),
    kindName: "Arrow IPC (Feather v2)",
    options: [],
    inZip: true,
    writtenBy: "freqtrade, Lumibot caches, pandas to_feather (uncompressed)",
    async open(file) {
      const { openArrowIpc } = await import("./sources/arrowIpc.js");
      return openArrowIpc(file);
    },
  },
  json: {
    title: "JSON",
    extensions: [".json"],
    options: [],
    inZip: true,
    writtenBy: "freqtrade (--data-format-ohlcv json), pandas to_json",
    async open(file) {
      const { openJson } = await import("./sources/json.js");
      return openJson(file);
    },
  },
  zip: {
    title: "zip",
    extensions: [".zip"],
    magic: (head) => startsWith(head, "PK\u0003\u0004") || startsWith(head, "PK\u0005\u0006"),
    // The options of the formats a zip may hold (a unit test holds this to them).
    options: ["delimiter", "columns", "layout"],
    inZip: false,
    writtenBy: "QuantConnect Lean (one zipped CSV each)",
    async open(file, _o, openInner) {
      const { openZip } = await import("./sources/zip.js");
      return openZip(file, ZIP_DATA_EXTENSIONS, openInner);
    },
  },
} satisfies Record<string, FormatDeclaration>;

/** A format the loader reads (a key of FORMATS). */
export type SourceFormat = keyof typeof FORMATS;

/** The formats, in registry order (`--format`'s choices, the settings' enum). */
export const SOURCE_FORMATS = Object.keys(FORMATS) as [SourceFormat, ...SourceFormat[]];

/** The declaration of `format`. */
export function formatEntry(format: SourceFormat): FormatDeclaration {
  return FORMATS[format];
}

const ENTRIES = Object.entries(FORMATS) as Array<[SourceFormat, FormatDeclaration]>;

/** The files a directory --source loads (`data load --help` lists these). */
export const KNOWN_EXTENSIONS: readonly string[] = ENTRIES.flatMap(([, f]) => f.extensions);

/** The data files a zip archive may hold. */
export const ZIP_DATA_EXTENSIONS: readonly string[] = ENTRIES.flatMap(([, f]) => (f.inZip ? f.extensions : []));

/** What a file is by its first bytes: a format with magic bytes, another kind the loader names, or undefined for text. */
export type SniffedKind = SourceFormat | OtherKind;

/** The kind of `file` by its first 64 bytes; undefined for text, and for anything that is not a regular file. */
export function sniffKind(file: string): SniffedKind | undefined {
  const head = readHead(file);
  if (head === undefined) return undefined;
  for (const [format, f] of ENTRIES) if (f.magic?.(head)) return format;
  return otherKind(head);
}

/** How messages name a sniffed kind. */
export function kindName(kind: SniffedKind): string {
  const f: FormatDeclaration | undefined = (FORMATS as Record<string, FormatDeclaration>)[kind];
  return f ? (f.kindName ?? f.title) : OTHER_KIND_NAMES[kind as OtherKind];
}

/** The formats as the "no kind the loader reads" error lists them. */
function readableKinds(): string {
  return ENTRIES.map(([format, f]) => (format === "csv" ? "CSV in UTF-8" : f.title)).join(", ");
}

/**
 * Format of a file: by its first bytes when they say (a format with magic bytes; gzip is CSV), else by its
 * name (each format's extensions), otherwise CSV. Throws for a binary file of no kind the loader reads, naming
 * it, rather than reading it as CSV.
 */
export function formatOf(file: string): SourceFormat {
  const kind = sniffKind(file);
  if (kind !== undefined && kind in FORMATS) return kind as SourceFormat;
  if (kind === "binary" || kind === "utf16") {
    throw new Error(`${file}: a ${kindName(kind)} file, of no kind the loader reads (${readableKinds()}).`);
  }
  const name = file.toLowerCase();
  const byName = ENTRIES.find(([, f]) => f.extensions.some((e) => name.endsWith(e)));
  return byName ? byName[0] : "csv";
}

/** The formats that accept `option`. */
export function formatsAccepting(option: FormatOption): SourceFormat[] {
  return ENTRIES.filter(([, f]) => f.options.includes(option)).map(([format]) => format);
}

/**
 * Why `option` cannot be given with `format` (neutral: the caller names the flag or setting); undefined when
 * it applies.
 */
export function optionFault(option: FormatOption, format: SourceFormat): string | undefined {
  if ((FORMATS[format].options as readonly string[]).includes(option)) return undefined;
  return `does not apply to format ${format}; it applies to ${formatsAccepting(option).join(", ")}`;
}

/** `--format`'s help line. */
export function formatHelp(): string {
  const sniffed = ENTRIES.filter(([, f]) => f.magic).map(([, f]) => f.title);
  return `${SOURCE_FORMATS.join(" | ")} (default: from each file's first bytes (${sniffed.join(", ")}; gzip is detected), else its extension, else csv)`;
}

/** The markdown table docs/LOADING.md holds between its `formats` markers. */
export function formatsTable(): string {
  const code = (xs: readonly string[]) => (xs.length === 0 ? "" : xs.map((x) => `\`${x}\``).join(" "));
  const rows = ENTRIES.map(([format, f]) => {
    const options = f.options.map((o) => `\`${o}\``).join(", ") || "none";
    return `| \`${format}\` | ${f.title} | ${code(f.extensions)} | ${f.magic ? "yes" : "no"} | ${options} | ${f.inZip ? "yes" : "no"} | ${f.writtenBy} |`;
  });
  return [
    "| format | what | extensions | known by its first bytes | format options | inside a zip | written by |",
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}
