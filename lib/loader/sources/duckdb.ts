/**
 * A table of a DuckDB database file (Lumibot's storage since seed 003) through DuckDB's official Node package,
 * opened read-only. Every column is read as DuckDB's own text of it (`CAST(x AS VARCHAR)`), in the session time
 * zone UTC: DECIMAL as its exact digits, DOUBLE as its shortest round-trip text, TIMESTAMPTZ with `+00`,
 * TIMESTAMP (zone-less) without a zone, so `--timezone` applies to it as to any zone-less text.
 */
import type { RecordSource } from "./types";

/** Opens `table` of a DuckDB file; with no table named, the file's only table (several: an error naming them). */
export async function openDuckdb(file: string, table: string | undefined): Promise<RecordSource> {
  const { DuckDBInstance } = await import("@duckdb/node-api");
  let instance: import("@duckdb/node-api").DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(file, { access_mode: "READ_ONLY" });
  } catch (err) {
    throw new Error(`${file}: not a readable DuckDB database (${(err as Error).message.split("\n")[0]}).`, { cause: err });
  }
  const connection = await instance.connect();
  const close = async () => {
    connection.closeSync();
    instance.closeSync();
  };
  try {
    await connection.run("SET TimeZone = 'UTC'");
    const tables = (await connection.runAndReadAll("SELECT schema_name, table_name FROM duckdb_tables() UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1, 2"))
      .getRows()
      .map(([schema, name]) => ({ schema: String(schema), name: String(name) }));
    const shown = tables.map((t) => (t.schema === "main" ? t.name : `${t.schema}.${t.name}`));
    let chosen: { schema: string; name: string } | undefined;
    if (table === undefined) {
      if (tables.length !== 1) throw new Error(`${file}: a DuckDB database with ${tables.length === 0 ? "no tables" : `tables ${shown.join(", ")}`}; name one with --table.`);
      chosen = tables[0];
    } else {
      const [schema, name] = table.includes(".") ? (table.split(".", 2) as [string, string]) : ["main", table];
      chosen = tables.find((t) => t.schema === schema && t.name === name);
      if (!chosen) throw new Error(`${file}: DuckDB table ${JSON.stringify(table)} does not exist; its tables: ${shown.join(", ") || "none"}.`);
    }
    const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;
    const from = `${quote(chosen!.schema)}.${quote(chosen!.name)}`;
    const described = (await connection.runAndReadAll(`SELECT * FROM ${from} LIMIT 0`)).columnNames();
    const count = Number((await connection.runAndReadAll(`SELECT count(*) FROM ${from}`)).getRows()[0]?.[0] ?? 0);
    const select = `SELECT ${described.map((c) => `CAST(${quote(c)} AS VARCHAR)`).join(", ")} FROM ${from}`;
    return {
      name: `${file}:${chosen!.schema === "main" ? chosen!.name : `${chosen!.schema}.${chosen!.name}`}`,
      columns: described,
      declared: {},
      totalRows: count,
      fractionRead: () => undefined,
      async *batches() {
        const result = await connection.stream(select);
        for await (const chunk of result) yield chunk.getRows() as unknown[][];
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
