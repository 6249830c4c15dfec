import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { accessPlan, type AccessPlan, type RoleKey } from "../lib/access";
import { urlHost } from "../lib/postgres/connectionInfo";
import type { ConnectionInfo } from "../lib/db";

/** Arguments of {@link DatabaseAccess}. */
export interface DatabaseAccessArgs {
  /** Host the Pulumi host reaches the server at (127.0.0.1 for the local container). */
  host: pulumi.Input<string>;
  /** Server port (the container's published port, or the external port). */
  port: pulumi.Input<number>;
  /** Admin role the provider connects as (`postgres` in the container). */
  adminUser: string;
  /** Admin password, a secret. */
  adminPassword: pulumi.Input<string>;
  /** Whether the admin role is a superuser (false for managed services: the provider avoids superuser-only SQL). */
  adminIsSuperuser: boolean;
  /** libpq sslmode for every connection. */
  sslmode: string;
  /** CA certificate for verify-ca / verify-full: PEM (secret) for the hooks, and the file the provider reads. */
  rootCert?: { pem: pulumi.Input<string>; file: string };
  /** Use `database` as it already exists (a managed service's) instead of creating it. */
  existingDatabase?: boolean;
  /** Existing roles besides the stack's (and pg_monitor) that keep CONNECT on the database (tsdb:connectRoles). */
  connectRoles?: string[];
  /** Database name; roles are `<database>_owner`, `_migrator`, `_app`, `_readonly`. */
  database: string;
  /** Create the timescaledb extension. */
  timescaledb: boolean;
  /** Also create timescaledb_toolkit. */
  toolkit: boolean;
  /** Connection limits of the LOGIN roles. */
  connectionLimits: { migrator: number; app: number; readonly: number };
  /** Configured role passwords; missing ones are generated. */
  passwords: { migrator?: pulumi.Input<string>; app?: pulumi.Input<string>; readonly?: pulumi.Input<string> };
  /** Protect and retain the database so `pulumi destroy` cannot drop it. */
  protectData: boolean;
  /** Resources that must be ready before anything connects (the healthy container). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

type LoginRole = Exclude<RoleKey, "owner">;

/** The ACL a grant rewrites: the database's, one schema's, or those of one kind of object in one schema. */
function grantObject(objectType: string, schema?: string): string {
  if (objectType === "database") return "database";
  return objectType === "schema" ? `schema:${schema}` : `${objectType}s:${schema}`;
}

/** Declares resources on the same object one after another: each `dependsOn` the previous one on that object. */
class OneAtATime {
  private readonly last = new Map<string, pulumi.CustomResource>();

  add<R extends pulumi.CustomResource>(object: string, base: pulumi.CustomResourceOptions, create: (opts: pulumi.CustomResourceOptions) => R): R {
    const previous = this.last.get(object);
    const resource = create(previous ? { ...base, dependsOn: [previous] } : base);
    this.last.set(object, resource);
    return resource;
  }
}

/** Generated passwords: 32 letters and digits, so they need no escaping in URLs or shells. */
export const GENERATED_PASSWORD = { length: 32, special: false } as const;

/**
 * Roles, database, extension, schemas, grants and default privileges, declared through an explicit
 * postgresql provider that waits for the server. Every resource maps to one entry of `lib/access.ts`'s plan.
 */
export class DatabaseAccess extends pulumi.ComponentResource {
  /** The plan the resources were declared from. */
  readonly plan: AccessPlan;
  /** The explicit provider (depends on the healthy server). */
  readonly provider: postgresql.Provider;
  /** Roles by part. */
  readonly roles: Record<RoleKey, postgresql.Role>;
  /** The database; undefined when an existing one is used (`existingDatabase`). */
  readonly database: postgresql.Database | undefined;
  /** Name of the database, created or existing. */
  readonly databaseName: pulumi.Output<string>;
  /** Extensions created (timescaledb, timescaledb_toolkit). */
  readonly extensions: postgresql.Extension[];
  /** The five schemas. */
  readonly schemas: postgresql.Schema[];
  /** Grants and PUBLIC revokes. */
  readonly grants: postgresql.Grant[];
  /** Default privileges for objects the owner and migrator create. */
  readonly defaultPrivileges: postgresql.DefaultPrivileges[];
  /** Everything hooks must wait for before they connect as the migrator or app. */
  readonly ready: pulumi.Resource[];
  /** Name of the owner role migrations SET ROLE to (no password; LOGIN only for TimescaleDB's jobs). */
  readonly ownerRole: string;
  /** Connection as the migrator (secret). */
  readonly migratorConnection: pulumi.Output<ConnectionInfo>;
  /** Connection as the app role (secret). */
  readonly appConnection: pulumi.Output<ConnectionInfo>;
  /** Connection as the read-only role (secret). */
  readonly readonlyConnection: pulumi.Output<ConnectionInfo>;
  /** Connection as the admin to the stack's database (secret), for the admin hook (components/ExtensionAdmin.ts). */
  readonly adminConnection: pulumi.Output<ConnectionInfo>;

