/**
 * Exact checks on one OHLCV row. Prices are compared as decimal text, never through JS numbers, so
 * `high >= max(open, close)` holds or fails exactly as PostgreSQL's numeric would decide it, and the text that
 * passed is what COPY writes.
 */
import { REFUSED_IN_KEYS, firstUnprintable, printable } from "./printable";
import { type TimestampResult, type ZoneOfLocalTimes, parseTimestamp, shown } from "./timestamps";

/** Longest symbol, exchange or provider accepted (characters): keys stay far below the index's row limit. */
export const MAX_KEY_TEXT = 128;
/** Most digits accepted before, and after, the decimal point of a price or volume (PostgreSQL allows 131072 and 16383). */
export const MAX_INT_DIGITS = 40;
export const MAX_FRAC_DIGITS = 40;
// Longer text than this always goes through the full check, which counts digits.
const MAX_FAST_CHARS = 40;

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

/**
 * Decimal text divided by a power of ten, exactly (the decimal point moved `places` to the left): `6412000` / 10^4
 * is `641.2`. Text that is not a decimal is returned as it is, for the row check to name.
 */
export function shiftDecimal(text: string, places: number): string {
  const d = parseDecimal(text);
  if (!d) return text;
  const digits = (d.int + d.frac).padStart(places + d.frac.length + 1, "0");
  const point = digits.length - d.frac.length - places;
  const int = digits.slice(0, point).replace(/^0+(?=\d)/, "");
  const frac = digits.slice(point).replace(/0+$/, "");
  return `${d.negative ? "-" : ""}${int}${frac ? `.${frac}` : ""}`;
}

/** Text for a numeric value from a typed source: the shortest round-trip form of a double, integers exactly. */
export function numericText(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "string") return value.trim();
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "not finite";
  if (typeof value === "bigint") return value.toString();
  return undefined;
}

// Units after a count (`5m`, `1 hour`, `1-HOUR`). Case matters for `M` and `MS` only: `M` is a month
// (Binance, ccxt, pandas) and `m` a minute; `MS` a month (pandas' month start) and `ms` a millisecond.
// Everything else is compared in lower case.
const COUNT_UNIT = /^(\d+)\s*-?\s*([A-Za-z]+)$/;
const UNIT: Record<string, string> = {
  s: "s", sec: "s", secs: "s", second: "s", seconds: "s",
  m: "m", t: "m", min: "m", mins: "m", minute: "m", minutes: "m",
  h: "h", hr: "h", hrs: "h", hour: "h", hours: "h",
  d: "d", day: "d", days: "d",
  w: "w", wk: "w", week: "w", weeks: "w",
  mo: "mo", mon: "mo", month: "mo", months: "mo",
  ms: "ms", msec: "ms", msecs: "ms", millisecond: "ms", milliseconds: "ms",
};

/**
 * Longest timeframe accepted, per unit: 100 years. The count then stays an exact integer (no
 * `9007199254740993m` read back as ...992m) and every timeframe is a PostgreSQL interval that validate can
 * step through (`100000000000h` is not).
 */
export const MAX_TIMEFRAME_COUNT: Readonly<Record<string, number>> = {
  ms: 3_155_760_000_000, s: 3_155_760_000, m: 52_596_000, h: 876_600, d: 36_525, w: 5_217, mo: 1_200,
};

/** A timeframe in the table's spelling split into count and unit, or undefined (unknown unit, out of bounds). */
export function timeframeParts(timeframe: string): { count: number; unit: string } | undefined {
  const m = /^([1-9]\d{0,15})(ms|s|m|h|d|w|mo)$/.exec(timeframe);
  if (!m) return undefined;
  const count = Number(m[1]);
  const unit = m[2] as string;
  return count <= (MAX_TIMEFRAME_COUNT[unit] as number) ? { count, unit } : undefined;
}
// MetaTrader's period names put the unit first: M1, M5, H1, H4, D1, W1, MN1.
const METATRADER = /^(MN|M|H|D|W)(\d+)$/i;
const METATRADER_UNIT: Record<string, string> = { m: "m", h: "h", d: "d", w: "w", mn: "mo" };
// A bare word or letter means one of its unit; a bare `m` (minute or month?) is not in this table.
const NAMED: Record<string, string> = {
  second: "1s", minute: "1m", min: "1m", hour: "1h", hourly: "1h", h: "1h",
  day: "1d", daily: "1d", d: "1d", week: "1w", weekly: "1w", w: "1w", month: "1mo", monthly: "1mo", mo: "1mo",
};

