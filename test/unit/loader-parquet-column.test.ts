/**
 * lib/loader/sources/parquetColumn.ts reads flat column chunks without nulls itself (hyparquet's list
 * assembler was 40% of a row group's decode). Every chunk it takes must come back value for value, and of the
 * same type, as hyparquet's own parquetReadColumn gives it; every chunk it cannot take (a null, DELTA or
 * BYTE_STREAM_SPLIT pages, damage) must be left to hyparquet. Files come from the two writers at hand: arrow-rs
 * (parquet-wasm, the writer of NautilusTrader and of polars/pyarrow's format family; v1 and v2 pages, dictionary
 * pages that overflow into PLAIN or DELTA pages, several pages per chunk) and hyparquet-writer (nullable
 * columns, v2 pages: the load benchmark's file).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { openParquet } from "../../lib/loader/sources/parquet";
import { readFlatColumn } from "../../lib/loader/sources/parquetColumn";
import { damageZstdPage, loadParquetWasm } from "../fixtures/loader/nautilusParquet";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loader-parquet-column-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const ROWS = 5_000;
/** The row holding the one null of the `with_null` column. */
const NULL_AT = 4_321;

/** An arrow-rs file of ROWS rows in row groups of 2,000, pages of about 1 KiB, dictionaries of at most 256 bytes. */
async function arrowRsFile(name: string, pages: 1 | 2, dictionary: boolean): Promise<string> {
  const arrow = await import("apache-arrow");
  const wasm = await loadParquetWasm();
  const rows = Array.from({ length: ROWS }, (_, i) => i);
  const table = new arrow.Table({
    ts_event: arrow.vectorFromArray(rows.map((i) => 1_704_204_000_000_000_000n + BigInt(i) * 60_000_000_000n), new arrow.Int64()),
    time: arrow.vectorFromArray(rows.map((i) => 1_704_204_000_000 + i * 60_000), new arrow.TimestampMillisecond("UTC")),
    close: arrow.vectorFromArray(rows.map((i) => 100 + (i % 97) / 100 + (i % 3) * 1e-9), new arrow.Float64()),
    symbol: arrow.vectorFromArray(rows.map((i) => `SYM${i % 7}-é`), new arrow.Utf8()),
    volume: arrow.vectorFromArray(rows.map((i) => i * 3), new arrow.Int32()),
    with_null: arrow.vectorFromArray(rows.map((i) => (i === NULL_AT ? null : i / 4)), new arrow.Float64()),
  });
  let props = new wasm.WriterPropertiesBuilder()
    .setCompression(wasm.Compression.ZSTD)
    .setMaxRowGroupSize(2_000)
    .setDataPageSizeLimit(1_024)
    .setDictionaryPageSizeLimit(256)
    .setDictionaryEnabled(dictionary);
  if (pages === 2) props = props.setWriterVersion(wasm.WriterVersion.V2);
  const file = path.join(dir, name);
  fs.writeFileSync(file, wasm.writeParquet(wasm.Table.fromIPCStream(arrow.tableToIPC(table, "stream")), props.build()));
  return file;
}

/** The load benchmark's shape (scripts/bench-load.ts): hyparquet-writer, v2 pages, SNAPPY, dictionaries. */
async function hyparquetWriterFile(name: string, nullable: boolean): Promise<string> {
  const { parquetWriteFile } = await import("hyparquet-writer");
  const rows = Array.from({ length: ROWS }, (_, i) => i);
  const file = path.join(dir, name);
  parquetWriteFile({
    filename: file,
    rowGroupSize: 2_000,
    columnData: [
      { name: "ts_event", data: rows.map((i) => 1_704_204_000_000_000_000n + BigInt(i) * 60_000_000_000n), type: "INT64", nullable },
      { name: "symbol", data: rows.map((i) => `SYM${i % 50}`), type: "STRING", nullable },
      { name: "close", data: rows.map((i) => 100 + (i % 97) / 100), type: "DOUBLE", nullable },
      { name: "volume", data: rows.map((i) => i * 1.5), type: "DOUBLE", nullable },
    ],
  });
  return file;
}

interface ChunkResult {
  column: string;
  group: number;
  encodings: string[];
  fast: unknown[] | undefined;
  fastType: string | undefined;
  reference: unknown[];
  referenceType: string;
}

