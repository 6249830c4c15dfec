import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { SECRET_SIG, recordMarketDataLoad } from "../fixtures/loader/harness";

const ROOT = path.resolve(__dirname, "../..");
const connection = { host: "127.0.0.1", port: 5432, database: "market", user: "market_app", password: "s3cret", sslmode: "disable" };

function sha256(data: string | Buffer): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

describe("MarketDataLoad under mocks", () => {
  test("registers the component and one dynamic resource keyed by the files' checksum, connection secret", async () => {
    const dataset = { name: "sample-csv", source: "data/sample/csv/ohlcv.csv" };
    const recorded = await recordMarketDataLoad({ connection, dataset, projectDir: ROOT }, "sample");
    expect(recorded.map((r) => [r.type, r.name])).toEqual([
      ["tsdb:hooks:MarketDataLoad", "sample"],
      ["pulumi-nodejs:dynamic/tsdb:MarketDataLoad", "sample-dataset"],
    ]);
    const inputs = recorded[1]?.inputs ?? {};
    const file = "data/sample/csv/ohlcv.csv";
    const expected = `sha256:${sha256(`${file}\0${sha256(fs.readFileSync(path.join(ROOT, file)))}\n`)}`;
    expect(inputs).toMatchObject({ dataset, projectDir: ROOT, files: [file], checksum: expected });
    expect(inputs.connection).toHaveProperty(SECRET_SIG);
    expect(JSON.stringify({ ...inputs, connection: undefined, __provider: undefined })).not.toContain("s3cret");
    expect(String(inputs.__provider)).not.toContain("s3cret");
  });

  test("a directory dataset lists every file; the checksum follows content and path", async () => {
    const recorded = await recordMarketDataLoad({ connection, dataset: { name: "pq", source: "data/sample/parquet", pathPattern: "{provider}/{symbol}/{timeframe}/*.parquet" }, projectDir: ROOT });
    expect(recorded[1]?.inputs.files).toEqual([
      "data/sample/parquet/SAMPLE/AAPL/1d/aapl_1d.parquet",
      "data/sample/parquet/SAMPLE/AAPL/1h/aapl_1h.parquet",
      "data/sample/parquet/SAMPLE/MSFT/1d/msft_1d.parquet",
      "data/sample/parquet/SAMPLE/MSFT/1h/msft_1h.parquet",
      "data/sample/parquet/SAMPLE/NFLX/1d/nflx_1d.parquet",
      "data/sample/parquet/SAMPLE/NFLX/1h/nflx_1h.parquet",
    ]);
  });

  test("a dataset whose source is missing fails at program time, naming the setting", async () => {
    await expect(recordMarketDataLoad({ connection, dataset: { name: "gone", source: "data/nope.csv" }, projectDir: ROOT })).rejects.toThrow(
      `[tsdb:datasets] dataset gone: --source ${path.join(ROOT, "data/nope.csv")} does not exist.`,
    );
  });
});
