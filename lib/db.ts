/**
 * All `pg` access goes through these helpers (after node-postgres and graphile-migrate): one client per
 * unit of work, always closed (`withClient`, from lib/postgres/client.ts); transactions that roll back on any
 * error; session advisory locks that are always released; what a lost connection or a HINT means. `pg` is
 * loaded lazily so that modules importing this one can be captured by Pulumi's dynamic-provider serializer
 * without dragging the driver into the closure.
 */
import type { Client } from "pg";

// Opening connections (connection strings, TLS, libpq's second attempt, timeouts) lives in lib/postgres/client.ts;
// re-exported here so that every caller keeps one import for `withClient` and `withTransaction`.
export { type Connection, guardConnectionErrors, withClient } from "./postgres/client";
export type { ConnectionInfo } from "./postgres/connectionInfo";

/**
 * The server went away under a command (restart, `pg_terminate_backend`, network): `during` names what was
 * interrupted and `committed` what of it is in the database, so a CLI can print one line and a hook one error.
 * A plain Error with fields, not a subclass: Pulumi's closure serializer turns classes into functions calling
 * `Error.call(this)`, which loses the message of an Error subclass inside the migrations hook.
 */
export interface ConnectionLostError extends Error {
  connectionLost: true;
  during: string;
  committed: string;
}

/** A ConnectionLostError: `connection lost during <during>; <committed>`. */
export function connectionLost(during: string, committed = "nothing was committed", cause?: unknown): ConnectionLostError {
  const err = new Error(`connection lost during ${during}; ${committed}`, { cause }) as ConnectionLostError;
  err.name = "ConnectionLostError";
  err.connectionLost = true;
  err.during = during;
  err.committed = committed;
  return err;
}

/** True for an error made by `connectionLost` (it already says what was interrupted). */
export function isConnectionLostError(err: unknown): err is ConnectionLostError {
  return (err as Partial<ConnectionLostError> | undefined)?.connectionLost === true;
}

/**
 * SQLSTATEs of a session the server ended: admin shutdown or pg_terminate_backend (57P01), crash shutdown
 * (57P02), connection failure / does not exist / transaction resolution unknown (08006, 08003, 08007).
 * Not the connect-time ones (57P03 starting up, 08001, 08004): those are "could not connect", said as is.
 */
const LOST_CODES = /^(57P0[12]|0800[367])$/;
/**
 * Socket errors of a connection that ended under a command (ECONNREFUSED is a failed connect, not a loss).
 * A pattern, not a Set: Pulumi's closure serializer copies a captured Set as a plain object holding
 * Set.prototype.has with no set behind it, so `has` threw "Method Set.prototype.has called on incompatible
 * receiver" inside the migrations hook and hid every SQL error (test/providers/hooks-fresh-host.test.ts).
 */
const LOST_SOCKET_CODES = /^(ECONNRESET|EPIPE)$/;
const LOST_MESSAGES = /Connection terminated|not queryable|terminating connection|server closed the connection/i;

/** True when `err` (or its cause) means the connection to the server was lost, not that a statement failed. */
export function isConnectionLost(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (isConnectionLostError(e)) return true;
    if (typeof e.code === "string" && (LOST_CODES.test(e.code) || LOST_SOCKET_CODES.test(e.code))) return true;
    if (typeof e.message === "string" && LOST_MESSAGES.test(e.message)) return true;
  }
  return false;
}

/** Text on one line: every line break with the spaces around it becomes one space. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** PostgreSQL's HINT carried by `err` or an error it wraps (`cause`), on one line; undefined when there is none. */
export function pgHint(err: unknown): string | undefined {
  for (let e = err as { hint?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.hint === "string" && e.hint.trim() !== "") return oneLine(e.hint);
  }
  return undefined;
}

/**
 * `message (hint: <PostgreSQL's HINT>)` when `err` carries a HINT that `message` does not hold yet: the hint is
 * often the fix ("Please preload the timescaledb library via shared_preload_libraries ... restart").
 */
export function withHint(message: string, err: unknown): string {
  const hint = pgHint(err);
  return hint && !oneLine(message).includes(hint) ? `${message} (hint: ${hint})` : message;
}

/**
 * The one line a CLI prints for `err`: a lost connection (here, or in pg_dump/pg_restore output) as
 * `connection lost during <during>; <committed>`; anything else as its message on one line, with PostgreSQL's
 * HINT when it had one.
 */
export function failureLine(err: unknown, during: string, committed = "nothing was committed"): string {
  if (isConnectionLostError(err)) return err.message;
  if (isConnectionLost(err)) return connectionLost(during, committed).message;
  return oneLine(withHint(String(err instanceof Error ? err.message : err), err));
}

/** Runs `fn` inside BEGIN/COMMIT on `client`; any error rolls back and is re-thrown. */
export async function withTransaction<T>(client: Client, fn: (client: Client) => Promise<T>): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

