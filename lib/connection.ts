/**
 * The one place that turns a host into something a URL or a client can use: every `postgresql://` and
 * `http://` URL the project builds (stack outputs, `adminUrl`, the dataset hook's DATABASE_URL, pgAdmin's
 * URL, the CLIs), and the host the Pulumi host reaches a published port at.
 *
 * IPv6 literals need brackets inside a URL (`postgresql://u:p@[::1]:5432/db`, RFC 3986 section 3.2.2);
 * without them Node's URL parser rejects the URL. Client settings (`host` of node-postgres, PGHOST) take the
 * bare address. No imports: dynamic providers capture this module by value (see providers/MigrationsProvider.ts).
 */

/** Connection settings as stored in stack outputs and passed to hooks (re-exported by lib/db.ts). */
export interface ConnectionInfo {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** libpq sslmode: disable | allow | prefer | require | verify-ca | verify-full */
  sslmode: string;
  /** PEM of the CA that issued the server's certificate, for sslmode verify-ca / verify-full (lib/tls.ts). */
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

/** The bare host from a URL's `hostname` (Node keeps IPv6 brackets there: `new URL("http://[::1]").hostname` is `[::1]`). */
export function hostFromUrl(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
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

/** An `http://` URL for a web UI published on `host:port` (pgAdmin). */
export function httpUrl(host: string, port: number): string {
  return `http://${urlHost(host)}:${port}`;
}
