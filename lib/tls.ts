/**
 * TLS to the database, with libpq's meaning of `sslmode` (https://www.postgresql.org/docs/current/libpq-ssl.html),
 * in one place: node-postgres `ssl` options for the hooks and CLIs, URL parameters for the stack outputs and
 * psql, and one-line explanations of certificate failures.
 *
 * The CA certificate travels as PEM text (`sslrootcert` of a ConnectionInfo), so the hooks need no file on the
 * machine that runs them; URLs, which psql and libpq-style drivers read, name a file instead.
 *
 * This module is serialized by value into the migrations hook (through ../lib/db): no runtime imports, and
 * Node built-ins are required inside the functions that need them.
 */
import type { ConnectionOptions } from "node:tls";

/** libpq's sslmode values. */
export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** What decides how a client talks TLS to one server. */
export interface TlsTarget {
  sslmode: string;
  /** PEM of the CA that issued the server's certificate (verify-ca / verify-full; optional for require). */
  sslrootcert?: string;
  /** The host name connected to, which verify-full checks against the certificate. */
  host: string;
}

/**
 * node-postgres `ssl` for a target. disable/allow/prefer: no TLS (node-postgres cannot fall back as libpq
 * does, and the local container has no certificate). require: encrypted, certificate unchecked, unless a CA is
 * given, when libpq checks the chain as verify-ca does. verify-ca: chain only (needs the CA). verify-full:
 * chain and host name, against the given CA or else the public CAs Node trusts.
 */
export function sslOptions(target: TlsTarget): false | ConnectionOptions {
  const { sslmode, sslrootcert } = target;
  if (sslmode === "disable" || sslmode === "allow" || sslmode === "prefer") return false;
  // verify-ca trusts any certificate the CA signed, whatever host it names: with the public CAs that would be
  // anyone's certificate (libpq and node-postgres's libpq mode refuse it too). verify-full without a CA uses
  // Node's public CAs, like libpq's sslrootcert=system, for services with publicly trusted certificates.
  if (sslmode === "verify-ca" && !sslrootcert) {
    throw new Error(
      `[tsdb:sslRootCert] is required with sslmode verify-ca: set it to the CA certificate (a PEM file or its text) that issued the server's certificate.`,
    );
  }
  if (sslmode === "require" && !sslrootcert) return { rejectUnauthorized: false };
  if (sslmode === "require" || sslmode === "verify-ca" || sslmode === "verify-full") {
    const options: ConnectionOptions = { rejectUnauthorized: true, ...(sslrootcert ? { ca: sslrootcert } : {}) };
    if (sslmode === "verify-full") {
      // Checked against the host we connect to. node-postgres sends no servername for an IP address, and
      // Node then checks the certificate against "localhost", so a certificate for localhost would pass.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const tls = require("node:tls") as typeof import("node:tls");
      options.checkServerIdentity = (_servername, cert) => tls.checkServerIdentity(target.host, cert);
    } else {
      // libpq's verify-ca (and require with a CA) trusts any certificate the CA signed, whatever host it names.
      options.checkServerIdentity = () => undefined;
    }
    return options;
  }
  throw new Error(`[tsdb:sslmode] must be one of ${SSL_MODES.join(", ")}, got ${JSON.stringify(sslmode)}.`);
}

/** `url` with `sslrootcert=<file>` added, as psql and libpq read the CA; unchanged without a file or TLS. */
export function withSslRootCert(url: string, file: string | undefined): string {
  if (!file || new URL(url).searchParams.get("sslmode") === "disable") return url;
  return `${url}${url.includes("?") ? "&" : "?"}sslrootcert=${encodeURIComponent(file)}`;
}

/**
 * A private file (0600 from creation, removed when the process exits) holding `pem`, for libpq programs
 * (pg_dump, pg_restore, psql) that take the CA as a file (PGSSLROOTCERT). The same PEM gives the same file.
 */
export function rootCertFile(pem: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("node:fs") as typeof import("node:fs");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require("node:os") as typeof import("node:os");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const path = require("node:path") as typeof import("node:path");
  const known = writtenRootCerts.get(pem);
  if (known && fs.existsSync(known)) return known;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-ca-"));
  const file = path.join(dir, "root.crt");
  fs.writeFileSync(file, pem, { mode: 0o600 });
  writtenRootCerts.set(pem, file);
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return file;
}
const writtenRootCerts = new Map<string, string>();

/** `text` when it is PEM, else undefined (so a setting can hold either a file path or the certificate itself). */
export function pemText(text: string): string | undefined {
  return /-----BEGIN CERTIFICATE-----/.test(text) ? text : undefined;
}

/**
 * Connection settings from a `postgresql://` URL for node-postgres, with libpq's sslmode (and `sslrootcert`,
 * a file read here) instead of node-postgres's own reading, where `sslmode=require` would check the certificate.
 */
export function urlClientConfig(url: string): import("pg").ClientConfig {
  const parsed = new URL(url);
  const sslmode = parsed.searchParams.get("sslmode") ?? process.env.PGSSLMODE ?? "prefer";
  const rootFile = parsed.searchParams.get("sslrootcert") ?? undefined;
  // node-postgres reads what remains; `ssl` below is not overridden because the URL no longer mentions TLS.
  parsed.searchParams.delete("sslmode");
  parsed.searchParams.delete("sslrootcert");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sslrootcert = rootFile ? (require("node:fs") as typeof import("node:fs")).readFileSync(rootFile, "utf8") : undefined;
  const host = decodeURIComponent(parsed.hostname).replace(/^\[(.*)\]$/, "$1");
  return { connectionString: parsed.toString(), ssl: sslOptions({ sslmode, sslrootcert, host }) };
}

/** Node's codes for a certificate chain the trusted CA does not vouch for (an array: Pulumi serializes a Set badly). */
const UNTRUSTED_CHAIN = [
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
];

/**
 * A one-line error for a TLS failure while connecting to `where` (host:port), or undefined when `err` is not
 * one; `caGiven` says whether a CA was set or the public CAs were used. The original error stays as `cause`.
 */
export function explainTlsError(err: unknown, where: string, caGiven = true): Error | undefined {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? "";
  const message = e?.message ?? String(err);
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return new Error(
      `TLS: the certificate of ${where} does not name the host connected to (${message.replace(/\s*\n\s*/g, " ")}); connect by a name the certificate lists, or use sslmode verify-ca.`,
      { cause: err },
    );
  }
  if (UNTRUSTED_CHAIN.includes(code)) {
    const trusted = caGiven ? "the CA in tsdb:sslRootCert" : "a public CA (no tsdb:sslRootCert is set)";
    return new Error(
      `TLS: the certificate of ${where} is not signed by ${trusted} (${code}); set tsdb:sslRootCert to the CA that issued the server's certificate.`,
      { cause: err },
    );
  }
  if (/does not support SSL/i.test(message)) {
    return new Error(`TLS: ${where} does not accept TLS connections, but the sslmode asks for TLS; enable ssl on the server or lower tsdb:sslmode.`, {
      cause: err,
    });
  }
  return undefined;
}
