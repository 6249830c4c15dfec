/**
 * Backup and restore of a TimescaleDB database with a compressed hypertable and continuous aggregates, on the
 * engines we have: no native pg_dump talks to the PGlite build, so the dump is made by pg_dump compiled to WASM
 * (@electric-sql/pglite-tools 0.2.19, whose peer is PGlite 0.3.14 like our build). It writes plain SQL only
 * (its custom format comes out as a 7-byte header), so the load step runs that SQL; everything around it is
 * the project's restore procedure: manifest counts, sha256, version check, pre_restore/post_restore, counts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { PGlite as PGliteType } from "@electric-sql/pglite" with { "resolution-mode": "import" };
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { countRows, readServerInfo, sha256File, type BackupManifest } from "../../lib/ops/backup";
import { checkCompatibility, compareRowCounts, readTargetServer, restoreWithTimescaleProcedure, verifyDumpChecksum } from "../../lib/ops/restore";
import { freePort } from "../fixtures/engines";
import { schemaRunner } from "../fixtures/schema";

async function newTimescale(): Promise<PGliteType> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { timescaledb } = await import("@electric-sql/pglite/timescaledb");
  return PGlite.create({ extensions: { timescaledb } });
}

/** Runs the real migrations on `db` through a socket (the runner speaks the wire protocol), then closes it. */
async function migrate(db: PGliteType): Promise<void> {
  const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
  await db.exec("CREATE EXTENSION IF NOT EXISTS timescaledb");
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port });
  await server.start();
  try {
    await schemaRunner(`postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`, { timescaledb: true }).up();
  } finally {
    await server.stop();
  }
}

/** Loads a plain-SQL dump: catalog rows arrive as single-row INSERTs, so FK order is relaxed as pg_restore's COPY would not need. */
async function loadPlainDump(db: PGliteType, sql: string): Promise<void> {
  await db.exec(`SET session_replication_role = replica;\n${sql}\nSET session_replication_role = DEFAULT;`);
  await db.exec("SET search_path = public"); // the dump empties it
}

const BARS = `SELECT symbol, timeframe, time::text, open::text, high::text, low::text, close::text, volume::text
                FROM market_data.ohlcv_bars ORDER BY symbol, timeframe, time`;
const WEEKLY = "SELECT bucket::text, symbol, open::text, high::text, low::text, close::text, volume::text FROM market_data.ohlcv_weekly ORDER BY 1, 2";
const COMPRESSED = "SELECT count(*)::int AS n FROM timescaledb_information.chunks WHERE hypertable_name = 'ohlcv_bars' AND is_compressed";

