/**
 * JSON files of bars: freqtrade's `--data-format-ohlcv json` (an array of `[date_ms, open, high, low, close,
 * volume]` arrays, pandas' `to_json(orient="values")`), and arrays of objects (`orient="records"`, keys as
 * column names). The file is parsed whole: such files hold one pair and timeframe each.
 */
import fs from "node:fs";
import { RECORDS_PER_BATCH, type RecordSource } from "./types";

/** freqtrade's columns for its array-of-arrays JSON. */
export const FREQTRADE_COLUMNS = ["date", "open", "high", "low", "close", "volume"] as const;

/** Opens a JSON file of bars as a record source. */
export async function openJson(file: string): Promise<RecordSource> {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message}).`, { cause: err });
  }
  if (!Array.isArray(data)) throw new Error(`${file}: JSON bars must be an array (of [date, open, high, low, close, volume] arrays, or of objects); this is ${data === null ? "null" : typeof data}.`);
  let columns: string[];
  let rows: unknown[][];
  if (data.length === 0 || Array.isArray(data[0])) {
    const width = (data[0] as unknown[] | undefined)?.length ?? FREQTRADE_COLUMNS.length;
    if (width !== FREQTRADE_COLUMNS.length) {
      throw new Error(`${file}: rows of ${width} values; freqtrade's JSON rows are [${FREQTRADE_COLUMNS.join(", ")}] (6 values).`);
    }
    columns = [...FREQTRADE_COLUMNS];
    rows = data as unknown[][];
  } else {
    columns = [...new Set(data.flatMap((o) => (o !== null && typeof o === "object" ? Object.keys(o as object) : [])))];
    rows = data.map((o) => columns.map((c) => (o !== null && typeof o === "object" ? (o as Record<string, unknown>)[c] : undefined)));
  }
  return {
    name: file,
    columns,
    declared: {},
    totalRows: rows.length,
    fractionRead: () => undefined,
    async *batches() {
      for (let i = 0; i < rows.length; i += RECORDS_PER_BATCH) yield rows.slice(i, i + RECORDS_PER_BATCH);
    },
    close: async () => undefined,
  };
}
