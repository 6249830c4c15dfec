/**
 * Timestamp forms accepted by the loader, turned into integer microseconds since the Unix epoch (UTC), the
 * resolution of PostgreSQL's timestamptz. docs/LOADING.md ("Timestamps") states the same rules for users.
 *
 * - ISO-8601 date-times with a zone (`Z`, `+02:00`, `+0200`, `+02`) are taken as written; the offset must be a
 *   real one (at most 14:00 either way, minutes below 60).
 * - ISO-8601 date-times WITHOUT a zone mean UTC, or wall-clock time in the load's time zone when one is given
 *   (`--timezone`, a LocalZone: DST gaps are reasons, repeated times follow the user's rule); never the
 *   machine's zone, so a load is reproducible. Plain dates (`2024-01-02`) stay dates: midnight UTC, whatever
 *   the time zone, as a daily bar's date is the same day everywhere.
 * - Other exporters' forms: `2024.01.02 09:05` (MetaTrader), `01/02/2024` (month/day/year), `02.01.2024`
 *   (day.month.year, Dukascopy with an optional ` GMT+0100`), `20131001 09:30` (QuantConnect Lean).
 * - 8-digit numbers are YYYYMMDD dates and 14-digit numbers YYYYMMDDHHMMSS (as epochs they would be 1970-73
 *   seconds or post-2286 milliseconds). Positive numbers below 1e7 (as seconds: January to April 1970) are
 *   Julian days (SQLite's julianday(), 2378496.5..2524593.5) or Excel serial dates (1..109574), otherwise a
 *   reason. Other numbers (or numeric text) are epoch values whose unit is
 *   detected by magnitude: |n| < 1e11 seconds (fractions allowed), < 1e14 milliseconds, < 1e17 microseconds,
 *   otherwise nanoseconds (NautilusTrader's `ts_event`). Nanoseconds are truncated to microseconds.
 * - Years run from 1800 to 2199; anything else is a reason, never a guess.
 * - combineDateTime joins a date column and a time-of-day column (backtrader, MetaTrader, Kibot, Stooq).
 */

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$/;
// Other exporters' date-times, tried only when ISO does not match (off the hot path): `2024.01.02 09:05`
// (MetaTrader), `2024/01/02`, `01/02/2024 09:30` (month/day/year: Kibot, FXCM), `01.01.2024 00:00:00.000`
// (day.month.year: Dukascopy, optionally ` GMT+0100`).
const YEAR_FIRST = /^(\d{4})[./](\d{2})[./](\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|UTC|GMT|(?:GMT|UTC)?[+-]\d{2}(?::?\d{2})?)?$/i;
const YEAR_LAST = /^(\d{1,2})([./])(\d{1,2})[./](\d{4})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|UTC|GMT|(?:GMT|UTC)?[+-]\d{2}(?::?\d{2})?)?$/i;
const NUMERIC = /^[+-]?\d+(\.\d+)?$/;
const COMPACT_DATE = /^(\d{4})(\d{2})(\d{2})$/;
// QuantConnect Lean's daily and hour bars: `20131001 00:00` (YYYYMMDD HH:MM[:SS]).
const COMPACT_DATE_CLOCK = /^(\d{4})(\d{2})(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/;
const COMPACT_DATE_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

/** Wall-clock time of a zone -> UTC (timeZone.ts); undefined means zone-less times are UTC. */
export interface ZoneOfLocalTimes {
  toUtc(localMs: number): { ok: true; ms: number } | { ok: false; reason: string };
}

/** Why a value is not a timestamp, or its epoch microseconds. */
export type TimestampResult = { ok: true; micros: number } | { ok: false; reason: string };

const MIN_YEAR = 1800;
const MAX_YEAR = 2200;
const MIN_MICROS = Date.UTC(MIN_YEAR, 0, 1) * 1000;
const MAX_MICROS = Date.UTC(MAX_YEAR, 0, 1) * 1000;
/** Real UTC offsets run from -12:00 to +14:00; anything beyond is a typo, not a zone. */
const MAX_OFFSET_MINUTES = 14 * 60;

/** A value for a reason: JSON text, cut short so a 10 MB field does not become a 10 MB reason. */
export function shown(v: unknown): string {
  const s = typeof v === "string" ? JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v) : String(v);
  return s;
}