/** The forms normalizeTimeframe accepts, for error messages and --help. */
export const TIMEFRAME_FORMS =
  "N + unit (ms, s, m/min/T, h/hr, d/day, w/wk, mo/month, and M = month: 1M is one month; at most 100 years), " +
  "MetaTrader M5 H1 D1 W1 MN1, or D, W, M, H, day, daily, week, weekly, month, monthly, hour, hourly, minute";

/**
 * A timeframe in the table's spelling (`1m`, `5m`, `1h`, `1d`, `1w`, `1mo`, `1s`), from the spellings in
 * the wild: `1H`, `60min` (stays `60m`), `1day`, `1wk`, `daily`, `D`/`W`/`M`, NautilusTrader's `1-HOUR`,
 * MetaTrader's `M5`/`H1`/`D1`/`MN1`, and `1M` = one MONTH (Binance, ccxt); `100ms` is milliseconds.
 * Undefined when the spelling is unknown or ambiguous (`m`, a bare number) or longer than 100 years.
 */
export function normalizeTimeframe(raw: string): string | undefined {
  const normal = spelledTimeframe(raw);
  return normal !== undefined && timeframeParts(normal) ? normal : undefined;
}

/** Why normalizeTimeframe refuses `raw`, as the end of a sentence starting with the timeframe. */
export function timeframeFault(raw: string): string {
  const m = /^([1-9]\d*)(ms|s|m|h|d|w|mo)$/.exec(spelledTimeframe(raw) ?? "");
  if (m) return `is longer than 100 years; at most ${MAX_TIMEFRAME_COUNT[m[2] as string]}${m[2]}`;
  return `is ambiguous or unknown; use ${TIMEFRAME_FORMS}`;
}

function spelledTimeframe(raw: string): string | undefined {
  const s = raw.trim();
  if (s === "M") return "1mo";
  const named = NAMED[s.toLowerCase()];
  if (named) return named;
  const mt = METATRADER.exec(s);
  if (mt) {
    const n = (mt[2] ?? "").replace(/^0+/, "");
    return n !== "" ? `${n}${METATRADER_UNIT[(mt[1] ?? "").toLowerCase()]}` : undefined;
  }
  const m = COUNT_UNIT.exec(s);
  if (!m) return undefined;
  // Digits as written (leading zeros dropped), never through a double: timeframeParts bounds them.
  const count = (m[1] ?? "").replace(/^0+/, "");
  if (count === "") return undefined;
  const unitText = m[2] ?? "";
  // pandas spells month start `MS` and milliseconds `ms`: case decides, as for `M` and `m`.
  const unit = unitText === "M" || unitText === "MS" ? "mo" : UNIT[unitText.toLowerCase()];
  return unit ? `${count}${unit}` : undefined;
}

const POSITIVE_DIGIT = /[1-9]/;

/**
 * Longest plain decimal (digits and one point) compared as a double: at most 15 significant digits, which a
 * double holds exactly enough (DBL_DIG) that two different such decimals never meet and their order is kept,
 * so the row check compares prices with `<` instead of digit by digit (a tenth of a CSV load's client time).
 */
const EXACT_DOUBLE_CHARS = 15;

/** True when the row is plainly valid (plain decimals, all relations hold); false means "check in full". */
function fastCheck(bar: BarText): boolean {
  const { open, high, low, close } = bar;
  if (open === undefined || high === undefined || low === undefined || close === undefined) return false;
  if (open.length > MAX_FAST_CHARS || high.length > MAX_FAST_CHARS || low.length > MAX_FAST_CHARS || close.length > MAX_FAST_CHARS) return false;
  if ((bar.volume?.length ?? 0) > MAX_FAST_CHARS || (bar.adjClose?.length ?? 0) > MAX_FAST_CHARS) return false;
  if (!(bar.priceValues ? doublesHold(bar.priceValues) : plainTextsHold(open, high, low, close))) return false;
  // low > 0 and low <= open, close <= high: every price is positive.
  if (bar.volume !== undefined && bar.volume !== "" && !plainOrLong(bar.volume, false)) return false;
  if (bar.adjClose !== undefined && bar.adjClose !== "" && !plainOrLong(bar.adjClose, true)) return false;
  return true;
}

