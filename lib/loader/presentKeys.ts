/**
 * The keys (and, for `--on-conflict update`, the values) a chunk of a load already finds in the target, so the
 * loader writes only what is missing or changed. A daily file that repeats the last bars then costs
 * one index range scan per series instead of staging every row and merging it with ON CONFLICT.
 *
 * One query per chunk: for each series of the chunk, its time range [lo, hi]; the server answers with the
 * times present in that range as one bytea of big-endian float8 epoch microseconds (exact: microseconds up to
 * year 2200 are below 2^53), in time order, and for `update` the values in the same order as COPY text in one
 * bytea. Sending each row back as its own result row would cost the client an object per key.
 */
import type { Client } from "pg";

/** One series of a chunk: its key columns and the time range its rows cover. */
export interface SeriesRange {
  key: readonly [symbol: string, exchange: string, provider: string, timeframe: string];
  lo: string;
  hi: string;
}

/** Times present in one series' range, ascending, with their values when asked for. */
export interface PresentSeries {
  times: Float64Array;
  /**
   * The stored values of each time, as COPY text `open\tvolume...\tadj_close` (NULL as `\N`), UTF-8, one
   * after another; `valueEnds[j]` is where time j's values end (a newline separates them).
   */
  values?: Buffer;
  valueEnds?: Int32Array;
}

/** Keys present in the target for each range (by index in `ranges`); ranges with none are absent. */
export async function fetchPresent(
  client: Client,
  table: string,
  ranges: readonly SeriesRange[],
  withValues: boolean,
): Promise<Map<number, PresentSeries>> {
  if (ranges.length === 0) return new Map();
  // Values as stored, in COPY's text form: a re-load of the same file then compares equal byte for byte.
  const values = withValues
    ? `, string_agg(convert_to(concat_ws(E'\\t', t.open, t.high, t.low, t.close, t.volume, coalesce(t.adj_close::text, E'\\\\N')), 'UTF8'), '\\x0a'::bytea ORDER BY t.time) AS vals`
    : "";
  const r = await client.query<{ i: number; times: Buffer; vals?: Buffer }>(
    `SELECT s.i, string_agg(float8send((extract(epoch FROM t.time) * 1000000)::float8), ''::bytea ORDER BY t.time) AS times${values}
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
            AS s(i, symbol, exchange, provider, timeframe, lo, hi)
       JOIN ${table} t ON t.symbol = s.symbol AND t.exchange = s.exchange AND t.provider = s.provider
                      AND t.timeframe = s.timeframe AND t.time BETWEEN s.lo AND s.hi
      GROUP BY s.i`,
    [
      ranges.map((_, i) => i),
      ...[0, 1, 2, 3].map((k) => ranges.map((r) => r.key[k])),
      ranges.map((r) => r.lo),
      ranges.map((r) => r.hi),
    ],
  );
  const present = new Map<number, PresentSeries>();
  for (const row of r.rows) {
    const times = new Float64Array(row.times.length / 8);
    for (let j = 0; j < times.length; j++) times[j] = row.times.readDoubleBE(j * 8);
    if (!withValues || !row.vals) {
      present.set(row.i, { times });
      continue;
    }
    const vals = row.vals;
    const valueEnds = new Int32Array(times.length);
    let at = 0;
    for (let j = 0; j < times.length; j++) {
      const nl = vals.indexOf(10, at);
      valueEnds[j] = nl < 0 ? vals.length : nl;
      at = (valueEnds[j] as number) + 1;
    }
    present.set(row.i, { times, values: vals, valueEnds });
  }
  return present;
}

/** The values of time j of `p` as text fields (open .. adj_close, NULL as null). */
export function presentValues(p: PresentSeries, j: number): Array<string | null> {
  const ends = p.valueEnds as Int32Array;
  const start = j === 0 ? 0 : (ends[j - 1] as number) + 1;
  return (p.values as Buffer)
    .toString("utf8", start, ends[j])
    .split("\t")
    .map((v) => (v === "\\N" ? null : v));
}

/** Whether time j of `p` holds exactly the bytes `line[from, to)` (a row's values in COPY text). */
export function sameValueBytes(p: PresentSeries, j: number, line: Buffer, from: number, to: number): boolean {
  const ends = p.valueEnds as Int32Array;
  const start = j === 0 ? 0 : (ends[j - 1] as number) + 1;
  return (p.values as Buffer).compare(line, from, to, start, ends[j]) === 0;
}

/** Index of `t` in the ascending `times`, or -1. */
export function indexOfTime(times: Float64Array, t: number): number {
  let lo = 0;
  let hi = times.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = times[mid] ?? 0;
    if (v === t) return mid;
    if (v < t) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

const PLAIN_DECIMAL = /^([+-]?)0*(\d*)(?:\.(\d*?)0*)?$/;

/**
 * A plain decimal as PostgreSQL prints `trim_scale(x::numeric)` (no sign for zero, no leading zeros, no
 * trailing fractional zeros), so equal numbers compare equal as text; undefined for anything else (exponents,
 * empty text): such a row is sent to the server, which compares it as numeric.
 */
export function canonicalNumeric(text: string): string | undefined {
  const m = PLAIN_DECIMAL.exec(text);
  if (!m || !/\d/.test(text)) return undefined;
  const int = m[2] || "0";
  const frac = m[3] ?? "";
  const negative = m[1] === "-" && (int !== "0" || frac !== "");
  return `${negative ? "-" : ""}${int}${frac ? `.${frac}` : ""}`;
}

/**
 * The six values of a row (open, high, low, close, volume, adj_close; adj_close null or empty = none) in the
 * form fetchPresent returns them, or undefined when one is not a plain decimal.
 */
export function canonicalValues(values: ReadonlyArray<string | null>): string | undefined {
  let out = "";
  for (let i = 0; i < 6; i++) {
    const v = values[i];
    if (i === 5 && (v === null || v === undefined || v === "")) return `${out},`;
    const c = canonicalNumeric(v ?? "");
    if (c === undefined) return undefined;
    out += i === 0 ? c : `,${c}`;
  }
  return out;
}
