/**
 * What the settings declarations (lib/settings.ts `SETTINGS`) render into: Pulumi.yaml's `config:` block and the
 * settings tables of README.md and docs/ARCHITECTURE.md (between `<!-- settings:begin -->` and
 * `<!-- settings:end -->`). `npm run docs:settings` (scripts/render-settings.ts) writes them; a unit test holds the
 * files to them, so a setting is added in one place.
 */
import { stringify } from "yaml";
import { SECRET_KEYS, SETTINGS, type Settings } from "./settings";

type Key = keyof typeof SETTINGS;

/** Pulumi.yaml's `config:` block, every key with its type (when Pulumi knows it), description and default. */
export function pulumiConfigBlock(): string {
  const config = Object.fromEntries(
    Object.entries(SETTINGS).map(([key, s]) => [key, { ...(s.type ? { type: s.type } : {}), description: s.description, default: s.default }]),
  );
  return stringify({ config }, { lineWidth: 0 });
}

/** A setting's value in a stack, as the tables show it. */
function shown(key: Key, s: Settings): string {
  if ((SECRET_KEYS as readonly string[]).includes(key) && s[key] === undefined) {
    if (key === "pgadminPassword" && !(s.mode === "docker" && s.pgadminEnabled)) return "-";
    return s.generatePasswords ? "generated" : "required (secret)";
  }
  const value: unknown = s[key];
  if (key === "maxConnections" && value === undefined) return "derived";
  if (key === "tickRetention" && value === undefined) return "- (keep all)";
  if (key === "datasets") return (value as { name: string }[]).map((d) => d.name).join(", ") || "[]";
  if (Array.isArray(value)) return value.join(", ") || "-";
  return value === undefined || value === "" ? "-" : String(value);
}

const cell = (text: string) => text.replace(/\|/g, "\\|");

/**
 * The settings table, one row per key: README's (setting, dev, prod, meaning) or ARCHITECTURE's, which adds what
 * a value may be. `dev` and `prod` are the stacks' settings as Pulumi.<stack>.yaml gives them.
 */
export function settingsTable(doc: "readme" | "architecture", dev: Settings, prod: Settings): string {
  const rows = (Object.keys(SETTINGS) as Key[]).map((key) => {
    const s = SETTINGS[key];
    const values = [shown(key, dev), shown(key, prod)].map(cell);
    return doc === "readme"
      ? `| \`${key}\` | ${values.join(" | ")} | ${cell(s.summary)} |`
      : `| \`${key}\` | ${cell(s.rule)} | ${values.join(" | ")} | ${cell(s.summary)} |`;
  });
  const head = doc === "readme" ? "| setting (`tsdb:`) | dev | prod | meaning |\n|---|---|---|---|" : "| key (`tsdb:`) | type | dev | prod | meaning |\n|---|---|---|---|---|";
  return `${head}\n${rows.join("\n")}`;
}

const BEGIN = "<!-- settings:begin (npm run docs:settings writes this table from lib/settings.ts) -->";
const END = "<!-- settings:end -->";

/** The text of `doc` with its settings table replaced by `table`; throws when the markers are missing. */
export function withSettingsTable(text: string, table: string, file: string): string {
  const from = text.indexOf(BEGIN);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`${file}: no settings table between ${BEGIN} and ${END}.`);
  return `${text.slice(0, from + BEGIN.length)}\n${table}\n${text.slice(to)}`;
}

/** Pulumi.yaml's text with its `config:` block (the file's last section) replaced by the rendered one. */
export function withConfigBlock(text: string): string {
  const at = text.indexOf("\nconfig:\n");
  if (at < 0) throw new Error("Pulumi.yaml: no top-level config: block.");
  return `${text.slice(0, at + 1)}${pulumiConfigBlock()}`;
}
