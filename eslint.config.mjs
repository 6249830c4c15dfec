// @ts-check
import eslint from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // tmp/ is git-ignored scratch: the load benchmark compiles its children there (tmp/bench-load-dist).
  { ignores: ["dist/**", "node_modules/**", "coverage/**", ".pulumi/**", "tmp/**"] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Plain CommonJS scripts that Node runs as they are (test/fixtures/pulumiTsLoader.cjs).
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", process: "readonly", module: "writable", __dirname: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
);
