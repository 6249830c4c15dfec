/**
 * Values of the formats quant tools write, read exactly (issue 22, issue 23 items 14, 15, 18). Fixtures are
 * written in the test by real writers (DuckDB's Node package, apache-arrow, Debian's pandas) or by our code in
 * the same shapes, and each value is compared with an independent reading (DuckDB's own text of it).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { loadRequestFromFlags } from "../../lib/loader/loadRequest";
import { type ReadOptions, openChecked } from "../../lib/loader/readSource";
import { parseSettings } from "../../lib/settings";
import { openParquet } from "../../lib/loader/sources/parquet";
import { LocalZone } from "../../lib/loader/timeZone";
import { combineDateTime, parseTimestamp } from "../../lib/loader/timestamps";
import { duckdbRun, duckdbText } from "../fixtures/loader/duckdb";
import { pandas } from "../fixtures/loader/pandas";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-formats-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

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

const sqlTime = (iso: string) => `${iso.replace("T", " ").replace(/Z$/, "").padEnd(19, ":00")}.000000+00`;

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
    expect(ny.rows.map((r) => r[4])).toEqual(["2024-07-01 13:30:00.000000+00", "2024-07-01 13:31:00.000000+00", "2024-07-01 13:32:00.000000+00"]);
    const utc = await loaded(file, { symbol: "X", timeframe: "1m", timezone: "America/New_York", mapping: { time: "time_utc" } });
    expect(utc.rows.map((r) => r[4])).toEqual(["2024-07-01 09:30:00.000000+00", "2024-07-01 09:31:00.000000+00", "2024-07-01 09:32:00.000000+00"]);
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
    expect((await loaded(file, { symbol: "X", timeframe: "1m" })).rows.map((r) => r[4])).toEqual(["2024-07-01 09:30:00.000000+00"]);
  });
});
