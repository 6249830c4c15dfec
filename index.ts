// The Pulumi program: reads the `tsdb:` settings and composes the components. Logic lives in components/ and lib/.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { DatabaseAccess, GENERATED_PASSWORD } from "./components/DatabaseAccess";
import { ExtensionAdmin } from "./components/ExtensionAdmin";
import { MarketDataLoad } from "./components/MarketDataLoad";
import { PgAdmin } from "./components/PgAdmin";
import { SchemaMigrations } from "./components/SchemaMigrations";
import { SettingGuard } from "./components/SettingGuard";
import { SUPERUSER, TimescaleDbServer } from "./components/TimescaleDbServer";
import { connectionUrl, withSslRootCert } from "./lib/postgres/connectionInfo";
import { databaseUrls, resolveRootCert } from "./lib/postgres/managed";
import { containerNameFor } from "./lib/ops/stackOutputs";
import { DATABASE_STOP_GRACE_SECONDS } from "./lib/containerLimits";
import { dockerHostCpus } from "./lib/dockerHost";
import { cpuCheck } from "./lib/ops/prerequisites";
import { allowedChanges, CONTAINER_SETTINGS } from "./lib/settingChanges";
import { imageVersions, migrationVariables, parseSettings, SETTING_KEYS, SettingsError, settingWarnings } from "./lib/settings";
import type { DatabaseOutputInputs } from "./sdk/databaseOutput";

const config = new pulumi.Config("tsdb");
const raw: Record<string, unknown> = {};
for (const key of SETTING_KEYS) {
  const value = config.get(key);
  if (value !== undefined) raw[key] = value;
}
const stack = pulumi.getStack();
const settings = parseSettings(raw, { stack });
for (const warning of settingWarnings(settings)) void pulumi.log.warn(`${warning.detail} ${warning.fix}`);
// Docker refuses a container with more CPUs than its host has, but only after `up` has deleted the running one
// (delete-before-replace): refuse it at preview when the host's CPU count can be read (lib/ops/prerequisites.ts).
if (settings.mode === "docker") {
  const cpus = cpuCheck(settings.cpus, dockerHostCpus(new pulumi.Config("docker").get("host")));
  if (cpus.status === "fail") throw new SettingsError([`[tsdb:cpus] ${cpus.detail.replace(/^tsdb:cpus /, "")}. ${cpus.fix}`]);
}
const name = `tsdb-${stack}`;

const configuredOrGenerated = (key: string, value: string | undefined): pulumi.Output<string> =>
  value !== undefined ? pulumi.secret(value) : pulumi.secret(new random.RandomPassword(`${name}-${key}`, GENERATED_PASSWORD).result);

const adminPassword = configuredOrGenerated("admin-password", settings.adminPassword);

// Refuses, at preview, setting changes the providers would carry out destructively (lib/settingChanges.ts).
const guard = new SettingGuard(`${name}-settings`, {
  database: settings.database,
  timescaledb: settings.timescaledb,
  adminPassword: settings.mode === "docker" ? adminPassword : undefined,
  allow: allowedChanges(process.env),
  context: {
    stack,
    mode: settings.mode,
    ...(settings.mode === "docker" ? { containerName: containerNameFor(stack), stopGraceSeconds: DATABASE_STOP_GRACE_SECONDS } : {}),
    protectData: settings.protectData,
  },
  container:
    settings.mode === "docker"
      ? Object.fromEntries(CONTAINER_SETTINGS.map((k) => [k, String(settings[k] ?? "")]))
      : undefined,
}).resource;

const server =
  settings.mode === "docker"
    ? new TimescaleDbServer(name, {
        image: settings.image,
        port: settings.port,
        bindAddress: settings.bindAddress,
        memoryMb: settings.memoryMb,
        cpus: settings.cpus,
        maxConnections: settings.maxConnections,
        timescaledb: settings.timescaledb,
        telemetry: settings.telemetry,
        restartPolicy: settings.restartPolicy,
        protectData: settings.protectData,
        adminPassword,
        dependsOn: [guard],
      })
    : undefined;

// Where the database is reached from here, and as whom to administer it: the container or the external server.
const host: pulumi.Output<string> = server ? server.host : pulumi.output(settings.externalHost!);
const port: pulumi.Output<number> = server ? server.port : pulumi.output(settings.externalPort);
const adminUser = server ? SUPERUSER : settings.externalAdminUser;
// Managed services (docs/OPERATIONS.md, "Outgrowing one machine"): CA for verify-full, pooler and replica endpoints.
const rootCert = resolveRootCert(settings.sslRootCert, __dirname, stack);
const pooler = settings.poolerHost ? { host: settings.poolerHost, port: settings.poolerPort } : undefined;
const replica = settings.replicaHost ? { host: settings.replicaHost, port: settings.replicaPort } : undefined;

const access = new DatabaseAccess(name, {
  host,
  port,
  adminUser,
  adminPassword,
  adminIsSuperuser: server !== undefined,
  sslmode: settings.sslmode,
  rootCert: rootCert && { pem: pulumi.secret(rootCert.pem), file: rootCert.file },
  existingDatabase: settings.existingDatabase,
  connectRoles: settings.connectRoles,
  database: settings.database,
  timescaledb: settings.timescaledb,
  toolkit: settings.toolkit,
  connectionLimits: {
    migrator: settings.migratorConnectionLimit,
    app: settings.appConnectionLimit,
    readonly: settings.readonlyConnectionLimit,
  },
  passwords: { migrator: settings.migratorPassword, app: settings.appPassword, readonly: settings.readonlyPassword },
  protectData: settings.protectData,
  dependsOn: server ? [server.container, guard] : [guard],
});

