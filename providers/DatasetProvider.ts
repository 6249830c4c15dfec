/**
 * The Pulumi hook loading one dataset: a dynamic provider keyed by the content checksum of the dataset's
 * files, so `pulumi preview` shows an update exactly for the datasets whose files or settings changed.
 *
 * The load itself runs `lib/loader/hookWorker.ts` of the project in a child Node process (through tsx): the
 * dataset setting IS a LoadRequest (lib/loader/loadRequest.ts, the same schema the CLI's flags build), sent
 * as JSON on stdin; the child answers with one JSON line, a summary or an error, so a failure reaches
 * `pulumi up` as the loader's own message. The loader's readers (PapaParse, hyparquet, better-sqlite3) stay
 * ordinary modules of the project instead of being serialized into state, memory for a large load is the
 * child's, and the connection reaches the child in its environment (DATABASE_URL), never on a command line.
 * Top-level imports are type-only except lib/postgres/connectionInfo (the one URL builder, IPv6 in brackets), a
 * dependency-free module Pulumi serializes by value as it does lib/db for the migrations hook; Node built-ins
 * are required inside the methods. State written by the earlier provider (which ran scripts/data.ts) diffs
 * and deletes unchanged: its fields are the same.
 *
 * Delete does nothing to the data: removing a dataset from `tsdb:datasets` does not delete its bars (they may
 * have been merged with bars from other sources; delete them with SQL if that is meant).
 */
import type * as pulumi from "@pulumi/pulumi";
import type { ConnectionInfo } from "../lib/db";
import { connectionUrl } from "../lib/postgres/connectionInfo";
import type { DatasetSetting } from "../lib/settings";

/** Current shape of the state. */
export const DATASET_STATE_VERSION = 1;

/** Inputs of a dataset resource (resolved). */
export interface DatasetInputs {
  /** Where to load, secret. */
  connection: ConnectionInfo;
  dataset: DatasetSetting;
  /** Absolute project directory: where lib/loader/hookWorker.ts and the dataset's relative source live. */
  projectDir: string;
  /** The dataset's files, relative to projectDir (informational: shows in preview). */
  files: string[];
  /** `sha256:...` of the files' paths and contents (datasetChecksum). */
  checksum: string;
}

/** Counts of the last load. */
export interface DatasetCounts {
  read: number;
  inserted: number;
  updated: number;
  alreadyPresent: number;
  rejected: number;
  /** Project-relative rejects CSV, written only when rows were rejected. */
  rejectsFile: string;
}

export type DatasetState = DatasetInputs & DatasetCounts & { stateVersion: number };

/** Pulumi's placeholder for values not known during preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The DATABASE_URL the loader child gets: lib/postgres/connectionInfo's URL (IPv6 hosts in brackets, credentials encoded). */
export function loaderDatabaseUrl(connection: ConnectionInfo): string {
  return connectionUrl(connection);
}

/** Runs the dataset's LoadRequest in the hook worker (a child process) and returns its counts. */
async function runLoad(inputs: DatasetInputs): Promise<DatasetCounts> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawn } = require("node:child_process") as typeof import("node:child_process");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const path = require("node:path") as typeof import("node:path");
  const { name, ...request } = inputs.dataset;
  const c = inputs.connection;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("node:fs") as typeof import("node:fs");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require("node:os") as typeof import("node:os");
  // The child reads the CA from a file named in the URL, as libpq does; private, and removed after the load.
  const tlsDir = c.sslrootcert ? fs.mkdtempSync(path.join(os.tmpdir(), "tsdb-ca-")) : undefined;
  const caFile = tlsDir ? path.join(tlsDir, "root.crt") : undefined;
  if (caFile) fs.writeFileSync(caFile, c.sslrootcert!, { mode: 0o600 });
  // loaderDatabaseUrl always carries `?sslmode=`, so the CA file is one more parameter.
  const url = loaderDatabaseUrl(c) + (caFile ? `&sslrootcert=${encodeURIComponent(caFile)}` : "");
  const rejectsFile = [".tsdb", "rejects", `${name}.csv`].join("/");
  const failed = (reason: string) => new Error(`Loading dataset ${name} (${request.source}) failed: ${reason}`);
  const reply = await new Promise<{ ok?: boolean; summary?: Partial<DatasetCounts>; error?: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join("lib", "loader", "hookWorker.ts")], {
      cwd: inputs.projectDir,
      env: { ...process.env, DATABASE_URL: url },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString("utf8")).slice(-8192)));
    child.on("error", (e) => reject(failed(e.message)));
    child.on("close", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(last) as { ok?: boolean; summary?: Partial<DatasetCounts>; error?: string });
      } catch {
        reject(failed(`the load process exited with code ${code} without a result: ${err.trim().split("\n").pop() || "no output"}`));
      }
    });
    child.stdin.end(JSON.stringify({ request, defaultRejects: rejectsFile }));
  }).finally(() => {
    if (tlsDir) fs.rmSync(tlsDir, { recursive: true, force: true });
  });
  if (!reply.ok || !reply.summary) throw failed(reply.error ?? "no reason given");
  const summary = reply.summary;
  return {
    read: Number(summary.read ?? 0),
    inserted: Number(summary.inserted ?? 0),
    updated: Number(summary.updated ?? 0),
    alreadyPresent: Number(summary.alreadyPresent ?? 0),
    rejected: Number(summary.rejected ?? 0),
    rejectsFile,
  };
}

function known(v: unknown): boolean {
  return v !== undefined && v !== UNKNOWN;
}

/** The dynamic provider; see the module comment. */
export const datasetProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: DatasetState, news: DatasetInputs): Promise<pulumi.dynamic.DiffResult> {
    const where = (c: ConnectionInfo | undefined) => (c ? [c.host, c.port, c.database] : []);
    const targetChanged =
      known(news.connection?.host) && known(news.connection?.database) && JSON.stringify(where(olds.connection)) !== JSON.stringify(where(news.connection));
    const changes =
      olds.checksum !== news.checksum ||
      JSON.stringify(olds.dataset) !== JSON.stringify(news.dataset) ||
      targetChanged ||
      olds.stateVersion !== DATASET_STATE_VERSION;
    // A reload is an update: the load is idempotent, so nothing needs replacing.
    return { changes, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: DatasetInputs): Promise<pulumi.dynamic.CreateResult> {
    const counts = await runLoad(inputs);
    return { id: `dataset:${inputs.dataset.name}@${inputs.connection.database}`, outs: { ...inputs, ...counts, stateVersion: DATASET_STATE_VERSION } };
  },

  async update(_id: string, _olds: DatasetState, news: DatasetInputs): Promise<pulumi.dynamic.UpdateResult> {
    const counts = await runLoad(news);
    return { outs: { ...news, ...counts, stateVersion: DATASET_STATE_VERSION } };
  },

  async delete(): Promise<void> {
    // Bars stay: see the module comment.
  },
};
