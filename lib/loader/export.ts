/**
 * `data export`: bars out of `market_data.ohlcv_bars` again, as CSV or Parquet, for backtesters that read
 * files (DuckDB, pandas, a NautilusTrader data wrangler). Values leave exactly as stored: prices and volume as
 * the text of the numeric (`185.10` stays `185.10`), times as UTC with every stored microsecond, so an export
 * loaded into an empty database (`data load`) gives identical rows.
 *
 * - CSV: header `time,symbol,exchange,provider,timeframe,open,high,low,close,volume,adj_close`; time as ISO-8601
 *   UTC (`2024-01-02T14:30:00Z`, `.ffffff` only when the microseconds are not zero); an empty adj_close is NULL.
 * - Parquet: `time` INT64 TIMESTAMP(MICROS, UTC); the key columns and the prices/volume as UTF8 strings. Prices
 *   are decimal text, not DOUBLE (which would round 42000.123456789012345678) and not DECIMAL (one fixed scale
 *   per column would turn `185.1` into `185.10`, and our reader gets DECIMAL as doubles): cast in the reader,
 *   e.g. DuckDB `open::DECIMAL(38, 12)`, pandas `pd.to_numeric(df.open)`.
 *
 * Rows are read in key order in pages (keyset pagination on the primary key) inside one REPEATABLE READ
 * transaction, so memory stays bounded and the file is one consistent snapshot even while loads run. The file
 * is written under a temporary name and renamed when complete: a failed export leaves no partial file.
 */
import fs from "node:fs";
import path from "node:path";
import { checkOutputPath } from "../outputPath";
import type { Client } from "pg";
import { withClient, type Connection } from "../db";
import { DEFAULT_TARGET, quoteTarget } from "./target";
import { normalizeTimeframe } from "./rowValidation";
import { microsToSql, parseTimestamp } from "./timestamps";

export type ExportFormat = "csv" | "parquet";

/** What to export and where. */
export interface ExportOptions {
  /** Output file; its extension (.csv, .parquet/.pq) gives the format unless `format` is set. */
  file: string;
  format?: ExportFormat;
  /** Filters: each given value must match exactly (timeframe in any spelling the loader accepts). */
  symbol?: string;
  exchange?: string;
  provider?: string;
  timeframe?: string;
  /** Bars at or after this time: ISO-8601, a plain date (00:00 UTC), or an epoch number, as the loader reads times. */
  from?: string;
  /** Bars at or before this time; a plain date includes its whole UTC day. */
  to?: string;
  /** Table to read (default market_data.ohlcv_bars). */
  target?: string;
  /** Replace an existing file (default: refuse). */
  overwrite?: boolean;
  /** Rows per query page and Parquet row group (default 100,000). */
  pageRows?: number;
}

export interface ExportSummary {
  file: string;
  format: ExportFormat;
  rows: number;
  seconds: number;
}

/** One bar as stored, every value as text; adjClose null for NULL. */
interface BarRow {
  time: string;
  symbol: string;
  exchange: string;
  provider: string;
  timeframe: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  adj_close: string | null;
  /** Epoch microseconds (Parquet), as text to keep precision. */
  micros: string;
}

export const EXPORT_COLUMNS = ["time", "symbol", "exchange", "provider", "timeframe", "open", "high", "low", "close", "volume", "adj_close"] as const;
const KEY = "symbol, exchange, provider, timeframe, time";
const PLAIN_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Format of an output file from its name; undefined when the extension says nothing. */
export function exportFormatOf(file: string): ExportFormat | undefined {
  const f = file.toLowerCase();
  if (f.endsWith(".parquet") || f.endsWith(".pq")) return "parquet";
  if (f.endsWith(".csv")) return "csv";
  return undefined;
}

function boundMicros(flag: "--from" | "--to", value: string): number {
  const t = parseTimestamp(value);
  if (!t.ok) throw new Error(`${flag} ${JSON.stringify(value)}: ${t.reason}.`);
  return t.micros;
}

/** The WHERE clause (without keyset) and its parameters for the filters, checked; throws on a bad value. */
export function exportFilter(options: ExportOptions): { terms: string[]; params: string[] } {
  const terms: string[] = [];
  const params: string[] = [];
  const add = (sql: (n: string) => string, value: string) => {
    params.push(value);
    terms.push(sql(`$${params.length}`));
  };
  for (const c of ["symbol", "exchange", "provider"] as const) {
    const v = options[c];
    if (v !== undefined) add((p) => `${c} = ${p}`, v);
  }
  if (options.timeframe !== undefined) {
    const tf = normalizeTimeframe(options.timeframe);
    if (tf === undefined) throw new Error(`--timeframe ${JSON.stringify(options.timeframe)} is not like 1m, 5m, 1h, 1d, 1w, 1mo.`);
    add((p) => `timeframe = ${p}`, tf);
  }
  if (options.from !== undefined) add((p) => `time >= ${p}::timestamptz`, microsToSql(boundMicros("--from", options.from)));
  if (options.to !== undefined) {
    const to = options.to.trim();
    if (PLAIN_DATE.test(to)) add((p) => `time < ${p}::timestamptz`, microsToSql(boundMicros("--to", to) + 86_400_000_000));
    else add((p) => `time <= ${p}::timestamptz`, microsToSql(boundMicros("--to", to)));
  }
  return { terms, params };
}

