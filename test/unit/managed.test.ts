import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import type { ConnectionInfo } from "../../lib/db";
import { databaseUrls, resolveRootCert } from "../../lib/postgres/managed";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const info = (user: string): ConnectionInfo => ({ host: "db.example.com", port: 5432, database: "tsdb", user, password: `${user}-pw`, sslmode: "verify-full", sslrootcert: PEM });

describe("databaseUrls", () => {
  test("app and read-only go through the pooler, the migrator stays direct, the replica serves the read-only role", () => {
    expect(
      databaseUrls({
        migrator: info("tsdb_migrator"),
        app: info("tsdb_app"),
        readonly: info("tsdb_readonly"),
        pooler: { host: "pool.example.com", port: 6432 },
        replica: { host: "ro.example.com", port: 5433 },
        sslrootcertFile: "/srv/ca.crt",
      }),
    ).toEqual({
      migrator: "postgresql://tsdb_migrator:tsdb_migrator-pw@db.example.com:5432/tsdb?sslmode=verify-full&sslrootcert=%2Fsrv%2Fca.crt",
      app: "postgresql://tsdb_app:tsdb_app-pw@pool.example.com:6432/tsdb?sslmode=verify-full&sslrootcert=%2Fsrv%2Fca.crt",
      readonly: "postgresql://tsdb_readonly:tsdb_readonly-pw@pool.example.com:6432/tsdb?sslmode=verify-full&sslrootcert=%2Fsrv%2Fca.crt",
      replica: "postgresql://tsdb_readonly:tsdb_readonly-pw@ro.example.com:5433/tsdb?sslmode=verify-full&sslrootcert=%2Fsrv%2Fca.crt",
    });
  });

  test("without pooler, replica or CA the URLs are the direct ones and there is no replica URL", () => {
    const plain = (u: string) => ({ ...info(u), sslmode: "require", sslrootcert: undefined });
    const urls = databaseUrls({ migrator: plain("m"), app: plain("a"), readonly: plain("r") });
    expect(urls).toEqual({
      migrator: "postgresql://m:m-pw@db.example.com:5432/tsdb?sslmode=require",
      app: "postgresql://a:a-pw@db.example.com:5432/tsdb?sslmode=require",
      readonly: "postgresql://r:r-pw@db.example.com:5432/tsdb?sslmode=require",
    });
  });
});

describe("resolveRootCert", () => {
  const project = () => fs.mkdtempSync(path.join(os.tmpdir(), "rootcert-"));

  test("PEM text is written to .tsdb/tls/<stack>-root.crt, private to its owner, for the provider and psql", () => {
    const dir = project();
    const cert = resolveRootCert(PEM, dir, "prod");
    expect(cert).toEqual({ pem: PEM, file: path.join(dir, ".tsdb/tls/prod-root.crt") });
    expect([fs.readFileSync(cert!.file, "utf8"), fs.statSync(cert!.file).mode & 0o777]).toEqual([PEM, 0o600]);
  });

  test("a path is read relative to the project", () => {
    const dir = project();
    fs.mkdirSync(path.join(dir, "certs"));
    fs.writeFileSync(path.join(dir, "certs/root.crt"), PEM);
    expect(resolveRootCert("certs/root.crt", dir, "dev")).toEqual({ pem: PEM, file: path.join(dir, "certs/root.crt") });
  });

  test("a missing file or one without a certificate fails naming the setting; empty means no CA", () => {
    const dir = project();
    fs.writeFileSync(path.join(dir, "notes.txt"), "hello");
    expect(() => resolveRootCert("missing.crt", dir, "dev")).toThrow(`[tsdb:sslRootCert] cannot read ${path.join(dir, "missing.crt")} (ENOENT)`);
    expect(() => resolveRootCert("notes.txt", dir, "dev")).toThrow(`[tsdb:sslRootCert] ${path.join(dir, "notes.txt")} holds no PEM certificate`);
    expect(resolveRootCert(undefined, dir, "dev")).toBeUndefined();
  });
});