/**
 * The prices as the doubles a typed source gave (open, high, low, close): low > 0 and the OHLC relations hold,
 * compared as numbers, which is exact for the shortest texts numericText makes of them. Between 1e-6 and 1e21
 * those texts are plain decimals (no exponent), as the text path requires.
 */
function doublesHold(v: Float64Array): boolean {
  const o = v[0] as number;
  const h = v[1] as number;
  const l = v[2] as number;
  const c = v[3] as number;
  // Written so that a NaN anywhere fails.
  return l >= 1e-6 && l <= o && l <= c && o <= h && c <= h && h < 1e21;
}

/** The prices as plain decimal texts: low > 0 and the OHLC relations hold. */
function plainTextsHold(open: string, high: string, low: string, close: string): boolean {
  const o = shortPlainValue(open);
  const h = shortPlainValue(high);
  const l = shortPlainValue(low);
  const c = shortPlainValue(close);
  // Written so that a NaN (a text longer or other than a short plain decimal) fails.
  if (l > 0 && l <= o && l <= c && o <= h && c <= h) return true;
  if (!Number.isNaN(o) && !Number.isNaN(h) && !Number.isNaN(l) && !Number.isNaN(c)) return false;
  // Longer plain decimals, compared digit by digit.
  if (!POSITIVE_DIGIT.test(low)) return false;
  if (!PLAIN.test(open) || !PLAIN.test(high) || !PLAIN.test(low) || !PLAIN.test(close)) return false;
  return (comparePlain(high, open) as number) >= 0 && (comparePlain(high, close) as number) >= 0 && (comparePlain(low, open) as number) <= 0 && (comparePlain(low, close) as number) <= 0;
}

/** 10^k, each exact (made by multiplying, never by pow()). */
const POWERS_OF_TEN: number[] = [1];
while (POWERS_OF_TEN.length < EXACT_DOUBLE_CHARS) POWERS_OF_TEN.push((POWERS_OF_TEN.at(-1) as number) * 10);

/**
 * The value of a plain decimal (PLAIN: digits, maybe one point between digits) of at most EXACT_DOUBLE_CHARS
 * characters, NaN for any other text. Read in one pass, without a regular expression; the digits make an
 * integer below 10^15 and one division by an exact power of ten rounds once, so the value is Number(text)'s.
 */
export function shortPlainValue(text: string): number {
  const n = text.length;
  if (n === 0 || n > EXACT_DOUBLE_CHARS) return Number.NaN;
  let digits = 0;
  let point = -1;
  for (let i = 0; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch >= 48 && ch <= 57) digits = digits * 10 + (ch - 48);
    else if (ch === 46 && point < 0 && i > 0 && i < n - 1) point = i;
    else return Number.NaN;
  }
  return point < 0 ? digits : digits / (POWERS_OF_TEN[n - 1 - point] as number);
}

/** A volume or adj_close text the fast check lets by: a plain decimal (adj_close also positive). */
function plainOrLong(text: string, positive: boolean): boolean {
  const v = shortPlainValue(text);
  if (!Number.isNaN(v)) return positive ? v > 0 : true;
  return PLAIN.test(text) && (!positive || POSITIVE_DIGIT.test(text));
}

/** One row in table terms, every value as text, ready to check and to write to COPY. */
export interface BarText {
  symbol: string;
  exchange: string;
  provider: string;
  timeframe: string;
  time: unknown;
  /** The time already parsed (a date and a time of day from two columns); `time` is then not read. */
  parsedTime?: TimestampResult;
  /**
   * Open, high, low and close as the doubles a typed source (Parquet, SQLite, Arrow) gave, when it gave all four
   * as doubles: the texts below are their shortest forms, and the row check compares these instead.
   */
  priceValues?: Float64Array;
  open: string | undefined;
  high: string | undefined;
  low: string | undefined;
  close: string | undefined;
  volume: string | undefined;
  adjClose: string | undefined;
}

/**
 * A checked row: the epoch microseconds of its time (and, for a bar kept under the `flag` or `keep` rule, why its
 * OHLC are inconsistent), or the reason it is rejected.
 */
export type RowCheck = { ok: true; micros: number; inconsistent?: string } | { ok: false; reason: string };

/**
 * What becomes of a bar whose high is below its open or close, or whose low is above them (2.2% of yfinance FX
 * bars; auto-adjusted equities one ulp off): rejected (default), kept and listed (`flag`), or kept (`keep`).
 */
export const INCONSISTENT_OHLC_RULES = ["reject", "flag", "keep"] as const;
export type InconsistentOhlcRule = (typeof INCONSISTENT_OHLC_RULES)[number];

