/**
 * Who may do what in the database (docs/ARCHITECTURE.md, "Database layout"), as a pure plan.
 *
 * `components/DatabaseAccess.ts` maps the plan 1:1 to `@pulumi/postgresql` resources; `renderAccessSql`
 * renders the statements that provider issues for them, so engine tests can prove the privileges on a real
 * server without Pulumi.
 */
import { escapeIdentifier, escapeLiteral } from "pg";

/** The five schemas the schema migrations fill. */
export const SCHEMAS = ["market_data", "reference_data", "trading", "research", "audit"] as const;

/** The roles every stack creates, by their part. */
export type RoleKey = "owner" | "migrator" | "app" | "readonly";

/** A role to create. */
export interface RolePlan {
  key: RoleKey;
  /** `<database>_<key>`. */
  name: string;
  /** LOGIN attribute. The owner's LOGIN (TimescaleDB only) comes without a password. */
  login: boolean;
  /** -1 = unlimited (the owner: TimescaleDB's background jobs run as it). */
  connectionLimit: number;
  /** Roles this one is a member of (inherits, and may SET ROLE to). */
  memberOf: string[];
}

/** Privileges on the database itself. */
export interface DatabaseGrant {
  role: string;
  privileges: string[];
}

/** Privileges on a schema. */
export interface SchemaGrant {
  role: string;
  schema: string;
  privileges: string[];
}

/** Object kinds grants and default privileges cover. */
export type ObjectType = "table" | "sequence" | "function";

/** Privileges on every existing object of a kind in a schema. */
export interface ObjectGrant {
  role: string;
  schema: string;
  objectType: ObjectType;
  privileges: string[];
}

/** Privileges granted automatically on objects `owner` creates later, in any schema. */
export interface DefaultPrivilege {
  /** The role creating objects. */
  owner: string;
  role: string;
  objectType: ObjectType;
  privileges: string[];
}

/**
 * What PUBLIC keeps: nothing on the database; `USAGE` only on the `public` schema, because extensions
 * (timescaledb's `time_bucket`, `create_hypertable`, ...) live there and every role must be able to call them.
 */
export interface PublicPrivileges {
  objectType: "database" | "schema";
  /** For objectType schema. */
  schema?: string;
  /** What PUBLIC keeps after everything else is revoked. */
  privileges: string[];
}

/** Everything DatabaseAccess declares, in dependency order. */
export interface AccessPlan {
  database: string;
  /** The database exists already (a managed service's): it is used, not created, and stays its admin's. */
  existingDatabase: boolean;
  owner: string;
  schemas: string[];
  roles: RolePlan[];
  databaseGrants: DatabaseGrant[];
  schemaGrants: SchemaGrant[];
  objectGrants: ObjectGrant[];
  defaultPrivileges: DefaultPrivilege[];
  publicPrivileges: PublicPrivileges[];
}

/** Inputs to `accessPlan`. */
export interface AccessPlanInput {
  database: string;
  migratorConnectionLimit: number;
  appConnectionLimit: number;
  readonlyConnectionLimit: number;
  /**
   * TimescaleDB in use. Its policies run as background jobs under the hypertable owner, and TimescaleDB refuses
   * to schedule them for a NOLOGIN role (timescale/timescaledb PR #1709; see docs/SCHEMA.md), so the owner then
   * gets LOGIN - with no password, so it still cannot authenticate.
   */
  timescaledb: boolean;
  /**
   * Use a database that already exists (Timescale Cloud's `tsdb`) instead of creating one. Its owner stays the
   * service's admin, so the owner role is granted what owning gave it: CREATE (schemas, including migrations'
   * history) and CONNECT/TEMPORARY (TimescaleDB's jobs connect as it).
   */
  existingDatabase?: boolean;
  /**
   * Roles outside the stack that must still connect after `REVOKE ALL ON DATABASE ... FROM PUBLIC`: a pooler's
   * auth_query user, monitoring agents (`tsdb:connectRoles`, `tsdb db roles --connect-role`). `pg_monitor` always
   * gets CONNECT, so any role the DBA makes a member of it can watch the database.
   */
  connectRoles?: string[];
}

/** Roles that keep CONNECT on the database whatever the settings say (see AccessPlanInput.connectRoles). */
export const ALWAYS_CONNECT = ["pg_monitor"] as const;

