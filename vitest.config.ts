import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// The fuzz tests explore: a new seed every run unless FUZZ_SEED is set, chosen once here so that
// the Node and workerd projects share it; each fuzz test prints it in its name and failures.
process.env.FUZZ_SEED ??= String(Math.floor(Math.random() * 2 ** 31));

export default defineConfig({
  test: {
    projects: [
      {
        // cloud/ and shared/ in Node
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts", "test/shared/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        // workers/ and shared/ inside workerd, with the real ORT WASM and a real Node cloud
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                CLOUD_URL: `http://127.0.0.1:${inject("cloudPort")}`,
                FOGLINE_HMAC_SECRET: inject("hmacSecret"),
                // access lines of thousands of test requests would bury the failures
                LOG_LEVEL: "warn",
                FUZZ_SEED: process.env.FUZZ_SEED,
              },
              // A real (miniflare) Rate Limiting binding under another name: wrangler.toml has no
              // CLOUD_RATE_LIMITER, so nothing is limited unless a test passes this one as it
              // (test/workers/edge.test.ts, "per-client limit"), each with its own client keys.
              ratelimits: { TEST_CLOUD_RATE_LIMITER: { simple: { limit: 5, period: 60 } } },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts", "test/shared/**/*.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          testTimeout: 60_000,
          // one isolate for every file: importing the ORT WASM costs ~8 s per isolate (docs/runtime.md#testing-inside-workerd-vitest-pool-workers)
          isolate: false,
          maxWorkers: 1,
        },
      },
      {
        // the whole stack as `npm start` runs it (cloud + wrangler dev), driven over HTTP: demo page
        // in headless Chromium, OIP v2 as a generic client, the CLI and the README's examples
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/e2e/stack.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
