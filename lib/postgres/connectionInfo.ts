/**
 * The connection contract (ConnectionInfo) and the one place that turns a host into something a URL or a client
 * can use, and a URL back into its parts: every `postgresql://` and
 * `http://` URL the project builds (stack outputs, `adminUrl`, the dataset hook's DATABASE_URL, pgAdmin's
 * URL, the CLIs), and the host the Pulumi host reaches a published port at.
 *
 * IPv6 literals need brackets inside a URL (`postgresql://u:p@[::1]:5432/db`, RFC 3986 section 3.2.2);
 * without them Node's URL parser rejects the URL. Client settings (`host` of node-postgres, PGHOST) take the
 * bare address. No imports: dynamic providers capture this module by value (see providers/MigrationsProvider.ts),
 * and sdk/TsdbStackReference.ts, which needs only @pulumi/pulumi, reads URLs with {@link urlParts}.
 *
 * Passwords: objects made from a connection string or for a client carry `password` non-enumerable, as
 * node-postgres's Client does, so `JSON.stringify`, `util.inspect` and an error with the object attached never
 * show it. Copy them with {@link connectionWith}: a spread (`{ ...info }`) drops a non-enumerable property.
 */

/** Connection settings as stored in stack outputs and passed to hooks (re-exported by lib/db.ts). */
export interface ConnectionInfo {
  host: string;
  port: number;
  database: string;
  user: string;
  /** Non-enumerable on objects read from a connection string (see the module comment). */
  password: string;
  /** libpq sslmode: disable | allow | prefer | require | verify-ca | verify-full */
  sslmode: string;
  /** PEM of the CA that issued the server's certificate, for sslmode verify-ca / verify-full (./tls.ts). */
  sslrootcert?: string;
}

/** True for an IPv6 literal (bare, without brackets): it is the only host form containing ':'. */
export function isIpv6Literal(host: string): boolean {
  return host.includes(":") && !host.startsWith("[");
}

/** The host as it goes into a URL's authority: IPv6 literals in brackets, everything else unchanged. */
export function urlHost(host: string): string {
  return isIpv6Literal(host) ? `[${host}]` : host;
}

/** The bare host of a URL's host part: IPv6 brackets removed (Node keeps them in `hostname`: `[::1]`). */
export function bareHost(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
}

/**
 * Sets `password` on `target` as a non-enumerable property (undefined leaves it unset) and returns `target`:
 * present for whoever reads `target.password`, absent from JSON, `util.inspect`, spreads and `Object.keys`.
 */
export function hidePassword<T extends object>(target: T, password: unknown): T {
  if (password === undefined) return target;
  Object.defineProperty(target, "password", { value: password, enumerable: false, writable: true, configurable: true });
  return target;
}

/** A copy of `info` with `changes` (another database, host, user...), its password still non-enumerable. */
export function connectionWith<T extends ConnectionInfo>(info: T, changes: Partial<ConnectionInfo> = {}): T {
  const password = changes.password !== undefined ? changes.password : info.password;
  const copy = { ...info, ...changes } as T;
  delete (copy as { password?: unknown }).password;
  return hidePassword(copy, password);
}

/** What a `postgresql://` URL says, percent-decoded, host without brackets; empty strings for what it leaves out. */
export interface UrlParts {
  host: string;
  /** Undefined when the URL names none. */
  port?: number;
  database: string;
  user: string;
  /** Non-enumerable (see the module comment). */
  password: string;
  /** The query parameters (sslmode, sslrootcert...). */
  params: URLSearchParams;
}

/**
 * The parts of a URL this project built ({@link connectionUrl}: stack outputs, .env files). Commands read a
 * user's connection string with ./connectionString.ts instead, which also takes libpq's key=value form, the PG*
 * variables and defaults; this reader is for code that must stay dependency-free (the SDK, the .env writer).
 */
export function urlParts(url: string): UrlParts {
  const u = new URL(url);
  const parts = {
    host: bareHost(u.hostname),
    ...(u.port ? { port: Number(u.port) } : {}),
    database: decodeURIComponent(u.pathname.replace(/^\//, "")),
    user: decodeURIComponent(u.username),
    params: u.searchParams,
  };
  return hidePassword(parts as UrlParts, decodeURIComponent(u.password));
}

/**
 * An IP address in the one spelling Docker reports it back in (Go's net.IP.String(): lowercase, the longest run of
 * zero groups as "::", an IPv4-mapped IPv6 address as dotted IPv4), so a port published on it reads back as it was
 * sent (the docker provider compares `ports` ForceNew). Anything that is not an IP literal comes back unchanged.
 */
export function canonicalIp(address: string): string {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(address)) return address.split(".").map((p) => String(Number(p))).join(".");
  if (!address.includes(":")) return address;
  let host: string;
  try {
    // WHATWG URL serializes IPv6 hosts per RFC 5952, as Go does, except IPv4-mapped addresses (below).
    host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join(".");
}

/**
 * The address this machine connects to for a port published on `bindAddress`: the wildcard addresses
 * (0.0.0.0, ::) publish on every interface, so loopback of the same family reaches them.
 */
export function reachableHost(bindAddress: string): string {
  if (bindAddress === "0.0.0.0") return "127.0.0.1";
  if (canonicalIp(bindAddress) === "::") return "::1";
  return bindAddress;
}

/** A `postgresql://` URL for `info`, with user, password and database percent-encoded. */
export function connectionUrl(info: ConnectionInfo): string {
  const auth = `${encodeURIComponent(info.user)}:${encodeURIComponent(info.password)}`;
  return (
    `postgresql://${auth}@${urlHost(info.host)}:${info.port}/${encodeURIComponent(info.database)}` +
    `?sslmode=${encodeURIComponent(info.sslmode)}`
  );
}

/** `url` with `sslrootcert=<file>` added, as psql and libpq read the CA; unchanged without a file or TLS. */
export function withSslRootCert(url: string, file: string | undefined): string {
  if (!file || urlParts(url).params.get("sslmode") === "disable") return url;
  return `${url}${url.includes("?") ? "&" : "?"}sslrootcert=${encodeURIComponent(file)}`;
}

/** An `http://` URL for a web UI published on `host:port` (pgAdmin). */
export function httpUrl(host: string, port: number): string {
  return `http://${urlHost(host)}:${port}`;
}
