/**
 * Container limits in exactly the form @pulumi/docker 4.11 (kreuzwerker/terraform-provider-docker v3.9) reads
 * them back from `docker inspect`, so a second `pulumi up` finds nothing to change.
 *
 * - `cpus` (ForceNew, internal/provider/resource_docker_container.go) is sent as a string, turned into
 *   HostConfig.NanoCPUs, and read back from NanoCPUs formatted with one decimal: 2 CPUs come back as "2.0"
 *   (internal/provider/resource_docker_container_funcs.go, resourceDockerContainerRead; upstream issue #759,
 *   PR #771). Sending "2" made every plan replace the container, restarting PostgreSQL on every deploy.
 * - `memory_swap` (MB) is read back from HostConfig.MemorySwap. Left unset, Docker sets MemorySwap to twice the
 *   memory limit; the provider stores that and the next plan removes it again (resource_docker_container_funcs.go,
 *   resourceDockerContainerRead: `memory_swap = MemorySwap/1024/1024` when positive).
 */

/** The `cpus` string for a whole number of CPUs, as the provider reads it back (one decimal). */
export function dockerCpus(cpus: number): string {
  if (!Number.isInteger(cpus) || cpus < 1) throw new Error(`[tsdb:cpus] must be a whole number of CPUs, at least 1, got ${cpus}.`);
  return cpus.toFixed(1);
}

/**
 * `memory_swap` in MB: equal to the memory limit, i.e. no swap. PostgreSQL sizes shared_buffers, work_mem and
 * effective_cache_size from the memory limit (lib/tuning.ts); letting the kernel swap those pages out turns a
 * clear out-of-memory error into queries that are slow for no visible reason, so the limit is a hard one.
 */
export function memorySwapMb(memoryMb: number): number {
  return memoryMb;
}
