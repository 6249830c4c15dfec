import { describe, expect, test } from "vitest";
import { parseSettings, SettingsError } from "../../lib/settings";

const EXTERNAL = { mode: "external", externalHost: "abc123.tsdb.cloud.timescale.com", externalPort: "34567", externalAdminUser: "tsdbadmin", adminPassword: "x" };

function problemsOf(raw: Record<string, unknown>): string[] {
  try {
    parseSettings(raw, { stack: "dev" });
  } catch (err) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  return [];
}

describe("settings for managed services", () => {
  test("an external stack on Timescale Cloud: existing database, verify-full with a CA, pooler and replica", () => {
    const s = parseSettings(
      {
        ...EXTERNAL,
        database: "tsdb",
        existingDatabase: "true",
        sslmode: "verify-full",
        sslRootCert: "certs/root.crt",
        poolerHost: "abc123.pooler.tsdb.cloud.timescale.com",
        poolerPort: "6543",
        replicaHost: "abc123-ro.tsdb.cloud.timescale.com",
      },
      { stack: "dev" },
    );
    expect([s.existingDatabase, s.sslmode, s.sslRootCert, s.poolerHost, s.poolerPort, s.replicaHost, s.replicaPort]).toEqual([
      true,
      "verify-full",
      "certs/root.crt",
      "abc123.pooler.tsdb.cloud.timescale.com",
      6543,
      "abc123-ro.tsdb.cloud.timescale.com",
      5432,
    ]);
  });

  test("sslmode verify-ca without a CA certificate is refused, naming the setting; verify-full may use the public CAs", () => {
    expect(problemsOf({ ...EXTERNAL, sslmode: "verify-ca" })).toEqual([
      "[tsdb:sslRootCert] is required with tsdb:sslmode verify-ca: the CA certificate that signed the server's certificate, as a PEM file path or its text (your service's console offers it for download); or use verify-full, which can rely on the public CAs.",
    ]);
    expect(problemsOf({ ...EXTERNAL, sslmode: "verify-full" })).toEqual([]);
  });

  test("existing database, pooler and replica are refused in docker mode, one line each", () => {
    expect(problemsOf({ existingDatabase: true, poolerHost: "pooler.example.com", replicaHost: "replica.example.com" })).toEqual([
      "[tsdb:existingDatabase] applies to external mode only (the container is created with its own database and has no pooler or replica), got true with tsdb:mode docker.",
      '[tsdb:poolerHost] applies to external mode only (the container is created with its own database and has no pooler or replica), got "pooler.example.com" with tsdb:mode docker.',
      '[tsdb:replicaHost] applies to external mode only (the container is created with its own database and has no pooler or replica), got "replica.example.com" with tsdb:mode docker.',
    ]);
  });

  test("a bad pooler port names the key and what is allowed", () => {
    expect(problemsOf({ ...EXTERNAL, poolerHost: "p", poolerPort: "0" })).toEqual(['[tsdb:poolerPort] must be an integer port from 1 to 65535, got "0".']);
  });
});
