/**
 * The loader's answers to issue 23's hostile inputs, as pure logic: timeframes that lost their meaning or
 * precision, keys that rewrite a terminal, prices the target's numeric type cannot hold, CSV quotes that
 * swallowed rows, and a symlink cycle under a source directory.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { expandSource } from "../../lib/loader/columnMapping";
import { RejectsWriter } from "../../lib/loader/rejects";
import { MAX_QUOTED_CHARS, openCsv, scanRecords } from "../../lib/loader/sources/csv";
import type { FaultyBatch } from "../../lib/loader/sources/types";
import { printable, printableJson } from "../../lib/loader/printable";
import { type BarText, checkBar, fitsNumeric, normalizeTimeframe, parseDecimal, timeframeFault, timeframeParts } from "../../lib/loader/rowValidation";
import { formatValidation } from "../../lib/loader/validateReport";

const GOOD: BarText = {
  symbol: "AAPL", exchange: "", provider: "", timeframe: "1d", time: "2024-01-02",
  open: "185.10", high: "186.20", low: "184.00", close: "185.64", volume: "1000", adjClose: undefined,
};

describe("timeframes keep their unit and their number (23.16)", () => {
  test("100ms is a hundred milliseconds, not a hundred months", () => {
    expect(normalizeTimeframe("100ms")).toBe("100ms");
    expect(normalizeTimeframe("250 milliseconds")).toBe("250ms");
    // pandas: `MS` is month start, `ms` milliseconds.
    expect(normalizeTimeframe("1MS")).toBe("1mo");
    expect(normalizeTimeframe("1Ms")).toBe("1ms");
  });
  test.each(["9007199254740993m", "100000000000h", "36526d", "1201mo", "1201M", "5218w", "MN1201"])(
    "%s, longer than 100 years, is refused rather than stored rounded or unreadable",
    (raw) => expect(normalizeTimeframe(raw)).toBeUndefined(),
  );
  test.each([["52596000m", "52596000m"], ["1200mo", "1200mo"], ["0005m", "5m"], ["H04", "4h"]])("%s is within bounds: %s", (raw, normal) => {
    expect(normalizeTimeframe(raw)).toBe(normal);
  });
  test("the reason names the bound in one line", () => {
    expect(timeframeFault("100000000000h")).toBe("is longer than 100 years; at most 876600h");
    expect(timeframeFault("9007199254740993m")).toBe("is longer than 100 years; at most 52596000m");
    expect(timeframeFault("fortnight")).toMatch(/^is ambiguous or unknown; use N \+ unit/);
  });
  test("a stored timeframe beyond the bound has no parts (validate reports n/a for it instead of failing)", () => {
    expect(timeframeParts("100000000000h")).toBeUndefined();
    expect(timeframeParts("15m")).toEqual({ count: 15, unit: "m" });
  });
});

describe("keys that rewrite a terminal (23.17)", () => {
  test.each([
    ["ESC", "AA\u001b[2KPL", "U+001B"],
    ["CR", "MSFT\rAAPL", "U+000D"],
    ["a right-to-left override", "\u202eLPAA", "U+202E"],
    ["a bidi isolate", "AAPL\u2066", "U+2066"],
    ["a zero-width space", "AA\u200bPL", "U+200B"],
    ["a C1 control (CSI)", "AAPL\u009b", "U+009B"],
  ])("a symbol holding %s is rejected with a reason that shows it escaped", (_name, symbol, code) => {
    const check = checkBar({ ...GOOD, symbol });
    expect(check.ok).toBe(false);
    const reason = check.ok ? "" : check.reason;
    expect(reason).toContain(`holds ${code}`);
    expect(printable(reason)).toBe(reason);
  });
  test.each([["exchange"], ["provider"]] as const)("the %s is checked the same way", (key) => {
    expect(checkBar({ ...GOOD, [key]: "X\u202eY" })).toMatchObject({ ok: false, reason: expect.stringContaining(`${key} "X\\u202eY" holds U+202E`) });
  });
  test("ordinary non-ASCII keys still pass", () => {
    expect(checkBar({ ...GOOD, symbol: "삼성전자", exchange: "Börse ✓" }).ok).toBe(true);
  });
  test("printable escapes controls and bidi characters as \\uXXXX and leaves other text alone", () => {
    expect(printable("A\u001bB\u202eC\rD")).toBe("A\\u001bB\\u202eC\\u000dD");
    expect(printable("AAPL")).toBe("AAPL");
    expect(JSON.parse(printableJson({ s: "\u202eX\u0085" }))).toEqual({ s: "\u202eX\u0085" });
    expect(printableJson({ s: "\u202eX" })).toBe('{"s":"\\u202eX"}');
  });
  test("validate's report prints stored keys escaped, so one series cannot show as another", () => {
    const text = formatValidation({
      table: "market_data.ohlcv_bars", filter: {}, totalRows: 2, nulls: {}, duplicateKeys: 0, inconsistentOhlc: 0, inconsistentBars: [],
      series: [
        { symbol: "AAPL", exchange: "", provider: "", timeframe: "1d", rows: 1, first: "2024-01-02T00:00:00Z", last: "2024-01-02T00:00:00Z", missingBars: 0 },
        { symbol: "EVIL\r\u001b[2KAAPL\u202e", exchange: "", provider: "", timeframe: "1d", rows: 1, first: "2024-01-02T00:00:00Z", last: "2024-01-02T00:00:00Z", missingBars: 0 },
      ],
    });
    expect(text).toContain("EVIL\\u000d\\u001b[2KAAPL\\u202e");
    expect(["\r", "\u001b", "\u202e"].some((c) => text.includes(c))).toBe(false);
  });
});

describe("symlink cycles under --source DIR (23.23)", () => {
  function tree(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-links-"));
    fs.mkdirSync(path.join(dir, "AAPL"));
    fs.mkdirSync(path.join(dir, "MSFT"));
    fs.writeFileSync(path.join(dir, "AAPL", "1d.csv"), "x\n");
    fs.writeFileSync(path.join(dir, "MSFT", "1d.csv"), "x\n");
    return dir;
  }
  test("an `up -> ..` link lists each real file once, not once per trip round the cycle", () => {
    const dir = tree();
    try {
      fs.symlinkSync("..", path.join(dir, "AAPL", "up"));
      expect(expandSource(dir).map((f) => path.relative(dir, f))).toEqual(["AAPL/1d.csv", "MSFT/1d.csv"]);
      expect(expandSource(`${dir}/**/*.csv`).map((f) => path.relative(dir, f))).toEqual(["AAPL/1d.csv", "MSFT/1d.csv"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  test("two links into each other's parents end at once (the walk was exponential)", () => {
    const dir = tree();
    try {
      fs.symlinkSync(path.join(dir, "MSFT"), path.join(dir, "AAPL", "to-msft"));
      fs.symlinkSync(path.join(dir, "AAPL"), path.join(dir, "MSFT", "to-aapl"));
      fs.symlinkSync(dir, path.join(dir, "MSFT", "root"));
      const started = Date.now();
      expect(expandSource(dir).map((f) => path.relative(dir, f))).toEqual(["AAPL/1d.csv", "MSFT/1d.csv"]);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  test("a link to a file and a dangling link: the real file once, the dangling link skipped", () => {
    const dir = tree();
    try {
      fs.symlinkSync(path.join(dir, "AAPL", "1d.csv"), path.join(dir, "AAPL", "daily.csv"));
      fs.symlinkSync(path.join(dir, "gone.csv"), path.join(dir, "MSFT", "dangling.csv"));
      expect(expandSource(dir).map((f) => path.relative(dir, f))).toEqual(["AAPL/1d.csv", "MSFT/1d.csv"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("two loads, one rejects path (23.12)", () => {
  test("two loads writing rejects at once into the same default path each keep a complete file of their own", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-rejects-"));
    const file = path.join(dir, ".tsdb", "rejects", "last-load.csv");
    const a = new RejectsWriter(file);
    const b = new RejectsWriter(file);
    try {
      // Interleaved as two loads' rows were: 204 of one, 3,796 of the other.
      for (let i = 1; i <= 4000; i++) {
        if (i % 20 === 0) a.add("a.csv", i, "open \"x\" is not a finite number", ["x"], ["open"]);
        else b.add("b.csv", i, "close is missing", [""], ["close"]);
      }
    } finally {
      a.close();
      b.close();
    }
    expect(a.file).not.toBe(b.file);
    const linesOf = (f: string | undefined) => fs.readFileSync(f as string, "utf8").trimEnd().split("\n");
    const la = linesOf(a.file);
    const lb = linesOf(b.file);
    expect(la[0]).toBe("source,row,reason,raw");
    expect(la.slice(1)).toHaveLength(200);
    expect(la.slice(1).every((l) => l.startsWith("a.csv,"))).toBe(true);
    expect(lb.slice(1)).toHaveLength(3800);
    expect(lb.slice(1).every((l) => l.startsWith("b.csv,"))).toBe(true);
    // The first claimed the path asked for; the lock files are gone once both are done.
    expect(a.file).toBe(file);
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith(".lock"))).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  test("a lock left by a killed load is taken over, and that run's old rejects are removed", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-rejects-"));
    const file = path.join(dir, "last-load.csv");
    fs.writeFileSync(file, "source,row,reason,raw\nold.csv,1,stale,{}\n");
    // No process has pid 2^22 + 1 (above Linux's pid_max default).
    fs.writeFileSync(`${file}.lock`, `${2 ** 22 + 1}\n`);
    const w = new RejectsWriter(file);
    w.close();
    expect(w.file).toBe(file);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("a value the target column cannot hold is one rejected row (23.19)", () => {
  test("17,000 digits that pass the digit limits (trailing zeros) are refused: numeric keeps at most 16383 after the point", () => {
    const long = `185.1${"0".repeat(17_000)}`;
    expect(checkBar({ ...GOOD, open: long, high: "186.20" })).toEqual({
      ok: false, reason: "open has 17001 digits after the decimal point as written; numeric keeps at most 16383",
    });
    // 16,383 is still fine, and so is an exponent that moves the point right.
    expect(checkBar({ ...GOOD, open: `185.1${"0".repeat(16_382)}` }).ok).toBe(true);
    expect(checkBar({ ...GOOD, volume: `1.${"0".repeat(16_390)}e10` }).ok).toBe(true);
  });
  test.each([
    ["999.994", 5, 2, true], ["999.995", 5, 2, false], ["-999.995", 5, 2, false], ["0.00001", 5, 2, true], ["12345", 5, 0, true],
    ["123456", 5, 0, false], ["99999.5", 5, 0, false], ["0.00123", 3, 5, true], ["0.0123", 3, 5, false], ["123449", 4, -2, true],
    ["999950", 4, -2, false], ["4", 2, -1, true], ["5", 1, -1, true], ["95", 1, -1, false],
  ] as const)("%s in numeric(%i,%i) fits: %s", (text, p, scale, fits) => {
    expect(fitsNumeric(parseDecimal(text) as NonNullable<ReturnType<typeof parseDecimal>>, p, scale)).toBe(fits);
  });
  test("the row check names the column's type; a row that fits passes", () => {
    const types = { high: { kind: "numeric", precision: 5, scale: 2, name: "numeric(5,2)" } } as const;
    expect(checkBar({ ...GOOD, open: "185.1", high: "1000.00", low: "184", close: "185" }, types)).toEqual({
      ok: false, reason: "high 1000.00 does not fit the target column's type numeric(5,2)",
    });
    expect(checkBar(GOOD, types).ok).toBe(true);
  });
  test("an integer column takes whole numbers in range only; real only what a float4 holds", () => {
    const types = { volume: { kind: "integer", min: -(2n ** 31n), max: 2n ** 31n - 1n, name: "integer" }, adj_close: { kind: "real", name: "real" } } as const;
    expect(checkBar({ ...GOOD, volume: "1000.5" }, types)).toMatchObject({ ok: false, reason: "volume 1000.5 is not a whole number, which the target column's type integer needs" });
    expect(checkBar({ ...GOOD, volume: "2147483648" }, types)).toMatchObject({ ok: false, reason: "volume 2147483648 is out of range for the target column's type integer" });
    expect(checkBar({ ...GOOD, adjClose: "1e39" }, types)).toMatchObject({ ok: false, reason: "adj_close 1e39 is out of range for the target column's type real" });
    expect(checkBar({ ...GOOD, volume: "2147483647", adjClose: "185.64" }, types).ok).toBe(true);
  });
});

/** Every record of a CSV file with the reason the reader found it malformed, if it did. */
async function readCsv(file: string): Promise<Array<{ row: unknown[]; fault?: string }>> {
  const source = await openCsv(file);
  const out: Array<{ row: unknown[]; fault?: string }> = [];
  try {
    for await (const batch of source.batches()) {
      const faults = (batch as FaultyBatch).faults;
      batch.forEach((row, i) => out.push(faults?.has(i) ? { row, fault: faults.get(i) as string } : { row }));
    }
  } finally {
    await source.close();
  }
  return out;
}

function barLines(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString()},AAPL,1m,185.1,186.2,184,185.6,${i}`);
}

