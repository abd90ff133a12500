/** Starts real cloud servers (Node + onnxruntime-node) for the tests, on free ports. */
import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createCloudApp } from "../cloud/src/app.js";
import { loadModels, type CloudModel } from "../cloud/src/models.js";

export const TEST_SECRET = "fogline-test-secret-0123456789abcdef0123456789abcdef";

export interface RunningCloud {
  port: number;
  close(): Promise<void>;
}

export async function startCloud(models: Map<string, CloudModel>, secret = TEST_SECRET): Promise<RunningCloud> {
  const app = createCloudApp({ models, secret });
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      resolve({ port: info.port, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

/** The same graphs under manifests that claim another export: the cloud half of a mismatched deployment. */
export function withOtherFingerprint(models: Map<string, CloudModel>): Map<string, CloudModel> {
  const out = new Map<string, CloudModel>();
  for (const [name, m] of models) {
    out.set(name, { ...m, manifest: { ...m.manifest, version: `${m.manifest.version}-other`, fingerprint: "0".repeat(64) } });
  }
  return out;
}

export { loadModels };
