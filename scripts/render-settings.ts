/**
 * `npm run docs:settings`: writes Pulumi.yaml's `config:` block and the settings tables of README.md and
 * docs/ARCHITECTURE.md from the declarations in lib/settings.ts (lib/settingsDocs.ts renders them). Run it after
 * adding or changing a setting; test/unit/settings-docs.test.ts fails until the files match.
 */
import fs from "node:fs";
import path from "node:path";
import { readStackSettings } from "../lib/settings";
import { settingsTable, withConfigBlock, withSettingsTable } from "../lib/settingsDocs";

const ROOT = path.resolve(__dirname, "..");
const dev = readStackSettings(ROOT, "dev");
const prod = readStackSettings(ROOT, "prod");
const rewrite = (file: string, change: (text: string) => string) => {
  const full = path.join(ROOT, file);
  const before = fs.readFileSync(full, "utf8");
  const after = change(before);
  if (after !== before) fs.writeFileSync(full, after);
  console.log(`${file}: ${after === before ? "up to date" : "rewritten"}`);
};
rewrite("Pulumi.yaml", withConfigBlock);
rewrite("README.md", (t) => withSettingsTable(t, settingsTable("readme", dev, prod), "README.md"));
rewrite("docs/ARCHITECTURE.md", (t) => withSettingsTable(t, settingsTable("architecture", dev, prod), "docs/ARCHITECTURE.md"));
