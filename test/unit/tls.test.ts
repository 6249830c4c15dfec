import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { PeerCertificate } from "node:tls";
import { describe, expect, test } from "vitest";
import { connectionConfig } from "../../lib/postgres/client";
import { withSslRootCert } from "../../lib/postgres/connectionInfo";
import { explainTlsError, sslFallbackOptions, sslOptions } from "../../lib/postgres/tls";

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
/** What Node hands checkServerIdentity for a certificate issued to 127.0.0.1 and localhost. */
const CERT = { subject: { CN: "127.0.0.1" }, subjectaltname: "IP Address:127.0.0.1, DNS:localhost" } as unknown as PeerCertificate;

describe("sslOptions: libpq's sslmode for node-postgres", () => {
  test.each(["disable", "allow"])("%s connects without TLS first", (sslmode) => {
    expect(sslOptions({ sslmode, host: "db" })).toBe(false);
  });

  test("prefer tries TLS first, certificate unchecked, then plain text (libpq's default)", () => {
    expect([sslOptions({ sslmode: "prefer", host: "db" }), sslFallbackOptions({ sslmode: "prefer", host: "db" })]).toEqual([{ rejectUnauthorized: false }, false]);
  });

  test("allow tries TLS second; disable and the verifying modes never try twice", () => {
    expect(sslFallbackOptions({ sslmode: "allow", host: "db" })).toEqual({ rejectUnauthorized: false });
    for (const sslmode of ["disable", "require", "verify-full"]) expect(sslFallbackOptions({ sslmode, host: "db" })).toBeUndefined();
  });

  test("require without a CA encrypts but does not check the certificate", () => {
    expect(sslOptions({ sslmode: "require", host: "db" })).toEqual({ rejectUnauthorized: false });
  });

  test.each(["require", "verify-ca"])("%s with a CA checks the chain but not the host name", (sslmode) => {
    const o = sslOptions({ sslmode, sslrootcert: CA, host: "127.0.0.2" });
    expect(o && [o.rejectUnauthorized, o.ca, o.checkServerIdentity?.("127.0.0.2", CERT)]).toEqual([true, CA, undefined]);
  });

  test("verify-full checks the host connected to, also for an IP address (node-postgres would check localhost)", () => {
    const wrong = sslOptions({ sslmode: "verify-full", sslrootcert: CA, host: "127.0.0.2" });
    const right = sslOptions({ sslmode: "verify-full", sslrootcert: CA, host: "127.0.0.1" });
    expect(wrong && wrong.checkServerIdentity?.("localhost", CERT)?.message).toMatch(/IP: 127\.0\.0\.2 is not in the cert's list/);
    expect(right && right.checkServerIdentity?.("localhost", CERT)).toBeUndefined();
  });

  test("verify-ca without a CA names the setting to set (with the public CAs it would accept anyone's certificate)", () => {
    expect(() => sslOptions({ sslmode: "verify-ca", host: "db" })).toThrow("[tsdb:sslRootCert] is required with sslmode verify-ca");
  });

  test("verify-full without a CA checks chain and host against the public CAs Node trusts", () => {
    const o = sslOptions({ sslmode: "verify-full", host: "127.0.0.2" });
    expect(o && [o.rejectUnauthorized, "ca" in o, o.checkServerIdentity?.("localhost", CERT) instanceof Error]).toEqual([true, false, true]);
  });
});

describe("URLs", () => {
  test("withSslRootCert names the CA file for psql, except without TLS or without a file", () => {
    expect([
      withSslRootCert("postgresql://u@h:5432/d?sslmode=verify-full", "/etc/ca 1.crt"),
      withSslRootCert("postgresql://u@h:5432/d?sslmode=disable", "/etc/ca.crt"),
      withSslRootCert("postgresql://u@h:5432/d?sslmode=require", undefined),
    ]).toEqual([
      "postgresql://u@h:5432/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%201.crt",
      "postgresql://u@h:5432/d?sslmode=disable",
      "postgresql://u@h:5432/d?sslmode=require",
    ]);
  });

  test("a URL's client settings read sslrootcert from its file and apply libpq's sslmode", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tls-unit-")), "root.crt");
    fs.writeFileSync(file, CA);
    const config = connectionConfig(`postgresql://app:pw@db.example.com:6432/market?sslmode=verify-ca&sslrootcert=${encodeURIComponent(file)}&application_name=x`);
    expect(config).toMatchObject({ host: "db.example.com", port: 6432, database: "market", user: "app", password: "pw", application_name: "x" });
    expect(config.ssl && typeof config.ssl === "object" ? [config.ssl.ca, config.ssl.rejectUnauthorized] : config.ssl).toEqual([CA, true]);
    expect(connectionConfig("postgresql://app@db/market?sslmode=require").ssl).toEqual({ rejectUnauthorized: false });
  });
});

describe("explainTlsError", () => {
  test.each([
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate", /^TLS: the certificate of db:5432 is not signed by the CA in tsdb:sslRootCert \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/],
    ["SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain", /not signed by the CA in tsdb:sslRootCert \(SELF_SIGNED_CERT_IN_CHAIN\)/],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames: Host: db. is not in the cert's altnames: DNS:other", /^TLS: the certificate of db:5432 does not name the host connected to \(Hostname\/IP does not match/],
    [undefined, "The server does not support SSL connections", /^TLS: db:5432 does not accept TLS connections/],
  ])("%s becomes one line saying what is wrong", (code, message, expected) => {
    const explained = explainTlsError(Object.assign(new Error(message), { code }), "db:5432");
    expect(explained?.message).toMatch(expected);
    expect(explained?.message).not.toContain("\n");
  });

  test("other errors are left alone", () => {
    expect(explainTlsError(Object.assign(new Error("password authentication failed"), { code: "28P01" }), "db:5432")).toBeUndefined();
  });
});
