/**
 * Opening a connection to PostgreSQL as libpq would: node-postgres settings from a connection string
 * (./connectionString.ts) or a ConnectionInfo (./connectionInfo.ts), libpq's sslmode mapped to TLS options
 * (./tls.ts) with prefer/allow's second attempt, one-line explanations of TLS failures and silent servers, and
 * {@link withClient}, which every command, the loader and the tests use (lib/db.ts re-exports it beside the
 * transaction and lost-connection helpers). The migrations hook opens its client with {@link openClient}.
 *
 * Passwords stay out of logs, `JSON.stringify` and stack traces: every settings object made here carries
 * `password` as a non-enumerable property (as node-postgres's Client does), so a copy must go through
 * {@link withSettings} or ./connectionInfo.ts's `connectionWith`, never a spread, which would drop it.
 *
 * Serialized by value into the migrations hook (providers/MigrationsProvider.ts): `pg` is passed in or imported
 * lazily, and the other imports are small local modules with no runtime imports of their own.
 */
import type { Client, ClientConfig } from "pg";
import { type ConnectionInfo, hidePassword } from "./connectionInfo";
import { type ResolvedConnection, resolveConnection } from "./connectionString";
import { explainTlsError, sslFallbackOptions, sslOptions, tlsRefused } from "./tls";

/**
 * Where to connect: a connection string as libpq reads it (a `postgresql://` URL or `key=value` pairs, with the
 * PG* variables for what it leaves out: ./connectionString.ts), or client settings.
 */
export type Connection = string | ClientConfig;

/** node-postgres settings, plus what libpq would do when the first attempt is refused (see {@link openClient}). */
export interface TsdbClientConfig extends ClientConfig {
  /** `ssl` for a second attempt after the server refused the first's (sslmode prefer and allow). */
  sslFallback?: ClientConfig["ssl"];
  /** The settings came from a connection string: failure advice names what to put in it. */
  fromConnectionString?: boolean;
}

/** node-postgres settings for a `ConnectionInfo`, mapping libpq's sslmode (and the CA) to `ssl` (./tls.ts). */
export function clientConfig(info: ConnectionInfo, overrides: Partial<ClientConfig> = {}): TsdbClientConfig {
  const target = { sslmode: info.sslmode, sslrootcert: info.sslrootcert, host: info.host };
  const fallback = sslFallbackOptions(target);
  const resolved = info as Partial<ResolvedConnection>;
  const config: TsdbClientConfig = {
    host: info.host,
    port: info.port,
    database: info.database,
    user: info.user,
    ssl: sslOptions(target),
    ...(fallback === undefined ? {} : { sslFallback: fallback }),
    ...(resolved.applicationName ? { application_name: resolved.applicationName } : {}),
    ...(resolved.fromConnectionString ? { fromConnectionString: true } : {}),
  };
  return withSettings(hidePassword(config, info.password), overrides);
}

/**
 * `base` with `changes` laid over it, as `{ ...base, ...changes }` would be, except that the password (either's,
 * `changes` first) stays non-enumerable: a spread drops a non-enumerable property.
 */
export function withSettings(base: TsdbClientConfig, changes: TsdbClientConfig = {}): TsdbClientConfig {
  const password = changes.password !== undefined ? changes.password : base.password;
  const merged: TsdbClientConfig = { ...base, ...changes };
  delete merged.password;
  return hidePassword(merged, password);
}

/** Client settings for `connection`: a string is read as libpq reads it; a ConnectionInfo gets its sslmode mapped. */
export function connectionConfig(connection: Connection | ConnectionInfo): TsdbClientConfig {
  if (typeof connection === "string") return clientConfig(resolveConnection(connection));
  // A ConnectionInfo passed as settings: its sslmode means nothing to node-postgres, so map it here.
  return "sslmode" in connection ? clientConfig(connection as ConnectionInfo) : connection;
}

/**
 * Keeps a dropped connection from crashing the process: node-postgres emits 'error' on the client when the
 * server ends the session (restart, `pg_terminate_backend`), and an 'error' event with no listener is thrown
 * by Node as "Unhandled 'error' event". The pending query is rejected with the same error, so callers still
 * see it there; this listener only swallows the duplicate event.
 */
export function guardConnectionErrors(client: Client): void {
  client.on("error", () => undefined);
}

