/**
 * The bundled sample: deterministic (seeded PRNG) random-walk bars for a few symbols, daily over three years
 * and hourly over six months, written as CSV, NautilusTrader-style Parquet and a SQLite database in the
 * runbook's `ohlcv_data` + `tickers` shape. The same bars in every format, prices with at most two decimals,
 * written as their shortest text, and provider SAMPLE in a column of each, so all three load to identical
 * rows and loading the whole directory stores each bar once.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/** One generated bar; prices in integer cents so OHLC relations are exact. */
export interface SampleBar {
  symbol: string;
  timeframe: "1d" | "1h";
  /** Epoch milliseconds, UTC. */
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export const SAMPLE_SYMBOLS = [
  { symbol: "AAPL", start: 18_000, name: "Apple Inc." },
  { symbol: "MSFT", start: 33_500, name: "Microsoft Corp." },
  { symbol: "NFLX", start: 59_000, name: "Netflix Inc." },
] as const;
export const SAMPLE_EXCHANGE = "XNAS";
export const SAMPLE_PROVIDER = "SAMPLE";
const SEED = 20_240_101;
const DAILY_FROM = Date.UTC(2022, 0, 3);
const HOURLY_FROM = Date.UTC(2024, 6, 1);
const UNTIL = Date.UTC(2025, 0, 1);
/** Hourly bars at 14:00..20:00 UTC, the US session without DST shifts, so the sample has no gaps. */
const HOURS = [14, 15, 16, 17, 18, 19, 20];

/** mulberry32: tiny, fast and good enough for test data (also the test fixtures' generators). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  const u = 1 - rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function walk(rand: () => number, startCents: number, times: number[], vol: number, baseVolume: number): Omit<SampleBar, "symbol" | "timeframe">[] {
  let prev = startCents;
  return times.map((time) => {
    const open = prev;
    const close = Math.max(100, Math.round(open * (1 + vol * gaussian(rand))));
    const high = Math.max(open, close) + Math.round(Math.abs(gaussian(rand)) * open * vol * 0.5);
    const low = Math.max(1, Math.min(open, close) - Math.round(Math.abs(gaussian(rand)) * open * vol * 0.5));
    prev = close;
    return { time, open, high, low, close, volume: Math.round(baseVolume * (0.5 + rand())) };
  });
}

/** Every sample bar, in symbol, timeframe, time order. */
export function generateSampleBars(): SampleBar[] {
  const rand = prng(SEED);
  const days: number[] = [];
  for (let t = DAILY_FROM; t < UNTIL; t += 86_400_000) {
    const dow = new Date(t).getUTCDay();
    if (dow !== 0 && dow !== 6) days.push(t);
  }
  const hours = days.filter((d) => d >= HOURLY_FROM).flatMap((d) => HOURS.map((h) => d + h * 3_600_000));
  const bars: SampleBar[] = [];
  for (const s of SAMPLE_SYMBOLS) {
    for (const b of walk(rand, s.start, days, 0.018, 50_000_000)) bars.push({ symbol: s.symbol, timeframe: "1d", ...b });
    for (const b of walk(rand, s.start, hours, 0.006, 5_000_000)) bars.push({ symbol: s.symbol, timeframe: "1h", ...b });
  }
  return bars;
}

/** Cents as the shortest decimal text (`18510` -> `185.1`), the same text String() gives the double. */
export function centsText(cents: number): string {
  return String(cents / 100);
}

function isoTime(bar: SampleBar): string {
  const iso = new Date(bar.time).toISOString();
  return bar.timeframe === "1d" ? iso.slice(0, 10) : `${iso.slice(0, 19)}Z`;
}

/** Relative paths of the files writeSample creates. */
export function sampleFiles(): string[] {
  const files = ["csv/ohlcv.csv", "sqlite/sample.db"];
  for (const s of SAMPLE_SYMBOLS) {
    for (const tf of ["1d", "1h"]) files.push(`parquet/${SAMPLE_PROVIDER}/${s.symbol}/${tf}/${s.symbol.toLowerCase()}_${tf}.parquet`);
  }
  return files.sort();
}

/** Writes the sample under `dir` (csv/, parquet/{provider}/{symbol}/{timeframe}/, sqlite/). */
export async function writeSample(dir: string): Promise<void> {
  const bars = generateSampleBars();
  fs.mkdirSync(path.join(dir, "csv"), { recursive: true });
  const csv = ["timestamp,symbol,exchange,provider,timeframe,open,high,low,close,volume"];
  for (const b of bars) {
    csv.push(
      `${isoTime(b)},${b.symbol},${SAMPLE_EXCHANGE},${SAMPLE_PROVIDER},${b.timeframe},` +
        `${centsText(b.open)},${centsText(b.high)},${centsText(b.low)},${centsText(b.close)},${b.volume}`,
    );
  }
  fs.writeFileSync(path.join(dir, "csv", "ohlcv.csv"), `${csv.join("\n")}\n`);

  const { parquetWriteFile } = await import("hyparquet-writer");
  for (const s of SAMPLE_SYMBOLS) {
    for (const tf of ["1d", "1h"] as const) {
      const rows = bars.filter((b) => b.symbol === s.symbol && b.timeframe === tf);
      const out = path.join(dir, "parquet", SAMPLE_PROVIDER, s.symbol, tf, `${s.symbol.toLowerCase()}_${tf}.parquet`);
      fs.mkdirSync(path.dirname(out), { recursive: true });
      // NautilusTrader-style: ts_event/ts_init in nanoseconds, bar_type metadata; prices as doubles. The
      // provider is a column, as in a user's own file, so the file loads as SAMPLE without --provider or a
      // path pattern (Nautilus has no provider of its own).
      parquetWriteFile({
        filename: out,
        columnData: [
          { name: "open", data: rows.map((b) => b.open / 100), type: "DOUBLE" },
          { name: "high", data: rows.map((b) => b.high / 100), type: "DOUBLE" },
          { name: "low", data: rows.map((b) => b.low / 100), type: "DOUBLE" },
          { name: "close", data: rows.map((b) => b.close / 100), type: "DOUBLE" },
          { name: "volume", data: rows.map((b) => b.volume), type: "DOUBLE" },
          { name: "ts_event", data: rows.map((b) => BigInt(b.time) * 1_000_000n), type: "INT64" },
          { name: "ts_init", data: rows.map((b) => BigInt(b.time) * 1_000_000n), type: "INT64" },
          { name: "provider", data: rows.map(() => SAMPLE_PROVIDER), type: "STRING" },
        ],
        kvMetadata: [{ key: "bar_type", value: `${s.symbol}.${SAMPLE_EXCHANGE}-1-${tf === "1d" ? "DAY" : "HOUR"}-LAST-EXTERNAL` }],
      });
    }
  }

  const Database = (await import("better-sqlite3")).default;
  const dbFile = path.join(dir, "sqlite", "sample.db");
  fs.mkdirSync(path.dirname(dbFile), { recursive: true });
  fs.rmSync(dbFile, { force: true });
  const db = new Database(dbFile);
  try {
    db.exec(`
      CREATE TABLE tickers (ticker TEXT NOT NULL, name TEXT, exchange TEXT, region TEXT NOT NULL, PRIMARY KEY (ticker, region));
      CREATE TABLE ohlcv_data (ticker TEXT NOT NULL, region TEXT NOT NULL, date TEXT NOT NULL, timeframe TEXT NOT NULL,
        open REAL, high REAL, low REAL, close REAL, volume INTEGER, provider TEXT NOT NULL,
        PRIMARY KEY (ticker, region, date, timeframe));`);
    const t = db.prepare("INSERT INTO tickers VALUES (?, ?, ?, 'US')");
    for (const s of SAMPLE_SYMBOLS) t.run(s.symbol, s.name, SAMPLE_EXCHANGE);
    const o = db.prepare("INSERT INTO ohlcv_data VALUES (?, 'US', ?, ?, ?, ?, ?, ?, ?, ?)");
    db.transaction(() => {
      for (const b of bars) {
        const date = b.timeframe === "1d" ? isoTime(b) : new Date(b.time).toISOString().slice(0, 19).replace("T", " ");
        o.run(b.symbol, date, b.timeframe, b.open / 100, b.high / 100, b.low / 100, b.close / 100, b.volume, SAMPLE_PROVIDER);
      }
    })();
  } finally {
    db.close();
  }
}

/** sha256 of each sample file under `dir`, by relative path. */
export function sampleChecksums(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of sampleFiles()) out[f] = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex");
  return out;
}