/** Text for a reason, cut short. */
function cut(text: string | undefined): string {
  return text !== undefined && text.length > 60 ? `${text.slice(0, 60)}...` : String(text);
}

/** The decimal, or why it is not a finite number within the stated digit limits. */
/** Most digits after the decimal point a numeric value may show (PostgreSQL's NUMERIC_DSCALE_MAX). */
export const NUMERIC_MAX_SCALE = 16383;

/** The value columns a row check compares against the target's column types. */
export type ValueColumn = "open" | "high" | "low" | "close" | "volume" | "adj_close";

/**
 * A target column's type, when it is not the contract's unconstrained `numeric`: `numeric(p,s)`, an integer
 * type with its bounds, or `real` (`double precision` takes every value the checks accept).
 */
export type ColumnType =
  | { kind: "numeric"; precision: number; scale: number; name: string }
  | { kind: "integer"; min: bigint; max: bigint; name: string }
  | { kind: "real"; name: string };

/** Column types of a target whose value columns differ from unconstrained numeric; see targetTypes in target.ts. */
export type ValueTypes = Partial<Record<ValueColumn, ColumnType>>;

/** Digits after the decimal point as PostgreSQL keeps them (trailing zeros count; `1.50e1` has 1): numeric's display scale. */
export function writtenScale(text: string): number {
  const m = DECIMAL.exec(text);
  return m ? Math.max(0, (m[3] ?? "").length - Number(m[4] ?? 0)) : 0;
}

/** `digits` (no sign, no point) plus one. */
function increment(digits: string): string {
  let i = digits.length - 1;
  while (i >= 0 && digits[i] === "9") i--;
  return i < 0 ? `1${"0".repeat(digits.length)}` : `${digits.slice(0, i)}${String(Number(digits[i]) + 1)}${"0".repeat(digits.length - i - 1)}`;
}

/**
 * Whether `d` fits numeric(precision, scale) as PostgreSQL stores it: rounded half away from zero to `scale`
 * digits after the point (a negative scale rounds left of it), at most `precision` significant digits remain.
 */
export function fitsNumeric(d: Decimal, precision: number, scale: number): boolean {
  const all = d.int + d.frac;
  const keep = d.int.length + scale;
  let kept: string;
  let next = 0;
  if (keep < 0) kept = "";
  else if (keep >= all.length) kept = all + "0".repeat(keep - all.length);
  else {
    kept = all.slice(0, keep);
    next = all.charCodeAt(keep) - 48;
  }
  kept = kept.replace(/^0+/, "");
  if (next >= 5) kept = increment(kept === "" ? "0" : kept).replace(/^0+/, "");
  return kept.length <= precision;
}

/** Why `text` (a finite decimal `d`) does not fit the target column, or undefined. */
function typeFault(name: string, text: string, d: Decimal, type: ColumnType | undefined): string | undefined {
  if (type === undefined) {
    const scale = writtenScale(text);
    return scale > NUMERIC_MAX_SCALE ? `${name} has ${scale} digits after the decimal point as written; numeric keeps at most ${NUMERIC_MAX_SCALE}` : undefined;
  }
  if (type.kind === "numeric") {
    return fitsNumeric(d, type.precision, type.scale) ? undefined : `${name} ${cut(text)} does not fit the target column's type ${type.name}`;
  }
  if (type.kind === "integer") {
    // PostgreSQL's integer input takes digits only: `1000.0` is refused as well.
    if (!/^\s*[+-]?\d+\s*$/.test(text)) return `${name} ${cut(text)} is not a whole number, which the target column's type ${type.name} needs`;
    const v = BigInt(text.trim());
    return v < type.min || v > type.max ? `${name} ${cut(text)} is out of range for the target column's type ${type.name}` : undefined;
  }
  return Math.abs(Number(text)) > 3.4028234663852886e38 ? `${name} ${cut(text)} is out of range for the target column's type ${type.name}` : undefined;
}

/** The decimal, or why it is not a finite number within the stated digit limits and the target column's type. */
function decimal(name: ValueColumn, text: string, types: ValueTypes | undefined): Decimal | string {
  const d = parseDecimal(text);
  if (!d) return `${name} ${shown(text)} is not a finite number`;
  if (d.int.length > MAX_INT_DIGITS) return `${name} has ${d.int.length} digits before the decimal point; at most ${MAX_INT_DIGITS}`;
  if (d.frac.length > MAX_FRAC_DIGITS) return `${name} has ${d.frac.length} digits after the decimal point; at most ${MAX_FRAC_DIGITS}`;
  return typeFault(name, text, d, types?.[name]) ?? d;
}

