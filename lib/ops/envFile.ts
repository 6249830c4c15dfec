/**
 * `.env` files for other apps (`npm run env`): DATABASE_URL and the libpq variables for one role, written
 * with mode 0600 because they hold a password.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { DatabaseOutput, Role } from "./stackOutputs";

/** Variables for `role`, in the order they are written. */
export function envVariables(output: DatabaseOutput, role: Role): [string, string][] {
  const url = output.urls[role];
  const parsed = new URL(url);
  const rootCert = parsed.searchParams.get("sslrootcert");
  // Host and port from the role's URL: app and readonly may go through the stack's pooler (issue 12).
  return [
    ["DATABASE_URL", url],
    ["PGHOST", parsed.hostname || output.host],
    ["PGPORT", parsed.port || String(output.port)],
    ["PGDATABASE", output.database],
    ["PGUSER", decodeURIComponent(parsed.username)],
    ["PGPASSWORD", decodeURIComponent(parsed.password)],
    ["PGSSLMODE", output.sslmode],
    ...(rootCert ? [["PGSSLROOTCERT", rootCert] as [string, string]] : []),
  ];
}

/** Quotes a value for dotenv readers (Node's --env-file, python-dotenv, docker compose) only when needed. */
export function quoteEnvValue(value: string): string {
  if (/^[A-Za-z0-9_./:@%?=&+,-]*$/.test(value)) return value;
  if (!value.includes("'") && !value.includes("\n")) return `'${value}'`;
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** The `.env` text for `role`. */
export function renderEnvFile(output: DatabaseOutput, role: Role, stack: string): string {
  const lines = envVariables(output, role).map(([k, v]) => `${k}=${quoteEnvValue(v)}`);
  return `# tsdb stack "${stack}", role ${role}: written by \`npm run env\`; holds a password, keep it out of git.\n${lines.join("\n")}\n`;
}

/**
 * Writes `content` to `file` with mode 0600: through a temporary file created 0600 in the same directory and
 * renamed over the target, so the secret is never readable by others, even when the file existed with a wider mode.
 */
export function writeSecretFile(file: string, content: string): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, "wx", 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // the umask cannot widen it, but be explicit
    fs.writeFileSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
