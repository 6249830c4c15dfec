/**
 * The conventions every `tsdb` subcommand shares, in one place: how output is written (`--json`, `--quiet`,
 * colours only on a TTY without NO_COLOR), which errors are usage errors (exit 2) and which are runtime
 * failures (exit 1), and how each is printed (one line, no stack trace unless `--debug` or DEBUG=tsdb), and
 * which are bugs in tsdb (internal errors: said as such, with the stack trace and what to report).
 * Only Node built-ins, commander and lib/db (no driver at load time) load here: heavy modules are imported
 * inside the command that needs them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { connectionLost, failureLine as connectionFailureLine, isConnectionLost, isConnectionLostError } from "../lib/db";
import { CONNECTION_STRING_FORMS, type ResolvedConnection, isConnectionStringError, resolveConnection } from "../lib/postgres/connectionString";

/** Exit codes of every subcommand. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Bad input on the command line (a missing flag, a value out of range): exit 2 with the usage line. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Where a run writes, and the environment it reads: the process's in the binary, captured ones in tests. */
export interface Io {
  out: { write(text: string): unknown; isTTY?: boolean };
  err: { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** What an action gets besides its flags: output that follows the global flags, and the exit code to set. */
export interface Context {
  io: Io;
  /** A result line (printed even with --quiet). */
  print(text: string): void;
  /** Progress or advice (suppressed by --quiet). */
  info(text: string): void;
  /** A result as JSON on stdout. */
  json(value: unknown): void;
  /** An outcome that is not an error but a failure (doctor's failed checks, validate's problems): exit 1. */
  fail(): void;
  readonly quiet: boolean;
  /** `ok`/`WARN`/`FAIL` and the error prefix in colour: stdout is a TTY and NO_COLOR is unset. */
  paint(text: string, colour: "red" | "green" | "yellow" | "bold"): string;
}

const ANSI = { red: 31, green: 32, yellow: 33, bold: 1 } as const;

/** https://no-color.org: any NO_COLOR value (even empty) disables colour; so does a non-TTY or TERM=dumb. */
export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && env.NO_COLOR === undefined && env.TERM !== "dumb";
}

export function makeContext(io: Io, quiet: boolean, onFail: () => void): Context {
  const colour = colourEnabled(io.out, io.env);
  return {
    io,
    quiet,
    print: (text) => io.out.write(`${text}\n`),
    info: (text) => {
      if (!quiet) io.out.write(`${text}\n`);
    },
    json: (value) => io.out.write(`${JSON.stringify(value, null, 2)}\n`),
    fail: onFail,
    paint: (text, c) => (colour ? `\u001b[${ANSI[c]}m${text}\u001b[0m` : text),
  };
}

/** `tsdb db up` for the `up` command under `db`. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** The usage line printed under a usage error. */
export function usageLine(cmd: Command): string {
  return `Usage: ${commandPath(cmd)} ${cmd.usage()} (see \`${commandPath(cmd)} --help\`)`;
}

/** One line: newlines inside a message (from pg, from a child's stderr) joined, so logs keep one line per error. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** Whether to print stack traces: `--debug`, or DEBUG naming tsdb (DEBUG=tsdb, DEBUG=tsdb,other or DEBUG=*). */
export function debugEnabled(flag: boolean, env: NodeJS.ProcessEnv): boolean {
  return flag || (env.DEBUG ?? "").split(/[\s,]+/).some((d) => d === "tsdb" || d === "*");
}

/**
 * What to do for failures whose message says only what failed (connection errors from `pg` and Node):
 * the `<what to do>` half of `tsdb <command>: <what failed>, <what to do>`.
 */
export function adviceFor(err: unknown): string | undefined {
  const code = (err as { code?: string }).code;
  switch (code) {
    case "ECONNREFUSED":
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
      return "check that the server is running and that --url (or DATABASE_URL) names its host and port";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "check the host name in --url (or DATABASE_URL)";
    case "28P01":
    case "28000":
      return "check the user and password in --url (or PGPASSWORD)";
    case "3D000":
      return "create the database first, or name an existing one in --url";
    default:
      return undefined;
  }
}

/**
 * Runs `fn`; a lost connection under it (server restart, pg_terminate_backend, network) becomes one error
 * saying `connection lost during <during>; <committed>`, so the user learns what of the work is in the database.
 */
export async function whileConnected<T>(during: string, committed: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isConnectionLost(err) && !isConnectionLostError(err)) throw connectionLost(during, committed, err);
    throw err;
  }
}

/** The one line a runtime failure prints; a lost connection no command described is said as such. */
export function failureLine(cmd: Command, err: unknown): string {
  const message = oneLine(connectionFailureLine(err, commandPath(cmd).replace(/^tsdb /, ""))) || (err instanceof Error ? err.name : "failed");
  const advice = adviceFor(err);
  return `${commandPath(cmd)}: ${message}${advice && !message.includes(advice) ? `, ${advice}` : ""}`;
}

/**
 * Whether a failure is a bug in tsdb rather than a failure of the user's input, server or machine. The errors
 * JavaScript raises for code that is wrong (reading a property of undefined, calling a non-function, a broken
 * assertion) are bugs, as is a throw of something that is not an Error. Errors with a `code` are not: Node
 * and pg set one on the failures of the world outside (ECONNREFUSED, ENOENT, ERR_INVALID_URL for a bad --url,
 * SQLSTATEs), and every failure tsdb means to report is an Error with its own message.
 */
