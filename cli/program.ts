/**
 * The `tsdb` command: one commander program with a file per command group (cli/db.ts, cli/data.ts, ...).
 * This file wires the shared conventions (cli/conventions.ts) into commander: usage errors exit 2 with one
 * line plus the usage, runtime failures exit 1 with one line, a bug (an internal error) exits 1 saying it is one
 * with its stack trace and what to report, help exits 0; a group without its subcommand
 * (`tsdb`, `tsdb db`) prints its help.
 *
 * Why commander: it is the most used Node argument parser (no dependencies, maintained since 2011, typed),
 * it loads in a few milliseconds (start-up matters: every command runs it), and it already has what the
 * conventions need: nested subcommands, `exitOverride` so we choose exit codes and messages, option defaults,
 * choices and environment variables shown in the help (`Option.env`), and errors for unknown or missing flags.
 */
import { Command, CommanderError } from "commander";
import { type Act, EXIT, type Io, UsageError, asGroup, commandPath, debugEnabled, failureLine, internalErrorReport, isInternalError, makeContext, oneLine, packageRoot, usageLine } from "./conventions";
import * as fs from "node:fs";
import * as path from "node:path";
import { registerBackup } from "./backup";
import { registerBench } from "./bench";
import { registerData } from "./data";
import { registerDb } from "./db";
import { registerDoctor } from "./doctor";
import { registerEnv } from "./env";
import { registerSample } from "./sample";
import { registerSetup } from "./setup";

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

/** Builds the program for one run; `failed` is set by actions whose outcome is a failure (exit 1). */
export function buildProgram(io: Io): { program: Command; outcome: { failed: boolean; usageCmd?: Command; usageMessage?: string } } {
  const outcome: { failed: boolean; usageCmd?: Command; usageMessage?: string } = { failed: false };
  const program = new Command("tsdb")
    .description("TimescaleDB platform for market data: migrations, loading, backups and checks, against the stack or any server.")
    .version(version(), "-V, --version", "print the version")
    .option("-q, --quiet", "print results and errors only (no progress or advice)")
    .option("--debug", "print stack traces of failures (also: DEBUG=tsdb)")
    .helpOption("-h, --help", "print this help")
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });
  asGroup(program);
  examples(program);

  const act: Act = (body) => async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const globals = cmd.optsWithGlobals<{ quiet?: boolean }>();
    const ctx = makeContext(io, globals.quiet === true, () => (outcome.failed = true));
    await body(cmd.opts() as never, ctx, cmd);
  };
  registerDb(program, act);
  registerData(program, act);
  registerBackup(program, act);
  registerEnv(program, act);
  registerDoctor(program, act);
  registerSetup(program, act);
  registerSample(program, act);
  registerBench(program, act);

  // Commander reports its own usage errors through outputError before throwing; keep the message and the
  // command it came from, and print them our way (one line + usage) in runTsdb.
  for (const cmd of allCommands(program)) {
    cmd.configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
      outputError: (message) => {
        outcome.usageCmd = cmd;
        outcome.usageMessage = oneLine(message.replace(/^error: /, ""));
      },
    });
  }
  return { program, outcome };
}

function examples(program: Command): void {
  program.addHelpText(
    "after",
    "\nEvery command: --help for its flags and an example; exit 0 ok, 1 failed, 2 bad usage.\n\nExample:\n  $ tsdb db up --url postgresql://postgres@127.0.0.1:5432/market",
  );
}

/** The command a usage error is about: the deepest one named in argv (for `tsdb db up --to x`, `db up`). */
function commandNamedIn(program: Command, argv: string[]): Command {
  let cmd = program;
  for (const arg of argv) {
    const sub = cmd.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (sub) cmd = sub;
  }
  return cmd;
}

/** Runs `tsdb` with `argv` (without node and script); returns the exit code. Never throws. */
export async function runTsdb(argv: string[], io: Io = { out: process.stdout, err: process.stderr, env: process.env }): Promise<number> {
  const { program, outcome } = buildProgram(io);
  const debug = debugEnabled(argv.includes("--debug"), io.env);
  try {
    await program.parseAsync(argv, { from: "user" });
    return outcome.failed ? EXIT.failed : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.ok;
      const cmd = outcome.usageCmd ?? commandNamedIn(program, argv);
      io.err.write(`${commandPath(cmd)}: ${outcome.usageMessage ?? oneLine(err.message.replace(/^error: /, ""))}\n${usageLine(cmd)}\n`);
      return EXIT.usage;
    }
    const cmd = commandNamedIn(program, argv);
    if (err instanceof UsageError) {
      io.err.write(`${commandPath(cmd)}: ${oneLine(err.message)}\n${usageLine(cmd)}\n`);
      return EXIT.usage;
    }
    if (isInternalError(err)) {
      io.err.write(internalErrorReport(cmd, err, { tsdb: version(), node: process.version, platform: `${process.platform} ${process.arch}` }));
      return EXIT.failed;
    }
    io.err.write(`${failureLine(cmd, err)}\n`);
    if (debug && err instanceof Error && err.stack) io.err.write(`${err.stack}\n`);
    return EXIT.failed;
  }
}
