/**
 * One output contract (sdk/databaseOutput.ts): the program's real `database` output, run under mocks, is read
 * back through the same paths other apps use: the CLI's parser and `.env` exporter, and the SDK's
 * TsdbStackReference (a StackReference answered with that very output, marked secret as the engine does).
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, test } from "vitest";
import { envVariables } from "../../lib/ops/envFile";
import { parseDatabaseOutput } from "../../lib/ops/stackOutputs";
import { DATABASE_OUTPUT_FIELDS, databaseOutputProblems } from "../../sdk/databaseOutput";
import { TsdbStackReference } from "../../sdk/TsdbStackReference";
import { committedStackConfig, type RunOptions, runStack, valueOf } from "../fixtures/pulumiMocks";

/** The output as `pulumi stack output --json --show-secrets database` prints it: every Output resolved. */
async function resolved(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) return resolved(await valueOf(value as pulumi.Output<unknown>));
  if (Array.isArray(value)) return Promise.all(value.map(resolved));
  if (value && typeof value === "object") {
    return Object.fromEntries(await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolved(v)] as const)));
  }
  return value;
}

/** Reads `output` through TsdbStackReference, with a mock engine that serves it as the referenced stack's `database`. */
async function throughStackReference(output: unknown) {
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        if (args.type !== "pulumi:pulumi:StackReference") throw new Error(`unexpected resource ${args.type}`);
        return { id: String(args.inputs.name), state: { name: args.inputs.name, outputs: { database: output }, secretOutputNames: ["database"] } };
      },
      call(args) {
        throw new Error(`unmocked provider function ${args.token}`);
      },
    },
    "consumer",
    "dev",
    false,
  );
  const ref = new TsdbStackReference(`ref-${Math.random().toString(36).slice(2)}`, { stack: "organization/tsdb/dev" });
  return {
    host: await valueOf(ref.host),
    port: await valueOf(ref.port),
    database: await valueOf(ref.databaseName),
    appUser: await valueOf(ref.user("app")),
    appUrl: await valueOf(ref.url("app")),
    appConnection: await valueOf(ref.connection("app")),
    urlIsSecret: await pulumi.isSecret(ref.url("app")),
  };
}

const CASES: [string, RunOptions][] = [
  ["dev", { stack: "dev", config: committedStackConfig("dev") }],
  ["dev on ::1", { stack: "dev", config: { ...committedStackConfig("dev"), bindAddress: "::1" } }],
  [
    "external",
    {
      stack: "dev",
      config: { mode: "external", externalHost: "fd00::10", externalPort: "6432", externalAdminUser: "tsdbadmin", adminPassword: "ext-Admin-1" },
      secretKeys: ["adminPassword"],
    },
  ],
];

describe.each(CASES)("the %s stack's database output", (_label, options) => {
  test("matches the contract exactly, and reads back the same through the CLI, the .env exporter and TsdbStackReference", async () => {
    const run = await runStack(options);
    const output = (await resolved(run.outputs.database)) as Record<string, unknown>;
    expect(databaseOutputProblems(output)).toEqual([]);
    expect(Object.keys(output).every((k) => (DATABASE_OUTPUT_FIELDS as readonly string[]).includes(k))).toBe(true);

    const cli = parseDatabaseOutput(JSON.stringify(output), "dev");
    const env = Object.fromEntries(envVariables(cli, "app"));
    const urls = output.urls as Record<string, string>;
    expect(env.DATABASE_URL).toBe(urls.app);
    expect([env.PGHOST, env.PGPORT, env.PGDATABASE, env.PGUSER]).toEqual([output.host, String(output.port), output.database, (output.users as Record<string, string>).app]);

    const sdk = await throughStackReference(output);
    expect(sdk).toEqual({
      host: output.host,
      port: output.port,
      database: output.database,
      appUser: (output.users as Record<string, string>).app,
      appUrl: urls.app,
      appConnection: {
        host: output.host,
        port: output.port,
        database: output.database,
        user: (output.users as Record<string, string>).app,
        password: env.PGPASSWORD,
        sslmode: output.sslmode,
      },
      urlIsSecret: true,
    });
  });
});

describe("the contract refuses what the program does not export", () => {
  test("a field outside the contract (the old containerName) is named", () => {
    const problems = databaseOutputProblems({
      mode: "docker", host: "h", port: 1, database: "d", sslmode: "disable",
      users: { migrator: "m", app: "a", readonly: "r" },
      urls: { migrator: "postgresql://m@h/d", app: "postgresql://a@h/d", readonly: "postgresql://r@h/d" },
      versions: { image: null, postgresMajor: 17, timescaledb: null },
      containerName: "tsdb-dev-timescaledb",
    });
    expect(problems).toEqual(["containerName (not part of the contract: mode, host, port, database, sslmode, users, urls, pooler, replica, pgadminUrl, versions)"]);
  });
});
