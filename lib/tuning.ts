/**
 * PostgreSQL settings from the container's memory and CPUs, following timescaledb-tune's Linux rules
 * (github.com/timescale/timescaledb-tune, pkg/pgtune memory.go, parallel.go, misc.go), so a container gets
 * what `timescaledb-tune --yes` would write for a host of that size.
 */

const KB = 1024;
const MB = 1024 * KB;
const GB = 1024 * MB;
const TB = 1024 * GB;

/** timescaledb-tune's max_connections default; work_mem is spread over this many connections. */
export const DEFAULT_MAX_CONNECTIONS = 100;
/** timescaledb-tune's timescaledb.max_background_workers. */
const TIMESCALE_BACKGROUND_WORKERS = 8;
/** Checkpointer, WAL writer and autovacuum launcher, which also take worker slots. */
const BUILT_IN_PROCESSES = 3;
/** maintenance_work_mem limit (2 GB on Unix; 2047 MB everywhere keeps it portable, as timescaledb-tune does). */
const MAINTENANCE_WORK_MEM_LIMIT = 2047 * MB;
/** work_mem per GB of memory per connection, from pgtune's results (6.4 MB x 20 base connections). */
const WORK_MEM_PER_GB_PER_CONN = 6.4 * 20;

/** Resources the server may use. */
export interface TuningInput {
  /** Memory available to PostgreSQL (the container limit), in MB. */
  memoryMb: number;
  /** CPUs available to PostgreSQL. */
  cpus: number;
  /** Override for max_connections; default 100 as timescaledb-tune. */
  maxConnections?: number;
  /** Include TimescaleDB's settings (default true); false for a plain PostgreSQL image. */
  timescaledb?: boolean;
}

/** PostgreSQL settings as `name -> value` in postgresql.conf syntax, in a stable order. */
export type PostgresSettings = Record<string, string>;

/**
 * Formats bytes as timescaledb-tune's `BytesToPGFormat`: the largest unit that divides evenly (to within
 * 0.001), otherwise the next smaller unit, truncated; below 1 kB it is 1kB.
 */
export function bytesToPgFormat(bytes: number): string {
  if (!(bytes > 0)) throw new RangeError(`bytes must be at least 1, got ${bytes}`);
  const units: [number, string][] = [
    [TB, "TB"],
    [GB, "GB"],
    [MB, "MB"],
    [KB, "kB"],
  ];
  const index = units.findIndex(([size]) => bytes >= size);
  if (index === -1) return "1kB";
  const [size, unit] = units[index]!;
  let value = bytes / size;
  if (unit === "kB") return `${Math.round(value)}kB`;
  let shownUnit = unit;
  if (value - Math.trunc(value) > 0.001) {
    value *= 1024;
    shownUnit = units[index + 1]![1];
  }
  return `${Math.trunc(value)}${shownUnit}`;
}

/**
 * Memory, parallelism and connection settings for a server with `memoryMb` and `cpus`, as timescaledb-tune
 * recommends them. Unlike timescaledb-tune, one CPU still gets worker settings (it skips them) so that
 * TimescaleDB's background workers always fit in max_worker_processes.
 */
export function tunePostgres(input: TuningInput): PostgresSettings {
  const { memoryMb, cpus } = input;
  if (!Number.isInteger(memoryMb) || memoryMb < 1) throw new RangeError(`memoryMb must be a positive integer, got ${memoryMb}`);
  if (!Number.isInteger(cpus) || cpus < 1) throw new RangeError(`cpus must be a positive integer, got ${cpus}`);
  const conns = input.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (!Number.isInteger(conns) || conns < 1) throw new RangeError(`maxConnections must be a positive integer, got ${conns}`);

  const total = memoryMb * MB;
  const gigs = total / GB;
  // Go's math.Round rounds halves away from zero, as Math.round does for positive numbers.
  const cpuFactor = Math.round(cpus / 2);
  const workMem = (gigs * ((WORK_MEM_PER_GB_PER_CONN * MB) / conns)) / cpuFactor;

  const settings: PostgresSettings = {
    shared_buffers: bytesToPgFormat(Math.floor(total / 4)),
    effective_cache_size: bytesToPgFormat(Math.floor((total * 3) / 4)),
    maintenance_work_mem: bytesToPgFormat(Math.floor(Math.min(gigs * 128 * MB, MAINTENANCE_WORK_MEM_LIMIT))),
    work_mem: bytesToPgFormat(Math.floor(workMem)),
    max_connections: String(conns),
    max_worker_processes: String(BUILT_IN_PROCESSES + TIMESCALE_BACKGROUND_WORKERS + cpus),
    max_parallel_workers_per_gather: String(Math.round(cpus / 2)),
    max_parallel_workers: String(cpus),
  };
  if (input.timescaledb ?? true) settings["timescaledb.max_background_workers"] = String(TIMESCALE_BACKGROUND_WORKERS);
  return settings;
}

/** Renders settings as `postgres` command arguments: `["-c", "shared_buffers=512MB", ...]`. */
export function postgresArgs(settings: PostgresSettings): string[] {
  return Object.entries(settings).flatMap(([key, value]) => ["-c", `${key}=${value}`]);
}
