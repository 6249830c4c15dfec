/**
 * Splits a PostgreSQL script into statements, so each one can be run (and its errors located) on its own.
 *
 * Hand-written rather than a dependency because the provider carries this code inside its serialized
 * closure (see providers/MigrationsProvider.ts), and the grammar needed to find statement ends is small:
 * semicolons outside of 'strings', E'escaped\' strings', "identifiers", $tag$ dollar quotes $tag$,
 * -- line comments and nested block comments. Not supported: SQL-standard `BEGIN ATOMIC ... END` function
 * bodies (they contain bare semicolons); write such functions with a dollar-quoted body instead.
 */

/** One statement of a script, with the 1-based line of its first character within the script. */
export interface SqlStatement {
  sql: string;
  line: number;
}

/**
 * Splits `script` at top-level semicolons. Statements holding only whitespace and comments are dropped.
 * Throws when the script ends inside a quote, identifier, dollar quote or block comment.
 */
export function splitStatements(script: string): SqlStatement[] {
  const out: SqlStatement[] = [];
  let start = 0;
  let i = 0;
  const n = script.length;
  const push = (end: number) => {
    const raw = script.slice(start, end);
    const lead = codeStart(raw);
    // Leading comments are left out so that the line reported is the statement's own first line.
    if (lead !== -1) out.push({ sql: raw.slice(lead).trimEnd(), line: lineAt(script, start + lead) });
  };
  while (i < n) {
    const c = script[i];
    const next = script[i + 1];
    if (c === "-" && next === "-") {
      const eol = script.indexOf("\n", i);
      i = eol === -1 ? n : eol + 1;
    } else if (c === "/" && next === "*") {
      i = skipBlockComment(script, i);
    } else if (c === "'") {
      const escaped = i > 0 && /[eE]/.test(script[i - 1] ?? "") && !/[\w$]/.test(script[i - 2] ?? "");
      i = skipQuoted(script, i, "'", escaped);
    } else if (c === '"') {
      i = skipQuoted(script, i, '"', false);
    } else if (c === "$") {
      const tag = dollarTagAt(script, i);
      if (tag === null) {
        i++;
      } else {
        const close = script.indexOf(tag, i + tag.length);
        if (close === -1) throw unterminated(script, i, `dollar quote ${tag}`);
        i = close + tag.length;
      }
    } else if (c === ";") {
      push(i + 1);
      i++;
      start = i;
    } else {
      i++;
    }
  }
  push(n);
  return out;
}

/** The 1-based line number of character offset `offset` in `text`. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let k = 0; k < offset && k < text.length; k++) if (text.charCodeAt(k) === 10) line++;
  return line;
}

function unterminated(script: string, at: number, what: string): Error {
  return new Error(`Unterminated ${what} starting on line ${lineAt(script, at)}.`);
}

function skipBlockComment(script: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < script.length) {
    if (script[i] === "/" && script[i + 1] === "*") {
      depth++;
      i += 2;
    } else if (script[i] === "*" && script[i + 1] === "/") {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  throw unterminated(script, from, "block comment");
}

function skipQuoted(script: string, from: number, quote: string, backslashEscapes: boolean): number {
  let i = from + 1;
  while (i < script.length) {
    const c = script[i];
    if (backslashEscapes && c === "\\") {
      i += 2;
    } else if (c === quote) {
      if (script[i + 1] === quote) i += 2; // doubled quote is an escaped quote
      else return i + 1;
    } else {
      i++;
    }
  }
  throw unterminated(script, from, quote === "'" ? "string" : "quoted identifier");
}

/** The dollar-quote tag (`$$` or `$name$`) starting at `at`, or null when `$` starts something else ($1). */
function dollarTagAt(script: string, at: number): string | null {
  // A `$` inside an identifier (e.g. `a$b`) does not open a quote.
  if (at > 0 && /[\w$]/.test(script[at - 1] ?? "")) return null;
  const m = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(script.slice(at, at + 64));
  return m ? m[0] : null;
}

/** Offset of the first character of `text` that is neither whitespace nor comment, or -1 if none. */
function codeStart(text: string): number {
  let i = 0;
  while (i < text.length) {
    if (text[i] === "-" && text[i + 1] === "-") {
      const eol = text.indexOf("\n", i);
      i = eol === -1 ? text.length : eol + 1;
    } else if (text[i] === "/" && text[i + 1] === "*") {
      i = skipBlockComment(text, i);
    } else if (/\s/.test(text[i] ?? "")) {
      i++;
    } else {
      return i;
    }
  }
  return -1;
}
