import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

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
              },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts", "test/shared/**/*.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          testTimeout: 60_000,
          // one isolate for every file: importing the ORT WASM costs ~8 s per isolate (DESIGN §5)
          isolate: false,
          maxWorkers: 1,
        },
      },
    ],
  },
});
