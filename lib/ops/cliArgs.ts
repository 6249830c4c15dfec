/**
 * Flag parsing shared by the ops CLIs (doctor, env, backup, restore, setup), on Node's `util.parseArgs`
 * so an unknown flag is an error naming it rather than silently ignored.
 */
import { parseArgs } from "node:util";

/** A flag's type: `string` takes a value, `boolean` does not. */
export type FlagSpec = Record<string, { type: "string" | "boolean"; default?: string | boolean }>;

/** Parses `argv` against `flags`; throws `Unknown option '--x'` style errors listing the allowed flags. */
export function parseFlags<F extends FlagSpec>(argv: string[], flags: F): { [K in keyof F]: F[K]["type"] extends "boolean" ? boolean : string | undefined } {
  try {
    const { values } = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false });
    return values as never;
  } catch (err) {
    const allowed = Object.keys(flags).map((f) => `--${f}`).join(", ");
    throw new Error(`${(err as Error).message}. Allowed: ${allowed}.`);
  }
}
