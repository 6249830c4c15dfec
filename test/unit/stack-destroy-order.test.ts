/**
 * `pulumi destroy` order and the first `pulumi up`'s concurrency, computed from the dependency graph the program
 * records (dependsOn, property dependencies, provider; parent edges only tie custom resources to components). The
 * engine deletes a resource only after every resource that depends on it (pulumi/pulumi
 * pkg/resource/graph/dependency_graph.go, DependingOn: dependencies, property dependencies, deletedWith and the
 * provider; parents when children are included), and runs resources with no path between them at the same time.
 * A dependsOn on a component counts as one on each of its custom descendants, as the SDK sends it.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { committedStackConfig, type RecordedResource, runStack, type StackRun } from "../fixtures/pulumiMocks";

const PROD_PASSWORDS = { adminPassword: "a-1", migratorPassword: "m-1", appPassword: "p-1", readonlyPassword: "r-1" };

/** Direct dependencies per resource name, with a component dependency expanded to its custom descendants (as the SDK sends them). */
function dependencyGraph(run: StackRun): Map<string, Set<string>> {
  const byName = new Map(run.resources.map((r) => [r.name, r]));
  const children = new Map<string, RecordedResource[]>();
  for (const r of run.resources) if (r.parent) children.set(r.parent, [...(children.get(r.parent) ?? []), r]);
  const expand = (name: string): string[] => {
    const r = byName.get(name);
    if (!r || r.custom) return [name];
    return (children.get(name) ?? []).flatMap((c) => (c.custom ? [c.name] : expand(c.name)));
  };
  const graph = new Map<string, Set<string>>();
  for (const r of run.resources) {
    const deps = new Set<string>([...r.dependsOn.flatMap(expand), ...r.propertyDependencies.flatMap(expand)]);
    if (r.parent) deps.add(r.parent);
    if (r.provider) deps.add(r.provider);
    deps.delete(r.name);
    graph.set(r.name, deps);
  }
  return graph;
}

/** Everything `name` depends on, directly or not. */
function dependenciesOf(graph: Map<string, Set<string>>, name: string, seen = new Set<string>()): Set<string> {
  for (const d of graph.get(name) ?? []) {
    if (!seen.has(d)) {
      seen.add(d);
      dependenciesOf(graph, d, seen);
    }
  }
  return seen;
}

/** The engine's delete waves: wave 0 has nothing depending on it; a resource goes one wave after its last dependent. */
function deleteWaves(graph: Map<string, Set<string>>): Map<string, number> {
  const dependents = new Map<string, string[]>();
  for (const [n, deps] of graph) for (const d of deps) dependents.set(d, [...(dependents.get(d) ?? []), n]);
  const wave = new Map<string, number>();
  const waveOf = (n: string): number => {
    if (!wave.has(n)) wave.set(n, Math.max(-1, ...(dependents.get(n) ?? []).map(waveOf)) + 1);
    return wave.get(n)!;
  };
  for (const n of graph.keys()) waveOf(n);
  return wave;
}

/** Grantees the stack does not create: PUBLIC, and pg_monitor (CONNECT for monitoring, lib/access.ts). */
const BUILT_IN_GRANTEES = ["public", "pg_monitor"];

/** Pairs (first, then) where `first` is not deleted strictly before `then`; empty when the order holds. */
function notDeletedBefore(waves: Map<string, number>, first: RecordedResource[], then: RecordedResource[]): string[] {
  expect(first.length).toBeGreaterThan(0);
  expect(then.length).toBeGreaterThan(0);
  return first.flatMap((a) => then.filter((b) => !(waves.get(a.name)! < waves.get(b.name)!)).map((b) => `${a.name} !< ${b.name}`));
}