function bounded(micros: number, raw: unknown): TimestampResult {
  if (!Number.isFinite(micros) || micros < MIN_MICROS || micros >= MAX_MICROS) {
    return { ok: false, reason: `timestamp ${typeof raw === "string" ? shown(raw) : String(raw)} is outside 1800-01-01..2200-01-01` };
  }
  return { ok: true, micros };
}

/** `YYYYMMDD` (or `YYYYMMDDHHMMSS`) digits as a UTC date-time, or a reason naming the rule. */
function fromCompact(digits: string, raw: unknown, local: ZoneOfLocalTimes | undefined): TimestampResult {
  const m = COMPACT_DATE.exec(digits) ?? COMPACT_DATE_TIME.exec(digits);
  if (!m) return { ok: false, reason: `timestamp ${shown(raw)} is not a date` };
  const [, y = "", mo = "", d = "", h = "0", mi = "0", sec = "0"] = m;
  const r = fromFields(raw, y, mo, d, h, mi, sec, "", undefined, m[4] === undefined ? undefined : local);
  return r.ok ? r : { ok: false, reason: `timestamp ${String(raw)}: ${digits.length}-digit numbers are read as ${digits.length === 8 ? "YYYYMMDD" : "YYYYMMDDHHMMSS"} and this is not a calendar date` };
}

/** Julian days of 1800-01-01 and 2200-01-01 (SQLite's julianday()), and Julian day of the Unix epoch. */
const JULIAN_MIN = 2_378_496.5;
const JULIAN_MAX = 2_524_593.5;
const JULIAN_EPOCH = 2_440_587.5;
/** Excel's serial date of 2200-01-01 (1900 date system). */
const EXCEL_MAX = 109_575;
/** Below this, a positive number as epoch seconds would be January to April 1970: never a bar's time. */
const DAY_NUMBERS_BELOW = 10_000_000;

/**
 * A positive number too small for epoch seconds of market data: a Julian day (SQLite's julianday(), REAL) or an
 * Excel serial date (days since 1899-12-30, the fraction the time of day); both rounded to the millisecond,
 * their resolution. Anything else below 1e7 is a reason, not January 1970.
 */
function fromDayNumber(n: number, raw: unknown): TimestampResult {
  const ms = (days: number) => Math.round(days * 86_400_000);
  if (n >= JULIAN_MIN && n < JULIAN_MAX) return bounded(ms(n - JULIAN_EPOCH) * 1000, raw);
  // Serial 60 is Excel's 1900-02-29, which never was: serials below it count from 1899-12-31.
  if (n >= 1 && n < EXCEL_MAX) return bounded((ms(n < 60 ? n - 1 : n - 2) + Date.UTC(1900, 0, 1)) * 1000, raw);
  return {
    ok: false,
    reason: `timestamp ${shown(raw)} is too small for epoch seconds (it would be early 1970) and is neither an Excel serial date (1..${EXCEL_MAX - 1}) nor a Julian day (${JULIAN_MIN}..${JULIAN_MAX})`,
  };
}

function fromEpochBigInt(n: bigint, raw: unknown, local?: ZoneOfLocalTimes): TimestampResult {
  const abs = n < 0n ? -n : n;
  if (n >= 0n && n < BigInt(DAY_NUMBERS_BELOW)) return fromDayNumber(Number(n), raw);
  // 8 digits: a YYYYMMDD date (Stooq, many brokers), never epoch seconds of 1970-1973.
  if (abs >= 10_000_000n && abs < 100_000_000n && n > 0n) return fromCompact(n.toString(), raw, undefined);
  // 14 digits: YYYYMMDDHHMMSS (as epoch milliseconds it would be after 2286, out of range anyway).
  if (abs >= 10_000_000_000_000n && abs < 100_000_000_000_000n && n > 0n) return fromCompact(n.toString(), raw, local);
  let micros: bigint;
  if (abs < 100_000_000_000n) micros = n * 1_000_000n;
  else if (abs < 100_000_000_000_000n) micros = n * 1000n;
  else if (abs < 100_000_000_000_000_000n) micros = n;
  else micros = n / 1000n;
  return bounded(Number(micros), raw);
}

