/**
 * The guard hook: a dynamic provider that refuses, at preview, a change of a setting the real providers would
 * carry out destructively (lib/settingChanges.ts says which and why). It does nothing to any server.
 *
 * The refusal is a `check` failure: Pulumi runs `check` for every resource in `pulumi preview` and
 * `pulumi up` before any step, prints its reason next to the resource and stops. The TimescaleDB container
 * and the postgresql provider depend on the guard, so nothing that would act on the change runs before it.
 * Its state holds the last accepted values (the admin password only as a salted SHA-256 fingerprint, and
 * secret). Module import is lib/settingChanges (no imports itself), which Pulumi serializes by value.
 */
import type * as pulumi from "@pulumi/pulumi";
import { type ContainerValues, type GuardContext, type WatchedValues, refusedChanges, restartNotice } from "../lib/settingChanges";

/** Inputs of the guard (resolved). */
export interface SettingGuardInputs {
  watched: WatchedValues;
  /** Guarded settings the user allowed to change in this run (TSDB_ALLOW). */
  allow: string[];
  context: GuardContext;
  /** The settings that replace the TimescaleDB container (docker mode). */
  container?: ContainerValues;
  /** Set by `check`: what the preview should say about this run (a container replacement restarts PostgreSQL). */
  notice?: string;
}

/** Pulumi's placeholder for values not known during preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function knownValues<T extends Record<string, string | undefined>>(values: T | undefined): T | undefined {
  if (!values) return undefined;
  return Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === "string" && v !== UNKNOWN)) as T;
}

/** The dynamic provider; see the module comment. */
export const settingGuardProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<SettingGuardInputs>, news: SettingGuardInputs): Promise<pulumi.dynamic.CheckResult> {
    const before = knownValues(olds?.watched);
    const after = knownValues(news.watched) ?? {};
    const refusals = refusedChanges(before, after, news.allow ?? [], news.context);
    if (refusals.length > 0) return { failures: refusals.map((reason) => ({ property: "watched", reason })) };
    // Shown by `pulumi preview --diff` as this resource's changed `notice`, next to the container's replace.
    const passwordChanged = before?.adminPassword !== undefined && after.adminPassword !== undefined && before.adminPassword !== after.adminPassword;
    const notice = restartNotice(knownValues(olds?.container), knownValues(news.container), passwordChanged, news.context);
    return { inputs: { ...news, notice } };
  },

  async diff(_id: string, olds: SettingGuardInputs, news: SettingGuardInputs): Promise<pulumi.dynamic.DiffResult> {
    // `notice` is about this run only: it is not compared, so the run after a restart shows no change.
    const changes =
      JSON.stringify(olds.watched) !== JSON.stringify(news.watched) ||
      JSON.stringify(olds.context) !== JSON.stringify(news.context) ||
      JSON.stringify(olds.container ?? null) !== JSON.stringify(news.container ?? null);
    return { changes, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: SettingGuardInputs): Promise<pulumi.dynamic.CreateResult> {
    return { id: `guard:${inputs.context.stack}`, outs: inputs };
  },

  async update(_id: string, _olds: SettingGuardInputs, news: SettingGuardInputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: news };
  },

  async delete(): Promise<void> {
    // Nothing to undo: the guard only remembers values.
  },
};
