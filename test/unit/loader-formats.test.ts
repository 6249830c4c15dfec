/**
 * Values of the formats quant tools write, read exactly (issue 22, issue 23 items 14, 15, 18). Fixtures are
 * written in the test by real writers (DuckDB's Node package, apache-arrow, Debian's pandas) or by our code in
 * the same shapes, and each value is compared with an independent reading (DuckDB's own text of it).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, test, vi } from "vitest";
import { matchPathPattern, parseMapping, resolveColumns } from "../../lib/loader/columnMapping";
import { loadRequestFromFlags } from "../../lib/loader/loadRequest";
import { type ReadOptions, openChecked } from "../../lib/loader/readSource";
import { type BarText, checkBar, shiftDecimal } from "../../lib/loader/rowValidation";
import { parseSettings } from "../../lib/settings";
import { openArrowIpc } from "../../lib/loader/sources/arrowIpc";
import { openParquet } from "../../lib/loader/sources/parquet";
import { LocalZone } from "../../lib/loader/timeZone";
import { combineDateTime, parseTimestamp } from "../../lib/loader/timestamps";
import { duckdbRun, duckdbText } from "../fixtures/loader/duckdb";
import { pandas } from "../fixtures/loader/pandas";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-formats-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a source's chunks grow from 256 rows to the shape's size; streamShape lowers it for the chunks not yet made, for that source only", async () => {
  const file = path.join(dir, "chunk-sizes.csv");
  const lines = ["timestamp,symbol,timeframe,open,high,low,close,volume"];
  for (let i = 0; i < 5_000; i++) lines.push(`${new Date(Date.UTC(2024, 0, 2) + i * 60_000).toISOString()},AAA,1m,10,11,9,10.5,${i}`);
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
  const shape = { asText: true, chunkRows: 1_024 };
  const sizes = async (capAfterFirst?: number) => {
    const source = await openChecked(file, {}, shape, { reject: () => undefined, progress: () => undefined });
    const n: number[] = [];
    try {
      for await (const chunk of source.chunks()) {
        n.push(chunk.n);
        if (n.length === 1 && capAfterFirst !== undefined) source.streamShape(capAfterFirst, false);
      }
    } finally {
      await source.close();
    }
    return n;
  };
  expect(await sizes(300)).toEqual([256, ...new Array<number>(15).fill(300), 244]);
  expect(await sizes()).toEqual([256, 512, 1024, 1024, 1024, 1024, 136]);
});

/** What the loader would write for a file (COPY values: symbol, ..., time, open, ...), and the rows it rejects. */
async function loaded(file: string, options: ReadOptions = {}): Promise<{ rows: string[][]; rejects: Array<{ row: number; reason: string }> }> {
  const rejects: Array<{ row: number; reason: string }> = [];
  const source = await openChecked(file, options, { asText: false, chunkRows: 10_000 }, {
    reject: (_s, row, reason) => rejects.push({ row, reason }),
    progress: () => undefined,
  });
  const rows: string[][] = [];
  try {
    for await (const chunk of source.chunks()) rows.push(...chunk.values.map((v) => v.map((x) => x ?? "")));
  } finally {
    await source.close();
  }
  return { rows, rejects };
}

const sqlTime = (iso: string) => `${iso.replace("T", " ").replace(/Z$/, "").padEnd(19, ":00")}+00`;

/** Every record of a Parquet file as `column=value` objects, values as the loader hands them on. */
async function parquetRecords(file: string): Promise<Array<Record<string, unknown>>> {
  const source = await openParquet(file);
  const out: Array<Record<string, unknown>> = [];
  for await (const batch of source.batches()) for (const row of batch) out.push(Object.fromEntries(source.columns.map((c, i) => [c, row[i]])));
  await source.close();
  return out;
}

describe("Parquet DECIMAL and FLOAT columns as DuckDB writes them (issue 22 item 4, issue 23 item 18)", () => {
  // 2,000 prices around 94,098.9 in steps of a hundredth, negative ones too: at DECIMAL(18,8) about one in
  // nine of them came out as `94098.90000000001` when the unscaled integer went through a double.
  const VALUES = "SELECT i, 94098.9 + (i - 1000) * 0.01 AS p FROM range(2000) t(i)";

  test.each([
    ["DECIMAL(9,4)", "INT32"],
    ["DECIMAL(18,8)", "INT64"],
    ["DECIMAL(38,18)", "FIXED_LEN_BYTE_ARRAY"],
  ])("%s (%s) values are their exact decimal text, as DuckDB reads them back", async (type, physical) => {
    const file = path.join(dir, `decimal-${physical}.parquet`);
    const scaled = type === "DECIMAL(9,4)" ? "p / 100" : "p";
    await duckdbRun([`COPY (SELECT i, CAST(${scaled} AS ${type}) AS price, CAST(-${scaled} AS ${type}) AS negative FROM (${VALUES})) TO '${file}' (FORMAT parquet)`]);
    const schema = await duckdbText(`SELECT name, type FROM parquet_schema('${file}') WHERE name = 'price'`);
    expect(schema).toEqual([{ name: "price", type: physical }]);
    const expected = await duckdbText(`SELECT CAST(price AS VARCHAR) AS price, CAST(negative AS VARCHAR) AS negative FROM '${file}' ORDER BY i`);

    const records = await parquetRecords(file);
    expect(records.map((r) => ({ price: r.price, negative: r.negative }))).toEqual(expected);
  });

  test("FLOAT (32-bit) prices are the shortest text that reads back as the same float, as DuckDB prints them", async () => {
    const file = path.join(dir, "float32.parquet");
    await duckdbRun([`COPY (SELECT i, CAST(185.1 + i * 0.01 AS FLOAT) AS price FROM range(5000) t(i)) TO '${file}' (FORMAT parquet)`]);
    const expected = await duckdbText(`SELECT CAST(price AS VARCHAR) AS price FROM '${file}' ORDER BY i`);

    const records = await parquetRecords(file);
    expect(records[0]?.price).toBe("185.1");
    // DuckDB writes an integral float as `235.0`; the same shortest digits without the `.0`.
    expect(records.map((r) => ({ price: r.price }))).toEqual(expected.map((e) => ({ price: e.price?.replace(/\.0$/, "") })));
  });
});