function fromEpochNumber(n: number, raw: unknown, local?: ZoneOfLocalTimes): TimestampResult {
  if (!Number.isFinite(n)) return { ok: false, reason: `timestamp ${String(raw)} is not a finite number` };
  if (Number.isInteger(n)) return fromEpochBigInt(BigInt(n), raw, local);
  if (n > 0 && n < DAY_NUMBERS_BELOW) return fromDayNumber(n, raw);
  const abs = Math.abs(n);
  const scale = abs < 1e11 ? 1e6 : abs < 1e14 ? 1e3 : abs < 1e17 ? 1 : 1e-3;
  return bounded(Math.round(n * scale), raw);
}

function offsetOf(zone: string | undefined, raw: unknown): number | string {
  if (!zone) return 0;
  const z = zone.toUpperCase().replace(/^(GMT|UTC)(?=[+-])/, "");
  if (z === "Z" || z === "UTC" || z === "GMT") return 0;
  const sign = z.startsWith("-") ? -1 : 1;
  const digits = z.slice(1).replace(":", "");
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2, 4) || "0");
  if (minutes > 59 || hours * 60 + minutes > MAX_OFFSET_MINUTES) {
    return `timestamp ${shown(raw)} has offset ${z}, which is not a UTC offset (-14:00..+14:00, minutes below 60)`;
  }
  return sign * (hours * 60 + minutes);
}

/** `local`: the zone of a zone-less date-time (not given for plain dates, which stay dates). */
function fromFields(
  raw: unknown, y: string, mo: string, d: string, h: string, mi: string, sec: string, frac: string, zone: string | undefined,
  local?: ZoneOfLocalTimes,
): TimestampResult {
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(sec);
  // Checked before Date.UTC, which reads years 0..99 as 1900..1999.
  if (year < MIN_YEAR || year >= MAX_YEAR) return { ok: false, reason: `timestamp ${shown(raw)} is outside 1800-01-01..2200-01-01` };
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return { ok: false, reason: `timestamp ${shown(raw)} has a field out of range` };
  }
  let ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 2024-02-30 over to March: reject instead of silently moving the bar.
  if (new Date(ms).getUTCDate() !== day) return { ok: false, reason: `timestamp ${shown(raw)} is not a calendar date` };
  if (!zone && local) {
    const utc = local.toUtc(ms);
    if (!utc.ok) return { ok: false, reason: `timestamp ${shown(raw)}: ${utc.reason}` };
    ms = utc.ms;
  }
  const offset = offsetOf(zone, raw);
  if (typeof offset === "string") return { ok: false, reason: offset };
  const micros = (ms - offset * 60_000) * 1000 + Number(frac.padEnd(6, "0").slice(0, 6));
  return bounded(micros, raw);
}

function fromOtherForms(s: string, raw: unknown, local: ZoneOfLocalTimes | undefined): TimestampResult {
  const lean = COMPACT_DATE_CLOCK.exec(s);
  if (lean) {
    const [, y = "", mo = "", d = "", h = "0", mi = "0", sec = "0"] = lean;
    return fromFields(raw, y, mo, d, h, mi, sec, "", undefined, local);
  }
  const a = YEAR_FIRST.exec(s);
  if (a) {
    const [, y = "", mo = "", d = "", h = "0", mi = "0", sec = "0", frac = "", zone] = a;
    return fromFields(raw, y, mo, d, h, mi, sec, frac, zone, a[4] === undefined ? undefined : local);
  }
  const b = YEAR_LAST.exec(s);
  if (b) {
    const [, first = "", sep, second = "", y = "", h = "0", mi = "0", sec = "0", frac = "", zone] = b;
    // `/` is month/day/year (US exporters), `.` is day.month.year (European exporters).
    const [mo, d] = sep === "/" ? [first, second] : [second, first];
    const r = fromFields(raw, y, mo, d, h, mi, sec, frac, zone, b[5] === undefined ? undefined : local);
    if (!r.ok && /field out of range|calendar/.test(r.reason)) {
      return { ok: false, reason: `${r.reason} (dates with / are read as month/day/year, with . as day.month.year)` };
    }
    return r;
  }
  return { ok: false, reason: `timestamp ${shown(s)} is not ISO-8601, a date or an epoch number` };
}

