/**
 * The staging table (a temporary copy of the target's columns) and its merge into the target.
 */
import type { Client } from "pg";
import type { ConflictPolicy } from "./OhlcvLoader";
import { COLUMNS, type SeriesSpan } from "./readSource";
import { KEY, VALUES, quoteTarget } from "./target";
import { microsToSql } from "./timestamps";

export const STAGING = "pg_temp.tsdb_ohlcv_staging";

/** Creates the staging table for this transaction: same column types as the target, no constraints or indexes, so COPY into it is as cheap as it gets. */
export async function createStaging(client: Client, table: string): Promise<void> {
  await client.query(`CREATE TEMP TABLE tsdb_ohlcv_staging ON COMMIT DROP AS SELECT ${COLUMNS.join(", ")} FROM ${table} WITH NO DATA`);
}

/** Merges the staged rows into `target` under `policy`: a plain INSERT when nothing can conflict, else ON CONFLICT. */
export async function merge(
  client: Client,
  target: string,
  policy: ConflictPolicy,
  ranges: readonly SeriesSpan[],
): Promise<{ inserted: number; updated: number }> {
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  const plain = await plainInsert(client, table, ranges);
  return plain ?? conflictMerge(client, table, policy);
}

/**
 * Fast path for new data (the usual bulk import): when no series of this source has a bar in the target
 * within the source's time range, no key can conflict, and a plain INSERT skips ON CONFLICT's speculative
 * insertion (about a third of the merge's time). A concurrent load could still insert an overlapping key in
 * between; the savepoint turns that unique violation into undefined, and the caller merges.
 */
async function plainInsert(client: Client, table: string, ranges: readonly SeriesSpan[]): Promise<{ inserted: number; updated: number } | undefined> {
  const cols = COLUMNS.join(", ");
  const overlap = await client.query<{ any: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
                      AS s(symbol, exchange, provider, timeframe, lo, hi)
                     WHERE EXISTS (SELECT 1 FROM ${table} t WHERE t.symbol = s.symbol AND t.exchange = s.exchange
                                     AND t.provider = s.provider AND t.timeframe = s.timeframe AND t.time BETWEEN s.lo AND s.hi)) AS any`,
    [0, 1, 2, 3].map((i) => ranges.map((r) => r.key[i])).concat([ranges.map((r) => microsToSql(r.lo)), ranges.map((r) => microsToSql(r.hi))]),
  );
  if (overlap.rows[0]?.any) return undefined;
  await client.query("SAVEPOINT tsdb_plain_insert");
  try {
    const r = await client.query(`INSERT INTO ${table} (${cols}) SELECT ${cols} FROM ${STAGING}`);
    await client.query("RELEASE SAVEPOINT tsdb_plain_insert");
    return { inserted: r.rowCount ?? 0, updated: 0 };
  } catch (err) {
    await client.query("ROLLBACK TO SAVEPOINT tsdb_plain_insert");
    if ((err as { code?: string }).code !== "23505") throw err;
    return undefined;
  }
}

/** INSERT ... ON CONFLICT of staging into the target: DO NOTHING (skip) or DO UPDATE of changed values (update). */
async function conflictMerge(client: Client, table: string, policy: ConflictPolicy): Promise<{ inserted: number; updated: number }> {
  const cols = COLUMNS.join(", ");
  // In key order: two merges of overlapping keys then queue behind each other instead of deadlocking.
  const insert = `INSERT INTO ${table} AS t (${cols}) SELECT ${cols} FROM ${STAGING} ORDER BY ${KEY.join(", ")} ON CONFLICT (${KEY.join(", ")})`;
  if (policy === "skip") {
    const r = await client.query(`${insert} DO NOTHING`);
    return { inserted: r.rowCount ?? 0, updated: 0 };
  }
  // xmax = 0 marks a freshly inserted tuple; an updated one carries the updating transaction's id.
  const r = await client.query<{ inserted: number; updated: number }>(
    `WITH m AS (${insert} DO UPDATE SET ${VALUES.map((c) => `${c} = EXCLUDED.${c}`).join(", ")} ` +
      `WHERE (${VALUES.map((c) => `t.${c}`).join(", ")}) IS DISTINCT FROM (${VALUES.map((c) => `EXCLUDED.${c}`).join(", ")}) ` +
      `RETURNING (xmax = 0) AS ins) ` +
      `SELECT (count(*) FILTER (WHERE ins))::int AS inserted, (count(*) FILTER (WHERE NOT ins))::int AS updated FROM m`,
  );
  return r.rows[0] ?? { inserted: 0, updated: 0 };
}