/** Pages of bars in key order, each at most `pageRows` long. */
async function* pages(client: Client, table: string, options: ExportOptions, pageRows: number): AsyncGenerator<BarRow[]> {
  const { terms, params } = exportFilter(options);
  let after: string[] | undefined;
  for (;;) {
    const keyset = after ? [`(${KEY}) > ($${params.length + 1}, $${params.length + 2}, $${params.length + 3}, $${params.length + 4}, $${params.length + 5}::timestamptz)`] : [];
    const where = [...terms, ...keyset];
    const r = await client.query<BarRow & { key_time: string }>(
      `SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS time, symbol, exchange, provider, timeframe,
              open::text AS open, high::text AS high, low::text AS low, close::text AS close, volume::text AS volume,
              adj_close::text AS adj_close,
              (extract(epoch FROM time - TIMESTAMPTZ '1970-01-01 00:00:00+00') * 1000000)::numeric(30, 0)::text AS micros
         FROM ${table} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY ${KEY} LIMIT ${pageRows}`,
      after ? [...params, ...after] : params,
    );
    if (r.rows.length === 0) return;
    for (const row of r.rows) row.time = `${row.time.replace(/\.000000$/, "")}Z`;
    yield r.rows;
    if (r.rows.length < pageRows) return;
    const last = r.rows[r.rows.length - 1] as BarRow;
    after = [last.symbol, last.exchange, last.provider, last.timeframe, last.time];
  }
}

function csvField(v: string | null): string {
  if (v === null) return "";
  return /[",\r\n]/.test(v) || v !== v.trim() ? `"${v.replace(/"/g, '""')}"` : v;
}

async function writeCsv(file: string, rows: AsyncGenerator<BarRow[]>): Promise<number> {
  const fd = fs.openSync(file, "w");
  let count = 0;
  try {
    fs.writeSync(fd, `${EXPORT_COLUMNS.join(",")}\n`);
    for await (const page of rows) {
      fs.writeSync(fd, page.map((r) => `${EXPORT_COLUMNS.map((c) => csvField(r[c])).join(",")}\n`).join(""));
      count += page.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return count;
}

async function writeParquet(file: string, rows: AsyncGenerator<BarRow[]>): Promise<number> {
  const { ParquetWriter, fileWriter } = await import("hyparquet-writer");
  const text = (name: string, nullable = false) =>
    ({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: nullable ? "OPTIONAL" : "REQUIRED" }) as const;
  const schema = [
    { name: "root", num_children: EXPORT_COLUMNS.length },
    { name: "time", type: "INT64", repetition_type: "REQUIRED", logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" } },
    ...EXPORT_COLUMNS.slice(1).map((c) => text(c, c === "adj_close")),
  ];
  const writer = new ParquetWriter({
    writer: fileWriter(file),
    schema: schema as ConstructorParameters<typeof ParquetWriter>[0]["schema"],
    kvMetadata: [{ key: "tsdb.numeric_columns", value: "open,high,low,close,volume,adj_close: exact decimal text of PostgreSQL numeric" }],
  });
  let count = 0;
  for await (const page of rows) {
    writer.write({
      columnData: [
        { name: "time", data: page.map((r) => BigInt(r.micros)) },
        ...EXPORT_COLUMNS.slice(1).map((c) => ({ name: c, data: page.map((r) => r[c]) })),
      ],
      rowGroupSize: page.length,
    });
    count += page.length;
  }
  writer.finish();
  return count;
}

/** Exports the bars `options` select through `client`; see the module comment for the file formats. */
export async function exportOhlcv(client: Client, options: ExportOptions): Promise<ExportSummary> {
  const started = Date.now();
  const format = options.format ?? exportFormatOf(options.file);
  if (format === undefined) throw new Error(`--out ${options.file}: name a .csv or .parquet file, or give --format csv|parquet.`);
  checkOutputPath(options.file);
  if (!options.overwrite && fs.existsSync(options.file)) throw new Error(`--out ${options.file} exists; give --force to replace it.`);
  const dir = path.dirname(path.resolve(options.file));
  if (!fs.existsSync(dir)) throw new Error(`--out ${options.file}: directory ${dir} does not exist.`);
  const target = options.target ?? DEFAULT_TARGET;
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  exportFilter(options); // bad filter values fail before anything is written
  const pageRows = options.pageRows ?? 100_000;
  const partial = path.join(dir, `.${path.basename(options.file)}.${process.pid}.partial`);
  let rows = 0;
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
      const exists = await client.query("SELECT to_regclass($1) IS NOT NULL AS ok", [table]);
      if (!exists.rows[0]?.ok) throw new Error(`Table ${target} does not exist; apply the migrations first.`);
      const source = pages(client, table, options, pageRows);
      rows = format === "csv" ? await writeCsv(partial, source) : await writeParquet(partial, source);
    } finally {
      await client.query("COMMIT").catch(() => undefined);
    }
    fs.renameSync(partial, options.file);
  } finally {
    fs.rmSync(partial, { force: true });
  }
  return { file: options.file, format, rows, seconds: (Date.now() - started) / 1000 };
}

/** Opens a client on `connection`, exports, and closes it. */
export async function exportOhlcvTo(connection: Connection, options: ExportOptions): Promise<ExportSummary> {
  return withClient(connection, (client) => exportOhlcv(client, options));
}

/** One line for the CLI. */
export function formatExportSummary(s: ExportSummary): string {
  return `exported ${s.rows} bars to ${s.file} (${s.format}) in ${s.seconds.toFixed(2)} s${s.rows === 0 ? "; no bar matched the filters" : ""}`;
}
