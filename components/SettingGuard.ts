import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { ContainerValues, GuardContext } from "../lib/settingChanges";
import { settingGuardProvider } from "../providers/SettingGuardProvider";

/** Arguments of {@link SettingGuard}. */
export interface SettingGuardArgs {
  /** `tsdb:database`. */
  database: string;
  /** The admin password (docker mode: compared as a fingerprint only); omit in external mode. */
  adminPassword?: pulumi.Input<string>;
  /** Guarded settings the user allows to change in this run (`TSDB_ALLOW`). */
  allow: string[];
  context: GuardContext;
  /** Docker mode: the settings whose change replaces the TimescaleDB container (the preview says it restarts). */
  container?: ContainerValues;
}

/** The dynamic resource; its outputs are the accepted values. */
class SettingGuardResource extends pulumi.dynamic.Resource {
  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    super(settingGuardProvider, name, props, opts, "tsdb", "SettingGuard");
  }
}

/** A fingerprint that says whether the password changed without storing it (salted so it is not a bare hash). */
export function passwordFingerprint(stack: string, password: string): string {
  return `sha256:${createHash("sha256").update(`tsdb-admin-password\0${stack}\0${password}`).digest("hex")}`;
}

/**
 * Refuses, at preview, changes of settings the providers would carry out destructively (lib/settingChanges.ts).
 * Make what would act on such a change depend on {@link SettingGuard.resource}.
 */
export class SettingGuard extends pulumi.ComponentResource {
  /** The guard resource to depend on. */
  readonly resource: pulumi.CustomResource;

  constructor(name: string, args: SettingGuardArgs, opts?: pulumi.ComponentResourceOptions) {
    super("tsdb:hooks:SettingGuard", name, {}, opts);
    const watched = pulumi.secret(
      pulumi.output(args.adminPassword).apply((password) => ({
        database: args.database,
        ...(password !== undefined ? { adminPassword: passwordFingerprint(args.context.stack, password) } : {}),
      })),
    );
    this.resource = new SettingGuardResource(
      `${name}-guard`,
      { watched, allow: args.allow, context: args.context, ...(args.container ? { container: args.container, notice: "" } : {}) },
      { parent: this, additionalSecretOutputs: ["watched"] },
    );
    this.registerOutputs({});
  }
}
