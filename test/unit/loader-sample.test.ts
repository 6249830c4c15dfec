import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { SAMPLE_SYMBOLS, generateSampleBars, sampleChecksums, writeSample } from "../../lib/loader/sample";

const COMMITTED = path.resolve(__dirname, "../../data/sample");

describe("the bundled sample", () => {
  test("the sample generator (tsdb sample, lib/loader/sample) reproduces the committed files byte for byte", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sample-"));
    try {
      await writeSample(dir);
      expect(sampleChecksums(dir)).toEqual(sampleChecksums(COMMITTED));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("has several symbols, daily bars over three years and hourly bars, with consistent OHLC", () => {
    const bars = generateSampleBars();
    expect(bars).toHaveLength(5118);
    expect(new Set(bars.map((b) => b.symbol))).toEqual(new Set(SAMPLE_SYMBOLS.map((s) => s.symbol)));
    const daily = bars.filter((b) => b.timeframe === "1d");
    expect(new Date(Math.min(...daily.map((b) => b.time))).toISOString()).toBe("2022-01-03T00:00:00.000Z");
    expect(new Date(Math.max(...daily.map((b) => b.time))).toISOString()).toBe("2024-12-31T00:00:00.000Z");
    expect(bars.filter((b) => b.timeframe === "1h")).toHaveLength(3 * 924);
    for (const b of bars) {
      expect(b.high).toBeGreaterThanOrEqual(Math.max(b.open, b.close));
      expect(b.low).toBeLessThanOrEqual(Math.min(b.open, b.close));
      expect(b.low).toBeGreaterThan(0);
    }
  });

  test("stays well under 2 MB", () => {
    const total = Object.keys(sampleChecksums(COMMITTED)).reduce((n, f) => n + fs.statSync(path.join(COMMITTED, f)).size, 0);
    expect(total).toBeLessThan(2 * 1024 * 1024);
  });
});
