import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { httpUrl, reachableHost } from "../lib/postgres/connectionInfo";
import { DAEMON_DEFAULTED_FIELDS } from "../lib/containerLimits";

/** Arguments of {@link PgAdmin}. */
export interface PgAdminArgs {
  /** pgAdmin image with a pinned tag, e.g. `dpage/pgadmin4:9.9`. */
  image: pulumi.Input<string>;
  /** Docker network the database container is on. */
  networkName: pulumi.Input<string>;
  /** Host name of the database on that network. */
  databaseHost: string;
  /** Database to open (maintenance database in servers.json). */
  database: string;
  /** Role pgAdmin logs in as (it asks for the password; none is stored). */
  username: string;
  /** Host port pgAdmin is published on. */
  port: number;
  /** Host IP the port is published on. */
  bindAddress: string;
  /** pgAdmin login e-mail. */
  email: pulumi.Input<string>;
  /** pgAdmin login password, a secret. */
  password: pulumi.Input<string>;
  /** Resources that must exist first (the healthy database container). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** Where servers.json is uploaded inside the container. */
export const SERVERS_JSON_PATH = "/pgadmin4/servers.json";

/** Where the login password is uploaded inside the container (PGADMIN_DEFAULT_PASSWORD_FILE). */
export const PASSWORD_FILE_PATH = "/etc/tsdb/pgadmin-password";

/**
 * servers.json registering the TimescaleDB server. It holds no password: pgAdmin asks on first connect
 * (https://www.pgadmin.org/docs/pgadmin4/latest/import_export_servers.html).
 */
export function serversJson(args: { name: string; host: string; database: string; username: string }): string {
  const server = {
    Name: args.name,
    Group: "tsdb",
    Host: args.host,
    Port: 5432,
    MaintenanceDB: args.database,
    Username: args.username,
    SSLMode: "prefer",
    ConnectionTimeout: 10,
  };
  return `${JSON.stringify({ Servers: { "1": server } }, null, 2)}\n`;
}

/** pgAdmin in Docker, on the database's network, with the server pre-registered. */
export class PgAdmin extends pulumi.ComponentResource {
  /** The pulled image. */
  readonly image: docker.RemoteImage;
  /** The pgAdmin container. */
  readonly container: docker.Container;
  /** URL of the pgAdmin UI on the host. */
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: PgAdminArgs, opts?: pulumi.ComponentResourceOptions) {
    super("tsdb:docker:PgAdmin", name, {}, opts);

    this.image = new docker.RemoteImage(`${name}-pgadmin-image`, { name: args.image, keepLocally: true }, { parent: this });

    // The login password goes in as a file, so it is not in the environment `docker inspect` prints: the image's
    // entrypoint reads PGADMIN_DEFAULT_PASSWORD_FILE into its own environment only (`file_env` in
    // pgadmin-org/pgadmin4 pkg/docker/entrypoint.sh; documented in docs/en_US/container_deployment.rst). The
    // upload is mode 0644 owned by root (see TimescaleDbServer), readable by the image's pgadmin user.
    const envs = pulumi.secret(
      pulumi.output(args.email).apply((email) => [
        `PGADMIN_DEFAULT_EMAIL=${email}`,
        `PGADMIN_DEFAULT_PASSWORD_FILE=${PASSWORD_FILE_PATH}`,
        `PGADMIN_SERVER_JSON_FILE=${SERVERS_JSON_PATH}`,
        // No phoning home for new versions, and no mail server inside the container.
        "PGADMIN_CONFIG_UPGRADE_CHECK_ENABLED=False",
        "PGADMIN_DISABLE_POSTFIX=true",
      ]),
    );
    const servers = serversJson({
      name: `${args.database} (TimescaleDB)`,
      host: args.databaseHost,
      database: args.database,
      username: args.username,
    });
    const uploads = pulumi.secret(
      pulumi.output(args.password).apply((password) => [
        { file: SERVERS_JSON_PATH, content: servers },
        { file: PASSWORD_FILE_PATH, content: password },
      ]),
    );

    this.container = new docker.Container(
      `${name}-pgadmin`,
      {
        name: `${name}-pgadmin`,
        image: this.image.imageId,
        envs,
        restart: "unless-stopped",
        ports: [{ internal: 80, external: args.port, ip: args.bindAddress, protocol: "tcp" }],
        networksAdvanced: [{ name: args.networkName }],
        uploads,
      },
      // The daemon's log-opts and default-ulimits: read back by 4.11.2, kept in such state by 5.x (lib/containerLimits.ts).
      { parent: this, dependsOn: args.dependsOn, ignoreChanges: DAEMON_DEFAULTED_FIELDS },
    );

    this.url = this.container.ports.apply((ports) => httpUrl(reachableHost(args.bindAddress), ports?.[0]?.external ?? args.port));

    this.registerOutputs({ url: this.url });
  }
}
