import * as pulumi from "@pulumi/pulumi";
import type { ConnectionInfo } from "../lib/db";
import { extensionAdminProvider } from "../providers/ExtensionAdminProvider";

/** Arguments of {@link ExtensionAdmin}. */
export interface ExtensionAdminArgs {
  /** The admin's connection to the stack's database (kept secret in state). */
  connection: pulumi.Input<ConnectionInfo>;
  /** `<db>_owner`: the one role that may schedule TimescaleDB jobs. */
  ownerRole: pulumi.Input<string>;
  /** The server's image (docker mode): a bump re-runs the hook, which updates the extension. */
  serverImage?: string;
}

/** The dynamic resource; its outputs are the provider's state. */
class ExtensionAdminResource extends pulumi.dynamic.Resource {
  declare public readonly timescaledb: pulumi.Output<string | null>;

  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    super(extensionAdminProvider, name, { ...props, timescaledb: undefined, updatedFrom: undefined, jobApi: undefined }, opts, "tsdb", "ExtensionAdmin");
  }
}

/**
 * The admin's work once the TimescaleDB extension exists (providers/ExtensionAdminProvider.ts): update it to the
 * server's version after an image bump, and let only the owner schedule jobs. Pass the extension (and the owner
 * role) in `dependsOn`; make the schema migrations depend on this.
 */
export class ExtensionAdmin extends pulumi.ComponentResource {
  /** The extension's version after the hook's last run. */
  readonly timescaledb: pulumi.Output<string | null>;
  /** The hook resource to depend on. */
  readonly resource: pulumi.CustomResource;

  constructor(name: string, args: ExtensionAdminArgs, opts?: pulumi.ComponentResourceOptions) {
    super("tsdb:hooks:ExtensionAdmin", name, {}, opts);
    const resource = new ExtensionAdminResource(
      `${name}-hook`,
      {
        connection: pulumi.secret(args.connection),
        ownerRole: args.ownerRole,
        ...(args.serverImage !== undefined ? { serverImage: args.serverImage } : {}),
      },
      // A component's dependsOn does not reach its children (see SchemaMigrations.ts).
      { parent: this, dependsOn: opts?.dependsOn, additionalSecretOutputs: ["connection"] },
    );
    this.resource = resource;
    this.timescaledb = resource.timescaledb;
    this.registerOutputs({ timescaledb: this.timescaledb });
  }
}
