/**
 * TLS to the database, with libpq's meaning of `sslmode` (https://www.postgresql.org/docs/current/libpq-ssl.html),
 * in one place: node-postgres `ssl` options for the hooks and CLIs, the CA as a file for libpq programs, and
 * one-line explanations of certificate failures (the CA in a URL: ./connectionInfo.ts `withSslRootCert`).
 *
 * The CA certificate travels as PEM text (`sslrootcert` of a ConnectionInfo), so the hooks need no file on the
 * machine that runs them; URLs, which psql and libpq-style drivers read, name a file instead.
 *
 * This module is serialized by value into the migrations hook (through ./client.ts): no runtime imports, and
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
 * node-postgres `ssl` for a target's first attempt. disable, allow: no TLS. prefer: TLS with the certificate
 * unchecked (checked against the CA when one is given, as libpq does with a root.crt), and lib/db.ts tries again
 * without TLS when the server does not offer it ({@link sslFallbackOptions}). require: encrypted, certificate
 * unchecked, unless a CA is given, when libpq checks the chain as verify-ca does. verify-ca: chain only (needs
 * the CA). verify-full: chain and host name, against the given CA or else the public CAs Node trusts.
 */
export function sslOptions(target: TlsTarget): false | ConnectionOptions {
  const { sslmode, sslrootcert } = target;
  if (sslmode === "disable" || sslmode === "allow") return false;
  if (sslmode === "prefer") return sslOptions({ ...target, sslmode: "require" });
  // verify-ca trusts any certificate the CA signed, whatever host it names: with the public CAs that would be
  // anyone's certificate (libpq and node-postgres's libpq mode refuse it too). verify-full without a CA uses
  // Node's public CAs, like libpq's sslrootcert=system, for services with publicly trusted certificates.
  if (sslmode === "verify-ca" && !sslrootcert) {
    throw new Error(
      `[tsdb:sslRootCert] is required with sslmode verify-ca: set it to the CA certificate (a PEM file or its text) that issued the server's certificate (with --url: sslrootcert=/path/to/ca.crt in the URL, or PGSSLROOTCERT).`,
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

/**
 * The second attempt libpq makes when the first is refused: prefer tries without TLS after a server that does not
 * offer it (or whose pg_hba.conf has no TLS entry), allow tries TLS after a server that wants it. Undefined for
 * the other modes, which never try twice.
 */
export function sslFallbackOptions(target: TlsTarget): false | ConnectionOptions | undefined {
  if (target.sslmode === "prefer") return false;
  if (target.sslmode === "allow") return sslOptions({ ...target, sslmode: "require" });
  return undefined;
}

/** Whether a failed first attempt with `ssl` is one libpq answers by trying the other way (see {@link sslFallbackOptions}). */
export function tlsRefused(err: unknown, ssl: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  const message = e?.message ?? "";
  if (ssl) return /does not support SSL/i.test(message) || (e?.code === "28000" && /pg_hba\.conf/.test(message));
  return e?.code === "28000" && /pg_hba\.conf/.test(message);
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
 * one; `caGiven` says whether a CA was set or the public CAs were used. `fromUrl`: the connection came from a
 * URL (`--url`, DATABASE_URL, PG* variables), so the advice names what to put in it rather than the stack's
 * settings. The original error stays as `cause`.
 */
export function explainTlsError(err: unknown, where: string, caGiven = true, fromUrl = false): Error | undefined {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? "";
  const message = e?.message ?? String(err);
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    const fix = fromUrl ? "put sslmode=verify-ca in the URL" : "use sslmode verify-ca";
    return new Error(
      `TLS: the certificate of ${where} does not name the host connected to (${message.replace(/\s*\n\s*/g, " ")}); connect by a name the certificate lists, or ${fix}.`,
      { cause: err },
    );
  }
  if (UNTRUSTED_CHAIN.includes(code)) {
    if (fromUrl) {
      const trusted = caGiven ? "the CA in sslrootcert" : "a public CA (no sslrootcert is given)";
      return new Error(
        `TLS: the certificate of ${where} is not signed by ${trusted} (${code}); put sslrootcert=/path/to/ca.crt in the URL (or set PGSSLROOTCERT) naming the CA that issued the server's certificate.`,
        { cause: err },
      );
    }
    const trusted = caGiven ? "the CA in tsdb:sslRootCert" : "a public CA (no tsdb:sslRootCert is set)";
    return new Error(
      `TLS: the certificate of ${where} is not signed by ${trusted} (${code}); set tsdb:sslRootCert to the CA that issued the server's certificate.`,
      { cause: err },
    );
  }
  if (/does not support SSL/i.test(message)) {
    const fix = fromUrl ? "put sslmode=prefer (or disable) in the URL" : "lower tsdb:sslmode";
    return new Error(`TLS: ${where} does not accept TLS connections, but the sslmode asks for TLS; enable ssl on the server or ${fix}.`, {
      cause: err,
    });
  }
  return undefined;
}
