/**
 * What the Pulumi program can learn about the Docker host at preview, before any resource is created. The
 * docker provider has no invoke for the host's CPU count (@pulumi/docker 4.11 and 5.2: its functions are getLogs, getNetwork, getPlugin, getRegistryImage*, getRemoteImage), so it is read from the Docker
 * CLI, pointed at the host the provider uses (`docker:host` config, else DOCKER_HOST as the CLI reads it).
 */
import { spawnSync } from "node:child_process";

/**
 * The Docker host's CPU count (`docker info` NCPU), or undefined when it cannot be read (no CLI, daemon down, a
 * remote host that does not answer within `timeoutMs`): then nothing is checked, as before.
 */
export function dockerHostCpus(dockerHost?: string, timeoutMs = 15_000): number | undefined {
  const args = [...(dockerHost ? ["--host", dockerHost] : []), "info", "--format", "{{.NCPU}}"];
  const result = spawnSync("docker", args, { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "ignore"] });
  const text = (result.stdout ?? "").trim();
  return result.status === 0 && /^\d+$/.test(text) ? Number(text) : undefined;
}
