/** Runs a new key set makes room for; doubled as it fills. */
const INITIAL_RUNS = 16;

/**
 * The in-file duplicate check's memory: epoch microseconds seen for one series.
 *
 * Bars come at a fixed step (a minute, a day) with gaps (nights, weekends), and sources nearly always list a
 * series in time order. So the times in order are kept as runs, arithmetic progressions `start + k * step`
 * (k < count), 20 bytes a run: a series of one-minute bars traded around the clock is one run however long,
 * a stock's is one run a session. Memory then grows with the gaps, not with the file (issue 19: a load's
 * peak RSS flat in the file's size); irregular times cost 10 bytes a key (two per run), about what a plain
 * sorted array took. A time that does not extend the runs (out of order) is looked up in them by binary
 * search and, when new, kept in a Set beside them (about 40 bytes a key; only those times).
 */
export class TimeKeySet {
  private starts = new Float64Array(INITIAL_RUNS);
  private steps = new Float64Array(INITIAL_RUNS);
  private counts = new Uint32Array(INITIAL_RUNS);
  private used = 0;
  /** The greatest time in the runs. */
  private last = -Infinity;
  /** Times that came out of order and are in no run. */
  private outOfOrder: Set<number> | undefined;
  private n = 0;

  /** Adds `t`; false when it was already present. */
  add(t: number): boolean {
    if (t > this.last) {
      this.append(t);
    } else {
      if (this.inRuns(t) || this.outOfOrder?.has(t)) return false;
      (this.outOfOrder ??= new Set()).add(t);
    }
    this.n++;
    return true;
  }

  /** Keys held. */
  get size(): number {
    return this.n;
  }

  /** Runs the in-order times take (what the memory grows with). */
  get runs(): number {
    return this.used;
  }

  private append(t: number): void {
    const r = this.used - 1;
    if (r >= 0) {
      const count = this.counts[r] as number;
      const start = this.starts[r] as number;
      if (count === 1) {
        this.steps[r] = t - start;
        this.counts[r] = 2;
        this.last = t;
        return;
      }
      // The same arithmetic inRuns() checks membership with, so a time appended is a time found.
      if (start + count * (this.steps[r] as number) === t) {
        this.counts[r] = count + 1;
        this.last = t;
        return;
      }
    }
    if (this.used === this.starts.length) this.grow();
    this.starts[this.used] = t;
    this.steps[this.used] = 0;
    this.counts[this.used] = 1;
    this.used++;
    this.last = t;
  }

  private grow(): void {
    const size = this.starts.length * 2;
    const starts = new Float64Array(size);
    const steps = new Float64Array(size);
    const counts = new Uint32Array(size);
    starts.set(this.starts);
    steps.set(this.steps);
    counts.set(this.counts);
    this.starts = starts;
    this.steps = steps;
    this.counts = counts;
  }

  /** Whether `t` is one of the runs' times: the last run starting at or before it, then its step. */
  private inRuns(t: number): boolean {
    let lo = 0;
    let hi = this.used - 1;
    let r = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.starts[mid] as number) <= t) {
        r = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (r < 0) return false;
    const start = this.starts[r] as number;
    if (start === t) return true;
    const count = this.counts[r] as number;
    if (count < 2) return false;
    const step = this.steps[r] as number;
    const k = Math.round((t - start) / step);
    return k >= 1 && k < count && start + k * step === t;
  }
}
