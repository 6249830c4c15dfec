import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionInfo } from "../lib/db";
import { datasetChecksum, datasetFiles } from "../lib/loader/datasetChecksum";
import type { DatasetSetting } from "../lib/settings";
import { datasetProvider } from "../providers/DatasetProvider";

export interface MarketDataLoadArgs {
  /** Where to load (a role that may INSERT/UPDATE market_data.ohlcv_bars and create TEMP tables); kept secret. */
  connection: pulumi.Input<ConnectionInfo>;
  /** One entry of `tsdb:datasets`. */
  dataset: DatasetSetting;
  /** Project directory: the dataset's `source` is relative to it and the hook's worker (lib/loader/hookWorker.ts) runs from it. */
  projectDir: string;
}

/** The dynamic resource; its outputs are the provider's outs. */
class DatasetResource extends pulumi.dynamic.Resource {
  declare public readonly read: pulumi.Output<number>;
  declare public readonly inserted: pulumi.Output<number>;
  declare public readonly updated: pulumi.Output<number>;
  declare public readonly alreadyPresent: pulumi.Output<number>;
  declare public readonly rejected: pulumi.Output<number>;
  declare public readonly rejectsFile: pulumi.Output<string>;

  constructor(name: string, props: Record<string, pulumi.Input<unknown>>, opts?: pulumi.CustomResourceOptions) {
    const outs = { read: undefined, inserted: undefined, updated: undefined, alreadyPresent: undefined, rejected: undefined, rejectsFile: undefined };
    super(datasetProvider, name, { ...props, ...outs }, opts, "tsdb", "MarketDataLoad");
  }
}

/**
 * Loads one dataset into market_data.ohlcv_bars during `pulumi up`, after the migrations (pass them in
 * `dependsOn`). The files are hashed when the program runs: preview shows an update for this dataset exactly
 * when its files or its settings changed. Removing the dataset later does not delete its bars.
 */
export class MarketDataLoad extends pulumi.ComponentResource {
  /** sha256 of the dataset's files, as loaded. */
  public readonly checksum: string;
  /** Rows read, new bars, changed bars, bars already present, rejected rows, in the last load. */
  public readonly read: pulumi.Output<number>;
  public readonly inserted: pulumi.Output<number>;
  public readonly updated: pulumi.Output<number>;
  public readonly alreadyPresent: pulumi.Output<number>;
  public readonly rejected: pulumi.Output<number>;
  /** Project-relative CSV listing rejected rows with reasons (written only when there are any). */
  public readonly rejectsFile: pulumi.Output<string>;

  constructor(name: string, args: MarketDataLoadArgs, opts?: pulumi.ComponentResourceOptions) {
    super("tsdb:hooks:MarketDataLoad", name, {}, opts);
    const projectDir = path.resolve(args.projectDir);
    let files: string[];
    try {
      files = datasetFiles(projectDir, args.dataset.source);
    } catch (err) {
      throw new Error(`[tsdb:datasets] dataset ${args.dataset.name}: ${(err as Error).message}`, { cause: err });
    }
    this.checksum = datasetChecksum(projectDir, files);
    const resource = new DatasetResource(
      `${name}-dataset`,
      { connection: pulumi.secret(args.connection), dataset: args.dataset, projectDir, files, checksum: this.checksum },
      // A component's dependsOn does not reach its children (the SDK only waits on a resource's own
      // dependsOn), so the hook would otherwise run before what it needs exists.
      { parent: this, dependsOn: opts?.dependsOn, additionalSecretOutputs: ["connection"] },
    );
    this.read = resource.read;
    this.inserted = resource.inserted;
    this.updated = resource.updated;
    this.alreadyPresent = resource.alreadyPresent;
    this.rejected = resource.rejected;
    this.rejectsFile = resource.rejectsFile;
    this.registerOutputs({
      checksum: this.checksum, read: this.read, inserted: this.inserted, updated: this.updated,
      alreadyPresent: this.alreadyPresent, rejected: this.rejected, rejectsFile: this.rejectsFile,
    });
  }
}
