/**
 * `pulumi preview`/`up` warn when tsdb:bindAddress publishes the database on every interface (issue 9): the
 * program under Pulumi's mocks, with the engine's log.warn observed.
 */
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, test, vi } from "vitest";
import { committedStackConfig, runStack } from "../fixtures/pulumiMocks";

describe("preview warns about a bind address on every interface", () => {
  afterEach(() => vi.restoreAllMocks());

  test.each(["0.0.0.0", "::"])("bindAddress %s: one warning naming the ports and sslmode disable", async (bindAddress) => {
    const warn = vi.spyOn(pulumi.log, "warn").mockResolvedValue(undefined);
    await runStack({ stack: "dev", config: { ...committedStackConfig("dev"), bindAddress } });
    const messages = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes("tsdb:bindAddress"));
    expect(messages).toEqual([
      `[tsdb:bindAddress] ${bindAddress} publishes PostgreSQL (port 5432) and pgAdmin (port 5050) on every network interface of this host, and tsdb:sslmode is disable: passwords and data cross it unencrypted. Keep it on this host: \`pulumi config set tsdb:bindAddress 127.0.0.1 --stack dev\`; to serve other hosts, bind one address behind a firewall and use TLS (server certificates, tsdb:sslmode verify-full).`,
    ]);
  });

  test("the committed dev stack (127.0.0.1) draws no such warning", async () => {
    const warn = vi.spyOn(pulumi.log, "warn").mockResolvedValue(undefined);
    await runStack({ stack: "dev", config: committedStackConfig("dev") });
    expect(warn.mock.calls.filter((c) => String(c[0]).includes("bindAddress"))).toEqual([]);
  });
});
