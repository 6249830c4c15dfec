/**
 * lib/containerLimits.ts: `cpus` and `memory_swap` in the form @pulumi/docker 4.11 (terraform-provider-docker
 * v3.9) reads back, so a second `pulumi up` does not replace or update the container. The read-back model is the
 * one the second-run harness uses (test/fixtures/providerModels.ts: helpers.go's nanoInt64ToDecimalString line
 * for line, and docker/cli's ParseCPUs).
 */
import { describe, expect, test } from "vitest";
import { dockerCpus, memorySwapMb } from "../../lib/containerLimits";
import { SETTING_DECLARATIONS } from "../../lib/settings";
import { nanoInt64ToDecimalString, readBackCpus } from "../fixtures/providerModels";

describe("the read-back model is upstream's", () => {
  // The table of kreuzwerker/terraform-provider-docker v3.9.0 internal/provider/helpers_test.go, then what the
  // same code gives for values with a zero digit.
  test.each([
    [0n, "0"],
    [1_000_000_000n, "1.0"],
    [1_500_000_000n, "1.5"],
    [2_000_000_000n, "2.0"],
    [2_250_000_000n, "2.25"],
    [10_000_000_000n, "10."],
    [20_000_000_000n, "20."],
    [100_000_000_000n, "100."],
    [10_500_000_000n, "10.5"],
    [500_000_000n, "0.5"],
    [50_000_000n, "0.1"],
  ])("%s NanoCPUs -> %j", (nano, text) => {
    expect(nanoInt64ToDecimalString(nano)).toBe(text);
  });
});

describe("dockerCpus sends the form the provider reads back", () => {
  test.each([
    [1, "1.0"],
    [2, "2.0"],
    [4, "4.0"],
    [9, "9.0"],
    [16, "16.0"],
    [128, "128.0"],
  ])("%i CPUs -> %s", (cpus, sent) => {
    expect(dockerCpus(cpus)).toBe(sent);
    expect(readBackCpus(sent)).toBe(sent);
  });

  test("hosts with 10, 20, ... CPUs: the container is not replaced on every up (sent '10.0', read back '10.')", () => {
    expect(readBackCpus("10.0")).toBe("10.");
    expect([10, 20, 30, 40, 50, 60, 64, 80, 100, 101, 102, 120].map(dockerCpus)).toEqual(
      ["10.", "20.", "30.", "40.", "50.", "60.", "64.0", "80.", "100.", "101.", "102.", "120."],
    );
  });

  test("for every CPU count a host can have (1..128, and all tsdb:cpus allows, 1..1024), what is sent is what is read back", () => {
    const mismatches: string[] = [];
    for (let cpus = 1; cpus <= 1024; cpus++) {
      const sent = dockerCpus(cpus);
      if (readBackCpus(sent) !== sent) mismatches.push(`${cpus}: sent ${sent}, read back ${readBackCpus(sent)}`);
      if (parseFloat(sent) !== cpus) mismatches.push(`${cpus}: sent ${sent}, which is another value`);
    }
    expect(mismatches).toEqual([]);
    expect(SETTING_DECLARATIONS.cpus?.type).toBe("integer");
  });

  test.each([
    [0.5, "0.5"],
    [1.5, "1.5"],
    [2.25, "2.25"],
    [10.5, "10.5"],
    [100.5, "100.5"],
    [0.125, "0.125"],
    [3.000000001, "3.000000001"],
  ])("fractional %s CPUs -> %s, read back the same", (cpus, sent) => {
    expect(dockerCpus(cpus)).toBe(sent);
    expect(readBackCpus(sent)).toBe(sent);
  });

  test("every fraction in steps of 0.05 up to 16 CPUs is sent as read back, or refused naming the value to use", () => {
    const bad: string[] = [];
    for (let hundredths = 5; hundredths <= 1600; hundredths += 5) {
      const cpus = hundredths / 100;
      let sent: string;
      try {
        sent = dockerCpus(cpus);
      } catch (err) {
        expect((err as Error).message).toMatch(/^\[tsdb:cpus\] [\d.]+ is read back from Docker as [\d.]+, another value, .*; use [\d.]+\.$/);
        continue;
      }
      if (readBackCpus(sent) !== sent) bad.push(`${cpus}: ${sent} -> ${readBackCpus(sent)}`);
    }
    expect(bad).toEqual([]);
    expect(() => dockerCpus(100.25)).toThrow(/100.25 is read back from Docker as 100.3/);
    expect(() => dockerCpus(0.05)).toThrow("[tsdb:cpus] 0.05 is read back from Docker as 0.1, another value, so every pulumi up would replace the container; use 0.1.");
  });

  test("zero, negative and over-precise CPU counts are refused with the setting named", () => {
    expect(() => dockerCpus(0)).toThrow("[tsdb:cpus] must be a number of CPUs above 0, got 0.");
    expect(() => dockerCpus(-2)).toThrow(/\[tsdb:cpus\]/);
    expect(() => dockerCpus(1.0000000001)).toThrow("[tsdb:cpus] may have at most 9 decimals (Docker counts NanoCPUs), got 1.0000000001.");
  });
});

describe("memorySwapMb turns swap off", () => {
  test.each([512, 2048, 8192])("%i MB of memory -> memory_swap %i MB (memory + swap = memory)", (memory) => {
    expect(memorySwapMb(memory)).toBe(memory);
  });
});
