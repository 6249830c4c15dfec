/**
 * `data validate` on the TimescaleDB build (PGlite) and PostgreSQL 17: gaps are missing periods (ISO weeks,
 * calendar months, quarters), whatever day of the period a bar is dated by, and the filters select what is
 * checked.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { type ValidationFilter, formatValidation, validateOhlcv } from "../../lib/loader/validateReport";
import { BAR_ENGINES, useMigratedEngine } from "../fixtures/loader/target";
import { exec } from "../fixtures/schema";

const ROOT = path.resolve(__dirname, "../..");
const DAY = 86_400_000;

/** US market holidays that fall on a Friday in 2008-2013 (Good Fridays and others), enough to move bars. */
const HOLIDAYS = new Set(["2008-03-21", "2009-04-10", "2010-04-02", "2011-04-22", "2012-04-06", "2013-03-29", "2009-07-03", "2010-12-24", "2010-12-31", "2011-12-30"]);

function iso(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

function isTradingDay(t: number): boolean {
  const d = new Date(t).getUTCDay();
  return d !== 0 && d !== 6 && !HOLIDAYS.has(iso(t));
}

/** Weekly bars dated by each week's last trading day (Thursday in a Good Friday week), as Yahoo/backtrader resample. */
function weeklyDates(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 7 * DAY) {
    // t is a Friday: step back to the last trading day of its week.
    let d = t;
    while (!isTradingDay(d)) d -= DAY;
    out.push(iso(d));
  }
  return out;
}

/** Monthly bars dated by each month's last trading day (2013-03-28: Good Friday was the 29th). */
function monthlyDates(fromYear: number, toYear: number): string[] {
  const out: string[] = [];
  for (let y = fromYear; y <= toYear; y++) {
    for (let m = 0; m < 12; m++) {
      let d = Date.UTC(y, m + 1, 1) - DAY;
      while (!isTradingDay(d)) d -= DAY;
      out.push(iso(d));
    }
  }
  return out;
}

async function insert(url: string, symbol: string, timeframe: string, dates: string[], provider = "yahoo"): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(
      `INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
       SELECT $1, 'XNYS', $2, $3, d::timestamp AT TIME ZONE 'UTC', 10, 11, 9, 10, 100 FROM unnest($4::date[]) AS d`,
      [symbol, provider, timeframe, dates],
    );
  });
}

describe.each(BAR_ENGINES)("validate on $name", ({ name, start, timescaledb }) => {
  let url: string;
  const validate = (filter: ValidationFilter = {}) => withClient(url, (c) => validateOhlcv(c, undefined, filter));
  const gaps = async (filter: ValidationFilter = {}) =>
    (await validate(filter)).series.map((s) => `${s.symbol} ${s.provider} ${s.timeframe} ${s.rows} ${s.missingBars}`);

  useMigratedEngine({ start, timescaledb }, (u) => (url = u));
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
  });

  test("weekly bars dated by the week's last trading day have no gaps; a missing week counts once per week", async () => {
    const weeks = weeklyDates("2008-01-04", "2013-12-27");
    expect(weeks).toContain("2008-03-20"); // Good Friday week: dated Thursday
    expect(weeks).toContain("2013-03-28");
    await insert(url, "SPY", "1w", weeks);
    expect(await gaps()).toEqual([`SPY yahoo 1w ${weeks.length} 0`]);

    // Three weeks in a row gone: three missing periods, not one gap and not 21 days.
    await exec(url, `DELETE FROM market_data.ohlcv_bars WHERE time IN ('2010-06-11Z', '2010-06-18Z', '2010-06-25Z')`);
    expect(await gaps()).toEqual([`SPY yahoo 1w ${weeks.length - 3} 3`]);
  });

  test("monthly and quarterly bars dated by the period's last trading day have no gaps, however long the month", async () => {
    const months = monthlyDates(2008, 2013);
    expect(months).toContain("2013-03-28"); // 33 days before 2013-04-30
    await insert(url, "SPY", "1mo", months);
    const quarters = months.filter((d) => ["03", "06", "09", "12"].includes(d.slice(5, 7)));
    await insert(url, "SPY", "3mo", quarters);
    expect(await gaps()).toEqual([`SPY yahoo 1mo ${months.length} 0`, `SPY yahoo 3mo ${quarters.length} 0`]);

    await exec(url, `DELETE FROM market_data.ohlcv_bars WHERE (timeframe = '1mo' AND time IN ('2011-05-31Z', '2011-06-30Z')) OR (timeframe = '3mo' AND time = '2012-09-28Z')`);
    expect(await gaps()).toEqual([`SPY yahoo 1mo ${months.length - 2} 2`, `SPY yahoo 3mo ${quarters.length - 1} 1`]);
  });

  test("--symbol, --exchange, --provider and --timeframe select the series checked, and the totals with them", async () => {
    const weeks = weeklyDates("2012-01-06", "2012-12-28");
    await insert(url, "SPY", "1w", weeks);
    await insert(url, "QQQ", "1w", weeks.slice(0, 10));
    await insert(url, "QQQ", "1w", weeks.slice(0, 5), "polygon");
    await insert(url, "QQQ", "1mo", monthlyDates(2012, 2012));

    const qqq = await validate({ symbol: "QQQ" });
    expect(qqq.series.map((s) => `${s.symbol} ${s.provider} ${s.timeframe}`)).toEqual(["QQQ polygon 1w", "QQQ yahoo 1mo", "QQQ yahoo 1w"]);
    expect(qqq.totalRows).toBe(10 + 5 + 12);
    expect(await gaps({ symbol: "QQQ", provider: "polygon" })).toEqual(["QQQ polygon 1w 5 0"]);
    expect(await gaps({ symbol: "QQQ", timeframe: "1mo" })).toEqual(["QQQ yahoo 1mo 12 0"]);
    expect(await gaps({ exchange: "XNYS", timeframe: "1w", provider: "yahoo" })).toEqual([`QQQ yahoo 1w 10 0`, `SPY yahoo 1w ${weeks.length} 0`]);
    const none = await validate({ symbol: "NOPE" });
    expect(none.totalRows).toBe(0);
    expect(formatValidation(none)).toContain("no bars match symbol=NOPE");

    if (name === "PostgreSQL 17") {
      // The command line passes the filters on, and says so when nothing matches.
      const run = (...args: string[]) =>
        spawnSync(process.execPath, ["--import", "tsx", "scripts/data.ts", "validate", "--url", url, ...args], { cwd: ROOT, encoding: "utf8" });
      const cli = run("--symbol", "SPY", "--json");
      expect(cli.status, cli.stderr).toBe(0);
      const report = JSON.parse(cli.stdout) as { totalRows: number; series: Array<{ symbol: string }> };
      expect(report.totalRows).toBe(weeks.length);
      expect(report.series.map((s) => s.symbol)).toEqual(["SPY"]);
      const missing = run("--symbol", "NOPE");
      expect(missing.stdout).toContain("no bars match symbol=NOPE");
      expect(missing.status).toBe(1);
    }
  });
});