// The last date fastIso parsed and its epoch microseconds at 00:00 UTC: bars come in time order, so the
// calendar checks run once per day instead of once per bar.
let fastDate = "";
let fastDayMicros = 0;

/** The digit at `i`, or -1. */
function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1;
}

/**
 * Microseconds of the commonest form, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` with an optional `Z`, or
 * undefined for anything else (then the general rules below decide, with their reasons).
 */
function fastIso(s: string): number | undefined {
  const n = s.length;
  if (n !== 19 && !(n === 20 && s.charCodeAt(19) === 90 /* Z */)) return undefined;
  if (s[4] !== "-" || s[7] !== "-" || (s[10] !== "T" && s[10] !== " ") || s[13] !== ":" || s[16] !== ":") return undefined;
  const h1 = digit(s, 11), h2 = digit(s, 12), m1 = digit(s, 14), m2 = digit(s, 15), s1 = digit(s, 17), s2 = digit(s, 18);
  if (h1 < 0 || h2 < 0 || m1 < 0 || m2 < 0 || s1 < 0 || s2 < 0) return undefined;
  const h = h1 * 10 + h2, m = m1 * 10 + m2, sec = s1 * 10 + s2;
  if (h > 23 || m > 59 || sec > 59) return undefined;
  const date = s.slice(0, 10);
  if (date !== fastDate) {
    const day = ISO.exec(date);
    if (!day) return undefined;
    const r = fromFields(date, day[1] ?? "", day[2] ?? "", day[3] ?? "", "0", "0", "0", "", undefined);
    if (!r.ok) return undefined;
    fastDate = date;
    fastDayMicros = r.micros;
  }
  return fastDayMicros + ((h * 60 + m) * 60 + sec) * 1_000_000;
}

function fromText(text: string, raw: unknown, local: ZoneOfLocalTimes | undefined): TimestampResult {
  const s = text.trim();
  if (s === "") return { ok: false, reason: "timestamp is empty" };
  const fast = fastIso(s);
  if (fast !== undefined) {
    // 19 characters: no `Z`, a wall-clock time.
    if (!local || s.length !== 19) return { ok: true, micros: fast };
    const utc = local.toUtc(fast / 1000);
    return utc.ok ? bounded(utc.ms * 1000, raw) : { ok: false, reason: `timestamp ${shown(raw)}: ${utc.reason}` };
  }
  if (NUMERIC.test(s)) {
    return s.includes(".") ? fromEpochNumber(Number(s), raw, local) : fromEpochBigInt(BigInt(s), raw, local);
  }
  const m = ISO.exec(s);
  if (!m) return fromOtherForms(s, raw, local);
  const [, y = "", mo = "", d = "", h = "0", mi = "0", sec = "0", frac = "", zone] = m;
  return fromFields(raw, y, mo, d, h, mi, sec, frac, zone, m[4] === undefined ? undefined : local);
}

const CLOCK = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?$/;
// An integer time of day: HHMM up to four digits (`0` is 00:00, `59` 00:59, `930` 09:30), HHMMSS with five or six.
const CLOCK_DIGITS = /^\d{1,6}$/;

/** True when `value` reads as a time of day (`09:05`, `09:05:00.250`, `0905`, `5`, `093000`), not a full timestamp. */
export function isTimeOfDay(value: unknown): boolean {
  if (typeof value === "bigint" || typeof value === "number") return Number(value) >= 0 && Number(value) < 240000 && Number.isInteger(Number(value));
  if (typeof value !== "string") return false;
  const s = value.trim();
  return CLOCK.test(s) || CLOCK_DIGITS.test(s);
}

/**
 * A date and a separate time of day (backtrader, MetaTrader, Kibot, Stooq: `Date,Time,...`) as one
 * timestamp. The date takes any form parseTimestamp reads as a date (`2024-01-02`, `2024.01.02`,
 * `01/02/2024`, `20240102`); the time `HH:MM[:SS[.fff]]` or digits `HHMM` / `HHMMSS` (Stooq writes `093000`).
 */
