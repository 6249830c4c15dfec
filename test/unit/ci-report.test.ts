/**
 * `.ci/run`'s closing line: the test command says "N passed, N failed" also when tests fail, and counts a file
 * that failed outside any test (a hook, an engine that cannot start) instead of hiding it among the skipped.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const VITEST = path.join(ROOT, "node_modules", ".bin", "vitest");

/** A throwaway project with the given test files, run through .ci/report-tests as .ci/run runs npm test. */
function reportOf(files: Record<string, string>): { status: number | null; lastLines: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-ci-report-"));
  try {
    fs.writeFileSync(path.join(dir, "vitest.config.mjs"), "export default { test: { include: ['*.test.mjs'] } };\n");
    for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), `import { beforeAll, expect, test } from "vitest";\n${body}\n`);
    const r = spawnSync("bash", [path.join(ROOT, ".ci/report-tests"), VITEST, "run", "--root", dir], { cwd: dir, encoding: "utf8", env: { ...process.env, CI: "true" } });
    return { status: r.status, lastLines: r.stdout.trim().split("\n").slice(-2) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe(".ci/report-tests (the test command's closing line)", () => {
  test("a failing test still ends the run with the counts, and the command fails", () => {
    const { status, lastLines } = reportOf({
      "a.test.mjs": 'test("passes", () => expect(1).toBe(1));\ntest("fails", () => expect(1).toBe(2));',
    });
    expect(status).toBe(1);
    expect(lastLines.at(-1)).toBe("1 passed, 1 failed");
  });

  test("a file whose hook fails before its tests counts as a failure and is named", () => {
    const { status, lastLines } = reportOf({
      "ok.test.mjs": 'test("passes", () => expect(1).toBe(1));',
      "engine.test.mjs": 'beforeAll(() => { throw new Error("PostgreSQL 17 cannot start"); });\ntest("needs the engine", () => expect(1).toBe(1));',
    });
    expect(status).toBe(1);
    expect(lastLines).toEqual(["1 test file(s) failed outside any test: engine.test.mjs", "1 passed, 1 failed"]);
  });

  test("an all-green run exits 0 with its counts", () => {
    const { status, lastLines } = reportOf({ "a.test.mjs": 'test("one", () => expect(1).toBe(1));\ntest("two", () => expect(2).toBe(2));' });
    expect(status).toBe(0);
    expect(lastLines.at(-1)).toBe("2 passed, 0 failed");
  });
});
