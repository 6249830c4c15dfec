/**
 * Telling a direct PostgreSQL session from one through a connection pooler (PgBouncer, as managed services
 * offer it). Migrations hold a session advisory lock and `SET ROLE` for the whole run; in PgBouncer's
 * transaction mode consecutive statements may run on different server sessions, so the lock and the role
 * silently stop applying. We refuse instead.
 *
 * The check: at login a server announces its process id (BackendKeyData); a pooler answers the login itself
 * and announces an id of its own (PgBouncer: random cancel-key bytes, src/client.c), so it differs from the
 * `pg_backend_pid()` of the server session that runs our statement. Serialized by value into the migrations
 * hook (through ../migrations/core.ts): no runtime imports.
 */
import type { Client } from "pg";

/** The one-line refusal for `what` (e.g. "Migrations") through a pooler at `where`. */
export function poolerRefusal(what: string, where: string): string {
  return (
    `${what} need a direct connection to PostgreSQL, but ${where} is a connection pooler (the server session ` +
    `answering is not the one announced at login): session advisory locks and SET ROLE do not survive transaction ` +
    `pooling. Point them at the server itself (tsdb:externalHost/externalPort) and give the pooler as tsdb:poolerHost/poolerPort.`
  );
}

/** Whether `client` talks to PostgreSQL through a pooler (see the module comment). */
export async function isPooled(client: Client): Promise<boolean> {
  const announced = (client as unknown as { processID?: number | null }).processID;
  if (announced === undefined || announced === null) return false;
  const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  return Number(rows[0]?.pid) !== announced;
}

/** Throws {@link poolerRefusal} when `client` is pooled. */
export async function assertDirectSession(client: Client, what: string): Promise<void> {
  if (await isPooled(client)) {
    const c = client as unknown as { host?: string; port?: number };
    throw new Error(poolerRefusal(what, `${c.host}:${c.port}`));
  }
}
