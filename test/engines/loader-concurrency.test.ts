/**
 * Concurrent loads on PostgreSQL 17 (the TimescaleDB test engine takes one connection at a time, so it cannot
 * run two loads at once): two loads of the same keys in opposite order used to deadlock (`deadlock
 * detected`, one of them failing); both must finish, with the table as one load would leave it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, beforeEach, describe, expect, test } from "vitest";
import { loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { SERVER_ENGINES, barsAsText, useMigratedEngine } from "../fixtures/loader/target";
import { exec } from "../fixtures/schema";

const ROWS = 20_000;

/** The same minute bars ascending and descending, as two vendors' files might hold them. */
function oppositeFiles(): { ascending: string; descending: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concurrent-"));
  const lines: string[] = [];
  const start = Date.UTC(2024, 0, 2, 14, 30);
  for (let i = 0; i < ROWS; i++) {
    const t = new Date(start + i * 60_000).toISOString();
    const p = (100 + (i % 97) / 100).toFixed(2);
    lines.push(`${t},BTCUSDT,BINANCE,binance,1m,${p},${p},${p},${p},${i % 13}`);
  }
  const header = "timestamp,symbol,exchange,provider,timeframe,open,high,low,close,volume";
  const ascending = path.join(dir, "ascending.csv");
  const descending = path.join(dir, "descending.csv");
  fs.writeFileSync(ascending, `${header}\n${lines.join("\n")}\n`);
  fs.writeFileSync(descending, `${header}\n${[...lines].reverse().join("\n")}\n`);
  return { ascending, descending };
}

describe.each(SERVER_ENGINES)("concurrent loads on $name", (engine) => {
  let url: string;
  let files: { ascending: string; descending: string };

  useMigratedEngine(engine, (u) => (url = u));
  beforeAll(() => {
    files = oppositeFiles();
  });
  beforeEach(async () => {
    await exec(url, "TRUNCATE market_data.ohlcv_bars");
  });

  async function loadBothAtOnce(): Promise<void> {
    const [a, b] = await Promise.allSettled([
      loadOhlcvFrom(url, { files: [files.ascending] }),
      loadOhlcvFrom(url, { files: [files.descending] }),
    ]);
    const failures = [a, b].flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
    expect(failures).toEqual([]);
    const [sa, sb] = [a, b].map((r) => (r.status === "fulfilled" ? r.value : undefined));
    // Every bar went in exactly once: one load inserted it, the other found it present.
    expect((sa?.inserted ?? 0) + (sb?.inserted ?? 0)).toBe(ROWS);
    expect((sa?.alreadyPresent ?? 0) + (sb?.alreadyPresent ?? 0)).toBe(ROWS);
  }

  test.each([1, 2, 3])("two loads of the same new keys in opposite order both finish (try %i)", async () => {
    await loadBothAtOnce();
    const bars = await barsAsText(url);
    expect(bars).toHaveLength(ROWS);
    expect(new Set(bars).size).toBe(ROWS);
  });

  test.each([1, 2, 3])("two merges of the same keys in opposite order both finish (try %i)", async () => {
    // One key already present sends both loads through staging + merge (ON CONFLICT).
    await exec(url, `INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
                     VALUES ('BTCUSDT', 'BINANCE', 'binance', '1m', '2024-01-02T14:30:00Z', 100, 100, 100, 100, 0)`);
    const [a, b] = await Promise.allSettled([
      loadOhlcvFrom(url, { files: [files.ascending] }),
      loadOhlcvFrom(url, { files: [files.descending] }),
    ]);
    expect([a, b].flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []))).toEqual([]);
    const inserted = [a, b].reduce((n, r) => n + (r.status === "fulfilled" ? r.value.inserted : 0), 0);
    expect(inserted).toBe(ROWS - 1);
    expect(await barsAsText(url)).toHaveLength(ROWS);
  });
});
