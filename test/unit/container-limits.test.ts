/**
 * lib/containerLimits.ts: `cpus` and `memory_swap` in the form @pulumi/docker 4.11 (terraform-provider-docker
 * v3.9) reads back, so a second `pulumi up` does not replace or update the container. The read-back model is the
 * one the second-run harness uses (test/fixtures/providerModels.ts, citing the upstream source).
 */
import { describe, expect, test } from "vitest";
import { dockerCpus, memorySwapMb } from "../../lib/containerLimits";
import { SETTING_DECLARATIONS } from "../../lib/settings";
import { readBackCpus } from "../fixtures/providerModels";

describe("dockerCpus sends the form the provider reads back", () => {
  test.each([
    [1, "1.0"],
    [2, "2.0"],
    [4, "4.0"],
    [16, "16.0"],
    [1024, "1024.0"],
  ])("%i CPUs -> %s", (cpus, sent) => {
    expect(dockerCpus(cpus)).toBe(sent);
    expect(readBackCpus(sent)).toBe(sent);
  });

  test("for every value tsdb:cpus allows (1..1024), what is sent is what is read back", () => {
    const mismatches: string[] = [];
    for (let cpus = 1; cpus <= 1024; cpus++) {
      const sent = dockerCpus(cpus);
      if (readBackCpus(sent) !== sent) mismatches.push(`${cpus}: sent ${sent}, read back ${readBackCpus(sent)}`);
    }
    expect(mismatches).toEqual([]);
    expect(SETTING_DECLARATIONS.cpus?.type).toBe("integer");
  });

  test("the plain integer string is read back differently: the defect this fixes", () => {
    expect(readBackCpus("2")).toBe("2.0");
  });

  test("a fractional or zero CPU count is refused with the setting named", () => {
    expect(() => dockerCpus(1.5)).toThrow("[tsdb:cpus] must be a whole number of CPUs, at least 1, got 1.5.");
    expect(() => dockerCpus(0)).toThrow(/\[tsdb:cpus\]/);
  });
});

describe("memorySwapMb turns swap off", () => {
  test.each([512, 2048, 8192])("%i MB of memory -> memory_swap %i MB (memory + swap = memory)", (memory) => {
    expect(memorySwapMb(memory)).toBe(memory);
  });
});
