/**
 * A zip archive holding one data file (QuantConnect Lean ships each CSV zipped): that file, unpacked with
 * fflate into a private temporary directory, read by its own reader and removed on close. Several data
 * files in one archive are refused, naming them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { RecordSource } from "./types";

/**
 * Opens the one data file inside `file` with `open` (the loader's openSource without zip); a data file is an
 * entry whose name ends with one of `dataExtensions` (lower case).
 */
export async function openZip(file: string, dataExtensions: readonly string[], open: (inner: string) => Promise<RecordSource>): Promise<RecordSource> {
  const isData = (name: string) => dataExtensions.some((e) => name.toLowerCase().endsWith(e));
  const { unzipSync } = await import("fflate");
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(fs.readFileSync(file), { filter: (f) => isData(f.name) && !f.name.endsWith("/") && !path.basename(f.name).startsWith(".") });
  } catch (err) {
    throw new Error(`${file}: not a readable zip archive (${(err as Error).message}).`, { cause: err });
  }
  const names = Object.keys(entries);
  if (names.length !== 1) {
    throw new Error(
      `${file}: a zip archive with ${names.length === 0 ? `no data file (${dataExtensions.join(" ")})` : `${names.length} data files (${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""})`}; ` +
        "the loader reads a zip holding one; unpack it and load the directory.",
    );
  }
  const entry = names[0] as string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-zip-"));
  const inner = path.join(dir, path.basename(entry));
  try {
    fs.writeFileSync(inner, entries[entry] as Uint8Array, { mode: 0o600 });
    const source = await open(inner);
    return {
      ...source,
      name: `${file}:${entry}`,
      columns: source.columns,
      declared: source.declared,
      fractionRead: () => source.fractionRead(),
      batches: () => source.batches(),
      close: async () => {
        try {
          await source.close();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