describe("zone-less times in a named time zone (issue 22 item 1)", () => {
  const NY = (rule?: "earlier" | "later") => new LocalZone("America/New_York", rule);
  const iso = (r: ReturnType<typeof parseTimestamp>) => (r.ok ? new Date(r.micros / 1000).toISOString() : r.reason);

  test.each([
    ["2024-03-08 09:30:00", "2024-03-08T14:30:00.000Z"], // EST, UTC-5
    ["2024-07-01 09:30", "2024-07-01T13:30:00.000Z"], // EDT, UTC-4
    ["2024-07-01T09:30:00.250", "2024-07-01T13:30:00.250Z"],
    ["2024.07.01 09:30", "2024-07-01T13:30:00.000Z"], // MetaTrader form
    ["07/01/2024 09:30", "2024-07-01T13:30:00.000Z"],
    ["20240701093000", "2024-07-01T13:30:00.000Z"],
    ["2024-07-01 09:30:00Z", "2024-07-01T09:30:00.000Z"], // a zone in the value wins
    ["2024-07-01T09:30:00+02:00", "2024-07-01T07:30:00.000Z"],
    ["2024-07-01", "2024-07-01T00:00:00.000Z"], // a date stays a date
    ["20240701", "2024-07-01T00:00:00.000Z"],
    ["1719840600", "2024-07-01T13:30:00.000Z"], // epochs are instants
  ])("%s in America/New_York is %s", (value, expected) => {
    expect(iso(parseTimestamp(value, NY()))).toBe(expected);
  });

  test("a time the clocks skip is rejected, naming the zone; one they repeat needs the user's rule", () => {
    expect(iso(parseTimestamp("2024-03-10 02:30:00", NY()))).toBe(
      'timestamp "2024-03-10 02:30:00": local time 2024-03-10 02:30:00 does not exist in America/New_York (the clocks skip it when daylight saving time starts)',
    );
    expect(iso(parseTimestamp("2024-11-03 01:30:00", NY()))).toMatch(/occurs twice in America\/New_York .*--ambiguous-time earlier or later/);
    expect(iso(parseTimestamp("2024-11-03 01:30:00", NY("earlier")))).toBe("2024-11-03T05:30:00.000Z");
    expect(iso(parseTimestamp("2024-11-03 01:30:00", NY("later")))).toBe("2024-11-03T06:30:00.000Z");
    // Either side of the change, no ambiguity.
    expect(iso(parseTimestamp("2024-11-03 00:59:59", NY()))).toBe("2024-11-03T04:59:59.000Z");
    expect(iso(parseTimestamp("2024-11-03 02:00:00", NY()))).toBe("2024-11-03T07:00:00.000Z");
    expect(iso(parseTimestamp("2024-03-10 03:00:00", NY()))).toBe("2024-03-10T07:00:00.000Z");
  });

  test("a date column and a time-of-day column join in the zone; a zone that is not IANA is refused", () => {
    expect(iso(combineDateTime("2024.07.01", "09:30", new LocalZone("Europe/Helsinki")))).toBe("2024-07-01T06:30:00.000Z");
    expect(() => new LocalZone("America/Springfield")).toThrow('time zone "America/Springfield" is not an IANA time zone name');
  });

  test("a year of New York minute bars as pandas writes them loads at the instants pandas' tz_localize gives", async () => {
    const file = path.join(dir, "spx-ny.csv");
    // Naive New York times (mplfinance's S&P 500 intraday shape), every half hour around the clock for 2024, so both
    // DST changes fall inside; pandas' own UTC instants (ambiguous resolved as the first occurrence, nonexistent ones
    // dropped by pandas) are the independent reading.
    const expected = pandas(`
idx = pd.date_range("2024-01-01", "2024-12-31 23:30", freq="30min")
df = pd.DataFrame({"Open": 100.0, "High": 101.0, "Low": 99.5, "Close": 100.5, "Volume": 1000}, index=idx)
df.index.name = "Date"
localized = df.index.tz_localize("America/New_York", ambiguous=np.ones(len(df), dtype=bool), nonexistent="NaT")
df.to_csv(${JSON.stringify(file)})
out = [("" if pd.isna(t) else t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")) for t in localized]
print("\\n".join(out))
`).split("\n");
    const { rows, rejects } = await loaded(file, { symbol: "SPX", timeframe: "30m", timezone: "America/New_York", ambiguousTime: "earlier" });
    // 02:00 and 02:30 on 2024-03-10 do not exist: rejected, and pandas has no instant for them either.
    expect(rejects.map((r) => r.reason.replace(/: local time.*/, ""))).toEqual(['timestamp "2024-03-10 02:00:00"', 'timestamp "2024-03-10 02:30:00"']);
    // 01:00 and 01:30 on 2024-11-03 occur twice; the file has each once, taken as the first (EDT) occurrence.
    expect(rows.map((r) => r[4])).toEqual(expected.filter((t) => t !== "").map(sqlTime));
  });

  test("Parquet TIMESTAMP without UTC adjustment (DuckDB's TIMESTAMP, pandas' naive datetimes) is wall-clock time; TIMESTAMPTZ is an instant", async () => {
    const file = path.join(dir, "naive.parquet");
    await duckdbRun([
      `COPY (SELECT TIMESTAMP '2024-07-01 09:30:00' + INTERVAL (i) MINUTE AS time, TIMESTAMPTZ '2024-07-01 09:30:00+00' + INTERVAL (i) MINUTE AS time_utc, 1.0 AS open, 2.0 AS high, 1.0 AS low, 2.0 AS close FROM range(3) t(i)) TO '${file}' (FORMAT parquet)`,
    ]);
    const ny = await loaded(file, { symbol: "X", timeframe: "1m", timezone: "America/New_York" });
    expect(ny.rows.map((r) => r[4])).toEqual(["2024-07-01 13:30:00+00", "2024-07-01 13:31:00+00", "2024-07-01 13:32:00+00"]);
    const utc = await loaded(file, { symbol: "X", timeframe: "1m", timezone: "America/New_York", map: { time: "time_utc" } });
    expect(utc.rows.map((r) => r[4])).toEqual(["2024-07-01 09:30:00+00", "2024-07-01 09:31:00+00", "2024-07-01 09:32:00+00"]);
  });

  test("--timezone and --ambiguous-time are load flags and dataset settings, checked where they are given", () => {
    expect(loadRequestFromFlags({ source: "x.csv", timezone: "Europe/London", "ambiguous-time": "later" })).toMatchObject({ timezone: "Europe/London", ambiguousTime: "later" });
    expect(() => loadRequestFromFlags({ source: "x.csv", timezone: "EST5EDTX" })).toThrow("--timezone: must be an IANA time zone name such as America/New_York, Europe/London or UTC; see --help.");
    expect(() => loadRequestFromFlags({ source: "x.csv", "ambiguous-time": "first" })).toThrow(/--ambiguous-time: .*"reject"\|"earlier"\|"later"/);
    const settings = parseSettings({ datasets: JSON.stringify([{ name: "spx", source: "spx.csv", timezone: "America/New_York", ambiguousTime: "earlier" }]) }, { stack: "dev" });
    expect(settings.datasets[0]).toMatchObject({ timezone: "America/New_York", ambiguousTime: "earlier" });
    expect(() => parseSettings({ datasets: JSON.stringify([{ name: "spx", source: "spx.csv", timezone: "New York" }]) }, { stack: "dev" })).toThrow(/timezone: must be an IANA time zone name/);
  });

  test("without a time zone, zone-less times stay UTC", async () => {
    const file = path.join(dir, "utc.csv");
    fs.writeFileSync(file, "Date,Open,High,Low,Close\n2024-07-01 09:30:00,1,2,1,2\n");
    expect((await loaded(file, { symbol: "X", timeframe: "1m" })).rows.map((r) => r[4])).toEqual(["2024-07-01 09:30:00+00"]);
  });
});

