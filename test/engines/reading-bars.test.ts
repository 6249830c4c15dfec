/**
 * Reading bars back for backtests (migration 0011) on the TimescaleDB build (PGlite) and PostgreSQL 17:
 * adjusted prices as backtrader's Yahoo feed computes them, date ranges that do not depend on the session's
 * time zone, and one bar per time when no provider is named.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { type Bar, backtraderAdjustedYahoo, pythonRound, smaCrossover } from "../fixtures/bars/backtrader";
import { weekdays, yahooDailyCsv } from "../fixtures/bars/yahoo";
import { BAR_ENGINES, useMigratedEngine } from "../fixtures/loader/target";
import { exec, rows } from "../fixtures/schema";

const DAY = `'YYYY-MM-DD'`;

async function insertDaily(url: string, symbol: string, provider: string, dates: string[], close = "10.00", timeframe = "1d"): Promise<void> {
  await withClient(url, async (c) => {
    for (const d of dates) {
      await c.query(
        `INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
         VALUES ($1, 'XNYS', $2, $3, $4::timestamptz, 10, 11, 9, $5, 100)`,
        [symbol, provider, timeframe, d.includes("T") ? d : `${d}T00:00:00Z`, close],
      );
    }
  });
}

describe.each(BAR_ENGINES)("reading bars for backtests on $name", ({ start, timescaledb }) => {
  let url: string;

  useMigratedEngine({ start, timescaledb }, (u) => (url = u));
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars; DELETE FROM market_data.provider_precedence");
  });

  test("adjusted bars equal backtrader's adjusted Yahoo feed, and a backtest on them makes the same trades and final value", async () => {
    const { csv, halfCentDates } = yahooDailyCsv();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "yahoo-")), "YHOO.csv");
    fs.writeFileSync(file, csv);
    const loaded = await loadOhlcvFrom(url, { files: [file], symbol: "YHOO", timeframe: "1d", provider: "yahoo" });
    expect(loaded).toMatchObject({ read: 400, inserted: 399, rejected: 1 }); // the `null` row, as backtrader skips it

    const reference = backtraderAdjustedYahoo(csv);
    const fromDb = await rows<{ date: string; open: string; high: string; low: string; close: string; volume: string }>(
      url,
      `SELECT to_char(time AT TIME ZONE 'UTC', ${DAY}) AS date, open::text, high::text, low::text, close::text, volume::text
         FROM market_data.get_adjusted_bars('YHOO', '1d')`,
    );
    const dbBars: Bar[] = fromDb.map((r) => ({
      date: r.date, open: Number(r.open), high: Number(r.high), low: Number(r.low), close: Number(r.close), volume: Number(r.volume),
    }));
    expect(dbBars).toHaveLength(399);
    expect(dbBars).toEqual(reference);

    // The adjustment matters: the adjusted series is not the raw one.
    const raw = await rows<{ close: string }>(url, `SELECT close::text FROM market_data.get_market_data('YHOO', '1d')`);
    expect(raw.filter((r, i) => Number(r.close) !== dbBars[i]?.close).length).toBeGreaterThan(300);
    // Half cents round like Python's round() on doubles, not like decimal half-up rounding.
    const halfCents = dbBars.filter((b) => halfCentDates.includes(b.date));
    expect(halfCents.length).toBe(halfCentDates.length);
    expect(halfCents.length).toBeGreaterThan(0);
    const exactAdjustedOpen = await rows<{ date: string; half_up: string }>(
      url,
      `SELECT to_char(time AT TIME ZONE 'UTC', ${DAY}) AS date, round(open * adj_close / close, 2)::text AS half_up
         FROM market_data.ohlcv_bars WHERE symbol = 'YHOO' ORDER BY time`,
    );
    const halfUp = new Map(exactAdjustedOpen.map((r) => [r.date, Number(r.half_up)]));
    expect(halfCents.some((b) => b.open !== halfUp.get(b.date))).toBe(true);

    const onFile = smaCrossover(reference);
    const onDb = smaCrossover(dbBars);
    expect(onFile.trades.length).toBeGreaterThan(4);
    expect(onDb.trades).toEqual(onFile.trades);
    expect(onDb.finalValue).toBe(onFile.finalValue);
    const onRaw = smaCrossover(dbBars.map((b, i) => ({ ...b, close: Number(raw[i]?.close) })));
    expect(onRaw.finalValue).not.toBe(onFile.finalValue);
  });

  test("python_round rounds the double's exact value, ties to even, as Python's round() does", async () => {
    const cases: Array<[number, number]> = [[2.675, 2], [0.125, 2], [0.375, 2], [1.005, 2], [2.5, 0], [3.5, 0], [10.675, 2], [123456.785, 2]];
    const got = await rows<{ v: string }>(
      url,
      `SELECT market_data.python_round(x, d)::float8::text AS v FROM unnest($1::float8[], $2::int[]) AS t(x, d)`,
      [cases.map((c) => c[0]), cases.map((c) => c[1])],
    );
    // Python 3: round(2.675, 2) == 2.67, round(0.125, 2) == 0.12, round(0.375, 2) == 0.38, round(1.005, 2) == 1.0,
    // round(2.5, 0) == 2.0, round(3.5, 0) == 4.0.
    expect(got.map((r) => Number(r.v)).slice(0, 6)).toEqual([2.67, 0.12, 0.38, 1, 2, 4]);
    expect(got.map((r) => Number(r.v))).toEqual(cases.map(([x, d]) => pythonRound(x, d)));
  });

  test("a date range of daily bars returns the same five bars whatever the session's time zone", async () => {
    await insertDaily(url, "LEH", "p", weekdays("2008-09-10", 10));
    const zones = ["UTC", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago"];
    const week = ["2008-09-15", "2008-09-16", "2008-09-17", "2008-09-18", "2008-09-19"];
    await withClient(url, async (c) => {
      try {
        for (const zone of zones) {
          await c.query(`SET TimeZone = ${c.escapeLiteral(zone)}`);
          for (const [from, to] of [["'2008-09-15'", "'2008-09-19'"], ["DATE '2008-09-15'", "DATE '2008-09-19'"], ["'2008-09-15 00:00'", "'2008-09-19 00:00'"]]) {
            const r = await c.query<{ d: string }>(
              `SELECT to_char(time AT TIME ZONE 'UTC', ${DAY}) AS d FROM market_data.get_market_data('LEH', '1d', NULL, ${from}, ${to})`,
            );
            expect(r.rows.map((x) => x.d), `${zone} ${from}..${to}`).toEqual(week);
          }
          // Reading the date of a daily bar: in UTC, not with time::date in the session's zone.
          const first = await c.query<{ d: string }>(
            `SELECT ((time AT TIME ZONE 'UTC')::date)::text AS d FROM market_data.get_market_data('LEH', '1d', 'p', '2008-09-15', '2008-09-15')`,
          );
          expect(first.rows, zone).toEqual([{ d: "2008-09-15" }]);
        }
        // An exact instant stays exact: one second past midnight UTC excludes that day's bar.
        await c.query(`SET TimeZone = 'America/New_York'`);
        const exact = await c.query(`SELECT time FROM market_data.get_market_data('LEH', '1d', NULL, '2008-09-15T00:00:01Z', '2008-09-19T00:00:00Z')`);
        expect(exact.rows).toHaveLength(4);
      } finally {
        await c.query("RESET TimeZone");
      }
    });
  });

  test("intraday bars keep exact bounds: a date means midnight in the session's zone, as PostgreSQL reads it", async () => {
    await insertDaily(url, "HF", "p", ["2024-01-02T03:00:00Z", "2024-01-02T06:00:00Z", "2024-01-03T03:00:00Z"], "10.00", "1h");
    await withClient(url, async (c) => {
      try {
        await c.query(`SET TimeZone = 'America/New_York'`);
        const r = await c.query<{ t: string }>(
          `SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24') AS t FROM market_data.get_market_data('HF', '1h', NULL, '2024-01-02', NULL)`,
        );
        // 2024-01-02 00:00 in New York is 05:00 UTC.
        expect(r.rows.map((x) => x.t)).toEqual(["2024-01-02T06", "2024-01-03T03"]);
      } finally {
        await c.query("RESET TimeZone");
      }
    });
  });

  test("without a provider, a bar two providers hold is an error until they are ranked, then comes once from the better one", async () => {
    await insertDaily(url, "DUP", "yahoo", ["2024-03-04", "2024-03-05"], "10.00");
    await insertDaily(url, "DUP", "polygon", ["2024-03-05", "2024-03-06"], "10.50");
    const q = `SELECT to_char(time AT TIME ZONE 'UTC', ${DAY}) AS d, provider, close::text FROM market_data.get_market_data('DUP', '1d')`;
    await expect(rows(url, q)).rejects.toThrow(/DUP 1d bar at 2024-03-05T00:00:00Z \(exchange 'XNYS'\) is held by providers 'polygon', 'yahoo', none ranked; pass p_provider or rank them in market_data.provider_precedence/);

    await exec(url, `INSERT INTO market_data.provider_precedence (provider, rank) VALUES ('yahoo', 1)`);
    expect(await rows(url, q)).toEqual([
      { d: "2024-03-04", provider: "yahoo", close: "10.00" },
      { d: "2024-03-05", provider: "yahoo", close: "10.00" },
      { d: "2024-03-06", provider: "polygon", close: "10.50" },
    ]);
    await exec(url, `UPDATE market_data.provider_precedence SET rank = 3 WHERE provider = 'yahoo'; INSERT INTO market_data.provider_precedence VALUES ('polygon', 2)`);
    expect((await rows<{ provider: string }>(url, q)).map((r) => r.provider)).toEqual(["yahoo", "polygon", "polygon"]);
    // A named provider gets exactly its own bars, ranked or not.
    expect((await rows<{ d: string }>(url, `SELECT to_char(time AT TIME ZONE 'UTC', ${DAY}) AS d FROM market_data.get_market_data('DUP', '1d', 'yahoo')`)).map((r) => r.d))
      .toEqual(["2024-03-04", "2024-03-05"]);
    // The adjusted bars follow the same rule.
    expect(await rows(url, `SELECT provider FROM market_data.get_adjusted_bars('DUP', '1d')`)).toEqual([{ provider: "yahoo" }, { provider: "polygon" }, { provider: "polygon" }]);
  });
});
