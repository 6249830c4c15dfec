/**
 * A file's first bytes, and the kinds of file the loader names instead of reading a binary header as CSV
 * columns. The readers' own magic bytes are in their registry entries (../formats.ts).
 */
import fs from "node:fs";

/** Kinds that are not a format of their own: gzip (CSV compressed), UTF-16 text, other binary. */
export type OtherKind = "gzip" | "utf16" | "binary";

/** Names users know the kinds by, for messages. */
export const OTHER_KIND_NAMES: Record<OtherKind, string> = {
  gzip: "gzip",
  utf16: "UTF-16 text (Excel's \"Unicode text\"; save it as UTF-8 CSV)",
  binary: "binary (not text)",
};

/** The first 64 bytes of `file`; undefined for anything that is not a readable regular file. */
export function readHead(file: string): Buffer | undefined {
  try {
    if (!fs.statSync(file).isFile()) return undefined;
    const fd = fs.openSync(file, "r");
    try {
      const head = Buffer.alloc(64);
      return head.subarray(0, fs.readSync(fd, head, 0, 64, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** gzip, UTF-16 or binary by the first bytes; undefined for text. */
export function otherKind(head: Buffer): OtherKind | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  // UTF-16 with its byte order mark (Excel's "Unicode text"); otherwise text has no NUL bytes in its first 64.
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) return "utf16";
  if (head.includes(0)) return "binary";
  return undefined;
}
