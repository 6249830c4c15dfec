/**
 * `npm run data -- validate`: the runbook's post-load checks as one report - rows per series, date ranges,
 * NULLs in critical columns, duplicate keys, and gaps - over the whole table or the series a filter selects.
 *
 * Gap rule (documented in docs/LOADING.md): a gap is a missing period, counted once per period.
 * - `1d`: every weekday (Mon-Fri, UTC date) between a series' first and last bar is expected, so exchange
 *   holidays show up as gaps;
 * - `Nw`: ISO weeks (Monday to Sunday, UTC) in steps of N, `Nmo`: calendar months in steps of N (`3mo`
 *   quarters, `12mo` years): every period between the first and the last bar's must hold a bar. A bar counts
 *   for the period its date falls in, so bars dated by the period's last trading day (a Thursday in a Good
 *   Friday week, a month ending on the 28th) are not gaps;
 * - intraday (`Nm`, `Nh`): bars on the same UTC date more than one interval apart, the gap divided by the
 *   interval minus one (nights and weekends are not gaps).
 */
import type { Client } from "pg";
import { DEFAULT_TARGET, quoteTarget } from "./target";
import { printable } from "./printable";
import { normalizeTimeframe, timeframeParts } from "./rowValidation";

/** One series: symbol, exchange, provider, timeframe. */
export interface SeriesReport {
  symbol: string;
  exchange: string;
  provider: string;
  timeframe: string;
  rows: number;
  first: string;
  last: string;
  /** Missing periods (bars) by the gap rule; null for a timeframe the rule does not cover. */
  missingBars: number | null;
}

/** Which series to check; every given field must match exactly. */
export interface ValidationFilter {
  symbol?: string;
  exchange?: string;
  provider?: string;
  timeframe?: string;
}

export interface ValidationReport {
  table: string;
  /** The filter the report is limited to (empty: the whole table). */
  filter: ValidationFilter;
  totalRows: number;
  series: SeriesReport[];
  /** NULL counts per critical column. */
  nulls: Record<string, number>;
  /** Keys (symbol, exchange, provider, timeframe, time) that occur more than once. */
  duplicateKeys: number;
  /** Bars whose high is below open or close, or low above them (kept by --inconsistent-ohlc flag or keep). */
  inconsistentOhlc: number;
  /** The first INCONSISTENT_SHOWN of them, in key order. */
  inconsistentBars: Array<{ symbol: string; exchange: string; provider: string; timeframe: string; time: string; open: string; high: string; low: string; close: string }>;
}

/** How many inconsistent bars the report lists. */
const INCONSISTENT_SHOWN = 20;
const INCONSISTENT = "(high < greatest(open, close) OR low > least(open, close))";

const FILTER_COLUMNS = ["symbol", "exchange", "provider", "timeframe"] as const;

// Timeframes are read through timeframeParts, which bounds them: a stored `100000000000h` (loaded before the
// bound, or written by hand) is out of an interval's range and gets "n/a" instead of failing the whole report.
function intervalOf(timeframe: string): string | undefined {
  const p = timeframeParts(timeframe);
  if (!p || (p.unit !== "m" && p.unit !== "h")) return undefined;
  return `${p.count} ${p.unit === "m" ? "minutes" : "hours"}`;
}

/**
 * SQL for the index of the period a bar falls in (weeks since the Monday 1970-01-05, or months since year 0,
 * divided by the step), for `Nw` and `Nmo`; undefined for other timeframes.
 */
function periodIndexOf(timeframe: string): string | undefined {
  const p = timeframeParts(timeframe);
  if (!p || (p.unit !== "w" && p.unit !== "mo")) return undefined;
  const step = p.count;
  const day = "(time AT TIME ZONE 'UTC')";
  return p.unit === "w"
    ? `floor(((${day})::date - DATE '1970-01-05')::numeric / ${7 * step})`
    : `floor((extract(year FROM ${day}) * 12 + extract(month FROM ${day}) - 1) / ${step})`;
}

