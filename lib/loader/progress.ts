/**
 * Load progress: a cli-progress bar (rows, rows/s, ETA) on a terminal; plain periodic lines otherwise
 * (CI logs, pipes, the Pulumi engine), at most one every `intervalMs`.
 */
import type { Writable } from "node:stream";

/** Receives the loader's progress. */
export interface ProgressReporter {
  start(source: string, totalRows: number | undefined): void;
  /** `fraction` (0..1) when only bytes are known (CSV). */
  update(rows: number, fraction: number | undefined): void;
  stop(): void;
}

/** Reports nothing. */
export const silentProgress: ProgressReporter = { start() {}, update() {}, stop() {} };

function rate(rows: number, startedAt: number): number {
  const s = (Date.now() - startedAt) / 1000;
  return s > 0 ? Math.round(rows / s) : 0;
}

/** Plain lines: `progress <source>: <rows> rows, <rate> rows/s[, <pct>%]`. */
export function lineProgress(out: Writable = process.stderr, intervalMs = 2000): ProgressReporter {
  let source = "";
  let startedAt = 0;
  let last = 0;
  let total: number | undefined;
  return {
    start(s, t) {
      source = s;
      total = t;
      startedAt = Date.now();
      last = startedAt;
    },
    update(rows, fraction) {
      const now = Date.now();
      if (now - last < intervalMs) return;
      last = now;
      const f = total ? rows / total : fraction;
      out.write(`progress ${source}: ${rows} rows, ${rate(rows, startedAt)} rows/s${f !== undefined ? `, ${(f * 100).toFixed(0)}%` : ""}\n`);
    },
    stop() {},
  };
}

/** A cli-progress bar; the bar runs on rows when the total is known, on bytes read otherwise. */
export async function barProgress(): Promise<ProgressReporter> {
  const cliProgress = (await import("cli-progress")).default;
  const bar = new cliProgress.SingleBar(
    { format: "{source} [{bar}] {percentage}% | {rows} rows | {speed} rows/s | ETA {eta_formatted}", etaBuffer: 50, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  let startedAt = 0;
  let total: number | undefined;
  return {
    start(source, t) {
      total = t;
      startedAt = Date.now();
      bar.start(total ?? 1000, 0, { source: source.length > 40 ? `...${source.slice(-37)}` : source, rows: 0, speed: 0 });
    },
    update(rows, fraction) {
      const value = total ? rows : Math.round((fraction ?? 0) * 1000);
      bar.update(value, { rows, speed: rate(rows, startedAt) });
    },
    stop() {
      bar.stop();
    },
  };
}

/** The bar on a TTY, plain lines otherwise. */
export async function defaultProgress(stream: NodeJS.WriteStream = process.stderr): Promise<ProgressReporter> {
  return stream.isTTY ? barProgress() : lineProgress(stream);
}
