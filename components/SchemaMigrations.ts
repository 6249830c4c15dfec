import fs from "node:fs";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionInfo } from "../lib/db";
import { loadMigrations } from "../lib/migrations/file";
import { migrationsProvider, type ServerVersions } from "../providers/MigrationsProvider";

export interface SchemaMigrationsArgs {
  /** Where to connect, as the migrator (kept secret in state). */
  connection: pulumi.Input<ConnectionInfo>;
  /** Role the migrator `SET ROLE`s to so objects are owned by it (`<db>_owner`); default: the login role. */
  role?: pulumi.Input<string>;
  /** `tsdb:timescaledb`: keeps `-- if:timescaledb` blocks, else `-- if:vanilla` ones. */
  timescaledb: boolean;
  /** Settings substituted into `{{name}}` placeholders (`migrationVariables(settings)`). */
  variables: Record<string, string>;
  /** `tsdb:protectData`: refuse destroy, and refuse reverting a migration removed from sql/. */
  protectData: boolean;
  /** Directory of `NNNN_name.sql` files; default: `sql/` of the project. */
  migrationsDir?: string;
  /** The server's image (docker mode): a bump updates the hook, which reads the server's versions again. */
  serverImage?: string;
}

/** One applied migration, as exposed in outputs. */
export interface AppliedMigrationOutput {
  version: number;
  name: string;
  file: string;
  checksum: string;
}

/** The project directory: the nearest ancestor of this file holding package.json (works from dist/ too). */
function projectDir(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`No package.json above ${__dirname}; pass migrationsDir to SchemaMigrations.`);
    dir = up;
  }
  return dir;
}

/** The dynamic resource itself; its outputs are the provider's outs. */
class MigrationsResource extends pulumi.dynamic.Resource {
  // `declare`, not `!`: with ES2022 class fields a plain field would reset what super() set to undefined.
  declare public readonly appliedVersions: pulumi.Output<number[]>;
  declare public readonly applied: pulumi.Output<AppliedMigrationOutput[]>;
  declare public readonly server: pulumi.Output<ServerVersions | undefined>;

  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    super(migrationsProvider, name, { ...props, appliedVersions: undefined, applied: undefined, server: undefined }, opts, "tsdb", "SchemaMigrations");
  }
}

/**
 * Applies the migrations of `sql/` after the database, extension, schemas and roles exist (pass them in
 * `dependsOn`). Files are read and resolved when the program runs, so a preview names each migration that
 * would be applied or reverted without touching the database.
 */
export class SchemaMigrations extends pulumi.ComponentResource {
  /** Versions applied, in order. */
  public readonly appliedVersions: pulumi.Output<number[]>;
  /** Applied migrations with their checksums. */
  public readonly migrations: pulumi.Output<AppliedMigrationOutput[]>;
  /** PostgreSQL major and installed TimescaleDB version as the server reported them on the last create/update. */
  public readonly serverVersions: pulumi.Output<ServerVersions | undefined>;

  constructor(name: string, args: SchemaMigrationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("tsdb:hooks:SchemaMigrations", name, {}, opts);
    const dir = args.migrationsDir ?? path.join(projectDir(), "sql");
    const migrations = loadMigrations(dir, { timescaledb: args.timescaledb, variables: args.variables });
    const resource = new MigrationsResource(
      `${name}-migrations`,
      {
        connection: pulumi.secret(args.connection),
        role: args.role ?? "",
        timescaledb: args.timescaledb,
        variables: args.variables,
        protectData: args.protectData,
        migrations,
        names: migrations.map((m) => m.file),
        ...(args.serverImage !== undefined ? { serverImage: args.serverImage } : {}),
      },
      // A component's dependsOn does not reach its children (the SDK only waits on a resource's own
      // dependsOn), so the hook would otherwise run before what it needs exists.
      { parent: this, dependsOn: opts?.dependsOn, additionalSecretOutputs: ["connection"] },
    );
    this.appliedVersions = resource.appliedVersions;
    this.serverVersions = resource.server;
    this.migrations = resource.applied;
    this.registerOutputs({ appliedVersions: this.appliedVersions, migrations: this.migrations });
  }
}
