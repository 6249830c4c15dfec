/**
 * Container limits in exactly the form @pulumi/docker reads them back from `docker inspect`, so a second
 * `pulumi up` finds nothing to change. The read-back below is the same in kreuzwerker/terraform-provider-docker
 * v3.9.0 (@pulumi/docker 4.11.2) and v4.5.0 (5.1.0, the newest whose source we read for 5.2.0): helpers.go and the
 * cpus / memory_swap lines of resourceDockerContainerRead did not change between them.
 *
 * - `cpus` (ForceNew TypeString, internal/provider/resource_docker_container.go) is parsed into
 *   HostConfig.NanoCPUs by docker/cli's opts.ParseCPUs (resource_docker_container_funcs.go, create) and read back
 *   through nanoInt64ToDecimalString (internal/provider/helpers.go; read in resourceDockerContainerRead): the
 *   value as a 9-decimal string; when that string holds exactly nine "0" characters, rounded to one decimal,
 *   else with its trailing zeros cut. So 2 CPUs read back as "2.0" but 10, 20, 100, 101 ... as "10.", "20.",
 *   "100.", "101." (the integer part's own zeros are counted too), 1.5 as "1.5", 10.5 as "10.5". ForceNew compares
 *   the strings: anything but the read-back form replaces the container, restarting PostgreSQL, on every `up`.
 * - `memory_swap` (MB) is read back from HostConfig.MemorySwap. Left unset, Docker sets MemorySwap to twice the
 *   memory limit; the provider stores that and the next plan removes it again (resource_docker_container_funcs.go,
 *   resourceDockerContainerRead: `memory_swap = MemorySwap/1024/1024` when positive).
 */

const NANO = 1_000_000_000n;

/**
 * Seconds PostgreSQL gets to stop when its container is replaced or destroyed (`destroy_grace_seconds`). Without
 * it the provider stops the container with a 0 s timeout, i.e. SIGKILL at once, and every replacement is a crash
 * followed by WAL recovery (kreuzwerker/terraform-provider-docker v3.9.0 and v4.5.0 internal/provider/
 * resource_docker_container_funcs.go, resourceDockerContainerDelete: `ContainerStop(..., Timeout: &timeout)` with
 * timeout 0 unless destroy_grace_seconds > 0). A fast shutdown (SIGINT, the `stop_signal` we set) ends sessions
 * and writes a checkpoint; Docker returns as soon as PostgreSQL exits, so this is an upper bound, sized for the
 * checkpoint of large shared_buffers on slow disks.
 */
export const DATABASE_STOP_GRACE_SECONDS = 300;

/**
 * Container fields the Docker daemon fills from daemon.json (`log-opts`, `default-ulimits`, common on servers):
 * moby merges them into every container's HostConfig, kreuzwerker v3.9 reads them back into state
 * (resource_docker_container_funcs.go, resourceDockerContainerRead: `log_opts`, `ulimit`) and both are ForceNew and
 * not Computed (resource_docker_container.go), so every plan replaced the containers (upstream issue #873). We set
 * neither, so the program's containers pass these as `ignoreChanges`, which the bridge removes from the plan's diff
 * (pulumi-terraform-bridge v3.125.0 pkg/tfshim/sdk-v2/instance_diff.go, processIgnoreChanges). Setting one of them
 * later needs it taken out of this list.
 *
 * Kept on @pulumi/docker 5.x although kreuzwerker v4.5.0 reads them back only when `d` has them (#888, #947): a
 * container deployed with 4.11.2 has the daemon's values in its prior state, so 5.x's read (containerLogOptsForState,
 * `d.GetOk("ulimit")`) finds them there and stores them again, on every refresh, until the container is replaced;
 * without this list the first 5.x plan of such a stack replaces its containers. For containers created by 5.x it
 * changes nothing.
 */
export const DAEMON_DEFAULTED_FIELDS = ["logOpts", "ulimits"];

/** PostgreSQL's fast shutdown signal (smart shutdown, SIGTERM, would wait for pgAdmin's sessions to end). */
export const DATABASE_STOP_SIGNAL = "SIGINT";

/** Upstream's nanoInt64ToDecimalString (internal/provider/helpers.go, v3.9.0 = v4.5.0) for a positive NanoCPUs value. */
function readBackForm(nanoCpus: bigint): string {
  const nine = `${nanoCpus / NANO}.${String(nanoCpus % NANO).padStart(9, "0")}`; // big.Rat FloatString(9), exact here
  if ((nine.match(/0/g) ?? []).length === 9) {
    // FloatString(1): rounded to nearest, halves away from zero.
    const tenths = (nanoCpus + NANO / 20n) / (NANO / 10n);
    return `${tenths / 10n}.${tenths % 10n}`;
  }
  return nine.replace(/0+$/, "");
}

/**
 * The `cpus` string for `cpus` CPUs, in the form the provider reads back. Throws when no string is stable: more
 * than nine decimals (docker/cli refuses it as too precise), or a value whose read-back rounds to another
 * (0.05 reads back as "0.1", which would replace the container on every `up`).
 */
export function dockerCpus(cpus: number): string {
  if (!Number.isFinite(cpus) || cpus <= 0) throw new Error(`[tsdb:cpus] must be a number of CPUs above 0, got ${cpus}.`);
  const nanoCpus = BigInt(Math.round(cpus * 1e9));
  if (Math.abs(Number(nanoCpus) - cpus * 1e9) > 1e-3 * Math.max(1, cpus)) {
    throw new Error(`[tsdb:cpus] may have at most 9 decimals (Docker counts NanoCPUs), got ${cpus}.`);
  }
  const sent = readBackForm(nanoCpus);
  const [whole = "0", frac = ""] = sent.split(".");
  if (BigInt(whole) * NANO + BigInt((frac + "000000000").slice(0, 9)) !== nanoCpus) {
    throw new Error(`[tsdb:cpus] ${cpus} is read back from Docker as ${sent}, another value, so every pulumi up would replace the container; use ${sent}.`);
  }
  return sent;
}

/**
 * `memory_swap` in MB: equal to the memory limit, i.e. no swap. PostgreSQL sizes shared_buffers, work_mem and
 * effective_cache_size from the memory limit (lib/tuning.ts); letting the kernel swap those pages out turns a
 * clear out-of-memory error into queries that are slow for no visible reason, so the limit is a hard one.
 */
export function memorySwapMb(memoryMb: number): number {
  return memoryMb;
}
