import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  imageVersions,
  INTERVAL_PATTERN,
  INTERVAL_RANGES,
  migrationVariables,
  parseSettings,
  readStackSettings,
  SETTING_DECLARATIONS,
  SettingsError,
  settingWarnings,
} from "../../lib/settings";

const projectDir = path.join(__dirname, "..", "..");

function errorOf(fn: () => unknown): SettingsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SettingsError) return err;
    throw err;
  }
  throw new Error("expected a SettingsError");
}

describe("parseSettings", () => {
  test("with nothing set, a dev stack gets the documented dev defaults and generated passwords", () => {
    expect(parseSettings({}, { stack: "dev" })).toEqual({
      stack: "dev",
      mode: "docker",
      timescaledb: true,
      image: "timescale/timescaledb:2.23.0-pg17",
      toolkit: false,
      port: 5432,
      bindAddress: "127.0.0.1",
      memoryMb: 2048,
      cpus: 2,
      maxConnections: undefined,
      telemetry: false,
      restartPolicy: "unless-stopped",
      database: "market",
      protectData: false,
      generatePasswords: true,
      adminPassword: undefined,
      migratorPassword: undefined,
      appPassword: undefined,
      readonlyPassword: undefined,
      migratorConnectionLimit: 5,
      appConnectionLimit: 50,
      readonlyConnectionLimit: 20,
      pgadminEnabled: true,
      pgadminImage: "dpage/pgadmin4:9.9",
      pgadminPort: 5050,
      pgadminEmail: "admin@example.com",
      pgadminPassword: undefined,
      externalHost: undefined,
      externalPort: 5432,
      externalAdminUser: "postgres",
      sslmode: "disable",
      existingDatabase: false,
      sslRootCert: undefined,
      poolerHost: undefined,
      poolerPort: 6432,
      replicaHost: undefined,
      replicaPort: 5432,
      connectRoles: [],
      ohlcvChunkInterval: "30 days",
      tickChunkInterval: "1 day",
      compressAfter: "90 days",
      tickRetention: "180 days",
      caggRefreshInterval: "1 hour",
      datasets: [],
      backupDir: "./backups",
      backupRetain: 7,
    });
  });

  test("string values from pulumi config are coerced to numbers, booleans and the datasets list", () => {
    const s = parseSettings(
      {
        port: "15432",
        memoryMb: "4096",
        cpus: "3",
        maxConnections: "200",
        telemetry: "true",
        pgadminEnabled: "false",
        tickRetention: "",
        datasets: JSON.stringify([{ name: "spy-daily", source: "data/spy.csv", format: "csv", onConflict: "update" }]),
      },
      { stack: "dev" },
    );
    expect([s.port, s.memoryMb, s.cpus, s.maxConnections, s.telemetry, s.pgadminEnabled, s.tickRetention]).toEqual([
      15432, 4096, 3, 200, true, false, undefined,
    ]);
    expect(s.datasets).toEqual([{ name: "spy-daily", source: "data/spy.csv", format: "csv", onConflict: "update" }]);
  });

  test("typed YAML values are accepted as they are", () => {
    const s = parseSettings({ port: 6543, protectData: true, datasets: [{ name: "a", source: "x.parquet" }] }, { stack: "dev" });
    expect([s.port, s.protectData, s.datasets]).toEqual([6543, true, [{ name: "a", source: "x.parquet" }]]);
  });

  test.each([
    ["port", "99999", '[tsdb:port] must be an integer port from 1 to 65535, got "99999".'],
    ["port", "54x", '[tsdb:port] must be an integer port from 1 to 65535, got "54x".'],
    [
      "ohlcvChunkInterval",
      "7 dais",
      '[tsdb:ohlcvChunkInterval] must be a PostgreSQL interval such as "7 days" (a number and one of microsecond, millisecond, second, minute, hour, day, week, month, year), from 1 hour to 10 years, got "7 dais".',
    ],
    ["memoryMb", "-512", '[tsdb:memoryMb] must be an integer number of MB, at least 512, got "-512".'],
    ["memoryMb", "256", '[tsdb:memoryMb] must be an integer number of MB, at least 512, got "256".'],
    ["bindAddress", "localhost", '[tsdb:bindAddress] must be an IP address such as "127.0.0.1" or "0.0.0.0", got "localhost".'],
    ["telemetry", "yes", '[tsdb:telemetry] must be true or false, got "yes".'],
    ["mode", "cloud", '[tsdb:mode] must be one of docker, external, got "cloud".'],
    ["restartPolicy", "sometimes", '[tsdb:restartPolicy] must be one of no, on-failure, always, unless-stopped, got "sometimes".'],
    [
      "database",
      "Market-Data",
      '[tsdb:database] must be a lowercase identifier of at most 54 characters (letters, digits, _; not starting with a digit), not postgres, template0 or template1, got "Market-Data".',
    ],
    [
      "image",
      "timescale/timescaledb:latest",
      '[tsdb:image] must be an image with a pinned tag, such as "timescale/timescaledb:2.23.0-pg17" (not "latest"), got "timescale/timescaledb:latest".',
    ],
    [
      "tickRetention",
      "forever",
      '[tsdb:tickRetention] must be a PostgreSQL interval such as "7 days" (a number and one of microsecond, millisecond, second, minute, hour, day, week, month, year), from 1 hour to 100 years, or empty to keep all ticks, got "forever".',
    ],
    ["appConnectionLimit", "-2", '[tsdb:appConnectionLimit] must be an integer of at least -1 (-1 = unlimited), got "-2".'],
    [
      "sslmode",
      "on",
      '[tsdb:sslmode] must be one of disable, allow, prefer, require, verify-ca, verify-full, got "on".',
    ],
    ["pgadminEmail", "admin", '[tsdb:pgadminEmail] must be an e-mail address such as "admin@example.com", got "admin".'],
  ])("tsdb:%s = %j is refused with a message naming the key, value and what is allowed", (key, value, message) => {
    expect(() => parseSettings({ [key]: value }, { stack: "dev" })).toThrow(message);
    expect(errorOf(() => parseSettings({ [key]: value }, { stack: "dev" })).problems).toEqual([message]);
  });

  test("several bad keys give one error listing each on its own line", () => {
    const err = errorOf(() => parseSettings({ port: "0", memoryMb: "-1", bindAddress: "::g" }, { stack: "dev" }));
    expect(err.message.split("\n")).toEqual([
      '[tsdb:port] must be an integer port from 1 to 65535, got "0".',
      '[tsdb:bindAddress] must be an IP address such as "127.0.0.1" or "0.0.0.0", got "::g".',
      '[tsdb:memoryMb] must be an integer number of MB, at least 512, got "-1".',
    ]);
  });

  test("an unknown key (a typo) is refused and the known keys are listed", () => {
    expect(() => parseSettings({ memoryMB: "4096" }, { stack: "dev" })).toThrow(
      /^\[tsdb:memoryMB\] is not a known setting; known settings are mode, timescaledb, image, .*memoryMb/,
    );
  });

  test("datasets must be slugs with a source, unique, with known formats", () => {
    expect(() => parseSettings({ datasets: [{ name: "Bad Name", source: "x.csv" }] }, { stack: "dev" })).toThrow(
      /\[tsdb:datasets\] must be a list of datasets.*0\.name: must be a slug/,
    );
    expect(() => parseSettings({ datasets: [{ name: "a", source: "" }] }, { stack: "dev" })).toThrow(/0\.source: must be a non-empty path/);
    expect(() => parseSettings({ datasets: [{ name: "a", source: "x", format: "xlsx" }] }, { stack: "dev" })).toThrow(/0\.format/);
    expect(() =>
      parseSettings({ datasets: [{ name: "a", source: "x" }, { name: "a", source: "y" }] }, { stack: "dev" }),
    ).toThrow(/dataset name "a" appears twice/);
    expect(() => parseSettings({ datasets: "[not json" }, { stack: "dev" })).toThrow(/the value is not valid JSON/);
  });

  test("without generated passwords (prod), each missing password names its key and the exact command", () => {
    const err = errorOf(() => parseSettings({ generatePasswords: "false", appPassword: "set" }, { stack: "prod" }));
    expect(err.problems).toEqual([
      "[tsdb:adminPassword] is required when tsdb:generatePasswords is false and is not set for stack prod; set it with: pulumi config set --secret tsdb:adminPassword <value> --stack prod",
      "[tsdb:migratorPassword] is required when tsdb:generatePasswords is false and is not set for stack prod; set it with: pulumi config set --secret tsdb:migratorPassword <value> --stack prod",
      "[tsdb:readonlyPassword] is required when tsdb:generatePasswords is false and is not set for stack prod; set it with: pulumi config set --secret tsdb:readonlyPassword <value> --stack prod",
      "[tsdb:pgadminPassword] is required when tsdb:generatePasswords is false and is not set for stack prod; set it with: pulumi config set --secret tsdb:pgadminPassword <value> --stack prod",
    ]);
  });

  test("the pgAdmin password is only required when pgAdmin runs", () => {
    const s = parseSettings(
      { generatePasswords: "false", pgadminEnabled: "false", adminPassword: "a", migratorPassword: "m", appPassword: "p", readonlyPassword: "r" },
      { stack: "prod" },
    );
    expect(s.pgadminPassword).toBeUndefined();
  });

  test("external mode needs the host and the admin password, even in dev, and defaults sslmode to require", () => {
    const err = errorOf(() => parseSettings({ mode: "external" }, { stack: "dev" }));
    expect(err.problems).toEqual([
      '[tsdb:externalHost] is required in external mode: the server\'s host name or IP, got "".',
      "[tsdb:adminPassword] is required in external mode (the password of postgres on the server) and is not set for stack dev; set it with: pulumi config set --secret tsdb:adminPassword <value> --stack dev",
    ]);
    const s = parseSettings({ mode: "external", externalHost: "db.example.com", adminPassword: "x" }, { stack: "dev" });
    expect([s.sslmode, s.externalHost, s.externalPort]).toEqual(["require", "db.example.com", 5432]);
  });

  test("CLIs that cannot decrypt secrets (requireSecrets false) are not asked for passwords", () => {
    expect(parseSettings({ generatePasswords: "false" }, { stack: "prod", requireSecrets: false }).adminPassword).toBeUndefined();
  });

  test("the toolkit needs a timescaledb-ha image", () => {
    expect(() => parseSettings({ toolkit: "true" }, { stack: "dev" })).toThrow(
      '[tsdb:toolkit] needs a timescale/timescaledb-ha image (the plain timescaledb image has no toolkit), got image "timescale/timescaledb:2.23.0-pg17"; set tsdb:image to e.g. "timescale/timescaledb-ha:pg17" or tsdb:toolkit to false.',
    );
    expect(parseSettings({ toolkit: "true", image: "timescale/timescaledb-ha:pg17.6-ts2.22.1" }, { stack: "dev" }).toolkit).toBe(true);
  });

  test("pgAdmin and PostgreSQL cannot share a port", () => {
    expect(() => parseSettings({ pgadminPort: "5432" }, { stack: "dev" })).toThrow(
      "[tsdb:pgadminPort] must differ from tsdb:port, got 5432 for both.",
    );
  });
});