/** Every column chunk of `file`, read by readFlatColumn and by hyparquet. */
async function everyChunk(file: string): Promise<ChunkResult[]> {
  const hyparquet = await import("hyparquet");
  const { parquetReadColumn } = await import("hyparquet/src/read.js");
  const { compressors } = await import("hyparquet-compressors");
  const buffer = await hyparquet.asyncBufferFromFile(file);
  const metadata = await hyparquet.parquetMetadataAsync(buffer);
  const leaves = metadata.schema.slice(1);
  const results: ChunkResult[] = [];
  for (const [group, g] of metadata.row_groups.entries()) {
    const one = { ...metadata, num_rows: g.num_rows, row_groups: [g] };
    for (const [i, chunk] of g.columns.entries()) {
      const leaf = leaves[i];
      if (!leaf) throw new Error(`no schema element for column ${i}`);
      const fast = await readFlatColumn(buffer, chunk, leaf, Number(g.num_rows), { parsers: {}, compressors });
      const reference = await parquetReadColumn({ file: buffer, metadata: one, columns: [leaf.name], compressors });
      results.push({
        column: leaf.name,
        group,
        encodings: chunk.meta_data?.encodings ?? [],
        fast: fast && Array.from(fast as ArrayLike<unknown>),
        fastType: fast?.constructor.name,
        reference: Array.from(reference as ArrayLike<unknown>),
        referenceType: reference.constructor.name,
      });
    }
  }
  return results;
}

/** Whether the reader should take a chunk: no null, and pages PLAIN or dictionary-encoded only. */
const takes = (r: ChunkResult) =>
  !r.reference.some((v) => v === null || v === undefined) && r.encodings.every((e) => ["PLAIN", "RLE", "RLE_DICTIONARY", "PLAIN_DICTIONARY"].includes(e));

describe("flat column chunks read without hyparquet's list assembler", () => {
  const cases: Array<[string, () => Promise<string>]> = [
    ["arrow-rs, v1 pages, dictionaries overflowing into PLAIN pages", () => arrowRsFile("v1-dict.parquet", 1, true)],
    ["arrow-rs, v1 pages, PLAIN only", () => arrowRsFile("v1-plain.parquet", 1, false)],
    ["arrow-rs, v2 pages, dictionaries overflowing into PLAIN and DELTA pages", () => arrowRsFile("v2-dict.parquet", 2, true)],
    ["arrow-rs, v2 pages, no dictionary", () => arrowRsFile("v2-plain.parquet", 2, false)],
    ["hyparquet-writer, nullable columns (the load benchmark's file)", () => hyparquetWriterFile("hw-nullable.parquet", true)],
    ["hyparquet-writer, required columns", () => hyparquetWriterFile("hw-required.parquet", false)],
  ];
  test.each(cases)("%s: every chunk it takes is what hyparquet reads, value for value; the rest is left to hyparquet", async (_name, write) => {
    const results = await everyChunk(await write());
    const taken = results.filter(takes);
    expect(taken.length).toBeGreaterThan(0);
    for (const r of results) {
      const where = `${r.column}, row group ${r.group + 1} (${r.encodings.join("/")})`;
      if (takes(r)) {
        expect(r.fast, where).toBeDefined();
        expect(r.fast, where).toEqual(r.reference);
        expect(r.fastType, where).toBe(r.referenceType === "Array" ? r.fastType : r.referenceType);
      } else {
        expect(r.fast, where).toBeUndefined();
      }
    }
  });

  test("the null's row group is left to hyparquet and the others are read here", async () => {
    const results = await everyChunk(await arrowRsFile("nulls.parquet", 1, true));
    const withNull = results.filter((r) => r.column === "with_null");
    expect(withNull.map((r) => r.fast === undefined)).toEqual([false, false, true]);
  });

  test("a damaged chunk is left to hyparquet, which names the row group", async () => {
    const file = await arrowRsFile("damaged.parquet", 1, true);
    // The second row group's first data page of `close`.
    expect(await damageZstdPage(file, 1, 2)).toBeGreaterThan(0);
    const results = await everyChunk(file).then(() => "read", (e: unknown) => (e as Error).message);
    expect(results).not.toBe("read");
    const source = await openParquet(file);
    const read = async () => {
      for await (const batch of source.batches()) expect(batch.length).toBeGreaterThan(0);
    };
    await expect(read()).rejects.toThrow(`${file}: row group 2 of 3 cannot be read (`);
  });

  test("through the loader's reader, the benchmark's file gives every row as hyparquet does", async () => {
    const file = await hyparquetWriterFile("rows.parquet", true);
    const hyparquet = await import("hyparquet");
    const objects = await hyparquet.parquetReadObjects({ file: await hyparquet.asyncBufferFromFile(file) });
    const expected = objects.map((o) => ["ts_event", "symbol", "close", "volume"].map((c) => o[c]));
    const source = await openParquet(file);
    const rows: unknown[][] = [];
    for await (const batch of source.batches()) rows.push(...batch);
    await source.close();
    expect(rows).toHaveLength(ROWS);
    expect(rows).toEqual(expected);
  });
});