const APP_RIGHTS: Record<ObjectType, string[]> = {
  table: ["SELECT", "INSERT", "UPDATE", "DELETE"],
  sequence: ["USAGE", "SELECT"],
  function: ["EXECUTE"],
};
const READONLY_RIGHTS: Partial<Record<ObjectType, string[]>> = {
  table: ["SELECT"],
  sequence: ["SELECT"],
};
/**
 * In `audit` the app may only read: the trail is written by the owner's trigger function, and a plan granting
 * write there would be re-applied by the postgresql provider on every `pulumi up` after a refresh, undoing any
 * migration's REVOKE: its Grant read reports drift when any object of the schema lacks a planned privilege,
 * and its create/update runs `REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA` then `GRANT <plan> ON ALL TABLES
 * IN SCHEMA` (cyrilgdn/terraform-provider-postgresql, postgresql/resource_postgresql_grant.go,
 * readRolePrivileges / resourcePostgreSQLGrantCreate). No EXECUTE either: audit.record_change() is for the
 * owner's triggers only (sql/0010_audit_hardening.sql).
 */
const APP_AUDIT_RIGHTS: Partial<Record<ObjectType, string[]>> = {
  table: ["SELECT"],
};

/** The app's rights on the objects of `schema`. */
function appRights(schema: string): Partial<Record<ObjectType, string[]>> {
  return schema === "audit" ? APP_AUDIT_RIGHTS : APP_RIGHTS;
}

/** The access plan for a database, per docs/ARCHITECTURE.md. */
export function accessPlan(input: AccessPlanInput): AccessPlan {
  const db = input.database;
  const owner = `${db}_owner`;
  const migrator = `${db}_migrator`;
  const app = `${db}_app`;
  const readonly = `${db}_readonly`;
  const schemas = [...SCHEMAS];

  const objectGrants: ObjectGrant[] = [];
  const defaultPrivileges: DefaultPrivilege[] = [];
  const rights: [string, Partial<Record<ObjectType, string[]>>][] = [
    [app, APP_RIGHTS],
    [readonly, READONLY_RIGHTS],
  ];
  for (const schema of schemas) {
    const bySchema: [string, Partial<Record<ObjectType, string[]>>][] = [
      [app, appRights(schema)],
      [readonly, READONLY_RIGHTS],
    ];
    for (const [role, byType] of bySchema) {
      for (const [objectType, privileges] of Object.entries(byType) as [ObjectType, string[]][]) {
        objectGrants.push({ role, schema, objectType, privileges });
      }
    }
  }
  // Migrations normally SET ROLE to the owner; objects the migrator creates without it are covered too.
  for (const creator of [owner, migrator]) {
    for (const [role, byType] of rights) {
      for (const [objectType, privileges] of Object.entries(byType) as [ObjectType, string[]][]) {
        defaultPrivileges.push({ owner: creator, role, objectType, privileges });
      }
    }
  }

  const ownerGrants: DatabaseGrant[] = input.existingDatabase ? [{ role: owner, privileges: ["CREATE", "CONNECT", "TEMPORARY"] }] : [];
  return {
    database: db,
    existingDatabase: input.existingDatabase ?? false,
    owner,
    schemas,
    roles: [
      { key: "owner", name: owner, login: input.timescaledb, connectionLimit: -1, memberOf: [] },
      { key: "migrator", name: migrator, login: true, connectionLimit: input.migratorConnectionLimit, memberOf: [owner] },
      { key: "app", name: app, login: true, connectionLimit: input.appConnectionLimit, memberOf: [] },
      { key: "readonly", name: readonly, login: true, connectionLimit: input.readonlyConnectionLimit, memberOf: [] },
    ],
    databaseGrants: [
      ...ownerGrants,
      { role: migrator, privileges: ["CONNECT", "TEMPORARY"] },
      { role: app, privileges: ["CONNECT", "TEMPORARY"] },
      { role: readonly, privileges: ["CONNECT"] },
      ...[...new Set([...ALWAYS_CONNECT, ...(input.connectRoles ?? [])])].map((role) => ({ role, privileges: ["CONNECT"] })),
    ],
    schemaGrants: schemas.flatMap((schema) => [
      { role: app, schema, privileges: ["USAGE"] },
      { role: readonly, schema, privileges: ["USAGE"] },
    ]),
    objectGrants,
    defaultPrivileges,
    publicPrivileges: [
      { objectType: "database", privileges: [] },
      { objectType: "schema", schema: "public", privileges: ["USAGE"] },
    ],
  };
}

const OBJECT_PLURAL: Record<ObjectType, string> = { table: "TABLES", sequence: "SEQUENCES", function: "FUNCTIONS" };

/** Statements to apply a plan: `cluster` on the maintenance database, then `database` inside the new database. */
export interface AccessSql {
  cluster: string[];
  database: string[];
}

