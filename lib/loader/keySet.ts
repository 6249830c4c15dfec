/**
 * The in-file duplicate check's memory: epoch microseconds seen for one series. Sources are nearly always
 * in time order per series, so times are appended to a growable Float64Array (8 bytes a key; a duplicate is
 * then found by binary search); the first out-of-order time that is not a duplicate switches the series to a
 * Set (about 40 bytes a key). bench/load.md measures both for 1M keys.
 */
export class TimeKeySet {
  private sorted = new Float64Array(1024);
  private n = 0;
  private set: Set<number> | undefined;

  /** Adds `t`; false when it was already present. */
  add(t: number): boolean {
    if (this.set) {
      if (this.set.has(t)) return false;
      this.set.add(t);
      return true;
    }
    if (this.n === 0 || t > (this.sorted[this.n - 1] ?? -Infinity)) {
      if (this.n === this.sorted.length) {
        const grown = new Float64Array(this.sorted.length * 2);
        grown.set(this.sorted);
        this.sorted = grown;
      }
      this.sorted[this.n++] = t;
      return true;
    }
    let lo = 0;
    let hi = this.n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.sorted[mid] ?? 0;
      if (v === t) return false;
      if (v < t) lo = mid + 1;
      else hi = mid - 1;
    }
    this.set = new Set(this.sorted.subarray(0, this.n));
    this.set.add(t);
    this.sorted = new Float64Array(0);
    return true;
  }

  get size(): number {
    return this.set ? this.set.size : this.n;
  }
}
