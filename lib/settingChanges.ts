/**
 * Settings whose change on a deployed stack the providers would carry out in a way that breaks it, so the
 * preview refuses them (through the guard hook, providers/SettingGuardProvider.ts) and says what to do.
 *
 * - `tsdb:database`: @pulumi/postgresql (cyrilgdn/terraform-provider-postgresql at ff936b9, pulumi's v1.27.0) has no
 *   ForceNew on a database's name; it runs ALTER DATABASE ... RENAME (postgresql/resource_postgresql_database.go,
 *   setDBName), which fails while TimescaleDB's background workers are connected. Asked for as a replacement it
 *   stops half-way: the roles, named after the database, have no ForceNew either and are renamed in place
 *   (resource_postgresql_role.go), then the old grants' and default privileges' deletes REVOKE from the old
 *   role names (resource_postgresql_grant.go, resource_postgresql_default_privileges.go) and fail. Always refused,
 *   with the way that works: export, destroy, rename, up, load.
 * - `tsdb:adminPassword` (docker mode): the new password file (POSTGRES_PASSWORD_FILE, an upload) replaces the
 *   container (`upload` is ForceNew in kreuzwerker/terraform-provider-docker
 *   internal/provider/resource_docker_container.go), but the image applies it only when it initialises an empty
 *   data directory; the kept volume keeps the old password and the postgresql provider can no longer log in.
 * - `tsdb:timescaledb`: the schema hook's diff replaces it on a mode switch (providers/MigrationsProvider.ts), and the
 *   replacement's delete runs every migration's down part, forced, dropping every table with its rows unless
 *   protectData refuses it; the container is replaced too. Allowed only when the user asks for it, after an export.
 *
 * No imports: the guard hook captures this module by value.
 */

/** A setting the guard watches, with what to say when it changes. */
export type GuardedSetting = "database" | "adminPassword" | "timescaledb";

/** What the guard compares: per setting, the value (the admin password only as a fingerprint). */
export type WatchedValues = Partial<Record<GuardedSetting, string>>;

/** Facts the messages need. */
export interface GuardContext {
  stack: string;
  mode: "docker" | "external";
  /** The TimescaleDB container (docker mode), for the `docker exec` the password change needs. */
  containerName?: string;
  protectData: boolean;
  /** Seconds PostgreSQL gets to shut down when its container is replaced (docker mode; destroyGraceSeconds). */
  stopGraceSeconds?: number;
}

/**
 * Settings that reach a ForceNew field of the TimescaleDB container (image, command, cpus, shm_size, ports, envs;
 * kreuzwerker/terraform-provider-docker v3.9.0 and v4.5.0 internal/provider/resource_docker_container.go). @pulumi/docker
 * replaces the container delete-before-replace (pulumi-docker v4.11.2 and v5.1.0 provider/resources.go), so a change of any
 * of them stops PostgreSQL and starts it again: the preview says so (restartNotice).
 */
export const CONTAINER_SETTINGS = ["image", "memoryMb", "cpus", "maxConnections", "timescaledb", "telemetry", "port", "bindAddress"] as const;

/** The deployed and new values of {@link CONTAINER_SETTINGS}, as strings (docker mode). */
export type ContainerValues = Partial<Record<(typeof CONTAINER_SETTINGS)[number], string>>;

/**
 * The line the preview shows (the guard's `notice` input) when this run replaces the TimescaleDB container, so
 * restarts PostgreSQL; "" when it does not. `passwordChanged`: an allowed admin password change (a new upload).
 */
export function restartNotice(olds: ContainerValues | undefined, news: ContainerValues | undefined, passwordChanged: boolean, c: GuardContext): string {
  if (c.mode !== "docker" || !olds || !news) return "";
  const changed: string[] = CONTAINER_SETTINGS.filter((k) => olds[k] !== undefined && news[k] !== undefined && olds[k] !== news[k]).map((k) => `tsdb:${k}`);
  if (passwordChanged) changed.push("tsdb:adminPassword");
  if (changed.length === 0) return "";
  const container = c.containerName ?? `tsdb-${c.stack}-timescaledb`;
  return (
    `${changed.join(", ")} changed: the container ${container} is replaced, which restarts PostgreSQL: a fast shutdown ` +
    `(open sessions are cut; up to ${c.stopGraceSeconds ?? 0} s to write its checkpoint), then it starts again on the kept data volume.`
  );
}

