/**
 * The rejects threshold (--max-rejects / maxRejects) and where the rejects file may go.
 */
import fs from "node:fs";
import path from "node:path";
import type { RejectsWriter } from "./rejects";

/** The rejects threshold when none is given: a tenth of the rows read. */
export const DEFAULT_MAX_REJECTS = "10%";

/** A parsed --max-rejects: a count, or a percentage of the rows read. */
export type RejectLimit = { count: number } | { percent: number };

/** Parses `--max-rejects` (`0`, `250`, `10%`, `0.5%`); throws saying what is allowed. */
export function parseMaxRejects(text: string): RejectLimit {
  const t = text.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (pct && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
  if (/^\d+$/.test(t)) return { count: Number(t) };
  throw new Error(`--max-rejects ${JSON.stringify(text)} must be a count of rows (0 = none allowed) or a percentage of the rows read up to 100%, e.g. 250 or 10%.`);
}

/** Throws (so the transaction rolls back) when every row, or more rows than allowed, were rejected. */
export function enforceRejectLimit(read: number, rejects: RejectsWriter, limitText: string, limit: RejectLimit = parseMaxRejects(limitText)): void {
  const rejected = rejects.count;
  if (rejected === 0) return;
  const first = rejects.first ? ` First: ${rejects.first.source} row ${rejects.first.row}: ${rejects.first.reason}.` : "";
  const where = rejects.file ? ` All reasons: ${rejects.file}` : "";
  if (rejected === read) throw new Error(`every row was rejected (${rejected} of ${read}); nothing was loaded.${first}${where}`);
  const share = (rejected / read) * 100;
  const over = "count" in limit ? rejected > limit.count : share > limit.percent;
  if (over) {
    throw new Error(
      `${rejected} of ${read} rows rejected (${Number(share.toFixed(1))}%), more than --max-rejects ${limitText.trim()}; nothing was loaded.${first}${where}`,
    );
  }
}

/** Throws when the rejects file would overwrite one of the sources (the run deletes it first). */
export function checkRejectsPath(rejectsFile: string | undefined, files: readonly string[]): void {
  if (!rejectsFile) return;
  const real = (f: string) => {
    try {
      return fs.realpathSync(f);
    } catch {
      return path.resolve(f);
    }
  };
  const target = real(rejectsFile);
  if (files.some((f) => real(f) === target)) {
    throw new Error(`--rejects ${path.resolve(rejectsFile)} is also a source of this load; write rejects elsewhere (default ${DEFAULT_REJECTS_FILE}).`);
  }
}

/** Where the CLI writes rejected rows unless told otherwise: under .tsdb/, which no source expansion reads. */
export const DEFAULT_REJECTS_FILE = ".tsdb/rejects/last-load.csv";
