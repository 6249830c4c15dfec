/**
 * At preview, the program under Pulumi's mocks rejects interval settings the database would reject
 * (before any resource is declared), and warns (engine log.warn observed) when tsdb:bindAddress publishes
 * the database on every interface.
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

describe("preview rejects interval settings the database would reject or that make no sense", () => {
  test.each([
    [{ caggRefreshInterval: "0 days" }, '[tsdb:caggRefreshInterval] must be a PostgreSQL interval such as "7 days" (a number and one of microsecond, millisecond, second, minute, hour, day, week, month, year), from 1 minute to 1 year, got "0 days".'],
    [{ caggRefreshInterval: "0 seconds" }, "from 1 minute to 1 year, got \"0 seconds\"."],
    [{ compressAfter: "12345678901234567890 years" }, "[tsdb:compressAfter] must be a PostgreSQL interval such as \"7 days\""],
    [{ tickChunkInterval: "1 microsecond" }, "from 1 minute to 1 year, got \"1 microsecond\"."],
    [{ database: "template1" }, "[tsdb:database] must be a lowercase identifier of at most 54 characters (letters, digits, _; not starting with a digit), not postgres, template0 or template1, got \"template1\"."],
  ])("%j", async (config, message) => {
    await expect(runStack({ stack: "dev", config: { ...committedStackConfig("dev"), ...config } })).rejects.toThrow(message);
  });
});