/** Opens one client, runs `fn`, and always closes the client. */
export async function withClient<T>(connection: Connection, fn: (client: Client) => Promise<T>): Promise<T> {
  const pg = (await import("pg")).default;
  const timeoutMs = connectTimeoutMs();
  const client = await openClient(pg, withSettings({ application_name: "tsdb-stack", connectionTimeoutMillis: timeoutMs }, connectionConfig(connection)));
  try {
    await answersWithin(client, timeoutMs);
    return await fn(client);
  } finally {
    // After a lost connection `end` has nothing to close; its error must not replace the one from `fn`.
    await client.end().catch(() => undefined);
  }
}

/**
 * A connected client for `config`, as libpq connects: with sslmode prefer, TLS first and plain text when the
 * server refuses TLS; with allow, the other way round (`sslFallback`). Errors are explained as by
 * {@link connectExplained}. `pg` is passed in: the migrations hook requires it where it runs.
 */
export async function openClient(pg: typeof import("pg"), config: TsdbClientConfig): Promise<Client> {
  const { sslFallback, fromConnectionString, ...rest } = config;
  // The rest-spread leaves the non-enumerable password behind: carry it over.
  const first: ClientConfig = hidePassword(rest, config.password);
  const attempt = async (settings: ClientConfig): Promise<Client> => {
    const client = new pg.Client(settings);
    guardConnectionErrors(client);
    await connectExplained(client, fromConnectionString === true);
    return client;
  };
  try {
    return await attempt(first);
  } catch (err) {
    if (sslFallback === undefined || !tlsRefused((err as { cause?: unknown }).cause ?? err, first.ssl)) throw err;
    return attempt(withSettings(first, { ssl: sslFallback }));
  }
}

/**
 * How long a connection may take to start, and its first query to be answered (a server that accepts
 * connections and never answers hung `db status`, `validate` and `doctor` forever): libpq's `PGCONNECT_TIMEOUT`
 * (seconds; 0 waits forever, values under 2 count as 2, as in libpq), else 10 s.
 */
export function connectTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.PGCONNECT_TIMEOUT?.trim();
  if (given === undefined || given === "" || !/^\d+$/.test(given)) return 10_000;
  const seconds = Number(given);
  return seconds === 0 ? 0 : Math.max(seconds, 2) * 1000;
}

function silentServer(client: Client, what: string, timeoutMs: number): Error {
  const c = client as unknown as { host?: string; port?: number };
  return new Error(
    `${c.host}:${c.port} accepted the connection but ${what} within ${timeoutMs / 1000} s: check that a PostgreSQL server or pooler ` +
      "listens there and is not stuck (PGCONNECT_TIMEOUT=<seconds> waits longer).",
  );
}

/** `client.connect()`, with a TLS failure (wrong CA, wrong host name) or a silent server turned into one line saying so. */
export async function connectExplained(client: Client, fromConnectionString = false): Promise<void> {
  try {
    await client.connect();
  } catch (err) {
    const c = client as unknown as { host?: string; port?: number; ssl?: unknown; _connectionTimeoutMillis?: number };
    if (/connection timeout|timeout expired/.test((err as Error).message ?? "") && c._connectionTimeoutMillis) {
      throw silentServer(client, "did not complete the PostgreSQL handshake", c._connectionTimeoutMillis);
    }
    const caGiven = typeof c.ssl === "object" && c.ssl !== null && "ca" in c.ssl;
    throw explainTlsError(err, `${c.host}:${c.port}`, caGiven, fromConnectionString) ?? err;
  }
}

/**
 * One round trip within `timeoutMs` after connecting: a pooler that completes the handshake and then queues
 * every query (PgBouncer with no server to hand out) fails here with one line instead of hanging the command.
 * Longer statements after it are not limited: loads and restores run as long as they need.
 */
async function answersWithin(client: Client, timeoutMs: number): Promise<void> {
  if (timeoutMs === 0) return;
  try {
    await client.query({ text: "SELECT 1", query_timeout: timeoutMs } as unknown as string);
  } catch (err) {
    if (!/Query read timeout/.test((err as Error).message ?? "")) throw err;
    // The server never answered: drop the socket, `end()` would wait for it too.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    throw silentServer(client, "did not answer a query", timeoutMs);
  }
}
