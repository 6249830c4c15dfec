/**
 * Migration files: parsing `sql/NNNN_snake_case_name.sql` and resolving them for one database mode and one
 * set of settings. The format is the contract in docs/ARCHITECTURE.md and the common notes:
 *
 * ```
 * -- migrate:no-transaction        (optional, before migrate:up)
 * -- migrate:up
 * ...SQL...
 * -- migrate:down
 * ...SQL...
 * ```
 * with `-- if:timescaledb` / `-- if:vanilla` / `-- if:<variable>` ... `-- end:<same>` blocks on their own
 * lines and `{{variable}}` placeholders, substituted as quoted literals after validation.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { escapeLiteral } from "pg";
import { INTERVAL_PATTERN, MIGRATION_VARIABLES, OPTIONAL_VARIABLES } from "./variables";

/** A parsed migration file, not yet resolved for a mode or settings. */
export interface MigrationFile {
  /** From the file name: `0003_ohlcv.sql` is version 3. */
  version: number;
  /** From the file name: `0003_ohlcv.sql` is `ohlcv`. */
  name: string;
  /** The file name, e.g. `0003_ohlcv.sql`; errors name it. */
  file: string;
  /**
   * sha256 (hex) of the file's bytes: it covers the up AND the down part, all conditional blocks and the
   * placeholders (not the settings substituted into them), so any edit of an applied file is noticed.
   */
  checksum: string;
  /** Marked `-- migrate:no-transaction`: statements run one by one outside a transaction. */
  noTransaction: boolean;
  /** Lines of the up part, with the 1-based file line of the first one. */
  up: { lines: string[]; firstLine: number };
  /** Lines of the down part, with the 1-based file line of the first one. */
  down: { lines: string[]; firstLine: number };
}

/** A migration resolved for one mode and settings: plain SQL, ready to run. */
export interface ResolvedMigration {
  version: number;
  name: string;
  file: string;
  checksum: string;
  noTransaction: boolean;
  /**
   * Resolved up SQL. Lines removed by conditional blocks are kept as empty lines, so line k of this text is
   * line `upLine + k - 1` of the file and errors can name the file's line.
   */
  up: string;
  /** File line of the first line of `up`. */
  upLine: number;
  /** Resolved down SQL (same line rule as `up`). */
  down: string;
  /** File line of the first line of `down`. */
  downLine: number;
}

export { MIGRATION_VARIABLES, type MigrationVariable } from "./variables";

const FILE_NAME = /^(\d{4})_([a-z0-9]+(?:_[a-z0-9]+)*)\.sql$/;
const MARKER = /^\s*--\s*migrate:([a-z-]+)\s*$/;
const BLOCK = /^\s*--\s*(if|end):([A-Za-z][A-Za-z0-9]*)\s*$/;
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** Options that decide how files resolve. */
export interface ResolveOptions {
  /** TimescaleDB enabled: keeps `-- if:timescaledb` blocks, drops `-- if:vanilla` ones (and vice versa). */
  timescaledb: boolean;
  /** Values for `{{name}}` placeholders and `-- if:name` blocks. */
  variables: Partial<Record<string, string>>;
}

/** Parses one migration file. Throws an error naming the file (and line) when it breaks the format. */
export function parseMigrationFile(file: string, content: string | Buffer): MigrationFile {
  const m = FILE_NAME.exec(file);
  if (!m) {
    throw new Error(
      `Migration file name ${JSON.stringify(file)} must look like NNNN_snake_case_name.sql (4-digit version, lowercase letters, digits and single underscores).`,
    );
  }
  const version = Number(m[1]);
  if (version === 0) throw new Error(`${file}: version 0000 is reserved for "no migrations applied"; start at 0001.`);
  const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
  const text = bytes.toString("utf8").replace(/\r\n/g, "\n");
  const lines = text.split("\n");
  let noTransaction = false;
  let upAt = -1;
  let downAt = -1;
  lines.forEach((line, idx) => {
    const marker = MARKER.exec(line)?.[1];
    if (marker === undefined) return;
    const where = `${file} line ${idx + 1}`;
    if (marker === "up") {
      if (upAt !== -1) throw new Error(`${where}: a second "-- migrate:up"; a file has exactly one.`);
      upAt = idx;
    } else if (marker === "down") {
      if (downAt !== -1) throw new Error(`${where}: a second "-- migrate:down"; a file has exactly one.`);
      if (upAt === -1) throw new Error(`${where}: "-- migrate:down" comes before "-- migrate:up".`);
      downAt = idx;
    } else if (marker === "no-transaction") {
      if (upAt !== -1) throw new Error(`${where}: "-- migrate:no-transaction" must come before "-- migrate:up".`);
      noTransaction = true;
    } else {
      throw new Error(`${where}: unknown marker "-- migrate:${marker}"; allowed: up, down, no-transaction.`);
    }
  });
  if (upAt === -1) throw new Error(`${file}: no "-- migrate:up" line; every migration has an up and a down part.`);
  if (downAt === -1) throw new Error(`${file}: no "-- migrate:down" line; every migration has an up and a down part.`);
  lines.slice(0, upAt).forEach((line, idx) => {
    if (line.trim() !== "" && !line.trim().startsWith("--")) {
      throw new Error(`${file} line ${idx + 1}: SQL before "-- migrate:up" would never run; move it into the up part.`);
    }
  });
  const up = { lines: lines.slice(upAt + 1, downAt), firstLine: upAt + 2 };
  const down = { lines: lines.slice(downAt + 1), firstLine: downAt + 2 };
  if (!up.lines.some((l) => l.trim() !== "" && !l.trim().startsWith("--"))) {
    throw new Error(`${file}: the up part is empty.`);
  }
  // Check the block structure now, for both modes, so a broken file fails before anything runs.
  checkBlocks(file, up);
  checkBlocks(file, down);
  const checksum = createHash("sha256").update(bytes).digest("hex");
  return { version, name: m[2] as string, file, checksum, noTransaction, up, down };
}

