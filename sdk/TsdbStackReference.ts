/**
 * Typed access to a tsdb stack's outputs from another Pulumi program:
 *
 * ```ts
 * import { TsdbStackReference } from "tsdb-stack/sdk/TsdbStackReference";
 * const tsdb = new TsdbStackReference("market-db", { stack: "organization/tsdb/dev" });
 * new k8s.core.v1.Secret("db", { stringData: { DATABASE_URL: tsdb.url("app") } }); // stays secret
 * export const dbHost = tsdb.host;                                                   // plain
 * ```
 *
 * Needs only @pulumi/pulumi, ./databaseOutput (the output contract) and ../lib/postgres/connectionInfo (the project's
 * URL reader; no imports of its own), so another project can import it, or vendor sdk/ with that one file.
 */
import * as pulumi from "@pulumi/pulumi";
import { urlParts } from "../lib/postgres/connectionInfo";
import { TSDB_ROLES, type TsdbDatabaseOutput, type TsdbEndpoint, type TsdbRole, validateDatabaseOutput } from "./databaseOutput";

export { TSDB_ROLES, validateDatabaseOutput } from "./databaseOutput";
export type { TsdbDatabaseOutput, TsdbEndpoint, TsdbRole, TsdbVersions } from "./databaseOutput";

/** libpq-style connection settings for one role; `password` is why the whole object is secret. */
export interface TsdbConnection {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  sslmode: string;
}

/** Arguments of {@link TsdbStackReference}. */
export interface TsdbStackReferenceArgs {
  /** Fully qualified stack name, `<organization>/<project>/<stack>` (file backends: `organization/tsdb/dev`). */
  stack: pulumi.Input<string>;
}

/**
 * A StackReference to a tsdb stack with typed getters. The stack exports `database` with secret role URLs, so
 * Pulumi marks the whole output secret; the getters for plain facts (host, port, names, versions) unwrap
 * that, while `url()` and `connection()` stay secret.
 */
export class TsdbStackReference {
  /** The underlying StackReference (for outputs this class does not type). */
  readonly stackReference: pulumi.StackReference;
  /** The whole `database` output, validated; secret. */
  readonly database: pulumi.Output<TsdbDatabaseOutput>;

  constructor(name: string, args: TsdbStackReferenceArgs, opts?: pulumi.CustomResourceOptions) {
    this.stackReference = new pulumi.StackReference(name, { name: args.stack }, opts);
    this.database = pulumi
      .all([this.stackReference.name, this.stackReference.requireOutput("database")])
      .apply(([stack, value]) => validateDatabaseOutput(value, stack));
  }

  private plainField<T>(pick: (d: TsdbDatabaseOutput) => T): pulumi.Output<T> {
    return pulumi.unsecret(this.database.apply(pick));
  }

  /** Server host name or IP. */
  get host(): pulumi.Output<string> {
    return this.plainField((d) => d.host);
  }
  /** Server port. */
  get port(): pulumi.Output<number> {
    return this.plainField((d) => d.port);
  }
  /** Database name. */
  get databaseName(): pulumi.Output<string> {
    return this.plainField((d) => d.database);
  }
  /** libpq sslmode clients should use. */
  get sslmode(): pulumi.Output<string> {
    return this.plainField((d) => d.sslmode);
  }
  /** `docker` or `external`. */
  get mode(): pulumi.Output<"docker" | "external"> {
    return this.plainField((d) => d.mode);
  }
  /** PostgreSQL major and TimescaleDB version (null in vanilla mode). */
  get versions(): pulumi.Output<TsdbDatabaseOutput["versions"]> {
    return this.plainField((d) => d.versions);
  }
  /** pgAdmin's URL, when the stack runs pgAdmin. */
  get pgadminUrl(): pulumi.Output<string | undefined> {
    return this.plainField((d) => d.pgadminUrl);
  }
  /** The connection pooler the app and read-only URLs go through (external stacks with tsdb:poolerHost), else null. */
  get pooler(): pulumi.Output<TsdbEndpoint | null> {
    return this.plainField((d) => d.pooler ?? null);
  }
  /** The read replica (external stacks with tsdb:replicaHost), else null. */
  get replica(): pulumi.Output<TsdbEndpoint | null> {
    return this.plainField((d) => d.replica ?? null);
  }
  /** The read-only role's URL on the replica, with its password (secret); undefined when the stack has no replica. */
  get replicaUrl(): pulumi.Output<string | undefined> {
    return pulumi.secret(this.database.apply((d) => d.urls.replica));
  }

  /** Login role name for `role` (e.g. `market_app`). */
  user(role: TsdbRole): pulumi.Output<string> {
    checkRole(role);
    return this.plainField((d) => d.users[role]);
  }

  /** `postgresql://` URL for `role`, with its password: always a secret Output. */
  url(role: TsdbRole): pulumi.Output<string> {
    checkRole(role);
    return pulumi.secret(this.database.apply((d) => d.urls[role]));
  }

  /**
   * Connection settings for `role` (for providers that take host/port/user/password): a secret Output. Host and
   * port are the role's URL's, so app and readonly go through the pooler exactly as `url()` does.
   */
  connection(role: TsdbRole): pulumi.Output<TsdbConnection> {
    checkRole(role);
    return pulumi.secret(
      this.database.apply((d) => {
        // The project's one URL reader (IPv6 brackets removed, percent-decoding). The password stays enumerable
        // here: Pulumi serializes this value (a secret) into whatever resource takes it.
        const u = urlParts(d.urls[role]);
        return {
          host: u.host || d.host,
          port: u.port ?? d.port,
          database: d.database,
          user: u.user,
          password: u.password,
          sslmode: d.sslmode,
        };
      }),
    );
  }
}

function checkRole(role: string): void {
  if (!(TSDB_ROLES as readonly string[]).includes(role)) {
    throw new Error(`TsdbStackReference: role must be one of ${TSDB_ROLES.join(", ")}, got "${role}".`);
  }
}
