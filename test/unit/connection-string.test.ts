/**
 * lib/postgres/connectionString.ts: connections read as libpq reads them (issue 21, item 1). What the string sets
 * wins; the PG* variables fill in what it leaves out; then libpq's defaults. The engine tests
 * (test/engines/connections-libpq.test.ts) connect with these on real servers.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { parseConnectionString, resolveConnection } from "../../lib/postgres/connectionString";

/** The connection with its (non-enumerable) password as a plain field, to compare whole objects. */
const visible = <T extends { password: string }>(c: T) => ({ ...c, password: c.password });

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("connection strings: URLs and libpq key=value pairs", () => {
  test.each([
    ["postgresql://u:p%40ss@db.example.com:6432/market?sslmode=require&application_name=x", { host: "db.example.com", port: "6432", dbname: "market", user: "u", password: "p@ss", sslmode: "require", application_name: "x" }],
    ["postgres://u@[fd00::5]/market", { host: "fd00::5", dbname: "market", user: "u" }],
    ["postgresql:///market?host=/var/run/postgresql", { host: "/var/run/postgresql", dbname: "market" }],
    ["host=db.example.com port=6432 dbname=market user=u", { host: "db.example.com", port: "6432", dbname: "market", user: "u" }],
    ["host = db  password = 'it\\'s'", { host: "db", password: "it's" }],
    ["password='a b\\'c\\\\d' dbname=x", { password: "a b'c\\d", dbname: "x" }],
  ])("%s", (text, keywords) => {
    expect(parseConnectionString(text)).toEqual(keywords);
  });

  test.each([
    ["notaurl", /^the connection is not a postgresql:\/\/user@host:port\/database URL or libpq key=value pairs/],
    ["mysql://u@h/db", /^the connection is not a postgresql:\/\//],
    ["host=db databse=x", /"databse", which is not a libpq connection keyword/],
    ["host=db password='secret", /value of "password" has no closing quote/],
    ["postgresql://u@h/db?sslmod=require", /"sslmod", which is not a libpq connection keyword/],
  ])("%s is refused in one line that does not repeat the string", (text, message) => {
    let error: Error | undefined;
    try {
      parseConnectionString(text);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain("secret");
    expect((error as { badConnectionString?: boolean }).badConnectionString).toBe(true);
  });
});

describe("resolveConnection: the string, then PG* variables, then libpq's defaults", () => {
  test("what the URL leaves out comes from PGPASSWORD, PGSSLMODE, PGSSLROOTCERT and PGAPPNAME (a .env written by tsdb env)", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "conn-unit-")), "root.crt");
    fs.writeFileSync(file, CA);
    const env = { PGPASSWORD: "pw", PGSSLMODE: "verify-full", PGSSLROOTCERT: file, PGAPPNAME: "ingest", PGHOST: "ignored", PGDATABASE: "ignored" };
    expect(visible(resolveConnection("postgresql://market_app@db.example.com:6432/market", env))).toEqual({
      host: "db.example.com",
      port: 6432,
      database: "market",
      user: "market_app",
      password: "pw",
      sslmode: "verify-full",
      sslrootcert: CA,
      sslrootcertFile: file,
      applicationName: "ingest",
      fromConnectionString: true,
    });
  });

  test("the string wins over the variables", () => {
    expect(resolveConnection("host=a port=1 dbname=d user=u password=x sslmode=disable", { PGHOST: "b", PGPORT: "2", PGDATABASE: "e", PGUSER: "v", PGPASSWORD: "y", PGSSLMODE: "require" })).toMatchObject({
      host: "a", port: 1, database: "d", user: "u", password: "x", sslmode: "disable",
    });
  });

  test("nothing given: the PG* variables alone, with libpq's defaults (port 5432, database named like the user, sslmode prefer)", () => {
    expect(visible(resolveConnection(undefined, { PGHOST: "db", PGUSER: "alice", HOME: "/nonexistent" }))).toEqual({
      host: "db", port: 5432, database: "alice", user: "alice", password: "", sslmode: "prefer", fromConnectionString: true,
    });
  });

  test("libpq's ~/.postgresql/root.crt is the CA when nothing names one", () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "conn-home-"));
    fs.mkdirSync(path.join(home, ".postgresql"));
    fs.writeFileSync(path.join(home, ".postgresql", "root.crt"), CA);
    expect(resolveConnection("postgresql://u@db/x", { HOME: home }).sslrootcert).toBe(CA);
  });

  test.each([
    ["postgresql://u@db/x?sslmode=sometimes", {}, /sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, got "sometimes"/],
    ["postgresql://u@db/x", { PGPORT: "54x" }, /port must be a number from 1 to 65535, got "54x"/],
    ["postgresql://u@db/x?sslrootcert=/nonexistent/ca.crt", {}, /sslrootcert \/nonexistent\/ca\.crt cannot be read \(ENOENT\)/],
    ["postgresql://u@db/x?sslrootcert=system&sslmode=require", {}, /sslrootcert=system needs sslmode=verify-full/],
  ])("%s %j is refused naming the keyword", (text, env, message) => {
    expect(() => resolveConnection(text, env)).toThrow(message);
  });
});
