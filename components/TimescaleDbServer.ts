import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { reachableHost } from "../lib/postgres/connectionInfo";
import { DAEMON_DEFAULTED_FIELDS, DATABASE_STOP_GRACE_SECONDS, DATABASE_STOP_SIGNAL, dockerCpus, memorySwapMb } from "../lib/containerLimits";
import { postgresArgs, tunePostgres } from "../lib/tuning";

/** Arguments of {@link TimescaleDbServer}. */
export interface TimescaleDbServerArgs {
  /** Image with a pinned tag, e.g. `timescale/timescaledb:2.23.0-pg17`. */
  image: pulumi.Input<string>;
  /** Host port PostgreSQL is published on. */
  port: number;
  /** Host IP the port is published on (127.0.0.1 keeps it off the network). */
  bindAddress: string;
  /** Container memory limit in MB; PostgreSQL memory settings derive from it. */
  memoryMb: number;
  /** CPUs the container may use; worker settings derive from it. */
  cpus: number;
  /** Override for max_connections (default: timescaledb-tune's 100). */
  maxConnections?: number;
  /** Whether TimescaleDB is used (adds its settings and telemetry switch). */
  timescaledb: boolean;
  /** Send TimescaleDB telemetry. */
  telemetry: boolean;
  /** Docker restart policy. */
  restartPolicy: "no" | "on-failure" | "always" | "unless-stopped";
  /** Protect the data volume and keep it when the stack is destroyed or the volume replaced. */
  protectData: boolean;
  /** Superuser (`postgres`) password, a secret. */
  adminPassword: pulumi.Input<string>;
  /** Seconds to wait for the container to become healthy. */
  waitTimeoutSeconds?: number;
  /** What the container waits for (the setting guard, so a refused change never reaches it). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** Network alias other containers (pgAdmin) reach the database by. */
export const DATABASE_NETWORK_ALIAS = "timescaledb";
/** Superuser the official images create. */
export const SUPERUSER = "postgres";
/** Where the PostgreSQL 17 images keep PGDATA. */
const DATA_PATH = "/var/lib/postgresql/data";
/** Where the superuser password file is uploaded in the container (POSTGRES_PASSWORD_FILE). */
const PASSWORD_FILE = "/etc/tsdb/postgres-password";

/**
 * A TimescaleDB server in Docker: a private network, a named data volume and the container, tuned from its
 * memory and CPUs and reported created only once `pg_isready` succeeds over TCP.
 */
export class TimescaleDbServer extends pulumi.ComponentResource {
  /** The private network pgAdmin joins. */
  readonly network: docker.Network;
  /** The named data volume (protected and retained when protectData). */
  readonly volume: docker.Volume;
  /** The pulled image. */
  readonly image: docker.RemoteImage;
  /** The database container. */
  readonly container: docker.Container;
  /** Address the Pulumi host reaches the server at (loopback for a wildcard bind address). */
  readonly host: pulumi.Output<string>;
  /** Published host port. */
  readonly port: pulumi.Output<number>;
  /** Name of the private network. */
  readonly networkName: pulumi.Output<string>;
  /** Host name of the server on the private network. */
  readonly networkAlias: string = DATABASE_NETWORK_ALIAS;
  /** The PostgreSQL settings passed as `-c` arguments. */
  readonly postgresSettings: Record<string, string>;