describe("backup and restore of a compressed hypertable on TimescaleDB (PGlite + WASM pg_dump)", () => {
  let source: PGliteType;
  let dir: string;
  let manifest: BackupManifest;
  let dumpPath: string;
  let bars: unknown[];
  let weekly: unknown[];

  beforeAll(async () => {
    source = await newTimescale();
    await migrate(source);
    await source.exec(`
      INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
      SELECT s, 'XNAS', 'test', '1d', timestamptz '2020-01-01 00:00+00' + g * interval '1 day',
             100 + g * 0.01, 101 + g * 0.01, 99 + g * 0.01, 100.5 + g * 0.01, 1000 + g
        FROM unnest(ARRAY['AAPL', 'MSFT']) s, generate_series(0, 399) g;
      INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
        VALUES ('AAPL', 'XNAS', 'test', '1h', '2021-03-01 14:30+00', '187.150000001', '188', '186.9', '187.4400', '12.5');
    `);
    // One statement per call: a multi-statement exec is one transaction, and a refresh may not run in one.
    await source.query("CALL refresh_continuous_aggregate('market_data.ohlcv_weekly', NULL, NULL)");
    await source.query("SELECT count(compress_chunk(c)) FROM show_chunks('market_data.ohlcv_bars', older_than => timestamptz '2020-12-01') c");
    bars = (await source.query(BARS)).rows;
    weekly = (await source.query(WEEKLY)).rows;

    // The backup: counts and versions as createBackup records them, the WASM pg_dump, the dump's sha256.
    const { pgDump } = await import("@electric-sql/pglite-tools/pg_dump");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-backup-ts-"));
    const server = await readServerInfo(source);
    const rowCounts = await countRows(source);
    const dump = await pgDump({ pg: source });
    // The WASM pg_dump runs in this very session and never ends it: it leaves its REPEATABLE READ transaction
    // open and its settings (search_path = '', restrict_nonsystem_relation_kind = view) behind.
    await source.exec("ROLLBACK");
    await source.exec("RESET ALL");
    dumpPath = path.join(dir, "market.sql");
    fs.writeFileSync(dumpPath, Buffer.from(await dump.arrayBuffer()));
    manifest = {
      formatVersion: 1,
      createdAt: new Date().toISOString(),
      database: "postgres",
      owner: "postgres",
      databaseGrants: [],
      dumpFile: "market.sql",
      format: "plain",
      sizeBytes: fs.statSync(dumpPath).size,
      sha256: await sha256File(dumpPath),
      ...server,
      rowCounts,
    };
  }, 180_000);

  afterAll(async () => {
    await source?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the source has compressed chunks and the manifest counts the hypertable as a whole", async () => {
    expect((await source.query<{ n: number }>(COMPRESSED)).rows[0]?.n).toBeGreaterThan(0);
    expect(manifest.rowCounts["market_data.ohlcv_bars"]).toBe(801);
    expect(manifest.timescaledbVersion).toMatch(/^2\.23\./);
    expect(manifest.postgresMajor).toBe(17);
    expect(Object.keys(manifest.rowCounts).some((t) => t.startsWith("_timescaledb"))).toBe(false);
  });

  test("restored into a fresh TimescaleDB with pre/post restore: same counts, values, compressed chunks and weekly candles", async () => {
    const target = await newTimescale();
    try {
      await verifyDumpChecksum(manifest, dumpPath);
      checkCompatibility(manifest, await readTargetServer(target));
      await restoreWithTimescaleProcedure(target, manifest.timescaledbVersion, () => loadPlainDump(target, fs.readFileSync(dumpPath, "utf8")));

      expect(compareRowCounts(manifest.rowCounts, await countRows(target))).toEqual([]);
      expect((await target.query(BARS)).rows).toEqual(bars);
      expect((await target.query(WEEKLY)).rows).toEqual(weekly);
      expect((await target.query<{ n: number }>(COMPRESSED)).rows[0]?.n).toBe((await source.query<{ n: number }>(COMPRESSED)).rows[0]?.n);
      expect((await target.query<{ restoring: string }>("SELECT current_setting('timescaledb.restoring') AS restoring")).rows[0]?.restoring).toBe("off");
      // The restored hypertable takes new bars, into a compressed range too.
      await target.exec(`INSERT INTO market_data.ohlcv_bars (symbol, exchange, provider, timeframe, time, open, high, low, close, volume)
                         VALUES ('AAPL', 'XNAS', 'test', '1h', '2020-01-05 15:00+00', 1, 1, 1, 1, 1)`);
      expect((await target.query<{ n: number }>("SELECT count(*)::int AS n FROM market_data.ohlcv_bars")).rows[0]?.n).toBe(802);
    } finally {
      await target.close();
    }
  });

  test("a failed load still runs timescaledb_post_restore, so the database is not left in restore mode", async () => {
    const target = await newTimescale();
    try {
      await expect(
        restoreWithTimescaleProcedure(target, manifest.timescaledbVersion, async () => {
          await target.exec("SELECT 1/0");
        }),
      ).rejects.toThrow(/division by zero/);
      expect((await target.query<{ restoring: string }>("SELECT current_setting('timescaledb.restoring') AS restoring")).rows[0]?.restoring).toBe("off");
    } finally {
      await target.close();
    }
  });

  test("a dump changed after the backup is refused before anything is loaded", async () => {
    const tampered = path.join(dir, "tampered.sql");
    fs.writeFileSync(tampered, fs.readFileSync(dumpPath, "utf8").replace("187.150000001", "187.150000009"));
    await expect(verifyDumpChecksum(manifest, tampered)).rejects.toThrow(/tampered\.sql has sha256 [0-9a-f]{64} but its manifest records/);
  });

  test("a TimescaleDB 2.23 dump is refused by a server offering only another TimescaleDB version", () => {
    expect(() => checkCompatibility({ ...manifest, timescaledbVersion: "2.22.1" }, { serverVersion: "17.5", postgresMajor: 17, timescaledbAvailable: ["2.23.0"] })).toThrow(
      /needs TimescaleDB 2\.22\.1 but the target server offers 2\.23\.0; restore refused/,
    );
  });

  test("a target that already has TimescaleDB at another version than the dump's is refused before loading", async () => {
    const target = await newTimescale();
    try {
      await target.exec("CREATE EXTENSION IF NOT EXISTS timescaledb");
      let loaded = false;
      await expect(
        restoreWithTimescaleProcedure(target, "2.99.0", async () => {
          loaded = true;
        }),
      ).rejects.toThrow(/^The target database already has TimescaleDB 2\.23\.\S+ but the dump needs 2\.99\.0; restore refused\./);
      expect(loaded).toBe(false);
    } finally {
      await target.close();
    }
  });
});
