/**
 * Wall-clock times in an IANA time zone turned into UTC, for zone-less timestamps (`--timezone`,
 * `timezone` in a dataset): a file in New York or broker time otherwise loads with every bar shifted. Built on
 * the Intl API (the ICU time zone data Node ships), no library: the only operation needed is "the zone's UTC
 * offset at an instant", and Intl gives it exactly, historical rules included.
 *
 * DST is done strictly: a local time the clocks skip (02:30 on a spring-forward night) is a reason, never a
 * guess; one that occurs twice (01:30 on a fall-back night) is resolved by the rule the user picked
 * (`earlier`: the first occurrence, still on summer time; `later`: the second) or, by default, a reason.
 */

/** How a local time that occurs twice (clocks set back) is resolved. */
export const AMBIGUOUS_TIME_RULES = ["reject", "earlier", "later"] as const;
export type AmbiguousTimeRule = (typeof AMBIGUOUS_TIME_RULES)[number];

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** True when `name` is a time zone Intl knows (IANA names such as `America/New_York`, and `UTC`). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** UTC milliseconds for a local wall-clock time in one zone, or the reason there is none. */
export type LocalResult = { ok: true; ms: number } | { ok: false; reason: string };

/** One time zone's local -> UTC conversion, cached per local day (bars come in time order). */
export class LocalZone {
  private readonly format: Intl.DateTimeFormat;
  /** Local day (as-if-UTC days since 1970) -> the zone's offset all that day, or null when it changes near it. */
  private readonly days = new Map<number, number | null>();

  constructor(readonly name: string, readonly ambiguous: AmbiguousTimeRule = "reject") {
    if (!isTimeZone(name)) throw new Error(`time zone ${JSON.stringify(name)} is not an IANA time zone name (such as America/New_York, Europe/London, UTC).`);
    this.format = new Intl.DateTimeFormat("en-US", {
      timeZone: name, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", era: "short",
    });
  }

  /** The zone's offset from UTC (ms, east positive) at the UTC instant `utcMs`. */
  offsetAt(utcMs: number): number {
    const whole = Math.floor(utcMs / 1000) * 1000;
    const p: Record<string, string> = {};
    for (const part of this.format.formatToParts(new Date(whole))) p[part.type] = part.value;
    const year = p.era === "BC" ? 1 - Number(p.year) : Number(p.year);
    const local = Date.UTC(year, Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
    // Date.UTC reads years 0..99 as 1900..1999; never reached (timestamps are 1800..2199).
    return local - whole;
  }

  /**
   * The UTC instant of local wall-clock milliseconds `localMs` (the local fields read as if UTC). Over a day
   * with one offset throughout (nearly all of them) this is one subtraction; near a change every candidate
   * offset is tried (Temporal's algorithm: the offsets a day before and after).
   */
  toUtc(localMs: number): LocalResult {
    const day = Math.floor(localMs / DAY_MS);
    let offset = this.days.get(day);
    if (offset === undefined) {
      // Local times of this day are UTC instants within [day - 14 h, day + 24 h + 12 h]; sample beyond that.
      const start = day * DAY_MS;
      const samples = [start - 26 * HOUR_MS, start + 12 * HOUR_MS, start + 50 * HOUR_MS].map((t) => this.offsetAt(t));
      offset = samples.every((o) => o === samples[0]) ? (samples[0] as number) : null;
      this.days.set(day, offset);
    }
    if (offset !== null) return { ok: true, ms: localMs - offset };
    const candidates = [...new Set([this.offsetAt(localMs - DAY_MS), this.offsetAt(localMs + DAY_MS)])]
      .map((o) => localMs - o)
      .filter((t) => this.offsetAt(t) === localMs - t)
      .sort((a, b) => a - b);
    if (candidates.length === 1) return { ok: true, ms: candidates[0] as number };
    const shownLocal = new Date(localMs).toISOString().slice(0, 19).replace("T", " ");
    if (candidates.length === 0) {
      return { ok: false, reason: `local time ${shownLocal} does not exist in ${this.name} (the clocks skip it when daylight saving time starts)` };
    }
    if (this.ambiguous === "earlier") return { ok: true, ms: candidates[0] as number };
    if (this.ambiguous === "later") return { ok: true, ms: candidates[candidates.length - 1] as number };
    return {
      ok: false,
      reason: `local time ${shownLocal} occurs twice in ${this.name} (the clocks go back); choose --ambiguous-time earlier or later (ambiguousTime in a dataset)`,
    };
  }
}