/** `WHERE` text and parameters for a filter, parameters numbered from 1. */
function whereOf(filter: ValidationFilter): { where: string; params: string[] } {
  const params: string[] = [];
  const terms: string[] = [];
  for (const c of FILTER_COLUMNS) {
    const v = filter[c];
    if (v === undefined) continue;
    params.push(v);
    terms.push(`${c} = $${params.length}`);
  }
  return { where: terms.length ? `WHERE ${terms.join(" AND ")}` : "", params };
}

async function missingPeriods(client: Client, table: string, tf: string, params: string[]): Promise<number | null> {
  const series = `FROM ${table} WHERE symbol = $1 AND exchange = $2 AND provider = $3 AND timeframe = $4`;
  const lagged = `SELECT time, lag(time) OVER (ORDER BY time) AS prev ${series}`;
  let sql: string | undefined;
  const period = periodIndexOf(tf);
  if (tf === "1d") {
    sql = `SELECT coalesce(sum((SELECT count(*) FROM generate_series((prev AT TIME ZONE 'UTC')::date + 1, (time AT TIME ZONE 'UTC')::date - 1, interval '1 day') d
                                 WHERE extract(isodow FROM d) < 6)), 0)::bigint AS n
             FROM (${lagged}) x WHERE prev IS NOT NULL AND time - prev > interval '1 day'`;
  } else if (period) {
    sql = `SELECT coalesce(max(p) - min(p) + 1 - count(DISTINCT p), 0)::bigint AS n FROM (SELECT ${period} AS p ${series}) x`;
  } else {
    const step = intervalOf(tf);
    if (step) {
      sql = `SELECT coalesce(sum(floor(extract(epoch FROM time - prev) / extract(epoch FROM interval '${step}')) - 1), 0)::bigint AS n
               FROM (${lagged}) x
              WHERE prev IS NOT NULL AND (prev AT TIME ZONE 'UTC')::date = (time AT TIME ZONE 'UTC')::date AND time - prev > interval '${step}'`;
    }
  }
  if (!sql) return null;
  const g = await client.query<{ n: string }>(sql, params);
  return Number(g.rows[0]?.n ?? 0);
}

