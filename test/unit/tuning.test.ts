import { describe, expect, test } from "vitest";
import { bytesToPgFormat, postgresArgs, tunePostgres } from "../../lib/tuning";

describe("tunePostgres follows timescaledb-tune", () => {
  test.each([
    // memoryMb, cpus, shared_buffers, effective_cache_size, maintenance_work_mem, work_mem, max_worker_processes, per_gather, parallel
    [512, 1, "128MB", "384MB", "64MB", "655kB", "12", "1", "1"],
    [2048, 2, "512MB", "1536MB", "256MB", "2621kB", "13", "1", "2"],
    [6144, 1, "1536MB", "4608MB", "768MB", "7864kB", "12", "1", "1"],
    [8192, 4, "2GB", "6GB", "1GB", "5242kB", "15", "2", "4"],
    [10240, 1, "2560MB", "7680MB", "1280MB", "13107kB", "12", "1", "1"],
    [12288, 3, "3GB", "9GB", "1536MB", "7864kB", "14", "2", "3"],
    [32768, 16, "8GB", "24GB", "2047MB", "5242kB", "27", "8", "16"],
  ])("%i MB and %i CPUs", (memoryMb, cpus, sb, ecs, mwm, wm, mwp, gather, parallel) => {
    expect(tunePostgres({ memoryMb, cpus })).toEqual({
      shared_buffers: sb,
      effective_cache_size: ecs,
      maintenance_work_mem: mwm,
      work_mem: wm,
      max_connections: "100",
      max_worker_processes: mwp,
      max_parallel_workers_per_gather: gather,
      max_parallel_workers: parallel,
      "timescaledb.max_background_workers": "8",
    });
  });

  test("more connections shrink work_mem per connection", () => {
    const s = tunePostgres({ memoryMb: 8192, cpus: 4, maxConnections: 400 });
    expect([s.max_connections, s.work_mem]).toEqual(["400", "1310kB"]);
  });

  test("plain PostgreSQL gets no timescaledb.* setting", () => {
    expect(Object.keys(tunePostgres({ memoryMb: 2048, cpus: 2, timescaledb: false }))).not.toContain(
      "timescaledb.max_background_workers",
    );
  });

  test.each([
    [{ memoryMb: 0, cpus: 2 }, "memoryMb must be a positive integer, got 0"],
    [{ memoryMb: 1024, cpus: 0 }, "cpus must be a positive integer, got 0"],
    [{ memoryMb: 1024, cpus: 2, maxConnections: -5 }, "maxConnections must be a positive integer, got -5"],
  ])("refuses %j", (input, message) => {
    expect(() => tunePostgres(input)).toThrow(message);
  });
});

describe("bytesToPgFormat matches timescaledb-tune's BytesToPGFormat", () => {
  test.each([
    [500, "1kB"],
    [1024, "1kB"],
    [1536, "2kB"],
    [1024 ** 2, "1MB"],
    [1.5 * 1024 ** 2, "1536kB"],
    [2 * 1024 ** 3, "2GB"],
    [2.5 * 1024 ** 3, "2560MB"],
    [1024 ** 4, "1TB"],
  ])("%d bytes -> %s", (bytes, text) => {
    expect(bytesToPgFormat(bytes)).toBe(text);
  });
});

test("settings render as postgres -c arguments in order", () => {
  expect(postgresArgs({ shared_buffers: "512MB", work_mem: "2621kB" })).toEqual([
    "-c",
    "shared_buffers=512MB",
    "-c",
    "work_mem=2621kB",
  ]);
});