export function combineDateTime(date: unknown, time: unknown, local?: ZoneOfLocalTimes): TimestampResult {
  const d = typeof date === "string" ? date.trim() : typeof date === "bigint" || typeof date === "number" ? String(date) : undefined;
  if (d === undefined || d === "") return { ok: false, reason: "date is missing" };
  let t = typeof time === "string" ? time.trim() : typeof time === "bigint" || typeof time === "number" ? String(time) : "";
  if (CLOCK_DIGITS.test(t)) {
    t = t.padStart(t.length <= 4 ? 4 : 6, "0");
    t = t.length === 4 ? `${t.slice(0, 2)}:${t.slice(2)}` : `${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4)}`;
  }
  const clock = CLOCK.exec(t);
  const datePart = COMPACT_DATE.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d;
  if (!clock || Number(clock[1]) > 23) return { ok: false, reason: `date ${shown(date)} with time ${shown(time)}: the time is not a time of day HH:MM[:SS], HHMM or HHMMSS` };
  const hh = (clock[1] ?? "").padStart(2, "0");
  const r = fromText(`${datePart} ${hh}:${clock[2]}:${clock[3] ?? "00"}${clock[4] ? `.${clock[4]}` : ""}`, `${d} ${t}`, local);
  return r;
}

/**
 * Parses one timestamp value from any source (text, number, bigint, Date) into epoch microseconds; zone-less
 * date-times are wall-clock times of `local` when given. Epoch numbers and Dates are instants already.
 */
export function parseTimestamp(value: unknown, local?: ZoneOfLocalTimes): TimestampResult {
  if (value === null || value === undefined) return { ok: false, reason: "timestamp is missing" };
  if (typeof value === "string") return fromText(value, value, local);
  if (typeof value === "bigint") return fromEpochBigInt(value, value, local);
  if (typeof value === "number") return fromEpochNumber(value, value, local);
  if (value instanceof Date) return bounded(value.getTime() * 1000, value.toISOString());
  return { ok: false, reason: `timestamp has unsupported type ${typeof value}` };
}

const DAY_MS = 86_400_000;
const PAD2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, "0"));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"));
// `YYYY-MM-DD ` of the last day formatted: bars come in time order, so nearly every call reuses it.
let lastDay = NaN;
let lastDatePrefix = "";
// `HH:MM:SS` of each second of the day, formatted when first used (1,440 strings for minute bars).
const SECONDS_OF_DAY: Array<string | undefined> = new Array<string | undefined>(86_400);

function secondOfDay(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s - h * 3600) / 60);
  return `${PAD2[h]}:${PAD2[m]}:${PAD2[s - h * 3600 - m * 60]}`;
}

/**
 * Epoch microseconds as a UTC timestamptz literal PostgreSQL reads regardless of the session's TimeZone:
 * `YYYY-MM-DD HH:MM:SS+00`, with `.ffffff` when the second has a fraction. Called for every row, so the date is formatted once per day and the time
 * of day once per second of the day: a whole second is two concatenations, where a Date and its ISO string
 * per row were a tenth of a load's CPU and a string of eight parts a row much of its garbage.
 */
export function microsToSql(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const day = Math.floor(ms / DAY_MS);
  if (day !== lastDay) {
    // toISOString is exact for the years parseTimestamp allows (1800..2199).
    lastDatePrefix = `${new Date(day * DAY_MS).toISOString().slice(0, 10)} `;
    lastDay = day;
  }
  const second = Math.floor((ms - day * DAY_MS) / 1000);
  const hms = (SECONDS_OF_DAY[second] ??= secondOfDay(second));
  const fraction = micros - (day * DAY_MS + second * 1000) * 1000;
  // Whole seconds (nearly every bar) without a fraction: 7 bytes less a row for the server to read and parse.
  if (fraction === 0) return lastDatePrefix + hms + "+00";
  const milli = Math.floor(fraction / 1000);
  return `${lastDatePrefix}${hms}.${PAD3[milli]}${PAD3[fraction - milli * 1000]}+00`;
}