/** Builds the report for `target` (default market_data.ohlcv_bars), limited to the series `filter` selects. */
export async function validateOhlcv(client: Client, target = DEFAULT_TARGET, filter: ValidationFilter = {}): Promise<ValidationReport> {
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  const exists = await client.query("SELECT to_regclass($1) IS NOT NULL AS ok", [table]);
  if (!exists.rows[0]?.ok) throw new Error(`Table ${target} does not exist; apply the migrations first.`);
  const { where, params } = whereOf(filter);
  const critical = ["symbol", "timeframe", "time", "open", "high", "low", "close", "volume"];
  const totals = await client.query(
    `SELECT count(*)::bigint AS total, ${critical.map((c) => `count(*) FILTER (WHERE ${c} IS NULL)::bigint AS ${c}`).join(", ")} FROM ${table} ${where}`,
    params,
  );
  const t = totals.rows[0] as Record<string, string>;
  const dups = await client.query(
    `SELECT count(*)::bigint AS n FROM (SELECT 1 FROM ${table} ${where} GROUP BY symbol, exchange, provider, timeframe, time HAVING count(*) > 1) d`,
    params,
  );
  const inconsistentWhere = `${where ? `${where} AND` : "WHERE"} ${INCONSISTENT}`;
  const inconsistentCount = await client.query(`SELECT count(*)::bigint AS n FROM ${table} ${inconsistentWhere}`, params);
  const inconsistentBars = await client.query(
    `SELECT symbol, exchange, provider, timeframe, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time,
            open::text AS open, high::text AS high, low::text AS low, close::text AS close
       FROM ${table} ${inconsistentWhere} ORDER BY symbol, exchange, provider, timeframe, time LIMIT ${INCONSISTENT_SHOWN}`,
    params,
  );
  const series = await client.query(
    `SELECT symbol, exchange, provider, timeframe, count(*)::bigint AS rows,
            to_char(min(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS first,
            to_char(max(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last
       FROM ${table} ${where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
    params,
  );
  const out: SeriesReport[] = [];
  for (const r of series.rows as Array<Record<string, string>>) {
    const tf = r.timeframe ?? "";
    const missing = await missingPeriods(client, table, tf, [r.symbol ?? "", r.exchange ?? "", r.provider ?? "", tf]);
    out.push({
      symbol: r.symbol ?? "", exchange: r.exchange ?? "", provider: r.provider ?? "", timeframe: tf,
      rows: Number(r.rows), first: r.first ?? "", last: r.last ?? "", missingBars: missing,
    });
  }
  return {
    table: target,
    filter,
    totalRows: Number(t.total),
    series: out,
    nulls: Object.fromEntries(critical.map((c) => [c, Number(t[c])])),
    duplicateKeys: Number(dups.rows[0]?.n ?? 0),
    inconsistentOhlc: Number(inconsistentCount.rows[0]?.n ?? 0),
    inconsistentBars: inconsistentBars.rows as ValidationReport["inconsistentBars"],
  };
}

/** The filter from command-line values (`--symbol` ...; a timeframe in any spelling the loader accepts). */
export function validationFilter(values: Partial<Record<(typeof FILTER_COLUMNS)[number], string>>): ValidationFilter {
  const filter: ValidationFilter = {};
  for (const c of FILTER_COLUMNS) {
    const v = values[c];
    if (v === undefined) continue;
    if (c !== "timeframe") {
      filter[c] = v;
      continue;
    }
    const tf = normalizeTimeframe(v);
    if (tf === undefined) throw new Error(`--timeframe ${JSON.stringify(v)} is not like 1m, 5m, 1h, 1d, 1w, 1mo.`);
    filter.timeframe = tf;
  }
  return filter;
}

/** `symbol=AAPL timeframe=1d`, or "" for no filter. */
function filterText(filter: ValidationFilter): string {
  return FILTER_COLUMNS.filter((c) => filter[c] !== undefined).map((c) => `${c}=${printable(filter[c] ?? "")}`).join(" ");
}

/** The report as aligned text, ending with an OK line or the list of problems. */
export function formatValidation(r: ValidationReport): string {
  const filter = filterText(r.filter);
  const lines = [`${printable(r.table)}${filter ? ` (${filter})` : ""}: ${r.totalRows} rows in ${r.series.length} series`];
  if (filter && r.totalRows === 0) {
    lines.push(`no bars match ${filter}.`);
    return lines.join("\n");
  }
  const header = ["symbol", "exchange", "provider", "timeframe", "rows", "first", "last", "missing periods"];
  // Keys stored before the loader refused control and bidi characters (or written by other tools) are escaped.
  const rows = r.series.map((s) => [printable(s.symbol), printable(s.exchange), printable(s.provider), printable(s.timeframe), String(s.rows), s.first, s.last, s.missingBars === null ? "n/a" : String(s.missingBars)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  for (const row of [header, ...rows]) lines.push(row.map((v, i) => v.padEnd(widths[i] ?? 0)).join("  ").trimEnd());
  const nullCols = Object.entries(r.nulls).filter(([, n]) => n > 0);
  lines.push(`NULLs in critical columns: ${nullCols.length ? nullCols.map(([c, n]) => `${c}=${n}`).join(", ") : "none"}`);
  lines.push(`duplicate keys: ${r.duplicateKeys}`);
  const gaps = r.series.reduce((n, s) => n + (s.missingBars ?? 0), 0);
  lines.push(`missing periods (gaps): ${gaps}`);
  lines.push(`bars with inconsistent OHLC (high below open/close or low above them): ${r.inconsistentOhlc}`);
  for (const b of r.inconsistentBars) {
    lines.push(`  ${printable(JSON.stringify(b.symbol))} ${printable(b.exchange)} ${printable(b.provider)} ${printable(b.timeframe)} ${b.time}: open ${b.open} high ${b.high} low ${b.low} close ${b.close}`);
  }
  if (r.inconsistentOhlc > r.inconsistentBars.length) lines.push(`  ... and ${r.inconsistentOhlc - r.inconsistentBars.length} more`);
  return lines.join("\n");
}
