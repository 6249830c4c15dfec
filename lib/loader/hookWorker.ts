/**
 * The Pulumi dataset hook's child process (providers/DatasetProvider.ts runs it with `node --import tsx`
 * in the project directory). Protocol, one JSON document each way:
 * - stdin: `{ "request": LoadRequest, "defaultRejects": "<project-relative path>" }`; the connection comes
 *   in the environment (DATABASE_URL), never on stdin or a command line;
 * - stdout, last line: `{ "ok": true, "summary": LoadSummary }` or `{ "ok": false, "error": "<one line>" }`.
 * The exit code is 0 with a summary and 1 with an error; the provider reads the JSON, not stderr.
 */
import { runLoadRequest } from "./runLoad";

/** What the worker writes. */
export type HookReply = { ok: true; summary: unknown } | { ok: false; error: string };

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function main(): Promise<HookReply> {
  const url = process.env.DATABASE_URL;
  if (!url) return { ok: false, error: "the hook worker needs DATABASE_URL in its environment." };
  let input: { request?: unknown; defaultRejects?: unknown };
  try {
    input = JSON.parse(await readStdin()) as typeof input;
  } catch (err) {
    return { ok: false, error: `the hook worker's stdin is not JSON (${(err as Error).message}).` };
  }
  const summary = await runLoadRequest(url, input.request as never, {
    cwd: process.cwd(),
    ...(typeof input.defaultRejects === "string" ? { defaultRejects: input.defaultRejects } : {}),
  });
  return { ok: true, summary };
}

main()
  .catch((err: unknown): HookReply => ({ ok: false, error: (err as Error).message.split("\n")[0] ?? String(err) }))
  .then((reply) => {
    process.stdout.write(`${JSON.stringify(reply)}\n`);
    if (!reply.ok) process.exitCode = 1;
  });
