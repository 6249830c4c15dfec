/**
 * Identity of a dataset's content for the Pulumi hook: sha256 over each file's path (relative to the
 * project) and sha256 of its bytes, in sorted order. Files are hashed in 1 MiB reads, so memory stays flat.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { expandSources } from "./columnMapping";

function fileSha256(file: string): string {
  const hash = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/**
 * The files of a dataset's source or sources (file, directory or glob, relative to `projectDir`), as
 * project-relative paths.
 */
export function datasetFiles(projectDir: string, source: string | readonly string[]): string[] {
  const sources = typeof source === "string" ? [source] : source;
  return expandSources(sources.map((s) => path.resolve(projectDir, s))).map((f) => path.relative(projectDir, f).split(path.sep).join("/"));
}

/** `sha256:<hex>` over the dataset's files' relative paths and contents. */
export function datasetChecksum(projectDir: string, files: readonly string[]): string {
  const hash = crypto.createHash("sha256");
  for (const f of [...files].sort()) hash.update(`${f}\0${fileSha256(path.resolve(projectDir, f))}\n`);
  return `sha256:${hash.digest("hex")}`;
}
