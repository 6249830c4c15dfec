/**
 * `DROP DATABASE ... WITH (FORCE)` for databases a restore or verify made, waiting out the sessions that leave
 * on their own.
 *
 * Why wait: a database with TimescaleDB has a scheduler and job workers logged in as the bootstrap superuser.
 * TimescaleDB's loader stops the scheduler before every DROP DATABASE (timescaledb 2.23.0
 * src/loader/loader.c `stop_workers_on_db_drop`), but it waits at most 2 s for the launcher's answer
 * (src/loader/bgw_message_queue.c, BGW_ACK_RETRIES x BGW_ACK_WAIT_INTERVAL), and the stopped scheduler only
 * signals its running jobs (src/bgw/scheduler.c `terminate_all_jobs_and_release_workers`). A superuser drops
 * the database anyway; any other owner gets "must be a superuser to terminate superuser process" (PostgreSQL's
 * TerminateOtherDBBackends) while one of those workers is still there, and the half-restored database stayed
 * behind. The same drop a moment later succeeds.
 */
import type { Client } from "pg";

/** How long a drop keeps retrying by default: the loader's 2 s wait, several times over. */
const DROP_WAIT_MS = 15_000;
const RETRY_EVERY_MS = 250;

/**
 * 42501: a session of a superuser (a background worker) that this login may not end. Other refusals are not
 * waited out: WITH (FORCE) has already given sessions PostgreSQL's 5 s to leave, and a prepared transaction
 * (55006) never leaves by itself.
 */
function workerStillLeaving(err: unknown): boolean {
  return (err as { code?: string }).code === "42501";
}

/**
 * Drops `name` (IF EXISTS, WITH FORCE), retrying for up to `waitMs` while superuser sessions it may not end are
 * still there; after that, or on any other error, throws the server's error.
 */
export async function dropDatabaseForce(client: Client, name: string, waitMs = DROP_WAIT_MS): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      return;
    } catch (err) {
      if (!workerStillLeaving(err) || Date.now() + RETRY_EVERY_MS > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS));
    }
  }
}
