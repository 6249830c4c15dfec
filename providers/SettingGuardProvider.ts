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
import { type GuardContext, type WatchedValues, refusedChanges } from "../lib/settingChanges";

/** Inputs of the guard (resolved). */
export interface SettingGuardInputs {
  watched: WatchedValues;
  /** Guarded settings the user allowed to change in this run (TSDB_ALLOW). */
  allow: string[];
  context: GuardContext;
}

/** Pulumi's placeholder for values not known during preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function knownValues(watched: WatchedValues | undefined): WatchedValues | undefined {
  if (!watched) return undefined;
  return Object.fromEntries(Object.entries(watched).filter(([, v]) => typeof v === "string" && v !== UNKNOWN));
}

/** The dynamic provider; see the module comment. */
export const settingGuardProvider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<SettingGuardInputs>, news: SettingGuardInputs): Promise<pulumi.dynamic.CheckResult> {
    const refusals = refusedChanges(knownValues(olds?.watched), knownValues(news.watched) ?? {}, news.allow ?? [], news.context);
    return refusals.length > 0 ? { failures: refusals.map((reason) => ({ property: "watched", reason })) } : { inputs: news };
  },

  async diff(_id: string, olds: SettingGuardInputs, news: SettingGuardInputs): Promise<pulumi.dynamic.DiffResult> {
    const changes = JSON.stringify(olds.watched) !== JSON.stringify(news.watched) || JSON.stringify(olds.context) !== JSON.stringify(news.context);
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
