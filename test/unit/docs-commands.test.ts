/**
 * Every `tsdb` command the README and docs/ name exists: each command path written in their code (inline or
 * fenced), as `tsdb ...`, `npx tsdb ...` or an npm script that runs tsdb (`npm run data -- load`), has a
 * `--help` that prints that command's own usage and exits 0. A doc naming a command the program does not have
 * (`npm run db -- migrate`) fails here with the file and line.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { ROOT, tsdbInProcess } from "../fixtures/cli";

const DOCS = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const SCRIPTS = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

/** The text of each code span and each fenced block line, with the line it is on. */
function codeOf(markdown: string): Array<{ line: number; code: string }> {
  const out: Array<{ line: number; code: string }> = [];
  let fenced = false;
  markdown.split("\n").forEach((text, i) => {
    if (/^\s*```/.test(text)) {
      fenced = !fenced;
      return;
    }
    // A shell comment in a block is prose ("# installs and builds the tsdb command").
    if (fenced) out.push({ line: i + 1, code: text.replace(/(^|\s)#.*$/, "") });
    else for (const m of text.matchAll(/`([^`]+)`/g)) out.push({ line: i + 1, code: m[1]! });
  });
  return out;
}

/** The command words after `tsdb` (to the first flag, placeholder or punctuation), `a|b` spelled out. */
function commandPaths(afterTsdb: string): string[][] {
  const words: string[][] = [[]];
  for (const word of afterTsdb.replace(/\\\|/g, "|").trim().split(/\s+/).filter(Boolean)) {
    if (!/^[a-z][a-z-]*(\|[a-z][a-z-]*)*$/.test(word)) break;
    const alternatives = word.split("|");
    const last = words.splice(0);
    for (const w of last) for (const alt of alternatives) words.push([...w, alt]);
  }
  return words;
}

/** Every `tsdb` command path named in `code`: directly, through npx, or through an npm script. */
function namedIn(code: string): string[][] {
  const found: string[][] = [];
  for (const m of code.matchAll(/(?:^|[\s;&|(])(?:npx\s+)?tsdb(?=\s|$)(.*)$/gm)) found.push(...commandPaths(m[1]!));
  for (const m of code.matchAll(/npm run ([\w:-]+)(?:\s+--(?=\s))?(.*)$/gm)) {
    const script = SCRIPTS[m[1]!];
    const viaTsdb = script && /^node dist\/tsdb\.mjs(.*)$/.exec(script);
    if (!viaTsdb) continue;
    const own = viaTsdb[1]!.trim();
    // Words after the script go to tsdb only after `--`; `npm run data -- load` is `tsdb data load`.
    const extra = /\s--(\s|$)/.test(` ${m[0]}`) ? m[2]! : "";
    found.push(...commandPaths(`${own} ${extra}`));
  }
  return found;
}

const named = new Map<string, string[]>();
for (const doc of DOCS) {
  for (const { line, code } of codeOf(fs.readFileSync(path.join(ROOT, doc), "utf8"))) {
    for (const words of namedIn(code)) {
      const key = words.join(" ");
      named.set(key, [...(named.get(key) ?? []), `${doc}:${line}`]);
    }
  }
}

describe("the commands the README and docs name", () => {
  test("are found: the list is not empty and spans the command groups", () => {
    const keys = [...named.keys()];
    expect(keys.length).toBeGreaterThan(10);
    for (const expected of ["", "setup", "doctor", "db up", "data load", "backup", "restore", "env"]) expect(keys).toContain(expected);
  });

  test.each([...named.entries()].map(([words, where]) => [`tsdb ${words}`.trim(), where] as const))("%s --help prints its own usage (named at %j)", async (command, where) => {
    const words = command.split(" ").slice(1);
    const r = await tsdbInProcess([...words, "--help"]);
    expect(r.code, `${command} (${where.join(", ")})`).toBe(0);
    expect(r.stdout.split("\n")[0], `${command} (${where.join(", ")})`).toMatch(new RegExp(`^Usage: ${command.replace(/[-]/g, "\\-")} \\[options\\]`));
  });

  test("a command the program lacks is caught: `npm run db -- migrate` is not tsdb db's usage", async () => {
    const [words] = namedIn("npm run db -- migrate --to 3");
    expect(words).toEqual(["db", "migrate"]);
    const r = await tsdbInProcess([...words!, "--help"]);
    expect(r.stdout.split("\n")[0]).not.toMatch(/^Usage: tsdb db migrate \[options\]/);
  });
});