describe("Pulumi.yaml", () => {
  test("declares exactly the settings module's keys, types and defaults, each with a description", () => {
    const project = parseYaml(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as {
      name: string;
      config: Record<string, { type?: string; default: unknown; description: string }>;
    };
    expect(project.name).toBe("tsdb");
    expect(Object.keys(project.config)).toEqual(Object.keys(SETTING_DECLARATIONS));
    for (const [key, decl] of Object.entries(SETTING_DECLARATIONS)) {
      expect({ key, type: project.config[key]!.type, default: project.config[key]!.default }).toEqual({
        key,
        type: decl.type,
        default: decl.default,
      });
      expect(project.config[key]!.description.length).toBeGreaterThan(10);
    }
  });

  test("every default passes validation (the CLI applies them without our parser)", () => {
    const defaults = Object.fromEntries(Object.entries(SETTING_DECLARATIONS).map(([k, d]) => [k, d.default]));
    expect(() => parseSettings(defaults, { stack: "dev" })).not.toThrow();
  });
});

describe("readStackSettings", () => {
  test("the committed dev stack needs nothing else", () => {
    const s = readStackSettings(projectDir, "dev");
    expect([s.stack, s.mode, s.pgadminEnabled, s.protectData, s.generatePasswords, s.memoryMb]).toEqual([
      "dev", "docker", true, false, true, 2048,
    ]);
    expect(s.datasets).toEqual([{ name: "sample", source: "data/sample/csv/ohlcv.csv", format: "csv" }]);
    expect(fs.existsSync(path.join(projectDir, String(s.datasets[0]!.source)))).toBe(true);
  });

  test("the committed prod stack differs as documented", () => {
    const s = readStackSettings(projectDir, "prod");
    expect({
      memoryMb: s.memoryMb,
      cpus: s.cpus,
      protectData: s.protectData,
      generatePasswords: s.generatePasswords,
      pgadminEnabled: s.pgadminEnabled,
      appConnectionLimit: s.appConnectionLimit,
      readonlyConnectionLimit: s.readonlyConnectionLimit,
      vars: migrationVariables(s),
      datasets: s.datasets,
      backupRetain: s.backupRetain,
    }).toEqual({
      memoryMb: 8192,
      cpus: 4,
      protectData: true,
      generatePasswords: false,
      pgadminEnabled: false,
      appConnectionLimit: 100,
      readonlyConnectionLimit: 50,
      vars: {
        ohlcvChunkInterval: "7 days",
        tickChunkInterval: "1 hour",
        compressAfter: "30 days",
        tickRetention: "",
        caggRefreshInterval: "15 minutes",
      },
      datasets: [],
      backupRetain: 30,
    });
  });

  test("encrypted values and other namespaces are ignored; a missing stack file is named", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-settings-"));
    fs.copyFileSync(path.join(projectDir, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(
      path.join(dir, "Pulumi.qa.yaml"),
      [
        "config:",
        "  docker:host: unix:///var/run/docker.sock",
        "  tsdb:port: 6000",
        "  tsdb:appPassword:",
        "    secure: v1:abc:def",
        "  tsdb:datasets:",
        "    - name: spy",
        "      source: data/spy.csv",
        "",
      ].join("\n"),
    );
    const s = readStackSettings(dir, "qa");
    expect([s.port, s.appPassword, s.datasets]).toEqual([6000, undefined, [{ name: "spy", source: "data/spy.csv" }]]);
    expect(() => readStackSettings(dir, "nope")).toThrow(/Pulumi\.nope\.yaml does not exist/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("connectRoles", () => {
  test.each([
    ["", []],
    ["pgbouncer_auth", ["pgbouncer_auth"]],
    ["pgbouncer_auth, datadog", ["pgbouncer_auth", "datadog"]],
  ])("%j keeps CONNECT for %j", (value, roles) => {
    expect(parseSettings({ connectRoles: value }, { stack: "dev" }).connectRoles).toEqual(roles);
  });

  test("a value that is not a list of role names names the setting", () => {
    expect(() => parseSettings({ connectRoles: "ok, bad name;" }, { stack: "dev" })).toThrow(/\[tsdb:connectRoles\] must be a comma-separated list of PostgreSQL role names, or empty for none, got "ok, bad name;"/);
  });
});

describe("migration variables and intervals", () => {
  test("migrationVariables returns exactly the five variables, with an empty retention when none", () => {
    const s = parseSettings({ tickRetention: "" }, { stack: "dev" });
    expect(migrationVariables(s)).toEqual({
      ohlcvChunkInterval: "30 days",
      tickChunkInterval: "1 day",
      compressAfter: "90 days",
      tickRetention: "",
      caggRefreshInterval: "1 hour",
    });
  });

  test.each([
    ["7 days", true],
    ["1 day", true],
    ["15 minutes", true],
    ["1  hour", true],
    ["7 dais", false],
    ["7days", false],
    ["days", false],
    ["1 day; DROP TABLE x", false],
    ["-1 day", false],
  ])("INTERVAL_PATTERN(%j) is %s", (value, ok) => {
    expect(INTERVAL_PATTERN.test(value)).toBe(ok);
  });

  test.each([
    ["timescale/timescaledb:2.23.0-pg17", { timescaledb: "2.23.0", postgresMajor: 17 }],
    ["timescale/timescaledb-ha:pg17.6-ts2.22.1", { timescaledb: "2.22.1", postgresMajor: 17 }],
    ["postgres:17.5", { timescaledb: undefined, postgresMajor: undefined }],
  ])("imageVersions(%s)", (image, versions) => {
    expect(imageVersions(image)).toEqual(versions);
  });
});

describe("settings the database would reject or that expose the stack", () => {
  const problemsOf = (raw: Record<string, unknown>) => errorOf(() => parseSettings(raw, { stack: "dev" })).problems;

  test.each(["adminPassword", "migratorPassword", "appPassword", "readonlyPassword", "pgadminPassword"])(
    "a whitespace-only %s does not count as set, and the error does not print it",
    (key) => {
      expect(problemsOf({ [key]: "   " })).toEqual([`[tsdb:${key}] must be a password that is not blank (spaces only), or empty to generate it; the value given is not shown (it is a secret).`]);
      expect(problemsOf({ [key]: "\t \n" }).join("\n")).not.toContain("\t");
    },
  );

  test.each(["toString", "constructor", "__proto__", "hasOwnProperty"])("%s is not a known setting", (key) => {
    const raw = Object.create(null) as Record<string, unknown>;
    raw[key] = "x";
    expect(problemsOf(raw)).toEqual([expect.stringMatching(new RegExp(`^\\[tsdb:${key}\\] is not a known setting; known settings are mode, `))]);
  });

  test("a __proto__ key in a stack file is refused, not swallowed as the object's prototype", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-settings-"));
    fs.copyFileSync(path.join(projectDir, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.qa.yaml"), 'config:\n  tsdb:__proto__: "x"\n  tsdb:constructor: "y"\n');
    try {
      expect(errorOf(() => readStackSettings(dir, "qa")).problems.map((p) => p.slice(0, 40))).toEqual([
        "[tsdb:__proto__] is not a known setting;",
        "[tsdb:constructor] is not a known settin",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each(["postgres", "template0", "template1"])("database %s is refused: PostgreSQL keeps it for itself", (database) => {
    expect(problemsOf({ database })).toEqual([
      `[tsdb:database] must be a lowercase identifier of at most 54 characters (letters, digits, _; not starting with a digit), not postgres, template0 or template1, got "${database}".`,
    ]);
  });

  test("a list under config: in a stack file is refused, naming the file, instead of being skipped", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-settings-"));
    fs.copyFileSync(path.join(projectDir, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.qa.yaml"), "config:\n  - tsdb:port: 6000\n  - tsdb:protectData: true\n");
    try {
      expect(errorOf(() => readStackSettings(dir, "qa")).problems).toEqual([
        '[Pulumi.qa.yaml] config: must be a mapping of keys such as "tsdb:port: 5432", got a list; no setting in it would apply.',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ["caggRefreshInterval", "0 days", "from 1 minute to 1 year"],
    ["caggRefreshInterval", "0 seconds", "from 1 minute to 1 year"],
    ["compressAfter", "0 days", "from 1 hour to 100 years"],
    ["compressAfter", "12345678901234567890 years", "from 1 hour to 100 years"],
    ["ohlcvChunkInterval", "1 microsecond", "from 1 hour to 10 years"],
    ["ohlcvChunkInterval", "0 days", "from 1 hour to 10 years"],
    ["tickChunkInterval", "1 microsecond", "from 1 minute to 1 year"],
    ["tickChunkInterval", "2 years", "from 1 minute to 1 year"],
    ["tickRetention", "0 days", "from 1 hour to 100 years"],
  ])("%s %j is refused with its range", (key, value, range) => {
    expect(problemsOf({ [key]: value })).toEqual([expect.stringContaining(`[tsdb:${key}] must be a PostgreSQL interval such as "7 days"`)]);
    expect(problemsOf({ [key]: value })[0]).toContain(`, ${range}`);
    expect(problemsOf({ [key]: value })[0]).toMatch(new RegExp(`got "${value}"\\.$`));
  });

  test("each interval setting states its range in its description, and its bounds are accepted", () => {
    const project = parseYaml(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as { config: Record<string, { description: string }> };
    for (const [key, range] of Object.entries(INTERVAL_RANGES)) {
      expect(SETTING_DECLARATIONS[key]!.description).toContain(`from ${range.min} to ${range.max}`);
      expect(project.config[key]!.description).toBe(SETTING_DECLARATIONS[key]!.description);
      const bounds = key === "tickRetention" ? { tickChunkInterval: "1 minute" } : { tickRetention: "" };
      expect(() => parseSettings({ ...bounds, [key]: range.min }, { stack: "dev" })).not.toThrow();
      expect(() => parseSettings({ ...bounds, [key]: range.max }, { stack: "dev" })).not.toThrow();
    }
  });

  test("tickRetention shorter than a tick chunk is refused", () => {
    expect(problemsOf({ tickChunkInterval: "7 days", tickRetention: "2 days" })).toEqual([
      '[tsdb:tickRetention] must be at least tsdb:tickChunkInterval (7 days): retention drops whole chunks, got "2 days".',
    ]);
  });

  // Named in its canonical spelling, the one Docker reports back (lib/postgres/connectionInfo.ts canonicalIp).
  test.each([
    ["0.0.0.0", "0.0.0.0"],
    ["::", "::"],
    ["0:0:0:0:0:0:0:0", "::"],
  ])("bindAddress %s warns that the database is published on every interface without TLS", (given, bindAddress) => {
    const warnings = settingWarnings(parseSettings({ bindAddress: given }, { stack: "dev" }));
    expect(warnings).toEqual([
      {
        key: "bindAddress",
        detail: `[tsdb:bindAddress] ${bindAddress} publishes PostgreSQL (port 5432) and pgAdmin (port 5050) on every network interface of this host, and tsdb:sslmode is disable: passwords and data cross it unencrypted.`,
        fix: expect.stringContaining("pulumi config set tsdb:bindAddress 127.0.0.1 --stack dev"),
      },
    ]);
  });

  test("a loopback bindAddress and external mode draw no warning", () => {
    expect(settingWarnings(parseSettings({}, { stack: "dev" }))).toEqual([]);
    expect(settingWarnings(parseSettings({ bindAddress: "::1" }, { stack: "dev" }))).toEqual([]);
    expect(settingWarnings(parseSettings({ mode: "external", externalHost: "db.example.com", bindAddress: "0.0.0.0" }, { stack: "dev", requireSecrets: false }))).toEqual([]);
  });
});
