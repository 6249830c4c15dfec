/**
 * The measured side of `npm run bench:load` (scripts/bench-load.ts): one load in a process of its own, so its
 * peak RSS is its own, printed as JSON. It imports only lib/, so the benchmark runs it compiled (plain
 * `node`, as the CLI ships) rather than through tsx, whose transpiler adds some 40 MB to every process.
 *
 * `node bench-load-child.js MODE URL FILE [POLICY] [OPTIONS_JSON]`, MODE one of loader, keyset.
 */
import fs from "node:fs";
import { TimeKeySet } from "../lib/loader/keySet";
import { type ConflictPolicy, type LoadSummary, loadOhlcvFrom } from "../lib/loader/OhlcvLoader";

/** Symbols in the generated data. */
export const SYMBOLS = 50;
const START = Date.UTC(2024, 0, 2);

export interface Bar {
  t: number;
  symbol: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** Where and how a set of bars starts: first bar's time, symbol prefix, and a seed so sets differ. */
export interface BarSet {
  start?: number;
  prefix?: string;
  seed?: number;
}

/** Deterministic one-minute bars: `perSymbol` per symbol, symbol after symbol, prices in cents. */
export function* bars(perSymbol: number, extra = 0, set: BarSet = {}): Generator<Bar & { i: number }> {
  const { start = START, prefix = "SYM", seed: base = 42 } = set;
  let seed = base;
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  for (let s = 0; s < SYMBOLS; s++) {
    // Each symbol's own sequence, so the re-load file's extra bars do not shift the next symbol's prices.
    seed = base + s * 7919;
    let price = 10_000 + s * 100;
    for (let i = 0; i < perSymbol + extra; i++) {
      const open = price;
      const close = Math.max(100, Math.round(open * (1 + (rand() - 0.5) * 0.004)));
      const high = Math.max(open, close) + Math.round(rand() * 20);
      const low = Math.max(1, Math.min(open, close) - Math.round(rand() * 20));
      price = close;
      yield { i, t: start + i * 60_000, symbol: `${prefix}${String(s).padStart(3, "0")}`, open, high, low, close, volume: Math.round(rand() * 1e6) };
    }
  }
}


/**
 * This process's peak resident memory (VmHWM, of the memory it has had since exec). Not getrusage's maxrss: on
 * Linux that also counts the parent's pages the child shared between fork and exec, so every child of the
 * benchmark (which holds the generated data) reported the parent's size, about 290 MB, whatever it loaded.
 */
function peakRssMb(): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  if (!hwm) throw new Error("bench-load-child: no VmHWM in /proc/self/status (the benchmark measures memory on Linux only)");
  return Math.round(Number(hwm[1]) / 1024);
}

/** What the parent adds to a load: the load options a format needs (timeframe, path pattern), as JSON. */
export type ChildLoadOptions = Partial<Parameters<typeof loadOhlcvFrom>[1]>;

/**
 * Child mode: one measured load, JSON on stdout with the child's peak RSS. `file` is a path, or a JSON array of
 * paths (one load of several files).
 */
export async function child(mode: string, url: string, file: string, policy: ConflictPolicy, options: ChildLoadOptions = {}): Promise<void> {
  const started = process.hrtime.bigint();
  let extra: Record<string, unknown> = {};
  if (mode === "loader") {
    const files = file.startsWith("[") ? (JSON.parse(file) as string[]) : [file];
    const s: LoadSummary = await loadOhlcvFrom(url, { files, onConflict: policy, ...options });
    extra = { inserted: s.inserted, updated: s.updated, alreadyPresent: s.alreadyPresent, rejected: s.rejected, read: s.read };
  } else if (mode === "keyset") {
    // Memory of the in-file duplicate check alone, as the loader keeps it (TimeKeySet per series), and as
    // plain Sets (what it degrades to for out-of-order sources).
    const measure = (make: () => { add(t: number): unknown; size: number }) => {
      global.gc?.();
      const before = process.memoryUsage();
      const seen = new Map<string, { add(t: number): unknown; size: number }>();
      for (const b of bars(Math.ceil(Number(file) / SYMBOLS))) {
        let s = seen.get(b.symbol);
        if (!s) seen.set(b.symbol, (s = make()));
        s.add(b.t * 1000);
      }
      global.gc?.();
      const after = process.memoryUsage();
      const bytes = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
      return { bytes, keys: [...seen.values()].reduce((a, s) => a + s.size, 0) };
    };
    const sorted = measure(() => new TimeKeySet());
    const sets = measure(() => new Set<number>());
    extra = { keysetBytes: sorted.bytes, setBytes: sets.bytes, keys: sorted.keys };
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ seconds, maxRssMb: peakRssMb(), ...extra })}\n`);
}


if (require.main === module) {
  const [mode = "", url = "", file = "", policy = "skip", options = "{}"] = process.argv.slice(2);
  child(mode, url, file, policy === "update" ? "update" : "skip", JSON.parse(options) as ChildLoadOptions).catch((err: unknown) => {
    process.stderr.write(`bench-load-child: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
