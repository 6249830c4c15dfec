/**
 * Text from data files shown on a terminal. A symbol holding ESC, CR or a bidi override (U+202E) would move
 * the cursor, overwrite the line or reorder what follows, so one series could show as another (issue 23.17):
 * the loader rejects such keys, and everything that prints stored or read text escapes them (keys loaded
 * before the check, file names, raw values in reasons).
 */

/**
 * Characters that change how a terminal shows the text around them, or show as nothing: C0 and C1 controls
 * (ESC, CR, NUL, ...), DEL, the soft hyphen, bidi marks, embeddings, overrides and isolates, zero-width
 * characters, the line and paragraph separators, the byte order mark and the interlinear annotation
 * characters. One class without the `u` flag: one cheap test.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const UNPRINTABLE = /[\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFEFF\uFFF9-\uFFFC]/;
const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, "g");

/**
 * What a symbol, exchange or provider may not hold: UNPRINTABLE, and U+FFFD (what a reader makes of bytes that
 * are not UTF-8; it prints as itself). One test per key of a row.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const REFUSED_IN_KEYS = /[\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFEFF\uFFF9-\uFFFD]/;

/** `U+202E`: the code point of the first character of `s` that UNPRINTABLE matches, or undefined. */
export function firstUnprintable(s: string): string | undefined {
  const m = UNPRINTABLE.exec(s);
  return m ? `U+${(m[0].charCodeAt(0)).toString(16).toUpperCase().padStart(4, "0")}` : undefined;
}

const escaped = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * `s` safe to print: each UNPRINTABLE character as `\u001b` (JSON's spelling); text without one is returned as
 * it is. Idempotent, so text escaped where it was made (a reject reason) is not escaped twice where it is
 * printed.
 */
export function printable(s: string): string {
  return UNPRINTABLE.test(s) ? s.replace(UNPRINTABLE_ALL, escaped) : s;
}

/**
 * JSON text with every UNPRINTABLE character escaped as `\uXXXX` (JSON.stringify escapes C0 controls but
 * writes C1 controls and bidi overrides raw); it parses back to the same value.
 */
export function printableJson(value: unknown): string {
  const json = JSON.stringify(value);
  return printable(json);
}