function checkBlocks(file: string, part: { lines: string[]; firstLine: number }): void {
  const open: { name: string; line: number }[] = [];
  part.lines.forEach((line, idx) => {
    const b = BLOCK.exec(line);
    if (!b) return;
    const [, kind, name] = b as unknown as [string, "if" | "end", string];
    const lineNo = part.firstLine + idx;
    if (name !== "timescaledb" && name !== "vanilla" && !(MIGRATION_VARIABLES as readonly string[]).includes(name)) {
      throw new Error(
        `${file} line ${lineNo}: unknown condition "${name}"; allowed: timescaledb, vanilla, ${MIGRATION_VARIABLES.join(", ")}.`,
      );
    }
    if (kind === "if") {
      open.push({ name, line: lineNo });
    } else {
      const top = open.pop();
      if (!top) throw new Error(`${file} line ${lineNo}: "-- end:${name}" without a matching "-- if:${name}".`);
      if (top.name !== name) {
        throw new Error(`${file} line ${lineNo}: "-- end:${name}" closes "-- if:${top.name}" opened on line ${top.line}.`);
      }
    }
  });
  const left = open.pop();
  if (left) throw new Error(`${file} line ${left.line}: "-- if:${left.name}" is never closed with "-- end:${left.name}".`);
}

/**
 * Checks settings before they reach SQL: only known variables, intervals in the documented form.
 * Throws naming the setting and what is allowed.
 */
export function validateVariables(variables: Partial<Record<string, string>>): void {
  for (const [key, value] of Object.entries(variables)) {
    if (!(MIGRATION_VARIABLES as readonly string[]).includes(key)) {
      throw new Error(`Unknown migration variable "${key}"; allowed: ${MIGRATION_VARIABLES.join(", ")}.`);
    }
    if (value === undefined || value === "") {
      if ((OPTIONAL_VARIABLES as readonly string[]).includes(key)) continue;
      throw new Error(`[tsdb:${key}] must be an interval such as '30 days', got an empty value.`);
    }
    if (!INTERVAL_PATTERN.test(value)) {
      throw new Error(
        `[tsdb:${key}] must be an interval like '30 days' (a number and one of microsecond, millisecond, second, minute, hour, day, week, month, year), got ${JSON.stringify(value)}.`,
      );
    }
  }
}

/** Resolves a parsed file for `options`: keeps the right blocks and substitutes validated settings. */
export function resolveMigration(file: MigrationFile, options: ResolveOptions): ResolvedMigration {
  validateVariables(options.variables);
  return {
    version: file.version,
    name: file.name,
    file: file.file,
    checksum: file.checksum,
    noTransaction: file.noTransaction,
    up: resolvePart(file.file, file.up, options),
    upLine: file.up.firstLine,
    down: resolvePart(file.file, file.down, options),
    downLine: file.down.firstLine,
  };
}

function keeps(name: string, options: ResolveOptions): boolean {
  if (name === "timescaledb") return options.timescaledb;
  if (name === "vanilla") return !options.timescaledb;
  return (options.variables[name] ?? "") !== "";
}

function resolvePart(file: string, part: { lines: string[]; firstLine: number }, options: ResolveOptions): string {
  const kept: boolean[] = [];
  const out = part.lines.map((line, idx) => {
    const lineNo = part.firstLine + idx;
    const b = BLOCK.exec(line);
    if (b) {
      if (b[1] === "if") kept.push(keeps(b[2] as string, options));
      else kept.pop();
      return ""; // markers become empty lines so line numbers stay those of the file
    }
    if (kept.includes(false)) return "";
    return line.replace(PLACEHOLDER, (_all, rawName: string) => {
      const name = rawName;
      if (!(MIGRATION_VARIABLES as readonly string[]).includes(name)) {
        throw new Error(
          `${file} line ${lineNo}: unknown variable {{${name}}}; allowed: ${MIGRATION_VARIABLES.map((v) => `{{${v}}}`).join(", ")}.`,
        );
      }
      const value = options.variables[name];
      if (value === undefined || value === "") {
        throw new Error(
          `${file} line ${lineNo}: {{${name}}} has no value${(OPTIONAL_VARIABLES as readonly string[]).includes(name) ? `; use it only inside "-- if:${name}" ... "-- end:${name}"` : `; set tsdb:${name}`}.`,
        );
      }
      return escapeLiteral(value);
    });
  });
  return out.join("\n");
}

/**
 * Reads every `*.sql` file of `dir` in version order. Throws when a file name breaks the pattern, when two
 * files share a version, or when the directory has no migrations.
 */
export function readMigrationsDir(dir: string): MigrationFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((f) => f.endsWith(".sql"));
  } catch (err) {
    throw new Error(`Cannot read the migrations directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const files = names.map((f) => parseMigrationFile(f, fs.readFileSync(path.join(dir, f))));
  files.sort((a, b) => a.version - b.version);
  for (let k = 1; k < files.length; k++) {
    const prev = files[k - 1] as MigrationFile;
    const cur = files[k] as MigrationFile;
    if (prev.version === cur.version) {
      throw new Error(`${prev.file} and ${cur.file} have the same version ${cur.version}; versions must be unique.`);
    }
  }
  if (files.length === 0) throw new Error(`No migration files (NNNN_name.sql) in ${dir}.`);
  return files;
}

/** Reads and resolves every migration of `dir`. */
export function loadMigrations(dir: string, options: ResolveOptions): ResolvedMigration[] {
  return readMigrationsDir(dir).map((f) => resolveMigration(f, options));
}