const pgadmin =
  server && settings.pgadminEnabled
    ? new PgAdmin(name, {
        image: settings.pgadminImage,
        networkName: server.networkName,
        databaseHost: server.networkAlias,
        database: settings.database,
        username: access.plan.roles.find((r) => r.key === "migrator")!.name,
        port: settings.pgadminPort,
        bindAddress: settings.bindAddress,
        email: settings.pgadminEmail,
        password: configuredOrGenerated("pgadmin-password", settings.pgadminPassword),
        dependsOn: [server.container],
      })
    : undefined;

// Post-deploy hooks, in order: the admin's (TimescaleDB updated to the image's version, jobs the owner's only)
// once the extension and roles exist; migrations once the database, extension, schemas, roles and grants exist
// (as the migrator, acting as the owner so the owner owns every object), then each dataset after the schema.
const extensionAdmin = settings.timescaledb
  ? new ExtensionAdmin(
      `${name}-extension-admin`,
      { connection: access.adminConnection, ownerRole: access.ownerRole, serverImage: server ? settings.image : undefined },
      { dependsOn: access.ready },
    )
  : undefined;

const migrations = new SchemaMigrations(
  `${name}-schema`,
  {
    connection: access.migratorConnection,
    role: access.ownerRole,
    timescaledb: settings.timescaledb,
    variables: migrationVariables(settings),
    protectData: settings.protectData,
    serverImage: server ? settings.image : undefined,
  },
  { dependsOn: extensionAdmin ? [...access.ready, extensionAdmin.resource] : access.ready },
);

const loads = settings.datasets.map(
  (dataset) =>
    new MarketDataLoad(
      `${name}-data-${dataset.name}`,
      { connection: access.appConnection, dataset, projectDir: __dirname },
      { dependsOn: [migrations] },
    ),
);

const tagVersions = imageVersions(settings.image);
const roleName = (key: "migrator" | "app" | "readonly") => access.plan.roles.find((r) => r.key === key)!.name;

/**
 * Everything another app needs to connect, for `pulumi stack output --json database` and StackReference.
 * `urls` carries passwords and is secret as a whole.
 */
export const database: DatabaseOutputInputs = {
  mode: settings.mode,
  host,
  port,
  database: access.databaseName,
  sslmode: settings.sslmode,
  users: { migrator: roleName("migrator"), app: roleName("app"), readonly: roleName("readonly") },
  // app and readonly through the pooler when there is one; migrator always direct; replica only with a replica.
  urls: pulumi.secret(
    pulumi
      .all([access.migratorConnection, access.appConnection, access.readonlyConnection])
      .apply(([migrator, app, readonly]) => databaseUrls({ migrator, app, readonly, pooler, replica, sslrootcertFile: rootCert?.file })),
  ),
  pooler: pooler ?? null,
  replica: replica ?? null,
  ...(pgadmin ? { pgadminUrl: pgadmin.url } : {}),
  versions: {
    image: server ? settings.image : null,
    // Read from the server by the admin and schema hooks on their last create/update (an image bump updates both,
    // the admin hook after updating the extension); the tag's (or 17, or the extension resource's) only where they
    // have not reported yet, e.g. mocks or state from before.
    postgresMajor: migrations.serverVersions.apply((v) => v?.postgresMajor ?? (server ? (tagVersions.postgresMajor ?? 17) : 17)),
    timescaledb: !settings.timescaledb
      ? null
      : pulumi
          .all([extensionAdmin?.timescaledb, migrations.serverVersions, access.extensions[0]!.version])
          // string | null as TsdbVersions says; DeepInput spreads the union into Input<string> | Input<null>.
          .apply(([admin, v, extension]) => admin ?? v?.timescaledb ?? (server ? (tagVersions.timescaledb ?? null) : (extension ?? null))) as pulumi.Output<string>,
  },
};

/** Schema migrations applied by `pulumi up` (version, name, checksum), for reviewers and other apps. */
export const schema = { appliedVersions: migrations.appliedVersions, migrations: migrations.migrations };

/** What each dataset load did on its last run (counts only; rejected rows are listed in its rejects file). */
export const datasets = Object.fromEntries(
  loads.map((load, i) => [
    settings.datasets[i]!.name,
    {
      checksum: load.checksum,
      read: load.read,
      inserted: load.inserted,
      updated: load.updated,
      alreadyPresent: load.alreadyPresent,
      rejected: load.rejected,
      rejectsFile: load.rejectsFile,
    },
  ]),
);

/**
 * The admin connection (the container's superuser, or the external admin role) for `npm run db:restore`,
 * which must drop and recreate the database. Secret, and kept out of `database`, which other apps read.
 */
export const adminUrl = pulumi.secret(
  pulumi
    .all([host, port, adminPassword])
    .apply(([host, port, password]) =>
      withSslRootCert(
        connectionUrl({
          host,
          port,
          // A managed service's existing database, since its `postgres` may be closed to the admin.
          database: settings.existingDatabase ? settings.database : "postgres",
          user: adminUser,
          password,
          sslmode: settings.sslmode,
        }),
        rootCert?.file,
      ),
    ),
);
