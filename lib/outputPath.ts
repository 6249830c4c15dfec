/**
 * What `--out` may name (issue 23.3): a new path or an existing regular file, nothing else. The commands write
 * to a temporary file and rename it over the target, so a symbolic link (say to /dev/stdout, or to a file
 * elsewhere) would be replaced by a file of ours instead of being written through, and a device node or FIFO
 * would be replaced outright (as root, `--out /dev/null` turned /dev/null into a file holding a password).
 */
import * as fs from "node:fs";

/** Throws one line naming `flag` and `file` unless `file` does not exist or is a regular file (never followed if a link). */
export function checkOutputPath(file: string, flag = "--out"): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (st.isFile()) return;
  const kind = st.isSymbolicLink()
    ? `a symbolic link (to ${fs.readlinkSync(file)})`
    : st.isDirectory()
      ? "a directory"
      : st.isCharacterDevice() || st.isBlockDevice()
        ? "a device"
        : st.isFIFO()
          ? "a FIFO"
          : st.isSocket()
            ? "a socket"
            : "not a regular file";
  throw new Error(`${flag} ${file} is ${kind}; it writes regular files only: name a new file or an existing regular one.`);
}
