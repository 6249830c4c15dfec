/**
 * The rejects file: one CSV line per invalid row (source, row, reason, raw values as JSON), so nothing
 * is lost silently. The file is created on the first reject only.
 */
import fs from "node:fs";
import path from "node:path";
import { printable, printableJson } from "./printable";

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function rawJson(values: readonly unknown[], columns: readonly string[]): string {
  const obj: Record<string, unknown> = {};
  columns.forEach((c, i) => {
    const v = values[i];
    obj[c] = typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v;
  });
  // Extra values of a too-long CSV row are kept under their position.
  for (let i = columns.length; i < values.length; i++) obj[`#${i + 1}`] = values[i];
  // Raw values can hold ESC or a bidi override: escaped, so `cat` of the file shows them as they are.
  return printableJson(obj);
}

/** Whether process `pid` is running (EPERM: it is, as another user). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Rejects paths this process has claimed (two loads in one process share a pid). */
const claimedHere = new Set<string>();
let claims = 0;

/**
 * Claims `file` for one load by creating `<file>.lock` (exclusively, holding the pid): a lock left by a process
 * that is gone is taken over. Returns the path the load writes: `file`, or when a running load holds it, a
 * sibling of its own (`last-load.<pid>-<n>.csv`), so two concurrent loads never write into one file (they
 * interleaved their rows, issue 23.12) and neither deletes the other's.
 */
function claim(file: string): { path: string; lock: string } {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const ext = path.extname(file);
  for (let attempt = 0; ; attempt++) {
    const candidate = attempt === 0 ? file : `${file.slice(0, file.length - ext.length)}.${process.pid}-${++claims}${ext}`;
    const lock = `${candidate}.lock`;
    if (claimedHere.has(path.resolve(candidate))) continue;
    try {
      fs.writeFileSync(lock, `${process.pid}\n`, { flag: "wx" });
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
      const holder = Number.parseInt(fs.readFileSync(lock, "utf8"), 10);
      if (holder === process.pid || (Number.isInteger(holder) && isRunning(holder))) continue;
      // Left by a load that was killed: take it over (and try this candidate again).
      fs.rmSync(lock, { force: true });
      attempt--;
      continue;
    }
    claimedHere.add(path.resolve(candidate));
    // A rejects file from an earlier run would be mistaken for this run's.
    fs.rmSync(candidate, { force: true });
    return { path: candidate, lock };
  }
}

/**
 * Appends rejected rows to a CSV file with header `source,row,reason,raw`, created on the first reject. The
 * path is claimed for the writer's life (see claim): `file` is where this load's rejects are, which may be a
 * sibling of the path asked for when another load is writing there.
 */
export class RejectsWriter {
  private fd: number | undefined;
  private lock: string | undefined;
  /** Where this writer's rows go; undefined keeps only the count. */
  readonly file: string | undefined;
  /** Rows written so far. */
  count = 0;
  /** The first rejected row, for the one-line error of a load that fails on its rejects. */
  first: { source: string; row: number; reason: string } | undefined;

  /** @param file where to write; undefined keeps only the count (used when the caller collects rejects itself). */
  constructor(file: string | undefined) {
    if (file === undefined) return;
    try {
      const claimed = claim(file);
      this.file = claimed.path;
      this.lock = claimed.lock;
    } catch (err) {
      // A directory the load may not write to: a load without rejects still runs (as before the claim); the
      // first reject then fails on the file itself, naming it.
      if (!["EACCES", "EPERM", "EROFS"].includes((err as { code?: string }).code ?? "")) throw err;
      this.file = file;
    }
  }

  /** Records one rejected row. `row` is 1-based within its source (data rows, header excluded). */
  add(source: string, row: number, reason: string, values: readonly unknown[], columns: readonly string[]): void {
    this.count++;
    if (this.count === 1) this.first = { source: printable(source), row, reason: printable(reason) };
    if (!this.file) return;
    if (this.fd === undefined) {
      // "wx" on the claimed path (claim deleted any earlier file); "w" when it could not be claimed.
      this.fd = fs.openSync(this.file, this.lock === undefined ? "w" : "wx");
      this.write("source,row,reason,raw\n");
    }
    this.write(`${csvField(printable(source))},${row},${csvField(printable(reason))},${csvField(rawJson(values, columns))}\n`);
  }

  private position = 0;

  private write(text: string): void {
    const buf = Buffer.from(text);
    fs.writeSync(this.fd as number, buf, 0, buf.length, this.position);
    this.position += buf.length;
  }

  /** Closes the file and gives up the claim on its path. */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    if (this.file !== undefined && this.lock !== undefined) {
      claimedHere.delete(path.resolve(this.file));
      fs.rmSync(this.lock, { force: true });
      this.lock = undefined;
    }
  }
}
