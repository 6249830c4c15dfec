/**
 * Updating TimescaleDB after an image bump (issue 20, defect 8), on native TimescaleDB 2.23.0: the admin's module
 * (lib/postgres/timescaleAdmin.ts) run with sessions whose every statement is recorded. A database that claims
 * 2.22.1 (test/fixtures/timescaleVersions.ts) stands for one made by the older image.
 */
import type { Client } from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { withClient } from "../../lib/db";
import { openClient } from "../../lib/postgres/client";
import { READ_WITHOUT_LOADING, UPDATE_EXTENSION_SQL, administerTimescaleDb } from "../../lib/postgres/timescaleAdmin";
import { type Engine, startTimescaleServer } from "../fixtures/engines";
import { rows } from "../fixtures/schema";
import { pretendTimescaleDbVersion } from "../fixtures/timescaleVersions";

/** Each session `connect` opened: its startup options and the statements it sent, in order. */
type Session = { options?: string; statements: string[] };

describe("the admin updates TimescaleDB when the server has a newer one, on native TimescaleDB", () => {
  let server: Engine;
  let n = 0;

  /** A new database with the extension and a NOLOGIN owner role; `claims` makes its extension say that version. */
  async function database(claims?: string): Promise<string> {
    const name = `update_${++n}`;
    const url = await server.createDatabase(name);
    await withClient(url, (c) => c.query("CREATE EXTENSION timescaledb"));
    if (claims) await pretendTimescaleDbVersion(url, claims);
    return name;
  }

  /** A `connect` for `database` as the admin that records every session and statement. */
  function recorded(database: string, login?: { user: string; password: string }): { connect: (options?: string) => Promise<Client>; sessions: Session[] } {
    const sessions: Session[] = [];
    const connect = async (options?: string) => {
      const pg = (await import("pg")).default;
      const client = await openClient(pg, { ...server.config(database), ...login, ...(options ? { options } : {}) });
      const session: Session = { ...(options ? { options } : {}), statements: [] };
      sessions.push(session);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        session.statements.push(typeof args[0] === "string" ? args[0] : String((args[0] as { text: string }).text));
        return query(...args);
      };
      return client;
    };
    return { connect, sessions };
  }

  beforeAll(async () => {
    server = await startTimescaleServer();
    await withClient(server.url, (c) => c.query("CREATE ROLE market_owner NOLOGIN"));
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  test("a database at 2.22.1 is updated to 2.23.0 by ALTER EXTENSION as the first and only statement of a new session", async () => {
    const db = await database("2.22.1");
    const { connect, sessions } = recorded(db);
    const result = await administerTimescaleDb(connect, db, "market_owner");
    expect([result.before, result.after, result.updated]).toEqual([
      { installed: "2.22.1", available: "2.23.0" },
      { installed: "2.23.0", available: "2.23.0" },
      true,
    ]);
    expect(sessions).toHaveLength(3);
    expect(sessions[0]!.options).toBe(READ_WITHOUT_LOADING);
    expect(sessions[1]).toEqual({ statements: [UPDATE_EXTENSION_SQL] });
    // The extension works at its new version, and the update's re-created routines are the owner's only too.
    expect(await rows(server.urlFor(db), "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).toEqual([{ extversion: "2.23.0" }]);
    expect(result.jobApi).toMatchObject({ status: "restricted" });
    expect(await rows(server.urlFor(db), "SELECT has_function_privilege('public', 'add_job(regproc,interval,jsonb,timestamptz,boolean,regproc,boolean,text,text)', 'EXECUTE') AS public")).toEqual([
      { public: false },
    ]);
  });

  test("why it must be the first statement: after any other one the update is refused (or the old library is missing)", async () => {
    const db = await database("2.22.1");
    const error = await withClient(server.urlFor(db), (c) => c.query(UPDATE_EXTENSION_SQL)).catch((e: Error) => e.message);
    expect(error).toMatch(/could not access file "\$libdir\/timescaledb-2\.22\.1"|cannot be updated after the old version has already been loaded/);
  });

  test("versions that match: no ALTER EXTENSION is sent, only the read and the job API's grants", async () => {
    const db = await database();
    const { connect, sessions } = recorded(db);
    const result = await administerTimescaleDb(connect, db, "market_owner");
    expect([result.before, result.updated]).toEqual([{ installed: "2.23.0", available: "2.23.0" }, false]);
    expect(sessions).toHaveLength(2);
    expect(sessions.flatMap((s) => s.statements).filter((s) => /ALTER\s+EXTENSION/i.test(s))).toEqual([]);
  });

  test("an admin that does not own the extension (a managed service's) sends no ALTER EXTENSION, GRANT or REVOKE, and says why", async () => {
    await withClient(server.url, (c) => c.query("CREATE ROLE service_admin LOGIN CREATEROLE PASSWORD 'svc-pw'"));
    const current = await database();
    const asService = { user: "service_admin", password: "svc-pw" };
    const same = recorded(current, asService);
    const result = await administerTimescaleDb(same.connect, current, "market_owner");
    expect(result.jobApi).toEqual({ status: "not-owner", detail: expect.stringMatching(/^only the timescaledb extension's owner \(postgres\) or a superuser can take the job API/) });
    expect(same.sessions.flatMap((s) => s.statements).filter((s) => /ALTER\s+EXTENSION|GRANT|REVOKE/i.test(s))).toEqual([]);
    // Behind on its version: still no ALTER (the next session then meets the missing 2.22.1 library of this server;
    // a real image keeps its old libraries, and the result says the update was left: `updateLeft`).
    const behind = await database("2.22.1");
    const old = recorded(behind, asService);
    const error = await administerTimescaleDb(old.connect, behind, "market_owner").catch((e: Error) => e.message);
    expect(old.sessions.flatMap((s) => s.statements).filter((s) => /ALTER\s+EXTENSION/i.test(s))).toEqual([]);
    expect(error).toMatch(/timescaledb-2\.22\.1/);
  });

  test.each([
    ["a database newer than the server (an image downgrade)", "2.24.0", /^database update_\d+ has TimescaleDB 2\.24\.0, newer than the server's 2\.23\.0: an extension cannot be downgraded; use an image with TimescaleDB 2\.24\.0 or newer$/],
    ["a database without the extension", null, /^the timescaledb extension is not created in database update_\d+; create it first/],
  ])("%s fails with one line and changes nothing", async (_what, claims, message) => {
    const db = claims === null ? await server.createDatabase(`update_${++n}`).then(() => `update_${n}`) : await database(claims);
    const { connect, sessions } = recorded(db);
    const error = await administerTimescaleDb(connect, db, "market_owner").catch((e: Error) => e);
    expect(String((error as Error).message)).toMatch(message);
    expect(String((error as Error).message)).not.toContain("\n");
    expect(sessions).toHaveLength(1);
  });
});
