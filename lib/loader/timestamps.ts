/**
 * Timestamp forms accepted by the loader, turned into integer microseconds since the Unix epoch (UTC), the
 * resolution of PostgreSQL's timestamptz.
 *
 * - ISO-8601 date-times with a zone (`Z`, `+02:00`, `+0200`, `+02`) are taken as written.
 * - ISO-8601 date-times WITHOUT a zone and plain dates (`2024-01-02`) mean UTC: market data vendors export
 *   UTC or exchange-local dates, and a load that depended on the machine's zone would not be reproducible.
 * - Numbers (or numeric text) are epoch values whose unit is detected by magnitude:
 *   |n| < 1e11 seconds (fractions allowed), < 1e14 milliseconds, < 1e17 microseconds, otherwise nanoseconds
 *   (NautilusTrader's `ts_event`). Nanoseconds are truncated to microseconds.
 */

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$/;
const NUMERIC = /^[+-]?\d+(\.\d+)?$/;

/** Why a value is not a timestamp, or its epoch microseconds. */
export type TimestampResult = { ok: true; micros: number } | { ok: false; reason: string };

const MIN_MICROS = Date.UTC(1800, 0, 1) * 1000;
const MAX_MICROS = Date.UTC(2200, 0, 1) * 1000;

function bounded(micros: number, raw: unknown): TimestampResult {
  if (!Number.isFinite(micros) || micros < MIN_MICROS || micros >= MAX_MICROS) {
    return { ok: false, reason: `timestamp ${String(raw)} is outside 1800-01-01..2200-01-01` };
  }
  return { ok: true, micros };
}

function fromEpochBigInt(n: bigint, raw: unknown): TimestampResult {
  const abs = n < 0n ? -n : n;
  let micros: bigint;
  if (abs < 100_000_000_000n) micros = n * 1_000_000n;
  else if (abs < 100_000_000_000_000n) micros = n * 1000n;
  else if (abs < 100_000_000_000_000_000n) micros = n;
  else micros = n / 1000n;
  return bounded(Number(micros), raw);
}

function fromEpochNumber(n: number, raw: unknown): TimestampResult {
  if (!Number.isFinite(n)) return { ok: false, reason: `timestamp ${String(raw)} is not a finite number` };
  if (Number.isInteger(n)) return fromEpochBigInt(BigInt(n), raw);
  const abs = Math.abs(n);
  const scale = abs < 1e11 ? 1e6 : abs < 1e14 ? 1e3 : abs < 1e17 ? 1 : 1e-3;
  return bounded(Math.round(n * scale), raw);
}

function fromText(text: string, raw: unknown): TimestampResult {
  const s = text.trim();
  if (s === "") return { ok: false, reason: "timestamp is empty" };
  if (NUMERIC.test(s)) {
    return s.includes(".") ? fromEpochNumber(Number(s), raw) : fromEpochBigInt(BigInt(s), raw);
  }
  const m = ISO.exec(s);
  if (!m) return { ok: false, reason: `timestamp ${JSON.stringify(s)} is not ISO-8601, a date or an epoch number` };
  const [, y, mo, d, h = "0", mi = "0", sec = "0", frac = "", zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(sec);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return { ok: false, reason: `timestamp ${JSON.stringify(s)} has a field out of range` };
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 2024-02-30 over to March: reject instead of silently moving the bar.
  if (new Date(ms).getUTCDate() !== day) return { ok: false, reason: `timestamp ${JSON.stringify(s)} is not a calendar date` };
  let offsetMinutes = 0;
  if (zone && zone !== "Z" && zone !== "z" && zone !== "UTC") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || "0"));
  }
  const micros = (ms - offsetMinutes * 60_000) * 1000 + Number(frac.padEnd(6, "0").slice(0, 6));
  return bounded(micros, raw);
}

/** Parses one timestamp value from any source (text, number, bigint, Date) into epoch microseconds. */
export function parseTimestamp(value: unknown): TimestampResult {
  if (value === null || value === undefined) return { ok: false, reason: "timestamp is missing" };
  if (typeof value === "string") return fromText(value, value);
  if (typeof value === "bigint") return fromEpochBigInt(value, value);
  if (typeof value === "number") return fromEpochNumber(value, value);
  if (value instanceof Date) return bounded(value.getTime() * 1000, value.toISOString());
  return { ok: false, reason: `timestamp has unsupported type ${typeof value}` };
}

/** Epoch microseconds as a UTC timestamptz literal PostgreSQL reads regardless of the session's TimeZone. */
export function microsToSql(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const us = micros - ms * 1000;
  // toISOString is native and fast; years are bounded to 1800..2199 by parseTimestamp.
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${us < 10 ? "00" : us < 100 ? "0" : ""}${us}+00`;
}
