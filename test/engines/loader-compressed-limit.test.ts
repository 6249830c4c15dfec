/**
 * A re-load that rewrites many bars held in compressed chunks, on native TimescaleDB 2.23: TimescaleDB stops any
 * statement that decompresses more than `timescaledb.max_tuples_decompressed_per_dml_transaction` tuples
 * (100,000 by default), so a vendor's corrected month loaded with --on-conflict update failed whole with
 * "tuple decompression limit exceeded by operation". Found by bench:load, where the DBA's own ON CONFLICT DO
 * UPDATE hit it. The load lifts the limit for its own transaction only.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadOhlcvFrom } from "../../lib/loader/OhlcvLoader";
import { type Engine, startTimescaleServer } from "../fixtures/engines";
import { TEST_VARIABLES, rows, schemaRunner } from "../fixtures/schema";

/** Two symbols of one-minute bars, 60,000 each: 120,000 tuples, every one in a compressed chunk. */
const PER_SYMBOL = 60_000;
const START = Date.UTC(2023, 0, 2);

function writeBars(file: string, revised: boolean): void {
  const lines = ["timestamp,symbol,timeframe,open,high,low,close,volume"];
  for (const symbol of ["AAA", "BBB"]) {
    for (let i = 0; i < PER_SYMBOL; i++) {
      const open = 100 + (i % 50);
      // The revision: every close moves to the bar's low.
      lines.push(`${new Date(START + i * 60_000).toISOString()},${symbol},1m,${open},${open + 2},${open - 1},${revised ? open - 1 : open + 1},${i}`);
    }
  }
  fs.writeFileSync(file, `${lines.join("\n")}\n`);
}

describe("re-loads that rewrite compressed chunks (native TimescaleDB)", () => {
  let server: Engine;
  let url: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-compressed-"));

  beforeAll(async () => {
    server = await startTimescaleServer();
    url = await server.createDatabase("market");
    await schemaRunner(url, { timescaledb: true, variables: { ...TEST_VARIABLES } }).up();
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("--on-conflict update rewrites 120,000 compressed bars, past TimescaleDB's 100,000-tuple default limit, and nothing else", async () => {
    const base = path.join(dir, "base.csv");
    const revised = path.join(dir, "revised.csv");
    writeBars(base, false);
    writeBars(revised, true);
    expect((await loadOhlcvFrom(url, { files: [base] })).inserted).toBe(2 * PER_SYMBOL);
    await rows(url, "SELECT count(compress_chunk(c)) FROM show_chunks('market_data.ohlcv_bars') c");
    const limit = await rows<{ setting: string }>(url, "SELECT setting FROM pg_settings WHERE name = 'timescaledb.max_tuples_decompressed_per_dml_transaction'");
    expect(limit).toEqual([{ setting: "100000" }]);
    const chunks = await rows<{ compressed: boolean }>(url, "SELECT is_compressed AS compressed FROM timescaledb_information.chunks WHERE hypertable_name = 'ohlcv_bars'");
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.every((c) => c.compressed)).toBe(true);

    const summary = await loadOhlcvFrom(url, { files: [revised], onConflict: "update" });
    expect({ inserted: summary.inserted, updated: summary.updated, rejected: summary.rejected }).toEqual({ inserted: 0, updated: 2 * PER_SYMBOL, rejected: 0 });
    const after = await rows<{ n: number; wrong: number }>(url, "SELECT count(*)::int AS n, count(*) FILTER (WHERE close <> low)::int AS wrong FROM market_data.ohlcv_bars");
    expect(after).toEqual([{ n: 2 * PER_SYMBOL, wrong: 0 }]);
    // The limit is lifted for the load's transaction only.
    expect(await rows(url, "SELECT setting FROM pg_settings WHERE name = 'timescaledb.max_tuples_decompressed_per_dml_transaction'")).toEqual([{ setting: "100000" }]);
  }, 300_000);
});
