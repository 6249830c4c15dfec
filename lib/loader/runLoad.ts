/**
 * Runs a LoadRequest (loadRequest.ts) against a database: what the CLI's `load` and the Pulumi hook's worker
 * both call, so they cannot drift apart.
 */
import type { Connection } from "../db";
import { type LoadRequest, parseLoadRequest, toLoadOptions } from "./loadRequest";
import { DEFAULT_REJECTS_FILE, type LoadSummary, loadOhlcvFrom } from "./OhlcvLoader";
import { type ProgressReporter, silentProgress } from "./progress";

/** Validates `request`, resolves its paths against `cwd`, loads, and returns the summary. */
export async function runLoadRequest(
  connection: Connection,
  request: LoadRequest,
  context: { cwd: string; progress?: ProgressReporter; defaultRejects?: string },
): Promise<LoadSummary> {
  const valid = parseLoadRequest(request);
  const options = toLoadOptions(valid, { cwd: context.cwd, defaultRejects: context.defaultRejects ?? DEFAULT_REJECTS_FILE });
  return loadOhlcvFrom(connection, { ...options, progress: context.progress ?? silentProgress });
}
