import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/conformance/**/*.vitest.ts"],
    // The suite is written for vitest's default 5 s per test.
    testTimeout: 5_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
