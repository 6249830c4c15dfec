import { defineConfig } from "vitest/config";

// Three layers (see DEVELOPERS.md): test/unit (pure logic, Pulumi mocks), test/providers (serialized
// dynamic providers against real databases), test/engines (real databases). Engine fixtures start one
// server per test file on a free port, so files may run in parallel; 2 workers match the 2-core machine.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Names, once at the end, any engine that cannot run here (test/fixtures/nativeServer.ts).
    globalSetup: ["test/fixtures/globalSetup.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
