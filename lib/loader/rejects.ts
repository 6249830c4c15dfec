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

/** Appends rejected rows to a CSV file with header `source,row,reason,raw`. */
export class RejectsWriter {
  private fd: number | undefined;
  /** Rows written so far. */
  count = 0;
  /** The first rejected row, for the one-line error of a load that fails on its rejects. */
  first: { source: string; row: number; reason: string } | undefined;

  /** @param file where to write; undefined keeps only the count (used when the caller collects rejects itself). */
  constructor(readonly file: string | undefined) {}

  /** Records one rejected row. `row` is 1-based within its source (data rows, header excluded). */
  add(source: string, row: number, reason: string, values: readonly unknown[], columns: readonly string[]): void {
    this.count++;
    if (this.count === 1) this.first = { source: printable(source), row, reason: printable(reason) };
    if (!this.file) return;
    if (this.fd === undefined) {
      fs.mkdirSync(path.dirname(path.resolve(this.file)), { recursive: true });
      this.fd = fs.openSync(this.file, "w");
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

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
