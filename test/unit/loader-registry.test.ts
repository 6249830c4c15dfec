/**
 * One format registry and one load-request vocabulary (issue 22, "One format registry"): the CLI's --format
 * choices and help, directory expansion, format detection, the settings' validation and description,
 * Pulumi.yaml and docs/LOADING.md all come from lib/loader/formats.ts; each load option is declared once
 * (lib/loader/loadFlags.ts, lib/loader/loadRequest.ts) and parsed by one parser.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import { KNOWN_EXTENSIONS as EXPANDED_EXTENSIONS, expandSource } from "../../lib/loader/columnMapping";
import { FORMATS, FORMAT_OPTIONS, KNOWN_EXTENSIONS, SOURCE_FORMATS, ZIP_DATA_EXTENSIONS, formatOf, formatsTable, sniffKind } from "../../lib/loader/formats";
import { LOAD_FLAGS, LOAD_REQUEST_KEYS } from "../../lib/loader/loadFlags";
import { LoadRequestSchema, loadRequestFromFlags, parseLoadRequest, toLoadOptions } from "../../lib/loader/loadRequest";
import { parseMaxRejects } from "../../lib/loader/rejectLimit";
import { SETTING_DECLARATIONS, datasetKeys, parseSettings } from "../../lib/settings";
import { tsdbInProcess } from "../fixtures/cli";

const ROOT = path.resolve(__dirname, "../..");
const NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing";
const entries = Object.entries(FORMATS);

describe("every list of formats is the registry's", () => {
  test("the registry's formats, extensions and zip entries are non-empty, and the derived lists equal them", () => {
    expect(SOURCE_FORMATS.length).toBeGreaterThan(0);
    expect(SOURCE_FORMATS).toEqual(Object.keys(FORMATS));
    expect(KNOWN_EXTENSIONS.length).toBeGreaterThan(0);
    expect(KNOWN_EXTENSIONS).toEqual(entries.flatMap(([, f]) => f.extensions));
    expect(EXPANDED_EXTENSIONS).toEqual(KNOWN_EXTENSIONS);
    expect(ZIP_DATA_EXTENSIONS).toEqual(entries.flatMap(([, f]) => (f.inZip ? f.extensions : [])));
    expect(ZIP_DATA_EXTENSIONS.length).toBeGreaterThan(0);
    expect(LOAD_FLAGS.format.choices).toEqual(SOURCE_FORMATS);
  });

  test("docs/LOADING.md's format table is the one the registry renders", () => {
    const doc = fs.readFileSync(path.join(ROOT, "docs/LOADING.md"), "utf8");
    const table = /<!-- formats:begin -->\n([^]*?)\n<!-- formats:end -->/.exec(doc)?.[1];
    expect(table).toBe(formatsTable());
    for (const format of SOURCE_FORMATS) expect(table).toContain(`| \`${format}\` |`);
    // The --source row lists what a directory loads.
    expect(doc).toContain(`every \`${KNOWN_EXTENSIONS.join(" ")}\` below it`);
  });

  test("Pulumi.yaml's and LOADING.md's list of dataset keys are the one derived from the request and the registry", () => {
    const project = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as { config: Record<string, { description: string }> };
    expect(project.config.datasets!.description).toBe(SETTING_DECLARATIONS.datasets!.description);
    expect(SETTING_DECLARATIONS.datasets!.description).toContain(datasetKeys());
    expect(datasetKeys()).toContain(`format? (${SOURCE_FORMATS.join("|")})`);
    for (const key of LOAD_REQUEST_KEYS.filter((k) => k !== "rejects")) expect(datasetKeys()).toMatch(new RegExp(`[{ ]${key}[? ,]`));
    const doc = fs.readFileSync(path.join(ROOT, "docs/LOADING.md"), "utf8");
    expect(doc).toContain(`<!-- dataset-keys -->\`${datasetKeys()}\``);
  });

  test("tsdb data load refuses a format the registry lacks, listing the registry's, and its help names each", async () => {
    const r = await tsdbInProcess(["data", "load", "--url", NOWHERE, "--source", "x.csv", "--format", "xls"]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(`tsdb data load: option '--format <format>' argument 'xls' is invalid. Allowed choices are ${SOURCE_FORMATS.join(", ")}.`);
    const help = (await tsdbInProcess(["data", "load", "--help"])).stdout.replace(/\s+/g, " ");
    expect(help).toContain(`--format <format> ${SOURCE_FORMATS.join(" | ")} (default: from each file's first bytes`);
  });

  test("settings refuse a format the registry lacks, naming the allowed ones", () => {
    expect(() => parseSettings({ datasets: [{ name: "a", source: "x", format: "xlsx" }] }, { stack: "dev" })).toThrow(
      new RegExp(`0\\.format: .*${SOURCE_FORMATS.map((f) => `"${f}"`).join("\\|")}`),
    );
  });

  test.each(entries.flatMap(([format, f]) => f.extensions.map((ext) => [ext, format])))("a file named x%s (no magic bytes to read) is %s", (ext, format) => {
    expect(formatOf(path.join(os.tmpdir(), `no-such-dir-${process.pid}`, `x${ext}`))).toBe(format);
  });

  test("each format with magic bytes is known from a file's first bytes whatever its name", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "registry-magic-"));
    const heads: Record<string, Buffer> = {
      parquet: Buffer.from("PAR1\u0000\u0000"),
      sqlite: Buffer.from("SQLite format 3\u0000\u0010\u0000", "latin1"),
      duckdb: Buffer.concat([Buffer.alloc(8), Buffer.from("DUCK"), Buffer.alloc(8)]),
      arrow: Buffer.from("ARROW1\u0000\u0000"),
      zip: Buffer.from("PK\u0003\u0004\u0014\u0000"),
    };
    const withMagic = entries.filter(([, f]) => "magic" in f).map(([format]) => format);
    expect(Object.keys(heads).sort()).toEqual([...withMagic].sort());
    for (const [format, head] of Object.entries(heads)) {
      const file = path.join(dir, `${format}.txt`);
      fs.writeFileSync(file, head);
      expect([sniffKind(file), formatOf(file)]).toEqual([format, format]);
    }
  });

  test("a directory --source loads every registered extension", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "registry-dir-"));
    for (const ext of KNOWN_EXTENSIONS) fs.writeFileSync(path.join(dir, `bars${ext}`), "");
    fs.writeFileSync(path.join(dir, "notes.md"), "");
    expect(expandSource(dir).map((f) => path.basename(f)).sort()).toEqual(KNOWN_EXTENSIONS.map((e) => `bars${e}`).sort());
  });

  test("a zip takes the options of the formats it may hold", () => {
    const inner = [...new Set(entries.filter(([, f]) => f.inZip).flatMap(([, f]) => f.options))].sort();
    expect([...FORMATS.zip.options].sort()).toEqual(inner);
  });
});

describe("an option that does not apply to the format named", () => {
  test.each(FORMAT_OPTIONS.flatMap((option) => entries.filter(([, f]) => !(f.options as readonly string[]).includes(option)).map(([format]) => [option, format])))(
    "%s with format %s is refused, naming the formats it applies to",
    (option, format) => {
      const value = option === "columns" ? ["time", "open", "high", "low", "close"] : option === "layout" ? "lean-bars" : option === "delimiter" ? ";" : "bars";
      const applies = entries.filter(([, f]) => (f.options as readonly string[]).includes(option)).map(([name]) => name);
      expect(() => parseLoadRequest({ source: "x", format, [option]: value })).toThrow(`${option}: does not apply to format ${format}; it applies to ${applies.join(", ")}`);
    },
  );

  test("each option is accepted with every format the registry gives it", () => {
    for (const [format, f] of entries) {
      for (const option of f.options) {
        const value = option === "columns" ? ["time", "open", "high", "low", "close"] : option === "layout" ? "lean-bars" : option === "delimiter" ? ";" : "bars";
        expect(() => parseLoadRequest({ source: "x", format, [option]: value })).not.toThrow();
      }
    }
  });

  test("the CLI names the flag, settings name the key", async () => {
    expect(() => loadRequestFromFlags({ source: "x", format: "csv", table: "bars" })).toThrow(/^--table: does not apply to format csv; it applies to sqlite, duckdb; see --help\.$/);
    expect(() => parseSettings({ datasets: [{ name: "a", source: "x", format: "json", delimiter: ";" }] }, { stack: "dev" })).toThrow(/0\.delimiter: does not apply to format json; it applies to csv, zip/);
    const r = await tsdbInProcess(["data", "load", "--url", NOWHERE, "--source", "x.parquet", "--format", "parquet", "--delimiter", ";"]);
    expect([r.code, r.stderr.split("\n")[0]]).toEqual([2, "tsdb data load: --delimiter: does not apply to format parquet; it applies to csv, zip"]);
  });
});

describe("one load-request vocabulary", () => {
  test.each(["0", "250", "10%", "0.5%", "100%", " 5% ", "150%", "100.5%", "lots", "-1", "1e3", "%", ""])(
    "maxRejects %j: the request's schema accepts exactly what the loader's parser accepts",
    (text) => {
      let loaderTakes = true;
      try {
        parseMaxRejects(text);
      } catch {
        loaderTakes = false;
      }
      expect(LoadRequestSchema.safeParse({ source: "x", maxRejects: text }).success).toBe(loaderTakes);
    },
  );

  test("maxRejects 150% is refused by the flag, the settings and the hook's request alike (the schema took it, the loader did not)", () => {
    expect(() => loadRequestFromFlags({ source: "x", "max-rejects": "150%" })).toThrow(/^--max-rejects: must be a count like 250 or a percentage like 10% \(at most 100%\)/);
    expect(() => parseSettings({ datasets: [{ name: "a", source: "x", maxRejects: "150%" }] }, { stack: "dev" })).toThrow(/0\.maxRejects: must be a count/);
    expect(() => parseLoadRequest({ source: "x", maxRejects: "150%" })).toThrow(/maxRejects: must be a count/);
  });

  test("every fixed list the CLI offers is the one the schema accepts", () => {
    const withChoices = Object.entries(LOAD_FLAGS).filter(([, spec]) => spec.choices);
    expect(withChoices.map(([key]) => key).sort()).toEqual(["ambiguousTime", "format", "inconsistentOhlc", "layout", "onConflict"]);
    for (const [key, spec] of withChoices) {
      for (const choice of spec.choices!) expect(LoadRequestSchema.safeParse({ source: "x", [key]: choice }).success).toBe(true);
      expect(LoadRequestSchema.safeParse({ source: "x", [key]: "no-such-choice" }).success).toBe(false);
    }
  });

  test("data load --help shows every request key's flag, with its value's name", async () => {
    const help = (await tsdbInProcess(["data", "load", "--help"])).stdout;
    expect(Object.keys(LOAD_FLAGS)).toEqual(LOAD_REQUEST_KEYS);
    for (const spec of Object.values(LOAD_FLAGS)) expect(help).toContain(`--${spec.flag}${spec.value ? ` <${spec.value}>` : ""}`);
  });

  test("a request with every key reaches the loader's options, each key under its loader name", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "registry-req-"));
    fs.writeFileSync(path.join(dir, "a.csv"), "");
    const request = parseLoadRequest({
      source: "a.csv", format: "csv", symbol: "S", provider: "P", timeframe: "1d", exchange: "X", pathPattern: "*.csv",
      map: { volume: "v" }, layout: "lean-bars", delimiter: ";", onConflict: "update", rejects: "r.csv", maxRejects: 3, strict: true,
      target: "s.t", timezone: "Europe/London", inconsistentOhlc: "flag", priceDivisor: "10000", ambiguousTime: "later", lockTimeout: "2.5",
    });
    expect(toLoadOptions(request, { cwd: dir, defaultRejects: "d.csv" })).toEqual({
      files: [path.join(dir, "a.csv")], format: "csv", symbol: "S", provider: "P", timeframe: "1d", exchange: "X", pathPattern: "*.csv",
      map: { volume: "v" }, columns: ["time", "open", "high", "low", "close", "volume"], delimiter: ";", onConflict: "update",
      rejects: path.join(dir, "r.csv"), maxRejects: "3", strict: true, target: "s.t", timezone: "Europe/London", inconsistentOhlc: "flag",
      priceDivisor: 10000, ambiguousTime: "later", lockTimeoutMs: 2500,
    });
    expect(toLoadOptions(parseLoadRequest({ source: "a.csv", format: "sqlite", table: "bars" }), { cwd: dir, defaultRejects: "d.csv" })).toMatchObject({ table: "bars" });
  });
});

describe("a path pattern is checked when the request is read", () => {
  test("an unknown placeholder is refused before any file is opened, naming the flag or the key", () => {
    expect(() => loadRequestFromFlags({ source: "x", "path-pattern": "{ticker}/*.csv" })).toThrow(/^--path-pattern: \{ticker\} is not one of \{symbol\}, \{provider\}, \{timeframe\}, \{exchange\}, \{timeframe:minutes\}; see --help\.$/);
    expect(() => parseSettings({ datasets: [{ name: "a", source: "x", pathPattern: "{symbol}-{tf}.csv" }] }, { stack: "dev" })).toThrow(/0\.pathPattern: \{tf\} is not one of/);
    expect(() => parseLoadRequest({ source: "x", pathPattern: "{symbol" })).toThrow(/pathPattern: \{symbol has no closing \}/);
    expect(parseLoadRequest({ source: "x", pathPattern: "{provider}/{symbol}_{timeframe:minutes}.csv" }).pathPattern).toBe("{provider}/{symbol}_{timeframe:minutes}.csv");
  });
});
