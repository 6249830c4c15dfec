/**
 * `pulumi up` compiles index.ts itself, with Pulumi's vendored ts-node 7 and the project's TypeScript and
 * tsconfig.json: a tsconfig or import that `tsc` accepts can still fail there. This loads the program exactly
 * that way (test/fixtures/pulumiTsLoader.cjs mirrors @pulumi/pulumi/cmd/run/run.js).
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";

const run = promisify(execFile);
const ROOT = path.join(__dirname, "../..");
const LOADER = path.join(ROOT, "test/fixtures/pulumiTsLoader.cjs");

describe("the program compiles as `pulumi up` compiles it", () => {
  test("index.ts type-checks and loads under Pulumi's ts-node with the project's TypeScript", async () => {
    const { stdout } = await run(process.execPath, [LOADER, ROOT, "index.ts"]);
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules/typescript/package.json"), "utf8")) as { version: string };
    expect(stdout).toBe(`typescript ${version}\ncompiled\n`);
  });

  test("a type error stops the load, so the check above can fail", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-tsnode-"));
    const file = path.join(dir, "broken.ts");
    fs.writeFileSync(file, 'const port: number = "5432";\nexport default port;\n');
    try {
      await expect(run(process.execPath, [LOADER, ROOT, file])).rejects.toThrow(/TS2322: Type 'string' is not assignable to type 'number'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