/** Environment variable naming the guarded changes the user asks for, comma-separated (e.g. `database`). */
export const ALLOW_ENV = "TSDB_ALLOW";

/** Guarded settings named in `TSDB_ALLOW` (unknown names are an error, not ignored). */
export function allowedChanges(env: Record<string, string | undefined>): GuardedSetting[] {
  const raw = (env[ALLOW_ENV] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const known: GuardedSetting[] = ["database", "adminPassword", "timescaledb"];
  for (const name of raw) {
    if (!(known as string[]).includes(name)) {
      throw new Error(`[${ALLOW_ENV}] names "${name}", which is not a guarded setting; allowed: ${known.join(", ")}.`);
    }
  }
  return raw as GuardedSetting[];
}

function databaseRefusal(from: string, to: string, c: GuardContext): string {
  const unprotect = c.protectData ? ` (after \`pulumi config set tsdb:protectData false --stack ${c.stack}\`)` : "";
  return (
    `[tsdb:database] changed from "${from}" to "${to}" on the deployed stack ${c.stack}: pulumi up cannot carry out a rename, ` +
    `not even with ${ALLOW_ENV}=database: the roles (named after the database) are renamed in place first, then the old grants, ` +
    `default privileges and database are deleted under role names that no longer exist, and the run stops half-way. ` +
    `Set it back with \`pulumi config set tsdb:database ${from} --stack ${c.stack}\`; to move the data to "${to}", export the bars ` +
    `(\`tsdb data export --out bars.parquet\`), run \`pulumi destroy --stack ${c.stack}\`${unprotect}, set the new name, ` +
    `\`pulumi up --stack ${c.stack}\`, and load them again (\`tsdb data load --source bars.parquet\`).`
  );
}

function timescaledbRefusal(from: string, to: string, c: GuardContext): string {
  const what = to === "true" ? "vanilla PostgreSQL to TimescaleDB" : "TimescaleDB to vanilla PostgreSQL";
  const loss = c.protectData
    ? "which tsdb:protectData=true refuses, so the up would stop half-way"
    : "dropping every table with all its rows";
  return (
    `[tsdb:timescaledb] changed from ${from} to ${to} on the deployed stack ${c.stack}: switching ${what} replaces the schema hook, ` +
    `whose delete reverts every migration (${loss}), and the schema is then rebuilt empty. ` +
    `Set it back with \`pulumi config set tsdb:timescaledb ${from} --stack ${c.stack}\`; to switch, export the bars first ` +
    `(\`tsdb data export --out bars.parquet\`), then run \`${ALLOW_ENV}=timescaledb pulumi up --stack ${c.stack}\`` +
    `${c.protectData ? " with tsdb:protectData false" : ""} and load the file again (\`tsdb data load\`).`
  );
}

function adminPasswordRefusal(c: GuardContext): string {
  const container = c.containerName ?? `tsdb-${c.stack}-timescaledb`;
  return (
    `[tsdb:adminPassword] changed on the deployed docker stack ${c.stack}: the image applies the superuser password only to an empty data ` +
    `directory, so the kept volume would keep the old password and pulumi could no longer log in. Change it in the running server ` +
    `first: \`docker exec -it ${container} psql -U postgres -c '\\password postgres'\` (type the new password), then run ` +
    `\`${ALLOW_ENV}=adminPassword pulumi up --stack ${c.stack}\`; or set the old password back.`
  );
}

/**
 * One message per guarded setting that changed between the deployed values (`olds`, undefined before the first
 * deployment) and `news` and is not in `allow`.
 */
export function refusedChanges(olds: WatchedValues | undefined, news: WatchedValues, allow: readonly string[], context: GuardContext): string[] {
  if (!olds) return [];
  const refusals: string[] = [];
  const changed = (key: GuardedSetting) =>
    olds[key] !== undefined && news[key] !== undefined && olds[key] !== news[key] && !allow.includes(key);
  // Refused even when allowed: see databaseRefusal (TSDB_ALLOW=database stays a known name, so it is told why).
  const renamed = olds.database !== undefined && news.database !== undefined && olds.database !== news.database;
  if (renamed) refusals.push(databaseRefusal(olds.database!, news.database!, context));
  if (changed("timescaledb")) refusals.push(timescaledbRefusal(olds.timescaledb!, news.timescaledb!, context));
  if (context.mode === "docker" && changed("adminPassword")) refusals.push(adminPasswordRefusal(context));
  return refusals;
}
