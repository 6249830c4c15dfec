/**
 * A load's counts, per source and in total, and how the CLI prints them.
 */
import { printable } from "./printable";

/** Counts for one source. */
export interface SourceSummary {
  source: string;
  /** Data rows read from the source. */
  read: number;
  /** New bars written. */
  inserted: number;
  /** Existing bars changed (policy `update`). */
  updated: number;
  /** Valid rows whose bar was already in the target unchanged (or kept, policy `skip`). */
  alreadyPresent: number;
  rejected: number;
  /** Bars kept although their OHLC are inconsistent (--inconsistent-ohlc flag or keep). */
  inconsistent: number;
}

/** Counts for a whole run. */
export interface LoadSummary extends Omit<SourceSummary, "source"> {
  sources: SourceSummary[];
  seconds: number;
  /** Rows read per second of wall time. */
  rowsPerSecond: number;
  /** Path of the rejects file when any row was rejected and a path was given. */
  rejectsFile?: string;
  /** Under --inconsistent-ohlc flag: the first FLAGGED_SHOWN bars kept with inconsistent OHLC, and why. */
  flagged?: Array<{ source: string; row: number; reason: string }>;
}

/** How many flagged bars a summary lists (validate lists what the table holds). */
export const FLAGGED_SHOWN = 20;

/** The run's summary: per-source counts and their totals; `flagged` and `rejectsFile` when there are any. */
export function summarize(
  sources: SourceSummary[],
  run: { seconds: number; flagged?: NonNullable<LoadSummary["flagged"]>; rejectsFile?: string },
): LoadSummary {
  const total = (k: keyof Omit<SourceSummary, "source">) => sources.reduce((n, s) => n + s[k], 0);
  const read = total("read");
  return {
    sources,
    read,
    inserted: total("inserted"),
    updated: total("updated"),
    alreadyPresent: total("alreadyPresent"),
    rejected: total("rejected"),
    inconsistent: total("inconsistent"),
    ...(run.flagged ? { flagged: run.flagged } : {}),
    seconds: run.seconds,
    rowsPerSecond: run.seconds > 0 ? Math.round(read / run.seconds) : read,
    ...(run.rejectsFile ? { rejectsFile: run.rejectsFile } : {}),
  };
}

/** The summary as the CLI prints it, ending with "nothing new" when a re-run added no rows. */
export function formatSummary(s: LoadSummary): string {
  const lines = s.sources.map(
    (x) => `  ${printable(x.source)}: read ${x.read}, inserted ${x.inserted}, updated ${x.updated}, already present ${x.alreadyPresent}, rejected ${x.rejected}`,
  );
  lines.push(
    `total: read ${s.read}, loaded ${s.inserted + s.updated} (inserted ${s.inserted}, updated ${s.updated}), ` +
      `already present ${s.alreadyPresent}, rejected ${s.rejected} in ${s.seconds.toFixed(2)} s (${s.rowsPerSecond} rows/s)`,
  );
  if (s.inserted + s.updated === 0 && s.alreadyPresent > 0) lines.push("nothing new: every valid row was already in the table.");
  if (s.rejectsFile) lines.push(`rejected rows with reasons: ${printable(s.rejectsFile)}`);
  if (s.inconsistent > 0) {
    lines.push(`kept ${s.inconsistent} bars with inconsistent OHLC (--inconsistent-ohlc); tsdb data validate lists them`);
    for (const f of s.flagged ?? []) lines.push(`  ${printable(f.source)} row ${f.row}: ${f.reason}`);
    if (s.flagged && s.inconsistent > s.flagged.length) lines.push(`  ... and ${s.inconsistent - s.flagged.length} more`);
  }
  return lines.join("\n");
}
