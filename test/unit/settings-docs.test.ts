/**
 * Settings from one declaration (issue 20): Pulumi.yaml's config block and the settings tables of README.md and
 * docs/ARCHITECTURE.md are what lib/settings.ts's SETTINGS render (lib/settingsDocs.ts), so adding a setting
 * means declaring it once and running `npm run docs:settings`.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { SETTINGS, SETTING_KEYS, parseSettings, readStackSettings } from "../../lib/settings";
import { pulumiConfigBlock, settingsTable, withConfigBlock, withSettingsTable } from "../../lib/settingsDocs";

const ROOT = path.resolve(__dirname, "../..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const dev = readStackSettings(ROOT, "dev");
const prod = readStackSettings(ROOT, "prod");

describe("settings from one declaration", () => {
  test("every setting declares its Pulumi.yaml type, default and description, a rule and a summary, and a parser that takes its default", () => {
    const entries = Object.entries(SETTINGS);
    expect(entries.length).toBeGreaterThan(40);
    expect(SETTING_KEYS).toEqual(entries.map(([key]) => key));
    for (const [key, s] of entries) {
      expect({ key, description: s.description.length > 10, rule: s.rule.length > 0, summary: s.summary.length > 0 }).toEqual({ key, description: true, rule: true, summary: true });
      // sslmode's empty default means "suited to the mode" and is resolved after parsing.
      if (key !== "sslmode") expect({ key, ok: s.parse(s.default).ok }).toEqual({ key, ok: true });
    }
    expect(() => parseSettings({}, { stack: "dev", requireSecrets: false })).not.toThrow();
  });

  test("Pulumi.yaml's config block is the one the declarations render", () => {
    const text = read("Pulumi.yaml");
    expect(withConfigBlock(text)).toBe(text);
    expect(text.endsWith(pulumiConfigBlock())).toBe(true);
  });

  test.each([
    ["README.md", "readme"],
    ["docs/ARCHITECTURE.md", "architecture"],
  ] as const)("%s's settings table is rendered from the declarations, one row per setting with the dev and prod values", (file, doc) => {
    const text = read(file);
    const table = settingsTable(doc, dev, prod);
    expect(withSettingsTable(text, table, file)).toBe(text);
    const rows = table.split("\n").slice(2);
    expect(rows.map((r) => /^\| `([A-Za-z]+)` \|/.exec(r)?.[1])).toEqual(SETTING_KEYS);
    expect(rows.find((r) => r.startsWith("| `memoryMb` |"))).toContain("| 2048 | 8192 |");
  });

  test("a setting changed in the declarations shows in the rendered docs (nothing is copied by hand)", () => {
    const spec = SETTINGS.backupRetain;
    const original = spec.summary;
    try {
      (spec as { summary: string }).summary = "a summary nobody wrote in the docs";
      expect(withSettingsTable(read("README.md"), settingsTable("readme", dev, prod), "README.md")).not.toBe(read("README.md"));
    } finally {
      (spec as { summary: string }).summary = original;
    }
  });
});
