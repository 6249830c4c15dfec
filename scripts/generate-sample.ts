/**
 * `npm run sample [-- --out DIR]`: regenerates the bundled sample (data/sample by default) deterministically.
 * test/unit/loader-sample.test.ts checks that the committed files are exactly what this writes.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { generateSampleBars, sampleChecksums, writeSample } from "../lib/loader/sample";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: "string", default: path.join(__dirname, "..", "data", "sample") } } });
  const out = values.out ?? "";
  await writeSample(out);
  console.log(`wrote ${generateSampleBars().length} bars to ${out}`);
  for (const [file, sum] of Object.entries(sampleChecksums(out))) console.log(`  ${sum}  ${file}`);
}

main().catch((err: unknown) => {
  console.error(`generate-sample: ${(err as Error).message}`);
  process.exitCode = 1;
});
