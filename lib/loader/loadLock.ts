/**
 * The load's locks: its advisory lock on the target, the deadlock retry, and the lock timeout's error naming
 * the session a load waited for.
 */
import type { Client } from "pg";
import { describeHolders, holdersOf } from "../migrations/core";

/**
 * How many times a load runs when it loses a deadlock (PostgreSQL 40P01) to a concurrent load writing the same
 * bars in another order (a COPY streams in file order, which no lock order can fix): the loser's transaction is
 * rolled back whole and the load runs again, alone (LOAD_LOCK_CLASS), finding the other load's bars present.
 */
export const DEADLOCK_ATTEMPTS = 3;

/**
 * First key of the transaction advisory lock (classid, hashtext(target)) every load takes on its target: shared
 * normally, so loads run in parallel; exclusive when retrying after a deadlock, so the retry waits for the
 * loads under way to commit instead of meeting them again. 0x74736462 is "tsdb" in ASCII; PostgreSQL keeps
 * two-int4 keys apart from bigint keys such as the migration runner's (lib/migrations/core.ts).
 */
export const LOAD_LOCK_CLASS = 0x74736462;

/**
 * How long a load waits for a lock by default, as the migration runner does: any role may take the load's
 * advisory lock (the read-only one included), and a session that inserted one of the load's bars without
 * committing holds it up; a load used to wait for either forever, silently (issue 23.22).
 */
export const DEFAULT_LOAD_LOCK_TIMEOUT_MS = 60_000;

/** What a load waits for when its lock timeout strikes, and the pg_locks rows of whoever holds it. */
export type LockWait = { what: string; where: string; params: unknown[] };

/** The one-line error for a load that waited `timeoutMs` for `wait`, naming the holders. */
export async function loadLockTimeout(client: Client, wait: LockWait, timeoutMs: number, cause: unknown): Promise<Error> {
  const holders = await holdersOf(client, wait.where, wait.params).catch(() => []);
  return new Error(
    `waited ${Math.round(timeoutMs / 1000)} s for ${wait.what} held by ${describeHolders(holders)}; gave up, nothing was loaded. ` +
      "Run again when that session is done (or end it: SELECT pg_terminate_backend(<pid>)), or give a longer --lock-timeout.",
    { cause },
  );
}

/** The load lock, as the lock timeout's error names it: a two-int4 advisory key shows in pg_locks as classid, objid (hashtext's int4 as an unsigned oid), objsubid 2. */
export function advisoryLockWait(target: string): LockWait {
  return {
    what: `the load lock on ${target} (advisory lock ${LOAD_LOCK_CLASS}, hashtext('${target}'))`,
    where: `l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid::bigint = $1 AND l.objid::bigint = (hashtext($2)::bigint & 4294967295)`,
    params: [LOAD_LOCK_CLASS, target],
  };
}

/**
 * Once the load lock is held, a wait is for the table, or for a bar another session wrote and has not
 * committed: its session holds a write lock on the table (on a hypertable too, besides its chunk's).
 */
export function tableLockWait(target: string, table: string): LockWait {
  return {
    what: `a lock on ${target} (a bar of this load that another session wrote and has not committed, or the table itself)`,
    where: `l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.mode <> 'AccessShareLock'`,
    params: [table],
  };
}

/** Sets the transaction's lock timeout and takes the load lock: shared, or exclusive when the load runs `alone`. */
export async function takeLoadLock(client: Client, target: string, alone: boolean, timeoutMs: number): Promise<void> {
  await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.round(timeoutMs))}ms`]);
  await client.query(`SELECT pg_advisory_xact_lock${alone ? "" : "_shared"}($1, hashtext($2))`, [LOAD_LOCK_CLASS, target]);
}