describe("CSV quotes that swallowed rows (23.13, 23.20)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-quotes-"));
  const header = "timestamp,symbol,timeframe,open,high,low,close,volume";

  test("an unterminated quote at row 500 of 1,000 rejects that row and reads the other 999", async () => {
    const lines = barLines(1000);
    lines[499] = lines[499]!.replace(",AAPL,", ',"AAPL,');
    const file = path.join(dir, "open-quote.csv");
    fs.writeFileSync(file, `${header}\n${lines.join("\n")}\n`);
    const records = await readCsv(file);
    expect(records).toHaveLength(1000);
    expect(records.flatMap((r, i) => (r.fault ? [[i + 1, r.fault]] : []))).toEqual([
      [500, 'a quote (") opened in this row is never closed; the rows after it were read on their own'],
    ]);
    expect(records[500]?.row).toEqual(lines[500]!.split(","));
    expect(records[999]?.row).toEqual(lines[999]!.split(","));
  });

  test("a quote left open that a later quote closes does not merge the rows between into one", async () => {
    const lines = barLines(300);
    lines[99] = lines[99]!.replace(",AAPL,", ',"AAPL,');
    lines[199] = lines[199]!.replace(",185.6,", ',185.6",');
    const file = path.join(dir, "open-then-closed.csv");
    fs.writeFileSync(file, `${header}\n${lines.join("\n")}\n`);
    const records = await readCsv(file);
    const faulty = records.filter((r) => r.fault);
    expect(faulty).toHaveLength(1);
    expect(faulty[0]?.fault).toMatch(/^a quoted field spans lines and leaves this row with \d+ fields where the first row has 8/);
    // The 101 rows the quote held are one rejected record; nothing is dropped without a reason.
    expect(records).toHaveLength(300 - 100);
  });

  test("one stray quote inside an unquoted field rejects that row only", async () => {
    const lines = barLines(2000);
    lines[9] = lines[9]!.replace(",185.1,", ',18"5.1,');
    const file = path.join(dir, "stray.csv");
    fs.writeFileSync(file, `${header}\n${lines.join("\n")}\n`);
    const records = await readCsv(file);
    expect(records).toHaveLength(2000);
    expect(records.flatMap((r, i) => (r.fault ? [[i + 1, r.fault]] : []))).toEqual([
      [10, 'a quote (") inside an unquoted field; quote the whole field and double the quote ("")'],
    ]);
  });

  test("a stray quote does not hold back the rest of the text (it was carried to the end of the file)", () => {
    const text = `a,b\n1,2"3\n4,5\n6,7`;
    expect(scanRecords(text, ",", false)).toEqual({
      end: text.lastIndexOf("\n") + 1,
      bad: [{ start: 4, end: 10, reason: 'a quote (") inside an unquoted field; quote the whole field and double the quote ("")' }],
      firstFields: 2,
    });
  });

  test("a quote opened at a field's start and not closed within the bound is given up on without the end of the file", () => {
    const text = `a,b\n1,"2\n${"3,4\n".repeat(MAX_QUOTED_CHARS / 4 + 10)}`;
    const scan = scanRecords(text, ",", false);
    expect(scan.bad[0]).toMatchObject({ start: 4, end: 9, reason: expect.stringMatching(/never closed/) });
    expect(scan.end).toBe(text.length);
  });

  test("a file of 66 MiB with one stray quote near its start reads whole (it failed with 'quote left open?' after 64 MiB)", async () => {
    const file = path.join(dir, "big-stray.csv");
    const fd = fs.openSync(file, "w");
    const lines = barLines(4096);
    const block = `${lines.join("\n")}\n`;
    fs.writeSync(fd, `${header}\n${block.replace(",185.1,", ',185"1,')}`);
    let bytes = block.length;
    let rows = 4096;
    while (bytes < 66 * 2 ** 20) {
      fs.writeSync(fd, block);
      bytes += block.length;
      rows += 4096;
    }
    fs.closeSync(fd);
    const source = await openCsv(file);
    let read = 0;
    let faults = 0;
    try {
      for await (const batch of source.batches()) {
        read += batch.length;
        faults += (batch as FaultyBatch).faults?.size ?? 0;
      }
    } finally {
      await source.close();
      fs.rmSync(file, { force: true });
    }
    expect({ read, faults }).toEqual({ read: rows, faults: 1 });
  }, 120_000);
});