  constructor(name: string, args: DatabaseAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    super("tsdb:postgres:DatabaseAccess", name, {}, opts);

    this.plan = accessPlan({
      database: args.database,
      migratorConnectionLimit: args.connectionLimits.migrator,
      appConnectionLimit: args.connectionLimits.app,
      readonlyConnectionLimit: args.connectionLimits.readonly,
      timescaledb: args.timescaledb,
      existingDatabase: args.existingDatabase,
      connectRoles: args.connectRoles,
    });
    this.ownerRole = this.plan.owner;

    this.provider = new postgresql.Provider(
      `${name}-provider`,
      {
        // The provider builds its DSN as fmt.Sprintf("%s://%s:%s@%s:%d/%s?%s", ..., host, port, ...) with the host
        // as given (cyrilgdn/terraform-provider-postgresql postgresql/config.go, connStr, at the v1.27.0 commit
        // ff936b9), and lib/pq splits host from port with net.SplitHostPort: a bare IPv6 address fails there ("too
        // many colons"), so every postgresql resource failed with bindAddress ::1 or ::. An IPv6 host goes in brackets.
        host: pulumi.output(args.host).apply(urlHost),
        port: args.port,
        username: args.adminUser,
        password: pulumi.secret(args.adminPassword),
        sslmode: args.sslmode,
        sslrootcert: args.rootCert?.file,
        // false makes the provider grant itself each role it acts for and revoke it after (withRolesGranted in
        // cyrilgdn/terraform-provider-postgresql postgresql/helpers.go), which a CREATEROLE admin may do on
        // PostgreSQL 16+ because it holds ADMIN OPTION on the roles it created; lib/access.ts renders the same.
        superuser: args.adminIsSuperuser,
        // A managed service may give no access to `postgres`; roles can be created from any database.
        database: args.existingDatabase ? args.database : "postgres",
        connectTimeout: 15,
      },
      // The container must be healthy first, or the provider connects to a server that is still starting.
      { parent: this, dependsOn: args.dependsOn },
    );
    const on = { parent: this, provider: this.provider };

    const passwords = {} as Record<LoginRole, pulumi.Output<string>>;
    for (const key of ["migrator", "app", "readonly"] as const) {
      const configured = args.passwords[key];
      passwords[key] =
        configured !== undefined
          ? pulumi.secret(configured)
          : pulumi.secret(new random.RandomPassword(`${name}-${key}-password`, GENERATED_PASSWORD, { parent: this }).result);
    }

    const roles = {} as Record<RoleKey, postgresql.Role>;
    const roleByName = new Map<string, postgresql.Role>();
    // Destroy order with an existing database: each role's delete runs REASSIGN OWNED and DROP OWNED in the
    // provider's database (cyrilgdn/terraform-provider-postgresql postgresql/resource_postgresql_role.go,
    // resourcePostgreSQLRoleDelete, under a lock on that role only), which here is the shared database: three at
    // once rewrite the same ACLs ("tuple concurrently updated"). Created one after another, they are deleted one
    // after another, the owner last. (A database of our own is dropped before the roles instead, see below.)
    let previousRole: postgresql.Role | undefined;
    for (const role of this.plan.roles) {
      const memberOf = role.memberOf.map((n) => roleByName.get(n)!.name);
      roles[role.key] = new postgresql.Role(
        `${name}-${role.key}`,
        {
          name: role.name,
          login: role.login,
          inherit: true,
          connectionLimit: role.connectionLimit,
          password: role.key === "owner" ? undefined : passwords[role.key],
          roles: memberOf.length > 0 ? memberOf : undefined,
        },
        this.plan.existingDatabase && previousRole ? { ...on, dependsOn: [previousRole] } : on,
      );
      roleByName.set(role.name, roles[role.key]);
      previousRole = roles[role.key];
    }
    this.roles = roles;
    const roleRef = (roleName: string): pulumi.Input<string> => roleByName.get(roleName)?.name ?? roleName;

    const keep = args.protectData ? { protect: true, retainOnDelete: true } : {};
    // An existing database is the service's: nothing here creates or drops it.
    this.database = this.plan.existingDatabase
      ? undefined
      : new postgresql.Database(
          `${name}-database`,
          { name: this.plan.database, owner: roles.owner.name },
          {
            ...on,
            ...keep,
            // Destroy order: the engine deletes a resource before what it depends on, so the database is dropped
            // before any login role. The provider's role delete runs REASSIGN/DROP OWNED only in its own database
            // (`postgres`; postgresql/resource_postgresql_role.go, resourcePostgreSQLRoleDelete), so grants the roles
            // still held inside this database (e.g. on schema_migrations.applied) made DROP ROLE fail intermittently
            // ("cannot be dropped because some objects depend on it", upstream issues #381, #203).
            dependsOn: this.plan.roles.filter((r) => r.login).map((r) => roles[r.key]),
            // A new name is a new database, never ALTER DATABASE RENAME (setDBName in resource_postgresql_database.go);
            // the setting guard refuses it unless the user asks for the replacement (lib/settingChanges.ts).
            replaceOnChanges: ["name"],
          },
        );
    const database = this.database ? this.database.name : pulumi.output(this.plan.database);
    this.databaseName = database;

    this.extensions = [];
    if (args.timescaledb) {
      // On an existing database the service may have installed it (CREATE EXTENSION IF NOT EXISTS keeps it), so
      // destroying the stack must not drop it.
      const extensionOpts = this.plan.existingDatabase ? { ...on, retainOnDelete: true } : on;
      this.extensions.push(new postgresql.Extension(`${name}-extension-timescaledb`, { name: "timescaledb", database }, extensionOpts));
      if (args.toolkit) {
        this.extensions.push(
          new postgresql.Extension(`${name}-extension-timescaledb-toolkit`, { name: "timescaledb_toolkit", database }, on),
        );
      }
    }

    const schemaByName = new Map<string, postgresql.Schema>();
    this.schemas = this.plan.schemas.map((schema) => {
      const resource = new postgresql.Schema(
        `${name}-schema-${schema}`,
        { name: schema, database, owner: roles.owner.name, ifNotExists: true, dropCascade: false },
        { ...on, ...keep },
      );
      schemaByName.set(schema, resource);
      return resource;
    });
    const schemaRef = (schema: string): pulumi.Input<string> => schemaByName.get(schema)?.name ?? schema;

    // Grants on the same object run one after another: each one REVOKEs ALL and GRANTs in one transaction,
    // rewriting the object's ACL, and two at once fail with "tuple concurrently updated". The provider serializes
    // per role and per database, not per schema or table set (cyrilgdn/terraform-provider-postgresql issue #178;
    // postgresql/resource_postgresql_grant.go and resource_postgresql_default_privileges.go).
    const queue = new OneAtATime();
    const grant = (resourceName: string, object: string, grantArgs: postgresql.GrantArgs): postgresql.Grant =>
      queue.add(object, on, (opts) => new postgresql.Grant(resourceName, grantArgs, opts));

    this.grants = [
      ...this.plan.publicPrivileges.map((p) =>
        grant(`${name}-public-${p.objectType === "database" ? "database" : `schema-${p.schema}`}`, grantObject(p.objectType, p.schema), {
          database, role: "public", objectType: p.objectType, schema: p.schema, privileges: p.privileges,
        }),
      ),
      ...this.plan.databaseGrants.map((g) =>
        grant(`${name}-connect-${g.role}`, grantObject("database"), {
          database, role: roleRef(g.role), objectType: "database", privileges: g.privileges,
        }),
      ),
      ...this.plan.schemaGrants.map((g) =>
        grant(`${name}-usage-${g.schema}-${g.role}`, grantObject("schema", g.schema), {
          database, role: roleRef(g.role), schema: schemaRef(g.schema), objectType: "schema", privileges: g.privileges,
        }),
      ),
      ...this.plan.objectGrants.map((g) =>
        grant(`${name}-${g.objectType}s-${g.schema}-${g.role}`, grantObject(g.objectType, g.schema), {
          database, role: roleRef(g.role), schema: schemaRef(g.schema), objectType: g.objectType, privileges: g.privileges,
        }),
      ),
    ];

    this.defaultPrivileges = this.plan.defaultPrivileges.map((d) =>
      queue.add(`defaults:${d.owner}:${d.objectType}`, on, (opts) =>
        new postgresql.DefaultPrivileges(
          `${name}-defaults-${d.owner}-${d.objectType}s-${d.role}`,
          { database, owner: roleRef(d.owner), role: roleRef(d.role), objectType: d.objectType, privileges: d.privileges },
          opts,
        ),
      ),
    );

    this.ready = [
      ...(this.database ? [this.database] : []),
      ...Object.values(roles),
      ...this.extensions,
      ...this.schemas,
      ...this.grants,
      ...this.defaultPrivileges,
    ];

    const connection = (key: LoginRole | "admin"): pulumi.Output<ConnectionInfo> =>
      pulumi.secret(
        pulumi
          .all([
            args.host,
            args.port,
            database,
            key === "admin" ? args.adminUser : roles[key].name,
            key === "admin" ? args.adminPassword : passwords[key],
            args.rootCert?.pem,
          ])
          .apply(([host, port, db, user, password, sslrootcert]) => ({
            host,
            port,
            database: db,
            user,
            password,
            sslmode: args.sslmode,
            ...(sslrootcert ? { sslrootcert } : {}),
          })),
      );
    this.migratorConnection = connection("migrator");
    this.appConnection = connection("app");
    this.readonlyConnection = connection("readonly");
    this.adminConnection = connection("admin");

    this.registerOutputs({
      ownerRole: this.ownerRole,
      migratorConnection: this.migratorConnection,
      appConnection: this.appConnection,
      readonlyConnection: this.readonlyConnection,
    });
  }
}
