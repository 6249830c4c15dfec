/**
 * The admin hook: a dynamic provider that does, as the admin (the TimescaleDB extension's owner), what only it
 * can, right after the extension exists (lib/postgres/timescaleAdmin.ts): update the extension when the server's
 * image brings a newer TimescaleDB (issue 20, defect 8), and take the job API from PUBLIC for `<db>_owner`
 * (issue 23, item 2). It runs on create and whenever its inputs change: the image (so a bump updates the
 * extension), the connection, the owner role.
 *
 * Serialization: lib/postgres/timescaleAdmin and lib/db are captured by value (as in MigrationsProvider.ts);
 * `pg` is required inside the methods.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { Client } from "pg";
import { clientConfig, openClient, withSettings } from "../lib/postgres/client";
import type { ConnectionInfo } from "../lib/postgres/connectionInfo";
import { type ExtensionVersions, administerTimescaleDb } from "../lib/postgres/timescaleAdmin";

/** Inputs of the admin hook (resolved). */
export interface ExtensionAdminInputs {
  /** The admin's connection to the stack's database. Secret. */
  connection: ConnectionInfo;
  /** `<db>_owner`: the one role that may schedule TimescaleDB jobs. */
  ownerRole: string;
  /** The server's image (docker mode): a bump re-runs the hook, which updates the extension. */
  serverImage?: string;
}

/** State: the inputs as applied and what the server said afterwards. */
export interface ExtensionAdminState extends ExtensionAdminInputs {
  /** The extension's version after this run (the server's newest when an update ran). */
  timescaledb: string | null;
  /** The version before, when this run updated it; null when no update was needed. */
  updatedFrom: string | null;
  /** `restricted`, or why the admin could not (a managed service's extension it does not own). */
  jobApi: string;
  /** Why a newer version was not installed (the admin does not own the service's extension); absent otherwise. */
  updateLeft?: string;
}

/** Pulumi's placeholder for values not known during preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

async function run(inputs: ExtensionAdminInputs): Promise<ExtensionAdminState> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pg = require("pg") as typeof import("pg");
  // openClient sends nothing before the caller's first statement (no probe query), which the update needs.
  const connect = (options?: string): Promise<Client> =>
    openClient(pg, withSettings({ application_name: "tsdb-stack admin hook", ...(options ? { options } : {}) }, clientConfig(inputs.connection)));
  const result = await administerTimescaleDb(connect, inputs.connection.database, inputs.ownerRole);
  const version = (v: ExtensionVersions) => v.installed;
  return {
    connection: inputs.connection,
    ownerRole: inputs.ownerRole,
    ...(inputs.serverImage !== undefined ? { serverImage: inputs.serverImage } : {}),
    timescaledb: version(result.after),
    updatedFrom: result.updated ? version(result.before) : null,
    jobApi: result.jobApi.status === "restricted" ? "restricted" : result.jobApi.detail,
    ...(result.updateLeft ? { updateLeft: result.updateLeft } : {}),
  };
}

/** The dynamic provider; see the module comment. */
export const extensionAdminProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: ExtensionAdminState, news: ExtensionAdminInputs): Promise<pulumi.dynamic.DiffResult> {
    const known = (v: unknown) => v !== undefined && v !== UNKNOWN;
    const changes =
      JSON.stringify(olds.connection) !== JSON.stringify(news.connection) ||
      olds.ownerRole !== news.ownerRole ||
      (known(news.serverImage) && (olds.serverImage ?? news.serverImage) !== news.serverImage);
    return { changes, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: ExtensionAdminInputs): Promise<pulumi.dynamic.CreateResult> {
    return { id: `timescaledb-admin@${inputs.connection.database}`, outs: await run(inputs) };
  },

  async update(_id: string, _olds: ExtensionAdminState, news: ExtensionAdminInputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await run(news) };
  },

  async delete(): Promise<void> {
    // Nothing to undo: giving PUBLIC the job API back would reopen the hole, and the extension (with the ACLs
    // and the version) goes with the database, or stays with a database kept by tsdb:protectData.
  },
};