describe.each([
  ["dev", { stack: "dev", config: committedStackConfig("dev") }],
  ["prod", { stack: "prod", config: { ...committedStackConfig("prod"), ...PROD_PASSWORDS }, secretKeys: Object.keys(PROD_PASSWORDS) }],
] as const)("pulumi destroy on %s deletes in an order that cannot race", (stack, options) => {
  let run: StackRun;
  let waves: Map<string, number>;
  const ofType = (suffix: string) => run.resources.filter((r) => r.type.endsWith(suffix));
  const loginRoles = () => ofType("role:Role").filter((r) => r.inputs.login === true && !String(r.inputs.name).endsWith("_owner"));
  beforeAll(async () => {
    run = await runStack(options);
    waves = deleteWaves(dependencyGraph(run));
  });

  test("the hooks before any grant or default privilege", () => {
    const hooks = run.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/tsdb:") && !r.type.endsWith("SettingGuard"));
    expect(notDeletedBefore(waves, hooks, [...ofType("grant:Grant"), ...ofType("defaultPrivileges:DefaultPrivileges")])).toEqual([]);
  });

  test("grants and default privileges before the roles they name", () => {
    const roles = ofType("role:Role");
    const problems = [...ofType("grant:Grant"), ...ofType("defaultPrivileges:DefaultPrivileges")]
      .filter((g) => !BUILT_IN_GRANTEES.includes(String(g.inputs.role)))
      .flatMap((g) => notDeletedBefore(waves, [g], roles.filter((r) => r.inputs.name === g.inputs.role || r.inputs.name === g.inputs.owner)));
    expect(problems).toEqual([]);
    // Non-vacuous: every grant to neither PUBLIC nor a built-in role names a role of the stack.
    expect(ofType("grant:Grant").filter((g) => !BUILT_IN_GRANTEES.includes(String(g.inputs.role))).every((g) => roles.some((r) => r.inputs.name === g.inputs.role))).toBe(true);
  });

  test("the database before every login role (their grants inside it go with it; DROP ROLE cannot fail on them)", () => {
    expect(loginRoles().map((r) => r.inputs.name).sort()).toEqual(["market_app", "market_migrator", "market_readonly"]);
    expect(notDeletedBefore(waves, ofType("database:Database"), loginRoles())).toEqual([]);
  });

  test("the TimescaleDB container after everything that connects to it", () => {
    const container = run.resources.filter((r) => r.name === `tsdb-${stack}-timescaledb`);
    const connecting = run.resources.filter(
      (r) => r.type.startsWith("postgresql:") || r.type === "pulumi:providers:postgresql" || r.type.startsWith("pulumi-nodejs:dynamic/tsdb:SchemaMigrations") || r.type.startsWith("pulumi-nodejs:dynamic/tsdb:MarketDataLoad") || r.name.endsWith("-pgadmin"),
    );
    expect(notDeletedBefore(waves, connecting, container)).toEqual([]);
  });

  test(stack === "prod" ? "the prod data volume is never deleted: protected and retained" : "the dev data volume goes after the container that mounts it", () => {
    const volume = run.get(`tsdb-${stack}-data`, "docker:index/volume:Volume");
    if (stack === "prod") {
      expect([volume.protect, volume.retainOnDelete]).toEqual([true, true]);
      const db = run.get("tsdb-prod-database", "postgresql:index/database:Database");
      expect([db.protect, db.retainOnDelete]).toEqual([true, true]);
    } else {
      expect([volume.protect, volume.retainOnDelete]).toEqual([false, false]);
      expect(notDeletedBefore(waves, run.resources.filter((r) => r.name === "tsdb-dev-timescaledb"), [volume])).toEqual([]);
    }
  });
});

