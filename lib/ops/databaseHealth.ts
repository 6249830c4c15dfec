/**
 * Database checks for `npm run doctor` on a running stack (the runbook's "Performance Verification" and
 * "Troubleshooting" queries): reachable, extension version, hypertables, failed jobs, compression state,
 * cache hit ratio, connections. All on one connection, so it also works against single-connection engines.
 */
import { isConnectionLost } from "../db";
import type { CheckResult } from "./prerequisites";

/** The part of a `pg` client (or PGlite) these checks use. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** What doctor expects of the database. */
export interface HealthOptions {
  /** The stack's `tsdb:timescaledb`: when true a missing extension is a failure. */
  expectTimescaleDb: boolean;
  /** Cache hit ratio below this (0..1) is a warning; the runbook's target is 0.90. */
  minCacheHitRatio?: number;
  /** Block reads+hits below which the cache ratio is not judged (a fresh server has no history). */
  minCacheSamples?: number;
  /** Share of max_connections in use above which connections are a warning. */
  maxConnectionShare?: number;
  /**
   * `url`: a server of your own (`doctor --url`): fixes name the CLI's flags and commands, never Pulumi settings,
   * and a TimescaleDB extension not created yet is what `tsdb db up` will do, not a failure. Default `stack`.
   */
  path?: "stack" | "url";
}

async function rows<T>(db: Queryable, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, params)).rows as T[];
}

/**
 * Runs `check`, whose results are named `names`; a query error in it (a revoked privilege on a statistics view,
 * a statement timeout) becomes a failure of each of those checks, so the others still report. A lost
 * connection is not a check's failure: it is thrown, and doctor says it cannot reach the server.
 */
async function guarded(results: CheckResult[], names: string[], check: () => Promise<CheckResult[]>): Promise<void> {
  try {
    results.push(...(await check()));
  } catch (err) {
    if (isConnectionLost(err)) throw err;
    const message = err instanceof Error ? err.message : String(err);
    for (const name of names) {
      results.push({ name, status: "fail", detail: `its query failed: ${message}`, fix: "Run doctor as a role that can read the statistics views (pg_stat_*, timescaledb_information.*), e.g. the stack's migrator." });
    }
  }
}

/**
 * Runs the database checks. The first query (reachable) throws when it fails; after it, a query error in one
 * check becomes that check's failure and the rest still run.
 */
