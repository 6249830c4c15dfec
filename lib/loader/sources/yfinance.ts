/**
 * yfinance's layouts since 0.2.51, where `yf.download` returns columns as a (Price, Ticker) MultiIndex even for
 * one ticker. Its CSV (`df.to_csv()`) has three header rows, `Price,Close,High,...`, `Ticker,AAPL,AAPL,...` and
 * `Date,,,...`; its Parquet (`df.to_parquet()`, pyarrow) names each column by the tuple's text,
 * `('Close', 'AAPL')`. Both are read here as one long table: the plain columns (the date), a `Ticker` column and
 * one column per price field, one record per row and ticker; a ticker with no value at all in a row (another
 * ticker's trading day) gives no record.
 */
import type { RecordSource } from "./types";

/** pyarrow's text of a two-element tuple of strings: `('Close', 'AAPL')`. */
const TUPLE = /^\('((?:[^'\\]|\\.)*)', '((?:[^'\\]|\\.)*)'\)$/;

/** The (price, ticker) of a column named by a tuple, or undefined. */
export function tupleColumn(name: string): [string, string] | undefined {
  const m = TUPLE.exec(name.trim());
  return m ? [m[1] ?? "", m[2] ?? ""] : undefined;
}

/**
 * The columns of yfinance's three-row CSV header, as pyarrow would name them, when `header` and the first two
 * rows after it are that header (`Price,...` / `Ticker,...` / `Date,,,`); else undefined.
 */
export function yfinanceCsvHeader(header: readonly string[], next: ReadonlyArray<readonly string[]>): string[] | undefined {
  const [tickers, index] = next;
  if (header[0]?.trim().toLowerCase() !== "price" || tickers?.[0]?.trim().toLowerCase() !== "ticker" || !index) return undefined;
  if (tickers.length !== header.length || index.length !== header.length || index.slice(1).some((c) => c.trim() !== "")) return undefined;
  return header.map((price, i) => (i === 0 ? (index[0] ?? "").trim() : `('${price.trim()}', '${(tickers[i] ?? "").trim()}')`));
}

/**
 * `source` as a long table when some of its columns are (price, ticker) tuples with a ticker; the source itself
 * otherwise, or when `keep` names one of its tuple columns (the user maps them one by one).
 */
export function longTickers(source: RecordSource, keep: ReadonlySet<string> = new Set()): RecordSource {
  const tuples = source.columns.map(tupleColumn);
  if (!tuples.some((t) => t && t[1] !== "") || source.columns.some((c) => keep.has(c))) return source;
  const plain: number[] = [];
  const plainNames: string[] = [];
  const prices: string[] = [];
  const tickers: string[] = [];
  tuples.forEach((t, i) => {
    if (!t || t[1] === "") {
      plain.push(i);
      plainNames.push(t ? t[0] : (source.columns[i] as string));
      return;
    }
    if (!prices.includes(t[0])) prices.push(t[0]);
    if (!tickers.includes(t[1])) tickers.push(t[1]);
  });
  // at[ticker][price] = source column index, or -1.
  const at = tickers.map((ticker) => prices.map((price) => tuples.findIndex((t) => t !== undefined && t[0] === price && t[1] === ticker)));
  const empty = (v: unknown) => v === null || v === undefined || v === "" || (typeof v === "number" && Number.isNaN(v));
  return {
    ...source,
    name: source.name,
    columns: [...plainNames, "Ticker", ...prices],
    declared: source.declared,
    ...(source.totalRows === undefined ? {} : { totalRows: source.totalRows * tickers.length }),
    fractionRead: () => source.fractionRead(),
    async *batches() {
      for await (const batch of source.batches()) {
        const out: unknown[][] = [];
        for (const row of batch) {
          const base = plain.map((i) => row[i]);
          tickers.forEach((ticker, k) => {
            const values = (at[k] as number[]).map((i) => (i < 0 ? undefined : row[i]));
            if (values.every(empty)) return;
            out.push([...base, ticker, ...values]);
          });
        }
        yield out;
      }
    },
    close: () => source.close(),
  };
}