export function isInternalError(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && code !== "ERR_ASSERTION") return false;
  return err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof EvalError || err.name === "AssertionError";
}

/**
 * What an internal error prints, after the approach of the changesets CLI: that it is a bug (so the user stops
 * looking for their mistake), the error with its stack trace, and what to put in a report.
 */
export function internalErrorReport(cmd: Command, err: unknown, versions: { tsdb: string; node: string; platform: string }): string {
  const what = err instanceof Error ? `${err.name}: ${oneLine(err.message)}` : `a thrown ${typeof err}: ${oneLine(String(err))}`;
  const stack = err instanceof Error && err.stack ? `${err.stack}\n` : "";
  return (
    `${commandPath(cmd)}: internal error (a bug in tsdb, not in your input or server): ${what}\n` +
    `${stack}` +
    `Please report it to the tsdb-stack maintainers with the command you ran, everything printed above, and: tsdb ${versions.tsdb}, Node ${versions.node}, ${versions.platform}.\n`
  );
}

/** An example block for the end of a command's help. */
export function examples(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText("after", `\nExample${lines.length > 1 ? "s" : ""}:\n${lines.map((l) => `  $ ${l}`).join("\n")}`);
}

/** `--url`, reading DATABASE_URL when the flag is absent (commander prints "(env: DATABASE_URL)" in help). */
export function urlOption(description = "the database: a postgresql:// URL or libpq key=value pairs; PG* variables fill in what it leaves out"): Option {
  return new Option("--url <url>", description).env("DATABASE_URL");
}

/**
 * The connection `url` means, read as libpq reads it (PG* variables for what it leaves out); a string that is
 * not a connection (`--url notaurl`) is a usage error, exit 2, in one line that never repeats the string.
 */
export function parseConnection(url: string | undefined, flag = "--url", env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  try {
    return resolveConnection(url, env);
  } catch (err) {
    if (isConnectionStringError(err)) throw new UsageError(`${flag}: ${err.message}`);
    throw err;
  }
}

/**
 * The connection string from --url or DATABASE_URL (checked: a bad one is a usage error); without either, the PG*
 * variables when PGHOST or PGDATABASE is set, as psql would use them; else a usage error saying how to give one.
 */
export function requireUrl(url: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (!url) {
    if (env.PGHOST || env.PGDATABASE) {
      parseConnection("", "PG* variables", env);
      return "";
    }
    throw new UsageError(`no database: pass --url (${CONNECTION_STRING_FORMS}) or set DATABASE_URL or PGHOST/PGDATABASE`);
  }
  parseConnection(url, "--url", env);
  return url;
}

/** `--stack`: the Pulumi stack whose settings (Pulumi.<stack>.yaml) and outputs to use. */
export function stackOption(): Option {
  return new Option("--stack <name>", "stack whose settings and outputs to use").default("dev");
}

/**
 * Makes `flag` (as written in the command's options, e.g. `--to <version>`) required. Checked after commander's
 * own checks, so an unknown flag is reported as such rather than as the missing one.
 */
export function required(cmd: Command, flags: string, description: string): Command {
  cmd.option(flags, `${description} (required)`);
  const option = cmd.options[cmd.options.length - 1]!;
  return cmd.hook("preAction", (_parent, action) => {
    if (action.getOptionValue(option.attributeName()) === undefined) throw new UsageError(`required option '${flags}' not specified`);
  });
}

/** A whole number >= `min` for a flag, else a usage error naming the flag. */
export function wholeNumber(flag: string, min: number): (raw: string) => number {
  return (raw) => {
    if (!/^\d+$/.test(raw) || Number(raw) < min) throw new InvalidArgumentError(`${flag} must be a whole number of at least ${min}.`);
    return Number(raw);
  };
}

/**
 * The package's own directory (where package.json, Pulumi.yaml and sql/ are), from the source (cli/) or
 * the compiled build (dist/cli/) alike.
 */
export function packageRoot(start: string = __dirname): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

/**
 * The Pulumi project whose settings (Pulumi.yaml, Pulumi.<stack>.yaml) a command reads: the working directory
 * when it holds a Pulumi.yaml (a checkout of the project, as the scripts before `tsdb` read it), else this
 * package's own directory (a global install run from anywhere).
 */
export function projectRoot(cwd: string = process.cwd()): string {
  return fs.existsSync(path.join(cwd, "Pulumi.yaml")) ? cwd : packageRoot();
}

/** An action body: its flags, the context, and the command (for paths and help). */
export type Action<O> = (options: O, ctx: Context, cmd: Command) => Promise<void> | void;

/** Turns an action body into a commander action that gets the context built from the global flags. */
export type Act = <O>(body: Action<O>) => (...args: unknown[]) => Promise<void>;

/** A group command (`tsdb`, `tsdb db`, `tsdb data`, `tsdb bench`) prints its help when no subcommand is named. */
export function asGroup(group: Command): Command {
  return group.usage("[options] [command]").helpCommand("help [command]", "print help for a command").argument("[command]").action((name: string | undefined) => {
    if (name !== undefined) {
      const known = group.commands.map((c) => c.name()).join(", ");
      throw new UsageError(`unknown command '${name}'; the commands are ${known}`);
    }
    // outputHelp, not helpInformation: the examples and notes added with addHelpText print only through it.
    group.outputHelp();
  });
}