  constructor(name: string, args: TimescaleDbServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("tsdb:docker:TimescaleDbServer", name, {}, opts);

    this.network = new docker.Network(`${name}-net`, { name: `${name}-net`, driver: "bridge" }, { parent: this });

    this.volume = new docker.Volume(
      `${name}-data`,
      { name: `${name}-data` },
      // The volume holds the market data: in prod neither `pulumi destroy` nor a replacement may delete it.
      { parent: this, protect: args.protectData, retainOnDelete: args.protectData },
    );

    this.image = new docker.RemoteImage(`${name}-timescaledb-image`, { name: args.image, keepLocally: true }, { parent: this });

    this.postgresSettings = tunePostgres({
      memoryMb: args.memoryMb,
      cpus: args.cpus,
      maxConnections: args.maxConnections,
      timescaledb: args.timescaledb,
    });
    const command = ["postgres", ...postgresArgs(this.postgresSettings)];
    if (args.timescaledb && !args.telemetry) command.push("-c", "timescaledb.telemetry_level=off");

    // The superuser password goes in as a file (the image's entrypoint reads POSTGRES_PASSWORD_FILE), so it is
    // not in the environment `docker inspect` prints. The provider writes each upload as a tar entry with its
    // full path, extracted at "/" (parents created) before the container starts, mode 0644 owned by root, which
    // the entrypoint can read again after dropping to the postgres user (kreuzwerker/terraform-provider-docker,
    // internal/provider/resource_docker_container_funcs.go, resourceDockerContainerCreate).
    const uploads = pulumi.secret(pulumi.output(args.adminPassword).apply((password) => [{ file: PASSWORD_FILE, content: password }]));
    const envs = [
      `POSTGRES_PASSWORD_FILE=${PASSWORD_FILE}`,
      `POSTGRES_USER=${SUPERUSER}`,
      `TIMESCALEDB_TELEMETRY=${args.telemetry ? "basic" : "off"}`,
      // Settings come from our -c arguments; the image's own timescaledb-tune run would only shadow them.
      "NO_TS_TUNE=true",
    ];

    this.container = new docker.Container(
      `${name}-timescaledb`,
      {
        name: `${name}-timescaledb`,
        image: this.image.imageId,
        command,
        envs,
        uploads,
        memory: args.memoryMb,
        // Both in the form the provider reads back, or every preview shows a change (lib/containerLimits.ts).
        memorySwap: memorySwapMb(args.memoryMb),
        cpus: dockerCpus(args.cpus),
        // Parallel queries use /dev/shm; Docker's 64 MB default makes them fail under load.
        shmSize: Math.min(1024, Math.max(128, Math.floor(args.memoryMb / 4))),
        restart: args.restartPolicy,
        ports: [{ internal: 5432, external: args.port, ip: args.bindAddress, protocol: "tcp" }],
        networksAdvanced: [{ name: this.network.name, aliases: [DATABASE_NETWORK_ALIAS] }],
        volumes: [{ volumeName: this.volume.name, containerPath: DATA_PATH }],
        healthcheck: {
          // Over TCP: during first-start initialisation the image runs a temporary server on the Unix socket
          // only, and a socket check would report "ready" before the real server listens.
          tests: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", SUPERUSER, "-d", "postgres"],
          interval: "5s",
          timeout: "5s",
          retries: 12,
          startPeriod: "30s",
        },
        wait: true,
        waitTimeout: args.waitTimeoutSeconds ?? 180,
        // false. Under @pulumi/docker 4.11 with must_run, the provider's read (every `pulumi refresh`) REMOVED a
        // container it found stopped (`docker stop` for maintenance, a daemon restart with restart "no") and dropped
        // it from state (kreuzwerker v3.9.0 resource_docker_container_funcs.go, resourceDockerContainerRead and its
        // refresh func). 5.x (v4.5.0, #841) keeps it, but with must_run it first stores the stopped container's
        // ports, empty once it exited (the #842 guard holds only for must_run false), and ports are ForceNew: the
        // next up would replace the database container instead of starting it. So it stays false: a stopped
        // container is left as it is, and a 4.11.2 state refreshed by the old plugin is safe too. `wait` and the
        // healthcheck still fail a create whose server never becomes healthy.
        mustRun: false,
        // @pulumi/docker replaces this container delete-before-replace (pulumi-docker v4.11.2, v5.1.0 provider/resources.go):
        // the old one is stopped first, with these (lib/containerLimits.ts), so PostgreSQL shuts down cleanly.
        // destroyGraceSeconds is kept in state, not read back, and is no ForceNew: adding it is an in-place update.
        destroyGraceSeconds: DATABASE_STOP_GRACE_SECONDS,
        // ForceNew but Computed and read back from Config.StopSignal, which the postgres-based images already set to
        // SIGINT (STOPSIGNAL), so a deployed container of those images keeps its state; said here so every image stops alike.
        stopSignal: DATABASE_STOP_SIGNAL,
      },
      // The daemon's log-opts and default-ulimits: read back by 4.11.2, kept in such state by 5.x (lib/containerLimits.ts).
      { parent: this, dependsOn: args.dependsOn, ignoreChanges: DAEMON_DEFAULTED_FIELDS },
    );

    // Plain values, not the container's outputs: a replaced container's outputs are unknown during preview, and
    // the postgresql provider built from them would show every database resource as changing. Ordering comes
    // from `dependsOn: [container]` where the server is used; the published port is always `args.port`.
    this.host = pulumi.output(reachableHost(args.bindAddress));
    this.port = pulumi.output(args.port);
    this.networkName = this.network.name;

    this.registerOutputs({ host: this.host, port: this.port, networkName: this.networkName });
  }
}