describe("the first pulumi up never runs two grants on the same object at once (tuple concurrently updated)", () => {
  /** The ACL a grant rewrites (computed here from its inputs, independently of the component). */
  const objectOf = (r: RecordedResource): string =>
    r.type.endsWith("defaultPrivileges:DefaultPrivileges")
      ? `defaults ${r.inputs.owner} ${r.inputs.objectType}`
      : r.inputs.objectType === "database"
        ? "database"
        : `${r.inputs.objectType} ${r.inputs.schema}`;

  test.each(["dev", "prod"] as const)("%s: every two grants on one object have a dependency path between them", async (stack) => {
    const run = await runStack(
      stack === "dev"
        ? { stack, config: committedStackConfig("dev") }
        : { stack, config: { ...committedStackConfig("prod"), ...PROD_PASSWORDS }, secretKeys: Object.keys(PROD_PASSWORDS) },
    );
    const graph = dependencyGraph(run);
    const grants = run.resources.filter((r) => r.type.endsWith("grant:Grant") || r.type.endsWith("defaultPrivileges:DefaultPrivileges"));
    const byObject = new Map<string, RecordedResource[]>();
    for (const g of grants) byObject.set(objectOf(g), [...(byObject.get(objectOf(g)) ?? []), g]);
    const concurrent: string[] = [];
    let pairs = 0;
    for (const [object, list] of byObject) {
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          pairs++;
          const [a, b] = [list[i]!, list[j]!];
          if (!dependenciesOf(graph, a.name).has(b.name) && !dependenciesOf(graph, b.name).has(a.name)) concurrent.push(`${object}: ${a.name} | ${b.name}`);
        }
      }
    }
    // database: PUBLIC + 3 roles + pg_monitor's CONNECT (5 grants, 10 pairs); each schema: app + readonly USAGE; tables per schema: app + readonly;
    // sequences per schema: app + readonly, except audit, where the app only reads tables (lib/access.ts);
    // default privileges per (owner, tables/sequences): app + readonly.
    expect(pairs).toBe(10 + 5 + 5 + 4 + 4);
    expect(concurrent).toEqual([]);
  });
});

describe("pulumi destroy with existingDatabase (a managed service's database is shared, not dropped)", () => {
  const CONFIG = {
    mode: "external",
    externalHost: "abc123.tsdb.cloud.timescale.com",
    externalAdminUser: "tsdbadmin",
    adminPassword: "svc-admin-Secret9",
    database: "tsdb",
    existingDatabase: "true",
    sslmode: "require",
  };

  test("the roles are deleted one at a time, as the dropped database orders them otherwise (was: three DROP OWNED at once in the shared database)", async () => {
    const run = await runStack({ stack: "dev", config: CONFIG, secretKeys: ["adminPassword"] });
    expect(run.ofType("postgresql:index/database:Database")).toEqual([]);
    const waves = deleteWaves(dependencyGraph(run));
    // Each role's delete runs REASSIGN OWNED and DROP OWNED in the provider's database, here the shared one
    // (postgresql/resource_postgresql_role.go, resourcePostgreSQLRoleDelete; pgLockRole locks only that role):
    // two at once rewrite the same ACLs ("tuple concurrently updated").
    const roles = run.ofType("postgresql:index/role:Role");
    expect(roles.map((r) => r.inputs.name).sort()).toEqual(["tsdb_app", "tsdb_migrator", "tsdb_owner", "tsdb_readonly"]);
    // Different waves are not enough (a delete starts when its own dependents are gone): every two roles need a
    // dependency path between them.
    const graph = dependencyGraph(run);
    const concurrent = roles.flatMap((a, i) =>
      roles.slice(i + 1).filter((b) => !dependenciesOf(graph, a.name).has(b.name) && !dependenciesOf(graph, b.name).has(a.name)).map((b) => `${a.inputs.name} | ${b.inputs.name}`),
    );
    expect(concurrent).toEqual([]);
    const byWave = roles.map((r) => `${waves.get(r.name)} ${r.inputs.name}`).sort();
    expect(byWave.map((w) => w.split(" ")[1])).toEqual(["tsdb_readonly", "tsdb_app", "tsdb_migrator", "tsdb_owner"]);
    // The owner last: the login roles' objects are reassigned before the role that owns the schema goes.
    expect(byWave.at(-1)).toMatch(/ tsdb_owner$/);
    // Every grant and default privilege naming a role goes before that role.
    const problems = run.resources
      .filter((g) => (g.type.endsWith("grant:Grant") || g.type.endsWith("defaultPrivileges:DefaultPrivileges")) && !BUILT_IN_GRANTEES.includes(String(g.inputs.role)))
      .flatMap((g) => notDeletedBefore(waves, [g], roles.filter((r) => r.inputs.name === g.inputs.role || r.inputs.name === g.inputs.owner)));
    expect(problems).toEqual([]);
  });
});