export async function checkDatabase(db: Queryable, options: HealthOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const minRatio = options.minCacheHitRatio ?? 0.9;
  const minSamples = options.minCacheSamples ?? 1000;
  const maxShare = options.maxConnectionShare ?? 0.8;
  const own = options.path === "url";

  const [server] = await rows<{ version: string; database: string }>(
    db,
    "SELECT current_setting('server_version') AS version, current_database() AS database",
  );
  results.push({ name: "Database", status: "ok", detail: `reachable: ${server?.database} on PostgreSQL ${server?.version}` });

  // The installed extension version, once its check has read it: the hypertable and job checks need it.
  const extension: { installed: string | null } = { installed: null };
  await guarded(results, ["TimescaleDB"], async () => {
    const [ext] = await rows<{ installed: string | null; available: string | null }>(
      db,
      `SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed,
              (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS available`,
    );
    const tsdb = ext?.installed ?? null;
    extension.installed = tsdb;
    if (!tsdb && options.expectTimescaleDb && own && ext?.available) {
      // A database just created: `tsdb db up` runs CREATE EXTENSION (0001_schemas.sql), which needs a superuser.
      const [me] = await rows<{ user: string; super: boolean }>(db, "SELECT current_user AS user, rolsuper AS super FROM pg_roles WHERE rolname = current_user");
      return [
        me?.super
          ? { name: "TimescaleDB", status: "ok", detail: `not created yet (server has ${ext.available}): \`tsdb db up\` creates it` }
          : {
              name: "TimescaleDB",
              status: "fail",
              detail: `not created yet (server has ${ext.available}), and ${me?.user} cannot create it (CREATE EXTENSION timescaledb needs a superuser)`,
              fix: "Have a superuser (your DBA, the service) run `CREATE EXTENSION timescaledb;` in this database, or pass --no-timescaledb to doctor and db up for plain PostgreSQL.",
            },
      ];
    }
    if (tsdb) {
      const newer = ext?.available && ext.available !== tsdb;
      return [
        {
          name: "TimescaleDB",
          status: newer ? "warn" : "ok",
          detail: newer ? `extension ${tsdb} installed, the server ships ${ext?.available}` : `extension ${tsdb}`,
          fix: newer ? "Update inside the database: `ALTER EXTENSION timescaledb UPDATE;` (first statement of a fresh session)." : undefined,
        },
      ];
    }
    return [
      options.expectTimescaleDb
        ? {
            name: "TimescaleDB",
            status: "fail",
            detail: ext?.available ? `not created in this database (server has ${ext.available})` : "not available on this server",
            fix: ext?.available
              ? "Run `pulumi up` (DatabaseAccess creates the extension) or `CREATE EXTENSION timescaledb;` as the owner."
              : own
                ? "Use a server with TimescaleDB installed, or pass --no-timescaledb to doctor and db up for plain PostgreSQL."
                : "Use a TimescaleDB image (tsdb:image) or set `pulumi config set tsdb:timescaledb false` for vanilla PostgreSQL.",
          }
        : { name: "TimescaleDB", status: "ok", detail: own ? "not used (--no-timescaledb)" : "not used (tsdb:timescaledb is false)" },
    ];
  });

  if (extension.installed) {
    await guarded(results, ["Hypertables", "Compression"], async () => {
      const hypertables = await rows<{ name: string; chunks: number; compression: boolean; compressed: number }>(
        db,
        `SELECT h.hypertable_schema || '.' || h.hypertable_name AS name, h.num_chunks::int AS chunks,
                h.compression_enabled AS compression,
                (SELECT count(*)::int FROM timescaledb_information.chunks c
                  WHERE c.hypertable_schema = h.hypertable_schema AND c.hypertable_name = h.hypertable_name
                    AND c.is_compressed) AS compressed
           FROM timescaledb_information.hypertables h ORDER BY 1`,
      );
      const withCompression = hypertables.filter((h) => h.compression);
      return [
        hypertables.length > 0
          ? { name: "Hypertables", status: "ok", detail: hypertables.map((h) => `${h.name} (${h.chunks} chunks)`).join(", ") }
          : {
              name: "Hypertables",
              status: "warn",
              detail: "none in this database",
              fix: own ? "Apply the schema: `tsdb db up --url <this URL>`." : "Apply the schema: `npm run db -- up` (or `pulumi up`).",
            },
        {
          name: "Compression",
          status: "ok",
          detail:
            withCompression.length === 0
              ? "no hypertable has compression enabled"
              : withCompression.map((h) => `${h.name}: ${h.compressed}/${h.chunks} chunks compressed`).join(", "),
        },
      ];
    });

    await guarded(results, ["Jobs"], async () => {
      const failed = await rows<{ job_id: number; proc: string; target: string | null; failures: number; status: string | null; last: string | null }>(
        db,
        `SELECT s.job_id, j.proc_schema || '.' || j.proc_name AS proc,
                s.hypertable_schema || '.' || s.hypertable_name AS target,
                s.total_failures::int AS failures, s.last_run_status AS status, s.last_run_started_at::text AS last
           FROM timescaledb_information.job_stats s JOIN timescaledb_information.jobs j USING (job_id)
          WHERE s.last_run_status = 'Failed' OR s.total_failures > 0
          ORDER BY s.job_id`,
      );
      return [
        failed.length === 0
          ? { name: "Jobs", status: "ok", detail: "no failed background jobs" }
          : {
              name: "Jobs",
              status: failed.some((f) => f.status === "Failed") ? "fail" : "warn",
              detail: failed
                .map((f) => `job ${f.job_id} ${f.proc}${f.target ? ` on ${f.target}` : ""}: ${f.failures} failure(s), last run ${f.status ?? "never"}`)
                .join("; "),
              fix: "See why: `SELECT * FROM timescaledb_information.job_errors ORDER BY start_time DESC LIMIT 5;` then re-run with `CALL run_job(<job_id>);`.",
            },
      ];
    });
  }

  await guarded(results, ["Cache hit ratio"], async () => {
    const [cache] = await rows<{ hit: string; read: string }>(
      db,
      "SELECT coalesce(sum(blks_hit), 0)::text AS hit, coalesce(sum(blks_read), 0)::text AS read FROM pg_stat_database WHERE datname = current_database()",
    );
    const hit = Number(cache?.hit ?? 0);
    const total = hit + Number(cache?.read ?? 0);
    if (total < minSamples) return [{ name: "Cache hit ratio", status: "ok", detail: `not judged yet (${total} block accesses so far)` }];
    const ratio = hit / total;
    return [
      {
        name: "Cache hit ratio",
        status: ratio >= minRatio ? "ok" : "warn",
        detail: `${(ratio * 100).toFixed(2)}% (target ${(minRatio * 100).toFixed(0)}%)`,
        fix:
          ratio >= minRatio
            ? undefined
            : own
              ? "Give PostgreSQL more memory: raise shared_buffers on the server (or the service's instance size)."
              : "Give PostgreSQL more memory: `pulumi config set tsdb:memoryMb <MB>` and `pulumi up`.",
      },
    ];
  });

  await guarded(results, ["Connections"], async () => {
    const [conn] = await rows<{ used: number; max: number }>(
      db,
      "SELECT (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS used, current_setting('max_connections')::int AS max",
    );
    const used = conn?.used ?? 0;
    const max = conn?.max ?? 0;
    return [
      {
        name: "Connections",
        status: max > 0 && used / max > maxShare ? "warn" : "ok",
        detail: `${used} of max_connections ${max}`,
        fix:
          max > 0 && used / max > maxShare
            ? own
              ? "Use a pool (e.g. PgBouncer) or raise max_connections on the server."
              : "Use a pool (e.g. PgBouncer) or raise `tsdb:maxConnections`, then `pulumi up`."
            : undefined,
      },
    ];
  });
  return results;
}
