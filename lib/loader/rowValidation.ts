/**
 * Exact checks on one OHLCV row. Prices are compared as decimal text, never through JS numbers, so
 * `high >= max(open, close)` holds or fails exactly as PostgreSQL's numeric would decide it, and the text that
 * passed is what COPY writes.
 */
import { parseTimestamp } from "./timestamps";

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/;

/** A decimal in normal form: sign, integer digits without leading zeros, fraction without trailing zeros. */
export interface Decimal {
  negative: boolean;
  int: string;
  frac: string;
}

/** Parses decimal text (`12`, `-0.5`, `1.25e3`), or returns undefined when it is not a finite decimal. */
export function parseDecimal(text: string): Decimal | undefined {
  const m = DECIMAL.exec(text);
  if (!m) return undefined;
  const [, sign = "", intRaw = "", fracRaw = "", expRaw] = m;
  if (intRaw === "" && fracRaw === "") return undefined;
  let digits = intRaw + fracRaw;
  let point = intRaw.length;
  if (expRaw !== undefined) point += Number(expRaw);
  if (point < 0) {
    digits = "0".repeat(-point) + digits;
    point = 0;
  } else if (point > digits.length) {
    digits = digits + "0".repeat(point - digits.length);
  }
  const int = digits.slice(0, point).replace(/^0+/, "");
  const frac = digits.slice(point).replace(/0+$/, "");
  const zero = int === "" && frac === "";
  return { negative: sign === "-" && !zero, int, frac };
}

/** -1, 0 or 1 as `a` is less than, equal to or greater than `b`, exactly. */
export function compareDecimal(a: Decimal, b: Decimal): number {
  if (a.negative !== b.negative) return a.negative ? -1 : 1;
  const sign = a.negative ? -1 : 1;
  if (a.int.length !== b.int.length) return a.int.length < b.int.length ? -sign : sign;
  if (a.int !== b.int) return a.int < b.int ? -sign : sign;
  // Fractions have no trailing zeros, so plain string order is numeric order.
  if (a.frac !== b.frac) return a.frac < b.frac ? -sign : sign;
  return 0;
}

const PLAIN = /^\d+(?:\.\d+)?$/;

/**
 * compareDecimal for plain unsigned decimals (`185.10`), straight on the text without allocating: the hot
 * path of a load, where almost every price looks like this. Undefined when either text is not plain.
 */
