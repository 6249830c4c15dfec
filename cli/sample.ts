/**
 * `tsdb sample`: regenerates the bundled sample (data/sample by default) deterministically.
 * test/unit/loader-sample.test.ts checks that the committed files are exactly what this writes.
 */
import * as path from "node:path";
import type { Command } from "commander";
import { type Act, type Context, examples, packageRoot } from "./conventions";

interface SampleFlags {
  out?: string;
  json?: boolean;
}

async function sample(o: SampleFlags, ctx: Context): Promise<void> {
  const { generateSampleBars, sampleChecksums, writeSample } = await import("../lib/loader/sample.js");
  const out = o.out ? path.resolve(o.out) : path.join(packageRoot(), "data", "sample");
  await writeSample(out);
  const bars = generateSampleBars().length;
  const checksums = sampleChecksums(out);
  if (o.json) return ctx.json({ out, bars, sha256: checksums });
  ctx.print(`wrote ${bars} bars to ${out}`);
  for (const [file, sum] of Object.entries(checksums)) ctx.info(`  ${sum}  ${file}`);
}

export function registerSample(program: Command, act: Act): void {
  const cmd = program
    .command("sample")
    .description("regenerate the bundled sample data (CSV, Parquet, SQLite) deterministically")
    .option("--out <dir>", "where to write it (default: this package's data/sample)")
    .option("--json", "print the files' sha256 as JSON");
  examples(cmd, "tsdb sample --out /tmp/sample").action(act<SampleFlags>((o, ctx) => sample(o, ctx)));
}