describe("--map names any column (issue 22 items 2 and 6)", () => {
  test.each([
    ["time=Date, symbol=Sym", { time: "Date", symbol: "Sym" }],
    [`close="('Close', 'AAPL')",open="('Open', 'AAPL')"`, { close: "('Close', 'AAPL')", open: "('Open', 'AAPL')" }],
    [`close="Last ""traded"", USD"`, { close: 'Last "traded", USD' }],
    ["time=,open=o", { time: "", open: "o" }],
    ['time=""', { time: "" }],
    [`{"close": "('Close', 'AAPL')", "time": ""}`, { close: "('Close', 'AAPL')", time: "" }],
  ])("%s", (text, expected) => {
    expect(parseMapping(text)).toEqual(expected);
  });

  test.each([
    ['close="(unclosed', /the quoted column has no closing "/],
    ['close="a"b', /text after the closing quote/],
    ["{close: 1}", /starts with \{ but is not JSON/],
    ["shut=Close", /"shut" is not a field: FIELD one of time, date/],
  ])("%s is refused saying why", (text, message) => {
    expect(() => parseMapping(text)).toThrow(message);
  });

  test("--map time= reaches the load request and picks the column without a name", () => {
    expect(loadRequestFromFlags({ source: "x.csv", map: "time=" }).map).toEqual({ time: "" });
    expect(resolveColumns(["", "Open", "High", "Low", "Close"], { time: "" })).toMatchObject({ time: 0, open: 1 });
  });

  test("pandas to_csv() with an unnamed DatetimeIndex loads without a mapping, every value as pandas wrote it", async () => {
    const file = path.join(dir, "pandas-index.csv");
    const expected = pandas(`
idx = pd.date_range("2024-01-02 09:30", periods=500, freq="1min")
df = pd.DataFrame({"Open": np.round(100 + np.arange(500) * 0.01, 2), "Volume": np.arange(500) * 10}, index=idx)
df["High"] = df["Open"] + 0.5
df["Low"] = df["Open"] - 0.25
df["Close"] = df["Open"] + 0.125
df.to_csv(${JSON.stringify(file)})
back = pd.read_csv(${JSON.stringify(file)}, index_col=0, dtype=str)
print("\\n".join(f"{pd.Timestamp(t).strftime('%Y-%m-%d %H:%M:%S')}+00|{r.Open}|{r.High}|{r.Low}|{r.Close}|{r.Volume}" for t, r in back.iterrows()))
`).split("\n");
    expect(fs.readFileSync(file, "utf8").split("\n")[0]).toBe(",Open,Volume,High,Low,Close");
    const { rows, rejects } = await loaded(file, { symbol: "X", timeframe: "1m" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => [r[4], r[5], r[6], r[7], r[8], r[9]].join("|"))).toEqual(expected);
  });
});

describe("yfinance >= 0.2.51 layouts (issue 22 item 2)", () => {
  // The frame yf.download returns: a (Price, Ticker) MultiIndex over the columns, a DatetimeIndex named Date.
  const frame = (tickers: string[]) => `
idx = pd.DatetimeIndex(pd.date_range("2024-01-02", periods=3, freq="D"), name="Date")
cols = pd.MultiIndex.from_product([["Adj Close", "Close", "High", "Low", "Open", "Volume"], ${JSON.stringify(tickers)}], names=["Price", "Ticker"])
df = pd.DataFrame(index=idx, columns=cols, dtype=float)
for k, t in enumerate(${JSON.stringify(tickers)}):
    base = 100.0 * (k + 1) + np.arange(3)
    df[("Open", t)] = base
    df[("High", t)] = base + 2
    df[("Low", t)] = base - 1
    df[("Close", t)] = base + 1
    df[("Adj Close", t)] = base + 0.5
    df[("Volume", t)] = 1000.0 * (k + 1)
`;

  test("the CSV with three header rows (Price, Ticker, Date) loads one series per ticker", async () => {
    const file = path.join(dir, "yf.csv");
    pandas(`${frame(["AAPL", "MSFT"])}\ndf.to_csv(${JSON.stringify(file)})`);
    expect(fs.readFileSync(file, "utf8").split("\n").slice(0, 3).map((l) => l.split(",")[0])).toEqual(["Price", "Ticker", "Date"]);
    const { rows, rejects } = await loaded(file, { timeframe: "1d" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => `${r[0]} ${r[4]?.slice(0, 10)} ${r[5]} ${r[6]} ${r[7]} ${r[8]} ${r[9]} ${r[10]}`)).toEqual([
      "AAPL 2024-01-02 100.0 102.0 99.0 101.0 1000.0 100.5",
      "MSFT 2024-01-02 200.0 202.0 199.0 201.0 2000.0 200.5",
      "AAPL 2024-01-03 101.0 103.0 100.0 102.0 1000.0 101.5",
      "MSFT 2024-01-03 201.0 203.0 200.0 202.0 2000.0 201.5",
      "AAPL 2024-01-04 102.0 104.0 101.0 103.0 1000.0 102.5",
      "MSFT 2024-01-04 202.0 204.0 201.0 203.0 2000.0 202.5",
    ]);
  });

  test("the Parquet with ('Close', 'AAPL') column names loads; --map can name such a column instead", async () => {
    // Debian has no pyarrow: DuckDB writes the same shape, pyarrow's names for the tuple columns and the index.
    const file = path.join(dir, "yf.parquet");
    const col = (price: string) => `"('${price}', 'AAPL')"`;
    await duckdbRun([
      `COPY (SELECT TIMESTAMP '2024-01-02' + INTERVAL (i) DAY AS "Date", CAST(100.5 + i AS DOUBLE) AS ${col("Adj Close")}, CAST(101 + i AS DOUBLE) AS ${col("Close")}, ` +
        `CAST(102 + i AS DOUBLE) AS ${col("High")}, CAST(99 + i AS DOUBLE) AS ${col("Low")}, CAST(100 + i AS DOUBLE) AS ${col("Open")}, CAST(1000 AS DOUBLE) AS ${col("Volume")} ` +
        `FROM range(3) t(i)) TO '${file}' (FORMAT parquet)`,
    ]);
    const source = await openParquet(file);
    await source.close();
    expect(source.columns).toContain("('Close', 'AAPL')");
    const { rows } = await loaded(file, { timeframe: "1d" });
    expect(rows.map((r) => `${r[0]} ${r[4]?.slice(0, 10)} ${r[8]}`)).toEqual(["AAPL 2024-01-02 101", "AAPL 2024-01-03 102", "AAPL 2024-01-04 103"]);
    const mapped = await loaded(file, {
      timeframe: "1d", symbol: "AAPL.ADJ",
      map: parseMapping(`time=Date,open="('Open', 'AAPL')",high="('High', 'AAPL')",low="('Low', 'AAPL')",close="('Adj Close', 'AAPL')"`),
    });
    expect(mapped.rows.map((r) => `${r[0]} ${r[8]}`)).toEqual(["AAPL.ADJ 100.5", "AAPL.ADJ 101.5", "AAPL.ADJ 102.5"]);
  });
});

describe("day numbers and integer clock times (issue 23 items 14 and 15)", () => {
  test("SQLite julianday() REAL times load at the instants SQLite's own datetime() gives, not in January 1970", async () => {
    const file = path.join(dir, "julian.db");
    const db = new Database(file);
    db.exec("CREATE TABLE bars (jd REAL, open REAL, high REAL, low REAL, close REAL)");
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
             INSERT INTO bars SELECT julianday('2024-01-02 09:30:00', '+' || (i * 7) || ' minutes'), 1, 2, 1, 2 FROM n`);
    const expected = (db.prepare("SELECT strftime('%Y-%m-%d %H:%M:%f', jd) AS t FROM bars ORDER BY rowid").all() as Array<{ t: string }>).map((r) => `${r.t}000+00`.replace(".000000+00", "+00"));
    db.close();
    const { rows, rejects } = await loaded(file, { table: "bars", symbol: "X", timeframe: "7m", map: { time: "jd" } });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => r[4])).toEqual(expected);
    expect(rows[0]?.[4]).toBe("2024-01-02 09:30:00+00");
  });

  test("Excel serial dates (days since 1899-12-30, time as the fraction) load at the dates pandas reads them as", async () => {
    const file = path.join(dir, "excel.csv");
    const expected = pandas(`
t = pd.date_range("2023-12-29 09:30", periods=300, freq="37min")
serial = (t - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)
pd.DataFrame({"Date": serial, "Open": 1, "High": 2, "Low": 1, "Close": 2}).to_csv(${JSON.stringify(file)}, index=False)
back = pd.to_datetime(pd.read_csv(${JSON.stringify(file)})["Date"], unit="D", origin="1899-12-30").round("ms")
print("\\n".join(x.strftime("%Y-%m-%d %H:%M:%S.%f").removesuffix(".000000") + "+00" for x in back))
`).split("\n");
    const { rows, rejects } = await loaded(file, { symbol: "X", timeframe: "37m" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => r[4])).toEqual(expected);
    expect(rows[0]?.[4]).toBe("2023-12-29 09:30:00+00");
  });

  test("a small number that is neither is rejected, never January 1970", () => {
    expect(parseTimestamp(2_000_000)).toEqual({ ok: false, reason: expect.stringMatching(/^timestamp 2000000 is too small for epoch seconds .*Excel serial date .*Julian day/) as string });
  });

  test("a date column with an integer HHMM time column: 0..59 are 00:00..00:59, and each day's first hour loads", async () => {
    const file = path.join(dir, "hhmm.csv");
    const lines = ["Date,Time,Open,High,Low,Close"];
    const expected: string[] = [];
    for (const day of ["20240102", "20240103"]) {
      for (let m = 0; m < 1440; m += 1) {
        const hhmm = Math.floor(m / 60) * 100 + (m % 60);
        lines.push(`${day},${hhmm},1,2,1,2`);
        expected.push(`${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6)} ${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}:00+00`);
      }
    }
    fs.writeFileSync(file, `${lines.join("\n")}\n`);
    const { rows, rejects } = await loaded(file, { symbol: "X", timeframe: "1m" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => r[4])).toEqual(expected);
  });
});

describe("{timeframe:minutes} in a path pattern (issue 22 item 8)", () => {
  test.each([
    ["{symbol}{timeframe:minutes}.csv", "mt4/EURUSD1440.csv", { symbol: "EURUSD", timeframe: "1d" }],
    ["{symbol}{timeframe:minutes}.csv", "mt4/GBPJPY240.csv", { symbol: "GBPJPY", timeframe: "4h" }],
    ["{symbol}{timeframe:minutes}.csv", "mt4/XAUUSD43200.csv", { symbol: "XAUUSD", timeframe: "1mo" }],
    ["{symbol}{timeframe:minutes}.csv", "mt4/US30_1.csv", { symbol: "US30_", timeframe: "1m" }],
    ["{symbol}_{timeframe:minutes}.csv", "kraken/XBTUSD_60.csv", { symbol: "XBTUSD", timeframe: "1h" }],
    ["{symbol}_{timeframe:minutes}.csv", "kraken/XBTUSD_10080.csv", { symbol: "XBTUSD", timeframe: "1w" }],
    ["{symbol}_{timeframe:minutes}.csv", "kraken/XBTUSD_21600.csv", { symbol: "XBTUSD", timeframe: "15d" }],
    ["{symbol}_{timeframe:minutes}.csv", "kraken/XBTUSD_90.csv", { symbol: "XBTUSD", timeframe: "90m" }],
  ])("%s on %s", (pattern, file, expected) => {
    expect(matchPathPattern(pattern, file)).toEqual(expected);
  });

  test("a file whose minutes are not digits does not match; zero minutes are refused", () => {
    expect(() => matchPathPattern("{symbol}_{timeframe:minutes}.csv", "XBTUSD_1h.csv")).toThrow(/does not match --path-pattern .*\{timeframe:minutes\}/);
    expect(() => matchPathPattern("{symbol}_{timeframe:minutes}.csv", "XBTUSD_0.csv")).toThrow('XBTUSD_0.csv: {timeframe:minutes} took "0", which is not a positive count of minutes.');
  });

  test("Kraken OHLCVT files (headerless) load with the timeframe from their names", async () => {
    const file = path.join(dir, "kraken", "XBTUSD_60.csv");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, "1704067200,42283.5,42300.1,42200.0,42250.2,12.5,340\n1704070800,42250.2,42260.0,42100.0,42110.9,8.25,211\n");
    const { rows } = await loaded(file, { pathPattern: "{symbol}_{timeframe:minutes}.csv", columns: ["timestamp", "open", "high", "low", "close", "volume", "trades"] });
    expect(rows.map((r) => `${r[0]} ${r[3]} ${r[4]} ${r[8]}`)).toEqual(["XBTUSD 1h 2024-01-01 00:00:00+00 42250.2", "XBTUSD 1h 2024-01-01 01:00:00+00 42110.9"]);
  });
});

describe("QuantConnect Lean bars (issue 22 item 9)", () => {
  test.each([
    ["6412000", 4, "641.2"],
    ["6395050", 4, "639.505"],
    ["1", 4, "0.0001"],
    ["12.5", 2, "0.125"],
    ["-150", 2, "-1.5"],
    ["1e3", 4, "0.1"],
    ["0", 4, "0"],
  ])("%s divided by 10^%i is exactly %s", (text, places, expected) => {
    expect(shiftDecimal(text, places)).toBe(expected);
  });

  test("a Lean daily file (YYYYMMDD HH:MM, deci-cent prices, no header) loads with --layout lean-bars --price-divisor 10000", async () => {
    const file = path.join(dir, "lean", "spy.csv");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, "20131001 00:00,1665300,1690100,1664100,1689400,86412412\n20131002 00:00,1681600,1689800,1673900,1687500,93120011\n");
    const request = loadRequestFromFlags({ source: file, layout: "lean-bars", "price-divisor": "10000", symbol: "SPY", timeframe: "1d" });
    expect(request).toMatchObject({ priceDivisor: 10000, layout: "lean-bars" });
    const { rows, rejects } = await loaded(file, { columns: ["time", "open", "high", "low", "close", "volume"], priceDivisor: 10000, symbol: "SPY", timeframe: "1d" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => r.slice(4, 10).join(" "))).toEqual([
      "2013-10-01 00:00:00+00 166.53 169.01 166.41 168.94 86412412",
      "2013-10-02 00:00:00+00 168.16 168.98 167.39 168.75 93120011",
    ]);
    expect(() => loadRequestFromFlags({ source: file, "price-divisor": "250" })).toThrow("--price-divisor: must be a power of ten from 10 to 100000000, such as 10000 for deci-cents; see --help.");
  });

  test("`YYYYMMDD HH:MM` reads as a date and time, in --timezone when given", () => {
    const r = parseTimestamp("20131001 09:31");
    expect(r.ok && new Date(r.micros / 1000).toISOString()).toBe("2013-10-01T09:31:00.000Z");
    const ny = parseTimestamp("20131001 09:31", new LocalZone("America/New_York"));
    expect(ny.ok && new Date(ny.micros / 1000).toISOString()).toBe("2013-10-01T13:31:00.000Z");
  });
});

describe("Arrow IPC, JSON, zip and DuckDB files, and files of other kinds (issue 22 item 3)", () => {
  const BAR_COUNT = 1000;
  const T0 = Date.UTC(2024, 0, 1);

  test("a DuckDB database table (TIMESTAMPTZ, DECIMAL, DOUBLE) loads every value as DuckDB's own text of it", async () => {
    const file = path.join(dir, "lumibot.duckdb");
    await duckdbRun([
      "CREATE TABLE bars (ts TIMESTAMPTZ, symbol VARCHAR, open DECIMAL(18,8), high DECIMAL(18,8), low DECIMAL(18,8), close DOUBLE, volume BIGINT)",
      `INSERT INTO bars SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) MINUTE, 'BTC', 94098.9 + i * 0.01, 94099.9 + i * 0.01, 94097.9 + i * 0.01, 94098.95 + i * 0.01, i FROM range(${BAR_COUNT}) t(i)`,
    ], file);
    const expected = await duckdbText(
      "SELECT strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') || '+00' AS t, CAST(open AS VARCHAR) AS o, CAST(high AS VARCHAR) AS h, CAST(low AS VARCHAR) AS l, CAST(close AS VARCHAR) AS c, CAST(volume AS VARCHAR) AS v FROM bars ORDER BY ts",
      file,
    );
    const { rows, rejects } = await loaded(file, { timeframe: "1m" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => ({ t: r[4], o: r[5], h: r[6], l: r[7], c: r[8], v: r[9] }))).toEqual(expected);
    expect(rows[0]?.slice(0, 9)).toEqual(["BTC", "", "", "1m", "2024-01-01 00:00:00+00", "94098.90000000", "94099.90000000", "94097.90000000", "94098.95"]);
  });

  test("a DuckDB file with several tables needs --table, and names them", async () => {
    const file = path.join(dir, "two.duckdb");
    await duckdbRun(["CREATE TABLE a (x INT)", "CREATE TABLE b (x INT)"], file);
    await expect(loaded(file, { symbol: "X", timeframe: "1m" })).rejects.toThrow(`${file}: a DuckDB database with tables a, b; name one with --table.`);
    await expect(loaded(file, { symbol: "X", timeframe: "1m", table: "c" })).rejects.toThrow(`${file}: DuckDB table "c" does not exist; its tables: a, b.`);
  });

  test("a Feather (Arrow IPC) file as freqtrade's columns hold them loads every value exactly", async () => {
    const arrow = await import("apache-arrow");
    const file = path.join(dir, "BTC_USDT-1m.feather");
    const times = Array.from({ length: BAR_COUNT }, (_, i) => T0 + i * 60_000);
    const open = Float64Array.from({ length: BAR_COUNT }, (_, i) => 42283.58 + i * 0.01);
    const table = new arrow.Table({
      date: arrow.vectorFromArray(times, new arrow.TimestampMillisecond("UTC")),
      open: arrow.makeVector(open),
      high: arrow.makeVector(open.map((v) => v + 1)),
      low: arrow.makeVector(open.map((v) => v - 1)),
      close: arrow.makeVector(open.map((v) => v + 0.5)),
      volume: arrow.makeVector(open.map((_, i) => i * 0.001)),
    });
    fs.writeFileSync(file, arrow.tableToIPC(table, "file"));
    const { rows, rejects } = await loaded(file, { pathPattern: "{symbol}-{timeframe}.feather" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => [r[0], r[3], r[4], r[5], r[8], r[9]].join(" "))).toEqual(
      times.map((t, i) => `BTC_USDT 1m ${new Date(t).toISOString().replace("T", " ").replace(".000Z", "+00").replace("Z", "000+00")} ${String(open[i])} ${String((open[i] as number) + 0.5)} ${String(i * 0.001)}`),
    );
  });

  test("freqtrade's JSON (pandas to_json orient=values) loads the values pandas reads back", async () => {
    const file = path.join(dir, "ETH_USDT-5m.json");
    const expected = pandas(`
df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=${BAR_COUNT}, freq="5min", tz="UTC"), "open": 2280.5 + np.arange(${BAR_COUNT}) * 0.25})
df["high"] = df["open"] + 3
df["low"] = df["open"] - 2
df["close"] = df["open"] + 1.25
df["volume"] = np.arange(${BAR_COUNT}) * 1.5
df.to_json(${JSON.stringify(file)}, orient="values")
back = pd.read_json(${JSON.stringify(file)}, orient="values")
print("\\n".join(f"{pd.Timestamp(r[0], unit='ms').strftime('%Y-%m-%d %H:%M:%S')}+00 {r[1]!r} {r[4]!r} {r[5]!r}" for r in back.itertuples(index=False)))
`).split("\n");
    const { rows, rejects } = await loaded(file, { pathPattern: "{symbol}-{timeframe}.json" });
    expect(rejects).toEqual([]);
    // Python's repr of a float and JavaScript's String() are both the shortest round-trip text; ints lose ".0".
    expect(rows.map((r) => `${r[4]} ${r[5]} ${r[8]} ${r[9]}`)).toEqual(expected.map((l) => l.replace(/\.0(?= |$)/g, "")));
    expect(rows[0]?.slice(0, 4)).toEqual(["ETH_USDT", "", "", "5m"]);
  });

  test("a zip holding one CSV (QuantConnect Lean's shape, zipped by pandas) loads that CSV", async () => {
    const file = path.join(dir, "spy_daily.zip");
    pandas(`
df = pd.DataFrame({"t": ["20131001 00:00", "20131002 00:00"], "o": [1665300, 1681600], "h": [1690100, 1689800], "l": [1664100, 1673900], "c": [1689400, 1687500], "v": [86412412, 93120011]})
df.to_csv(${JSON.stringify(file)}, header=False, index=False, compression={"method": "zip", "archive_name": "spy.csv"})
`);
    const { rows, rejects } = await loaded(file, { columns: ["time", "open", "high", "low", "close", "volume"], priceDivisor: 10000, symbol: "SPY", timeframe: "1d" });
    expect(rejects).toEqual([]);
    expect(rows.map((r) => r.slice(4, 9).join(" "))).toEqual(["2013-10-01 00:00:00+00 166.53 169.01 166.41 168.94", "2013-10-02 00:00:00+00 168.16 168.98 167.39 168.75"]);
  });

  test("files are known by their first bytes: Parquet named .csv loads as Parquet; a forced --format csv and unknown binary files are named, not read as columns", async () => {
    const parquetAsCsv = path.join(dir, "really-parquet.csv");
    await duckdbRun([`COPY (SELECT TIMESTAMP '2024-01-02' AS time, 1.5 AS open, 2.5 AS high, 1.0 AS low, 2.0 AS close) TO '${parquetAsCsv}' (FORMAT parquet)`]);
    expect((await loaded(parquetAsCsv, { symbol: "X", timeframe: "1d" })).rows.map((r) => r.slice(4, 9).join(" "))).toEqual(["2024-01-02 00:00:00+00 1.5 2.5 1.0 2.0"]);
    await expect(loaded(parquetAsCsv, { symbol: "X", timeframe: "1d", format: "csv" })).rejects.toThrow(`${parquetAsCsv} is a Parquet file, not CSV (--format csv).`);
    const { zipSync } = await import("fflate");
    const zipAsCsv = path.join(dir, "one.zip");
    fs.writeFileSync(zipAsCsv, zipSync({ "bars.csv": Buffer.from("time,open,high,low,close\n2024-01-02,1,2,1,2\n") }));
    expect((await loaded(zipAsCsv, { symbol: "X", timeframe: "1d" })).rows.map((r) => r[4])).toEqual(["2024-01-02 00:00:00+00"]);
    await expect(loaded(zipAsCsv, { symbol: "X", timeframe: "1d", format: "csv" })).rejects.toThrow(`${zipAsCsv} is a zip file, not CSV (--format csv).`);
    const duck = path.join(dir, "sniffed.duckdb");
    await duckdbRun(["CREATE TABLE t (x INT)"], duck);
    await expect(loaded(duck, { symbol: "X", timeframe: "1d", format: "csv" })).rejects.toThrow(`${duck} is a DuckDB file, not CSV (--format csv).`);
    const blob = path.join(dir, "blob.csv");
    fs.writeFileSync(blob, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]));
    await expect(loaded(blob, { symbol: "X", timeframe: "1d" })).rejects.toThrow(`${blob}: a binary (not text) file, of no kind the loader reads (CSV in UTF-8, Parquet, SQLite, DuckDB, Arrow IPC/Feather, JSON, zip).`);
    const utf16 = path.join(dir, "excel-unicode.txt");
    fs.writeFileSync(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("Date\tOpen\n", "utf16le")]));
    await expect(loaded(utf16, { symbol: "X", timeframe: "1d" })).rejects.toThrow(/a UTF-16 text \(Excel's "Unicode text"; save it as UTF-8 CSV\) file/);
  });
});

describe("Arrow IPC files and streams read from disk one record batch at a time (issue 19)", () => {
  // pandas' to_feather (pyarrow's write_feather) cuts a frame into record batches of 65,536 rows.
  const CHUNK = 65_536;
  const ROWS = 6 * CHUNK + 26_784;
  const T0 = Date.UTC(2024, 0, 1);
  const openFds = () => fs.readdirSync("/proc/self/fd").length;

  /** freqtrade's columns as pandas writes them: date as timestamp[ns, UTC], float64 prices, one batch a chunk. */
  async function writePandasShaped(file: string, format: "file" | "stream"): Promise<void> {
    const arrow = await import("apache-arrow");
    const chunks = [];
    for (let from = 0; from < ROWS; from += CHUNK) {
      const n = Math.min(CHUNK, ROWS - from);
      const open = Float64Array.from({ length: n }, (_, i) => 42283.58 + (from + i) * 0.01);
      chunks.push(new arrow.Table({
        date: arrow.vectorFromArray(Array.from({ length: n }, (_, i) => T0 + (from + i) * 60_000), new arrow.TimestampNanosecond("UTC")),
        open: arrow.makeVector(open),
        high: arrow.makeVector(open.map((v) => v + 1)),
        low: arrow.makeVector(open.map((v) => v - 1)),
        close: arrow.makeVector(open.map((v) => v + 0.5)),
        volume: arrow.makeVector(Float64Array.from({ length: n }, (_, i) => (from + i) * 0.001)),
      }));
    }
    const [first, ...rest] = chunks;
    fs.writeFileSync(file, arrow.tableToIPC(first!.concat(...rest), format));
    // The shape under test: seven record batches.
    expect(arrow.tableFromIPC(fs.readFileSync(file)).batches.map((b) => b.numRows)).toEqual([...Array<number>(6).fill(CHUNK), 26_784]);
  }

  /** Counts the bytes every Node FileHandle reads while `body` runs. */
  async function countingFileReads<T>(body: (bytes: () => number) => Promise<T>): Promise<T> {
    const probe = await fs.promises.open(__filename);
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
    await probe.close();
    const original = proto.read;
    let bytes = 0;
    const spy = vi.spyOn(proto, "read").mockImplementation(async function (this: unknown, ...args: unknown[]) {
      const result = await original.apply(this, args);
      bytes += result.bytesRead;
      return result;
    });
    try {
      return await body(() => bytes);
    } finally {
      spy.mockRestore();
    }
  }

  test.each(["file", "stream"] as const)("an IPC %s of seven record batches is read batch by batch: a fraction of the file before the first rows, progress after each", async (format) => {
    const file = path.join(dir, `pandas-${format}.feather`);
    await writePandasShaped(file, format);
    const size = fs.statSync(file).size;
    const fdsBefore = openFds();

    const seen = await countingFileReads(async (bytes) => {
      const source = await openArrowIpc(file);
      expect(source.columns).toEqual(["date", "open", "high", "low", "close", "volume"]);
      const out: Array<{ bytes: number; fraction: number | undefined; rows: unknown[][] }> = [];
      try {
        for await (const rows of source.batches()) out.push({ bytes: bytes(), fraction: source.fractionRead(), rows });
      } finally {
        await source.close();
      }
      return out;
    });

    const rows = seen.flatMap((s) => s.rows);
    expect(rows.length).toBe(ROWS);
    expect(rows[0]).toEqual([new Date(T0), 42283.58, 42283.58 + 1, 42283.58 - 1, 42283.58 + 0.5, 0]);
    const last = ROWS - 1;
    const lastOpen = 42283.58 + last * 0.01;
    expect(rows[last]).toEqual([new Date(T0 + last * 60_000), lastOpen, lastOpen + 1, lastOpen - 1, lastOpen + 0.5, last * 0.001]);
    // Before the first rows: the footer or schema and the first record batch (a seventh of the file), not the file.
    expect(seen[0]!.bytes).toBeGreaterThan(0);
    expect(seen[0]!.bytes).toBeLessThan(size / 4);
    // Every byte comes from the file handle once, none from a read of the whole file.
    expect(seen.at(-1)!.bytes).toBeGreaterThan(size * 0.95);
    expect(seen.at(-1)!.bytes).toBeLessThanOrEqual(size);
    const fractions = seen.map((s) => s.fraction ?? Number.NaN);
    expect(fractions[0]).toBeGreaterThan(0);
    expect(fractions[0]).toBeLessThan(0.25);
    expect(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]!)).toBe(true);
    expect(fractions.at(-1)).toBeGreaterThan(0.95);
    expect(openFds()).toBe(fdsBefore);
  });

  test("a read stopped after the first rows, or a file that is not Arrow IPC, leaves no file open", async () => {
    const file = path.join(dir, "pandas-stopped.feather");
    await writePandasShaped(file, "file");
    const fdsBefore = openFds();
    const source = await openArrowIpc(file);
    for await (const rows of source.batches()) {
      expect(rows.length).toBeGreaterThan(0);
      break;
    }
    await source.close();
    expect(openFds()).toBe(fdsBefore);

    // An IPC file cut short: its magic is there, its footer is not.
    const cut = path.join(dir, "cut.feather");
    fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 100_000));
    await expect(openArrowIpc(cut)).rejects.toThrow(`${cut}: not a readable Arrow IPC file (`);
    expect(openFds()).toBe(fdsBefore);
  });
});

describe("bars with inconsistent OHLC: the user's rule (issue 22 item 5)", () => {
  const bar = (high: string, low: string): BarText => ({
    symbol: "EURUSD=X", exchange: "", provider: "", timeframe: "1d", time: "2024-01-02", parsedTime: undefined,
    open: "1.10", high, low, close: "1.105", volume: "0", adjClose: undefined,
  });

  test.each([
    ["1.104", "1.09", "high 1.104 is below max(open 1.10, close 1.105)"],
    ["1.11", "1.1001", "low 1.1001 is above min(open 1.10, close 1.105)"],
  ])("high %s low %s: rejected by default, kept with its reason under flag and keep", (high, low, reason) => {
    expect(checkBar(bar(high, low))).toEqual({ ok: false, reason });
    expect(checkBar(bar(high, low), undefined, undefined, "flag")).toEqual({ ok: true, micros: Date.UTC(2024, 0, 2) * 1000, inconsistent: reason });
    expect(checkBar(bar(high, low), undefined, undefined, "keep")).toEqual({ ok: true, micros: Date.UTC(2024, 0, 2) * 1000, inconsistent: reason });
    // Anything else wrong still rejects.
    expect(checkBar({ ...bar(high, low), open: "-1" }, undefined, undefined, "keep")).toEqual({ ok: false, reason: "open -1 is not positive" });
  });

  test("the reader counts kept bars and reports each flagged one", async () => {
    const file = path.join(dir, "fx.csv");
    fs.writeFileSync(file, "Date,Open,High,Low,Close\n2024-01-02,1.10,1.104,1.09,1.105\n2024-01-03,1.10,1.11,1.09,1.105\n2024-01-04,1.10,1.11,1.1001,1.105\n");
    const flagged: string[] = [];
    const source = await openChecked(file, { symbol: "EURUSD=X", timeframe: "1d", inconsistentOhlc: "flag" }, { asText: false, chunkRows: 100 }, {
      reject: () => undefined, progress: () => undefined, flagged: (_s, row, reason) => flagged.push(`${row}: ${reason}`),
    });
    let kept = 0;
    for await (const chunk of source.chunks()) kept += chunk.n;
    await source.close();
    expect([kept, source.rejected, source.inconsistent]).toEqual([3, 0, 2]);
    expect(flagged).toEqual(["1: high 1.104 is below max(open 1.10, close 1.105)", "3: low 1.1001 is above min(open 1.10, close 1.105)"]);
  });
});
