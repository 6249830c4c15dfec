/**
 * The target's contract: the table a load writes (default market_data.ohlcv_bars), how its name reaches SQL,
 * the columns it must have, and the value column types the row checks must respect.
 */
import type { Client } from "pg";
import { COLUMNS } from "./readSource";
import type { ValueColumn, ValueTypes } from "./rowValidation";

/** The target table the architecture contract defines. */
export const DEFAULT_TARGET = "market_data.ohlcv_bars";

export const KEY = ["symbol", "exchange", "provider", "timeframe", "time"] as const;
export const VALUES = ["open", "high", "low", "close", "volume", "adj_close"] as const;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `schema.table` quoted for SQL; throws for anything that is not two plain identifiers. */
export function quoteTarget(target: string, escape: (s: string) => string): string {
  const parts = target.split(".");
  if (parts.length !== 2 || !parts.every((p) => IDENT.test(p))) {
    throw new Error(`--target ${JSON.stringify(target)} must be schema.table with plain identifiers, e.g. ${DEFAULT_TARGET}.`);
  }
  return parts.map(escape).join(".");
}

/** The value columns' SQL names, in ValueColumn spelling. */
const VALUE_COLUMNS: readonly ValueColumn[] = VALUES;

/**
 * The target's value column types that differ from the contract's unconstrained numeric, for the row checks
 * (a value a column cannot hold failed the whole load, issue 23.19); undefined when every one is unconstrained
 * numeric. A type the checks do not know (double precision, or text) is left to the server.
 */
export async function targetTypes(client: Client, table: string): Promise<ValueTypes | undefined> {
  const r = await client.query<{ attname: ValueColumn; type: string; typmod: number; name: string }>(
    `SELECT attname, atttypid::regtype::text AS type, atttypmod AS typmod, format_type(atttypid, atttypmod) AS name
       FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY($2) AND NOT attisdropped`,
    [table, VALUE_COLUMNS],
  );
  const types: ValueTypes = {};
  const ints: Record<string, [bigint, bigint]> = {
    smallint: [-(2n ** 15n), 2n ** 15n - 1n], integer: [-(2n ** 31n), 2n ** 31n - 1n], bigint: [-(2n ** 63n), 2n ** 63n - 1n],
  };
  for (const c of r.rows) {
    if (c.type === "numeric" && c.typmod >= 4) {
      // typmod - 4 holds precision in its high 16 bits and scale in its low 11 bits, signed (PostgreSQL 15+).
      const t = c.typmod - 4;
      types[c.attname] = { kind: "numeric", precision: (t >> 16) & 0xffff, scale: ((t & 0x7ff) ^ 1024) - 1024, name: c.name };
    } else if (ints[c.type]) {
      const [min, max] = ints[c.type] as [bigint, bigint];
      types[c.attname] = { kind: "integer", min, max, name: c.name };
    } else if (c.type === "real") types[c.attname] = { kind: "real", name: c.name };
  }
  return Object.keys(types).length > 0 ? types : undefined;
}

/**
 * Whether `table` takes the bars in binary COPY format as copyBinary.ts writes them: key columns text or varchar,
 * time timestamptz, every value column unconstrained numeric (binary COPY is typed: numeric's bytes into a
 * double precision or numeric(p,s) column would be refused or read otherwise). Other targets get text.
 */
export async function binaryCopyFits(client: Client, table: string): Promise<boolean> {
  const r = await client.query<{ attname: string; type: string; typmod: number }>(
    `SELECT attname, atttypid::regtype::text AS type, atttypmod AS typmod
       FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY($2) AND NOT attisdropped`,
    [table, [...COLUMNS]],
  );
  const fits = (c: { attname: string; type: string; typmod: number }) =>
    c.attname === "time"
      ? c.type === "timestamp with time zone"
      : (VALUE_COLUMNS as readonly string[]).includes(c.attname)
        ? c.type === "numeric" && c.typmod === -1
        : c.type === "text" || c.type === "character varying";
  return r.rows.length === COLUMNS.length && r.rows.every(fits);
}

export async function checkTarget(client: Client, target: string): Promise<void> {
  const table = quoteTarget(target, (s) => client.escapeIdentifier(s));
  const r = await client.query<{ attname: string }>(
    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
    [table],
  );
  if (r.rows.length === 0) {
    throw new Error(`Table ${target} does not exist; apply the migrations first (tsdb db up, or pulumi up).`);
  }
  const have = new Set(r.rows.map((row) => row.attname));
  const missing = COLUMNS.filter((c) => !have.has(c));
  if (missing.length > 0) throw new Error(`Table ${target} lacks column(s) ${missing.join(", ")}; it must match docs/ARCHITECTURE.md.`);
}

/** Whether `table` holds no row, as this transaction sees it (one index or heap probe). */
export async function isEmpty(client: Client, table: string): Promise<boolean> {
  const r = await client.query<{ empty: boolean }>(`SELECT NOT EXISTS (SELECT 1 FROM ${table}) AS empty`);
  return r.rows[0]?.empty === true;
}

/**
 * Lifts, for the load's transaction only, TimescaleDB's cap on the tuples one statement may decompress (100,000
 * by default): a re-load that rewrites or fills in bars held in compressed chunks decompresses their batches, and
 * the cap would fail the whole load ("tuple decompression limit exceeded"). Nothing happens without TimescaleDB.
 */
export async function liftDecompressionLimit(client: Client): Promise<void> {
  await client.query(
    "SELECT set_config(name, '0', true) FROM pg_settings WHERE name = 'timescaledb.max_tuples_decompressed_per_dml_transaction'",
  );
}
