/**
 * `npm run data -- validate`: the runbook's post-load checks as one report - rows per series, date ranges,
 * NULLs in critical columns, duplicate keys, and gaps.
 *
 * Gap rule (documented in docs/LOADING.md): for `1d`, every weekday (Mon-Fri, UTC date) between a series'
 * first and last bar is expected, so exchange holidays show up as gaps; for `1w` and `1mo`, consecutive bars
 * more than 7 days / 31 days apart; for intraday timeframes (`Nm`, `Nh`), bars on the same UTC date more than
 * one interval apart (nights and weekends are not gaps). The count is the number of missing bars.
 */
import type { Client } from "pg";
import { DEFAULT_TARGET, quoteTarget } from "./OhlcvLoader";

/** One series: symbol, exchange, provider, timeframe. */
export interface SeriesReport {
  symbol: string;
  exchange: string;
  provider: string;
  timeframe: string;
  rows: number;
  first: string;
  last: string;
  /** Missing bars by the gap rule; null for a timeframe the rule does not cover. */
  missingBars: number | null;
}

export interface ValidationReport {
  table: string;
  totalRows: number;
  series: SeriesReport[];
  /** NULL counts per critical column. */
  nulls: Record<string, number>;
  /** Keys (symbol, exchange, provider, timeframe, time) that occur more than once. */
  duplicateKeys: number;
}

function intervalOf(timeframe: string): string | undefined {
  const m = /^(\d+)(m|h)$/.exec(timeframe);
  if (!m) return undefined;
  return `${m[1]} ${m[2] === "m" ? "minutes" : "hours"}`;
}

/** Builds the report for `target` (default market_data.ohlcv_bars). */
export async function validateOhlcv(client: Client, target = DEFAULT_TARGET): Promise<ValidationReport> {
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  const exists = await client.query("SELECT to_regclass($1) IS NOT NULL AS ok", [table]);
  if (!exists.rows[0]?.ok) throw new Error(`Table ${target} does not exist; apply the migrations first.`);
  const critical = ["symbol", "timeframe", "time", "open", "high", "low", "close", "volume"];
  const totals = await client.query(
    `SELECT count(*)::bigint AS total, ${critical.map((c) => `count(*) FILTER (WHERE ${c} IS NULL)::bigint AS ${c}`).join(", ")} FROM ${table}`,
  );
  const t = totals.rows[0] as Record<string, string>;
  const dups = await client.query(
    `SELECT count(*)::bigint AS n FROM (SELECT 1 FROM ${table} GROUP BY symbol, exchange, provider, timeframe, time HAVING count(*) > 1) d`,
  );
  const series = await client.query(
    `SELECT symbol, exchange, provider, timeframe, count(*)::bigint AS rows,
            to_char(min(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS first,
            to_char(max(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last
       FROM ${table} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
  );
  const out: SeriesReport[] = [];
  for (const r of series.rows as Array<Record<string, string>>) {
    const tf = r.timeframe ?? "";
    const params = [r.symbol, r.exchange, r.provider, tf];
    const lagged = `SELECT time, lag(time) OVER (ORDER BY time) AS prev FROM ${table}
                     WHERE symbol = $1 AND exchange = $2 AND provider = $3 AND timeframe = $4`;
    let missing: number | null = null;
    if (tf === "1d") {
      const g = await client.query(
        `SELECT coalesce(sum((SELECT count(*) FROM generate_series((prev AT TIME ZONE 'UTC')::date + 1, (time AT TIME ZONE 'UTC')::date - 1, interval '1 day') d
                               WHERE extract(isodow FROM d) < 6)), 0)::bigint AS n
           FROM (${lagged}) x WHERE prev IS NOT NULL AND time - prev > interval '1 day'`,
        params,
      );
      missing = Number(g.rows[0]?.n ?? 0);
    } else if (tf === "1w" || tf === "1mo") {
      const step = tf === "1w" ? "7 days" : "31 days";
      const g = await client.query(
        `SELECT count(*)::bigint AS n FROM (${lagged}) x WHERE prev IS NOT NULL AND time - prev > interval '${step}'`,
        params,
      );
      missing = Number(g.rows[0]?.n ?? 0);
    } else {
      const step = intervalOf(tf);
      if (step) {
        const g = await client.query(
          `SELECT coalesce(sum(floor(extract(epoch FROM time - prev) / extract(epoch FROM interval '${step}')) - 1), 0)::bigint AS n
             FROM (${lagged}) x
            WHERE prev IS NOT NULL AND (prev AT TIME ZONE 'UTC')::date = (time AT TIME ZONE 'UTC')::date AND time - prev > interval '${step}'`,
          params,
        );
        missing = Number(g.rows[0]?.n ?? 0);
      }
    }
    out.push({
      symbol: r.symbol ?? "", exchange: r.exchange ?? "", provider: r.provider ?? "", timeframe: tf,
      rows: Number(r.rows), first: r.first ?? "", last: r.last ?? "", missingBars: missing,
    });
  }
  return {
    table: target,
    totalRows: Number(t.total),
    series: out,
    nulls: Object.fromEntries(critical.map((c) => [c, Number(t[c])])),
    duplicateKeys: Number(dups.rows[0]?.n ?? 0),
  };
}

/** The report as aligned text, ending with an OK line or the list of problems. */
export function formatValidation(r: ValidationReport): string {
  const lines = [`${r.table}: ${r.totalRows} rows in ${r.series.length} series`];
  const header = ["symbol", "exchange", "provider", "timeframe", "rows", "first", "last", "missing bars"];
  const rows = r.series.map((s) => [s.symbol, s.exchange, s.provider, s.timeframe, String(s.rows), s.first, s.last, s.missingBars === null ? "n/a" : String(s.missingBars)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  for (const row of [header, ...rows]) lines.push(row.map((v, i) => v.padEnd(widths[i] ?? 0)).join("  ").trimEnd());
  const nullCols = Object.entries(r.nulls).filter(([, n]) => n > 0);
  lines.push(`NULLs in critical columns: ${nullCols.length ? nullCols.map(([c, n]) => `${c}=${n}`).join(", ") : "none"}`);
  lines.push(`duplicate keys: ${r.duplicateKeys}`);
  const gaps = r.series.reduce((n, s) => n + (s.missingBars ?? 0), 0);
  lines.push(`missing bars (gaps): ${gaps}`);
  return lines.join("\n");
}