export function comparePlain(a: string, b: string): number | undefined {
  if (!PLAIN.test(a) || !PLAIN.test(b)) return undefined;
  let ai = 0;
  let bi = 0;
  while (ai < a.length - 1 && a.charCodeAt(ai) === 48 && a.charCodeAt(ai + 1) !== 46) ai++;
  while (bi < b.length - 1 && b.charCodeAt(bi) === 48 && b.charCodeAt(bi + 1) !== 46) bi++;
  let ap = a.indexOf(".", ai);
  let bp = b.indexOf(".", bi);
  if (ap < 0) ap = a.length;
  if (bp < 0) bp = b.length;
  if (ap - ai !== bp - bi) return ap - ai < bp - bi ? -1 : 1;
  for (; ai < ap; ai++, bi++) {
    const d = a.charCodeAt(ai) - b.charCodeAt(bi);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  // Fractions, a missing digit counting as 0.
  for (let i = 1; ap + i < a.length || bp + i < b.length; i++) {
    const x = ap + i < a.length ? a.charCodeAt(ap + i) : 48;
    const y = bp + i < b.length ? b.charCodeAt(bp + i) : 48;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function isZero(d: Decimal): boolean {
  return d.int === "" && d.frac === "";
}

/** Text for a numeric value from a typed source: the shortest round-trip form of a double, integers exactly. */
export function numericText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "string") return value.trim();
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "not finite";
  if (typeof value === "bigint") return value.toString();
  return undefined;
}

const TIMEFRAME = /^(\d+)\s*(m|min|mins|minute|minutes|h|hr|hour|hours|d|day|days|w|wk|week|weeks|mo|mon|month|months)$/;
const UNIT: Record<string, string> = {
  m: "m", min: "m", mins: "m", minute: "m", minutes: "m",
  h: "h", hr: "h", hour: "h", hours: "h",
  d: "d", day: "d", days: "d",
  w: "w", wk: "w", week: "w", weeks: "w",
  mo: "mo", mon: "mo", month: "mo", months: "mo",
};
const NAMED: Record<string, string> = { daily: "1d", hourly: "1h", weekly: "1w", monthly: "1mo", minute: "1m" };

/**
 * A timeframe in the table's spelling (`1m`, `5m`, `1h`, `1d`, `1w`, `1mo`, ...), from common spellings
 * (`1H`, `60min` stays `60m`, `1day`, `daily`, NautilusTrader's `1-HOUR`). Undefined when not recognised.
 */
export function normalizeTimeframe(raw: string): string | undefined {
  const s = raw.trim().toLowerCase().replace("-", "");
  const named = NAMED[s];
  if (named) return named;
  const m = TIMEFRAME.exec(s);
  if (!m || Number(m[1]) <= 0) return undefined;
  return `${Number(m[1])}${UNIT[m[2] ?? ""] ?? ""}`;
}

const POSITIVE_DIGIT = /[1-9]/;

/** True when the row is plainly valid (plain decimals, all relations hold); false means "check in full". */
function fastCheck(bar: BarText): boolean {
  const { open, high, low, close } = bar;
  if (open === undefined || high === undefined || low === undefined || close === undefined) return false;
  if (!POSITIVE_DIGIT.test(low)) return false;
  const ho = comparePlain(high, open);
  const hc = comparePlain(high, close);
  const lo = comparePlain(low, open);
  const lc = comparePlain(low, close);
  if (ho === undefined || hc === undefined || lo === undefined || lc === undefined) return false;
  if (ho < 0 || hc < 0 || lo > 0 || lc > 0) return false;
  // low > 0 and low <= open, close <= high: every price is positive.
  if (bar.volume !== undefined && bar.volume !== "" && !PLAIN.test(bar.volume)) return false;
  if (bar.adjClose !== undefined && bar.adjClose !== "" && !(PLAIN.test(bar.adjClose) && POSITIVE_DIGIT.test(bar.adjClose))) return false;
  return true;
}

/** One row in table terms, every value as text, ready to check and to write to COPY. */
export interface BarText {
  symbol: string;
  exchange: string;
  provider: string;
  timeframe: string;
  time: unknown;
  open: string | undefined;
  high: string | undefined;
  low: string | undefined;
  close: string | undefined;
  volume: string | undefined;
  adjClose: string | undefined;
}

/** A checked row: the epoch microseconds of its time, or the reason it is rejected. */
export type RowCheck = { ok: true; micros: number } | { ok: false; reason: string };

function price(name: string, text: string | undefined): Decimal | string {
  if (text === undefined || text === "") return `${name} is missing`;
  const d = parseDecimal(text);
  if (!d) return `${name} ${JSON.stringify(text)} is not a finite number`;
  if (d.negative || isZero(d)) return `${name} ${text} is not positive`;
  return d;
}

/**
 * Checks a row: symbol and timeframe present, timestamp parses, prices finite and positive,
 * high >= max(open, close), low <= min(open, close), volume >= 0, adj_close (when given) finite and positive.
 */
export function checkBar(bar: BarText): RowCheck {
  if (bar.symbol === "") return { ok: false, reason: "symbol is missing" };
  if (bar.timeframe === "") return { ok: false, reason: "timeframe is missing" };
  const t = parseTimestamp(bar.time);
  if (!t.ok) return t;
  const fast = fastCheck(bar);
  if (fast) return { ok: true, micros: t.micros };
  const open = price("open", bar.open);
  if (typeof open === "string") return { ok: false, reason: open };
  const high = price("high", bar.high);
  if (typeof high === "string") return { ok: false, reason: high };
  const low = price("low", bar.low);
  if (typeof low === "string") return { ok: false, reason: low };
  const close = price("close", bar.close);
  if (typeof close === "string") return { ok: false, reason: close };
  if (compareDecimal(high, open) < 0 || compareDecimal(high, close) < 0) {
    return { ok: false, reason: `high ${bar.high} is below max(open ${bar.open}, close ${bar.close})` };
  }
  if (compareDecimal(low, open) > 0 || compareDecimal(low, close) > 0) {
    return { ok: false, reason: `low ${bar.low} is above min(open ${bar.open}, close ${bar.close})` };
  }
  if (bar.volume !== undefined && bar.volume !== "") {
    const v = parseDecimal(bar.volume);
    if (!v) return { ok: false, reason: `volume ${JSON.stringify(bar.volume)} is not a finite number` };
    if (v.negative) return { ok: false, reason: `volume ${bar.volume} is negative` };
  }
  if (bar.adjClose !== undefined && bar.adjClose !== "") {
    const adj = price("adj_close", bar.adjClose);
    if (typeof adj === "string") return { ok: false, reason: adj };
  }
  return { ok: true, micros: t.micros };
}
