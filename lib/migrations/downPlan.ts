/**
 * What reverting migrations would drop, and whether it may: ONE rule for every path that reverts (the CLI's
 * `db down`, the Pulumi hook's destroy and its revert of files removed from sql/). The plan lists each table
 * the down parts drop (by `DROP TABLE`, or `DROP SCHEMA ... CASCADE`) with its row count, read from the
 * database before anything runs; `protectData` refuses any revert, and dropping tables that hold rows needs
 * an explicit `force`. Carried inside the Pulumi hook's serialized closure: no runtime imports but ./split.
 */
import type { Client } from "pg";
import type { RunnableMigration } from "./core";
import { splitStatements } from "./split";

/** A table a revert would drop. */
export interface DroppedTable {
  /** `schema.table`. */
  name: string;
  /** Rows it holds now (exact count). */
  rows: number;
  /** A TimescaleDB hypertable (its chunks go with it). */
  hypertable: boolean;
}

/** One migration of a down plan and the tables its down part drops (those that exist). */
export interface DownStep {
  file: string;
  tables: DroppedTable[];
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const QUALIFIED = String.raw`${IDENT}(?:\s*\.\s*${IDENT})?`;
const DROP_TABLE = new RegExp(String.raw`^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(${QUALIFIED}(?:\s*,\s*${QUALIFIED})*)`, "i");
const DROP_SCHEMA_CASCADE = new RegExp(String.raw`^DROP\s+SCHEMA\s+(?:IF\s+EXISTS\s+)?(${IDENT}(?:\s*,\s*${IDENT})*)[^;]*\bCASCADE\b`, "i");
const NAME = new RegExp(QUALIFIED, "g");

/** Unquotes one identifier the way PostgreSQL folds it: quoted keeps case, bare is lowercased. */
function unquote(ident: string): string {
  const t = ident.trim();
  return t.startsWith('"') ? t.slice(1, -1).replace(/""/g, '"') : t.toLowerCase();
}

/**
 * The tables (`schema.table`, or bare `table` when unqualified) and schemas (dropped with CASCADE) that a
 * down part's statements name. Pure: parses the SQL, does not look at the database.
 */
export function dropsIn(sql: string): { tables: string[]; schemas: string[] } {
  const tables: string[] = [];
  const schemas: string[] = [];
  for (const { sql: statement } of splitStatements(sql)) {
    const t = DROP_TABLE.exec(statement);
    if (t) {
      for (const name of (t[1] as string).match(NAME) ?? []) {
        tables.push((name.match(new RegExp(IDENT, "g")) ?? []).map(unquote).join("."));
      }
    }
    const s = DROP_SCHEMA_CASCADE.exec(statement);
    if (s) for (const name of (s[1] as string).split(",")) schemas.push(unquote(name));
  }
  return { tables, schemas };
}

/** The tables the down parts of `migrations` (newest first) would drop, with their rows now. */
export async function planDrops(client: Client, migrations: readonly RunnableMigration[]): Promise<DownStep[]> {
  const ext = await client.query(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'timescaledb'`);
  const timescale = ext.rows[0]?.n > 0;
  const steps: DownStep[] = [];
  for (const m of migrations) {
    const { tables, schemas } = dropsIn(m.down);
    const names = [...tables];
    if (schemas.length > 0) {
      const inSchemas = await client.query(
        `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') ORDER BY 1`,
        [schemas],
      );
      names.push(...inSchemas.rows.map((r) => String(r.name)));
    }
    const found: DroppedTable[] = [];
    for (const name of [...new Set(names)]) {
      const [schema, table] = name.includes(".") ? (name.split(".") as [string, string]) : ["public", name];
      const rel = await client.query(
        `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
        [schema, table],
      );
      if (rel.rows.length === 0) continue;
      const qualified = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(table)}`;
      const count = await client.query(`SELECT count(*)::bigint AS n FROM ${qualified}`);
      const hyper = timescale
        ? await client.query(
            `SELECT count(*)::int AS n FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = $2`,
            [schema, table],
          )
        : undefined;
      found.push({ name: `${schema}.${table}`, rows: Number(count.rows[0]?.n ?? 0), hypertable: (hyper?.rows[0]?.n ?? 0) > 0 });
    }
    steps.push({ file: m.file, tables: found });
  }
  return steps;
}

/** `revert 0004_market_data.sql: drops market_data.ohlcv_bars (hypertable, 350,000 rows), ...`, one line per step. */
export function formatDownPlan(steps: readonly DownStep[]): string[] {
  return steps.map((s) => {
    const drops = s.tables.map((t) => `${t.name} (${t.hypertable ? "hypertable, " : ""}${t.rows.toLocaleString("en-US")} rows)`);
    return `revert ${s.file}: ${drops.length === 0 ? "drops no table" : `drops ${drops.join(", ")}`}`;
  });
}

/** The message refusing to drop data in a protected stack; `action` says what would have happened. */
export function protectDataRefusal(action: string): string {
  return (
    `[tsdb:protectData] is true on this stack, so ${action} would drop market data. ` +
    `Run pulumi config set tsdb:protectData false && pulumi up first if you really mean it.`
  );
}

/** What decides whether a revert may run. */
export interface DownPolicy {
  /** The stack's `tsdb:protectData`: refuse any revert. */
  protectData: boolean;
  /** Drop tables that hold rows (the CLI's --force; the hook passes true: destroy was confirmed in Pulumi). */
  force: boolean;
  /** What is being done, for the refusal, e.g. `db down --to 3`. */
  action: string;
}

/** Throws (one line) when `policy` forbids the revert `steps` describe; returns quietly otherwise. */
export function checkDownAllowed(steps: readonly DownStep[], policy: DownPolicy): void {
  if (steps.length === 0) return;
  const full = steps.flatMap((s) => s.tables).filter((t) => t.rows > 0);
  const total = full.reduce((n, t) => n + t.rows, 0);
  const holding = full.length === 0 ? "" : ` (${total.toLocaleString("en-US")} rows in ${full.map((t) => t.name).join(", ")})`;
  if (policy.protectData) {
    throw new Error(
      `${protectDataRefusal(policy.action)} It would revert ${steps.map((s) => s.file).join(", ")}${holding ? `, dropping${holding}` : ""}; nothing was reverted.`,
    );
  }
  if (full.length > 0 && !policy.force) {
    throw new Error(
      `${policy.action} would drop tables that hold rows${holding}; nothing was reverted. Back up first (tsdb backup), then pass --force to drop them.`,
    );
  }
}
