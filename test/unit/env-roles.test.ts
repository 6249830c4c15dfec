/**
 * `tsdb env --role replica` (issue 21, item 3): the read-only role on the read replica, from a stack's outputs;
 * refused with what to set when there is none. The own-server path (--url --role) runs on real servers in
 * test/engines/cli-own-server-service.test.ts.
 */
import { describe, expect, test } from "vitest";
import { envVariables, renderEnvFile } from "../../lib/ops/envFile";

const base = {
  host: "db.example.com",
  port: 5432,
  database: "tsdb",
  sslmode: "verify-full",
  urls: {
    migrator: "postgresql://tsdb_migrator:m1@db.example.com:5432/tsdb?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt",
    app: "postgresql://tsdb_app:a1@pool.example.com:6432/tsdb?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt",
    readonly: "postgresql://tsdb_readonly:r1@pool.example.com:6432/tsdb?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt",
  },
};

describe("env --role replica", () => {
  test("the read-only role on the replica's host and port, with the CA", () => {
    const output = { ...base, urls: { ...base.urls, replica: "postgresql://tsdb_readonly:r1@replica.example.com:5433/tsdb?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.crt" } };
    expect(Object.fromEntries(envVariables(output, "replica"))).toEqual({
      DATABASE_URL: "postgresql://tsdb_readonly:r1@replica.example.com:5433/tsdb?sslmode=verify-full",
      PGHOST: "replica.example.com",
      PGPORT: "5433",
      PGDATABASE: "tsdb",
      PGUSER: "tsdb_readonly",
      PGPASSWORD: "r1",
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: "/etc/ca.crt",
    });
  });

  test("a stack without a replica is refused, saying what to set", () => {
    expect(() => renderEnvFile(base, "replica", "prod")).toThrow("there is no read replica: set tsdb:replicaHost on the stack, or pass --replica host:port with --url");
  });
});
