/**
 * The loader's answer to losing a deadlock (PostgreSQL 40P01) to a concurrent load, with a client that always
 * deadlocks: regular files are retried, the retry holding the target's load lock exclusively; a pipe is not
 * retried (it cannot be read twice). Real concurrent loads: test/engines/loader-concurrency.test.ts.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Client } from "pg";
import { describe, expect, test } from "vitest";
import { DEADLOCK_ATTEMPTS, LOAD_LOCK_CLASS, loadOhlcv } from "../../lib/loader/OhlcvLoader";

function deadlockingClient(): { client: Client; statements: string[] } {
  const statements: string[] = [];
  const client = {
    query: async (sql: string, params?: unknown[]) => {
      statements.push(params ? `${sql} ${JSON.stringify(params)}` : sql);
      if (sql.includes("pg_advisory_xact_lock")) throw Object.assign(new Error("deadlock detected"), { code: "40P01" });
      return { rows: [], rowCount: 0 };
    },
    escapeIdentifier: (s: string) => `"${s}"`,
  };
  return { client: client as unknown as Client, statements };
}

describe("a load that loses a deadlock", () => {
  test("runs again with the target's load lock held exclusively, and gives up after DEADLOCK_ATTEMPTS with one clear line", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "deadlock-")), "bars.csv");
    fs.writeFileSync(file, "time,symbol,timeframe,open,high,low,close\n2024-01-02,AAPL,1d,1,1,1,1\n");
    const { client, statements } = deadlockingClient();
    await expect(loadOhlcv(client, { files: [file] })).rejects.toThrow(
      `deadlock with a concurrent load of the same bars in ${DEADLOCK_ATTEMPTS} attempts; nothing was loaded: run it again once the other load has finished.`,
    );
    const locks = statements.filter((s) => s.includes("pg_advisory_xact_lock"));
    expect(locks).toEqual([
      `SELECT pg_advisory_xact_lock_shared($1, hashtext($2)) [${LOAD_LOCK_CLASS},"market_data.ohlcv_bars"]`,
      ...Array<string>(DEADLOCK_ATTEMPTS - 1).fill(`SELECT pg_advisory_xact_lock($1, hashtext($2)) [${LOAD_LOCK_CLASS},"market_data.ohlcv_bars"]`),
    ]);
    expect(statements.filter((s) => s === "ROLLBACK")).toHaveLength(DEADLOCK_ATTEMPTS);
  });

  test("from a pipe is not run again: it could not be read a second time", async () => {
    const { client, statements } = deadlockingClient();
    await expect(loadOhlcv(client, { files: ["/dev/stdin"] })).rejects.toThrow(
      "deadlock with a concurrent load of the same bars (a pipe cannot be read again, so no retry); nothing was loaded",
    );
    expect(statements.filter((s) => s === "BEGIN")).toHaveLength(1);
  });
});