function price(name: ValueColumn, text: string | undefined, types: ValueTypes | undefined): Decimal | string {
  if (text === undefined || text === "") return `${name} is missing`;
  const d = decimal(name, text, types);
  if (typeof d === "string") return d;
  if (d.negative || isZero(d)) return `${name} ${cut(text)} is not positive`;
  return d;
}

/** Why a symbol, exchange or provider cannot be stored, or undefined. */
function keyTextFault(name: string, text: string): string | undefined {
  if (text.length > MAX_KEY_TEXT) return `${name} is ${text.length} characters long; at most ${MAX_KEY_TEXT}`;
  // One test for every character a terminal would act on or hide (printable.ts); the reason is worked out
  // only for a row that fails it.
  if (!REFUSED_IN_KEYS.test(text)) return undefined;
  if (text.includes("\u0000")) return `${name} contains a NUL byte`;
  // What a reader makes of bytes that are not UTF-8 (or what an earlier conversion left): never a real value.
  if (text.includes("\uFFFD")) return `${name} ${printable(shown(text))} is not valid UTF-8 (holds U+FFFD, the replacement character)`;
  return `${name} ${printable(shown(text))} holds ${firstUnprintable(text)}, a control, bidi or invisible character; keys must print as themselves`;
}

/**
 * Checks a row: symbol and timeframe present, timestamp parses, prices finite and positive,
 * high >= max(open, close), low <= min(open, close), volume >= 0, adj_close (when given) finite and positive;
 * each value fits its target column: `types` when the target's columns are not unconstrained numeric (every
 * row then takes the full check), else numeric's own limit on digits after the point, which only text longer
 * than the fast check's 40 characters can reach. Zone-less times are wall-clock times of `local` when given
 * (--timezone). Inconsistent OHLC follow `ohlc`.
 */
export function checkBar(bar: BarText, types?: ValueTypes, local?: ZoneOfLocalTimes, ohlc: InconsistentOhlcRule = "reject"): RowCheck {
  if (bar.symbol === "") return { ok: false, reason: "symbol is missing" };
  if (bar.timeframe === "") return { ok: false, reason: "timeframe is missing" };
  const text = keyTextFault("symbol", bar.symbol) ?? keyTextFault("exchange", bar.exchange) ?? keyTextFault("provider", bar.provider);
  if (text) return { ok: false, reason: text };
  const t = bar.parsedTime ?? parseTimestamp(bar.time, local);
  if (!t.ok) return t;
  const fast = types === undefined && fastCheck(bar);
  if (fast) return { ok: true, micros: t.micros };
  const open = price("open", bar.open, types);
  if (typeof open === "string") return { ok: false, reason: open };
  const high = price("high", bar.high, types);
  if (typeof high === "string") return { ok: false, reason: high };
  const low = price("low", bar.low, types);
  if (typeof low === "string") return { ok: false, reason: low };
  const close = price("close", bar.close, types);
  if (typeof close === "string") return { ok: false, reason: close };
  let inconsistent: string | undefined;
  if (compareDecimal(high, open) < 0 || compareDecimal(high, close) < 0) {
    inconsistent = `high ${cut(bar.high)} is below max(open ${cut(bar.open)}, close ${cut(bar.close)})`;
  } else if (compareDecimal(low, open) > 0 || compareDecimal(low, close) > 0) {
    inconsistent = `low ${cut(bar.low)} is above min(open ${cut(bar.open)}, close ${cut(bar.close)})`;
  }
  if (inconsistent !== undefined && ohlc === "reject") return { ok: false, reason: inconsistent };
  if (bar.volume !== undefined && bar.volume !== "") {
    const v = decimal("volume", bar.volume, types);
    if (typeof v === "string") return { ok: false, reason: v };
    if (v.negative) return { ok: false, reason: `volume ${cut(bar.volume)} is negative` };
  }
  if (bar.adjClose !== undefined && bar.adjClose !== "") {
    const adj = price("adj_close", bar.adjClose, types);
    if (typeof adj === "string") return { ok: false, reason: adj };
  }
  return inconsistent === undefined ? { ok: true, micros: t.micros } : { ok: true, micros: t.micros, inconsistent };
}