/** How the admin the statements run as stands. */
export interface RenderOptions {
  /**
   * false for a managed service's admin (CREATEROLE, no SUPERUSER): statements acting for a role (schemas it
   * will own, grants on its objects, its default privileges) are wrapped in `GRANT role TO CURRENT_USER` ...
   * `REVOKE`, as the provider's withRolesGranted does for a non-superuser (cyrilgdn/terraform-provider-postgresql,
   * postgresql/helpers.go; used by resource_postgresql_schema.go, _grant.go and _default_privileges.go).
   * PostgreSQL 16+ allows that grant because CREATE ROLE gave the admin ADMIN OPTION on the roles it created.
   */
  adminIsSuperuser?: boolean;
  /**
   * Roles that exist already (the CLI applies the plan again on a server of your own): they get `ALTER ROLE`
   * for their attributes, and a new password only when one is given, instead of `CREATE ROLE`.
   */
  existingRoles?: ReadonlySet<string>;
}

/**
 * Renders the statements the postgresql provider issues for the plan's resources: CREATE ROLE, CREATE
 * DATABASE (unless it exists), GRANT/REVOKE and ALTER DEFAULT PRIVILEGES. Identifiers are quoted; passwords
 * are literals.
 */
export function renderAccessSql(
  plan: AccessPlan,
  passwords: Partial<Record<Exclude<RoleKey, "owner">, string>>,
  options: RenderOptions = {},
): AccessSql {
  const q = escapeIdentifier;
  const actingAs = (role: string, statements: string[]): string[] =>
    options.adminIsSuperuser === false
      ? [`GRANT ${q(role)} TO CURRENT_USER`, ...statements, `REVOKE ${q(role)} FROM CURRENT_USER`]
      : statements;
  const cluster: string[] = [];
  for (const role of plan.roles) {
    const exists = options.existingRoles?.has(role.name) === true;
    const parts = [`${exists ? "ALTER" : "CREATE"} ROLE ${q(role.name)}`, role.login ? "LOGIN" : "NOLOGIN", "INHERIT"];
    if (role.key !== "owner") {
      const password = passwords[role.key];
      if (password === undefined && !exists) throw new Error(`renderAccessSql: no password given for LOGIN role ${role.name}`);
      if (password !== undefined) parts.push(`PASSWORD ${escapeLiteral(password).trim()}`);
    }
    parts.push(`CONNECTION LIMIT ${role.connectionLimit}`);
    cluster.push(parts.join(" "));
  }
  for (const role of plan.roles) {
    for (const group of role.memberOf) cluster.push(`GRANT ${q(group)} TO ${q(role.name)}`);
  }
  if (!plan.existingDatabase) cluster.push(`CREATE DATABASE ${q(plan.database)} OWNER ${q(plan.owner)}`);
  for (const p of plan.publicPrivileges.filter((x) => x.objectType === "database")) {
    cluster.push(`REVOKE ALL PRIVILEGES ON DATABASE ${q(plan.database)} FROM PUBLIC`);
    if (p.privileges.length > 0) cluster.push(`GRANT ${p.privileges.join(", ")} ON DATABASE ${q(plan.database)} TO PUBLIC`);
  }
  for (const g of plan.databaseGrants) {
    cluster.push(`GRANT ${g.privileges.join(", ")} ON DATABASE ${q(plan.database)} TO ${q(g.role)}`);
  }

  const database: string[] = [];
  for (const schema of plan.schemas) {
    database.push(...actingAs(plan.owner, [`CREATE SCHEMA IF NOT EXISTS ${q(schema)} AUTHORIZATION ${q(plan.owner)}`]));
  }
  for (const p of plan.publicPrivileges.filter((x) => x.objectType === "schema")) {
    const schema = q(p.schema ?? "public");
    database.push(`REVOKE ALL PRIVILEGES ON SCHEMA ${schema} FROM PUBLIC`);
    if (p.privileges.length > 0) database.push(`GRANT ${p.privileges.join(", ")} ON SCHEMA ${schema} TO PUBLIC`);
  }
  // The plan's schemas and everything in them belong to the owner.
  for (const g of plan.schemaGrants) {
    database.push(...actingAs(plan.owner, [`GRANT ${g.privileges.join(", ")} ON SCHEMA ${q(g.schema)} TO ${q(g.role)}`]));
  }
  for (const g of plan.objectGrants) {
    database.push(
      ...actingAs(plan.owner, [
        `GRANT ${g.privileges.join(", ")} ON ALL ${OBJECT_PLURAL[g.objectType]} IN SCHEMA ${q(g.schema)} TO ${q(g.role)}`,
      ]),
    );
  }
  for (const d of plan.defaultPrivileges) {
    database.push(
      ...actingAs(d.owner, [
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${q(d.owner)} GRANT ${d.privileges.join(", ")} ON ${OBJECT_PLURAL[d.objectType]} TO ${q(d.role)}`,
      ]),
    );
  }
  return { cluster, database };
}
