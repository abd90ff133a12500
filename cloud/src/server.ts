/**
 * Starts the cloud half on Node: `tsx cloud/src/server.ts`. Configuration by environment:
 *   FOGLINE_HMAC_SECRET   required, the same key the edge signs with
 *   FOGLINE_CLOUD_PORT    default 8788 (PORT also honoured, for PaaS hosts)
 *   FOGLINE_CLOUD_HOST    default 127.0.0.1 (0.0.0.0 in a container)
 *   FOGLINE_MODELS_DIR    default models/
 *   FOGLINE_ORT_THREADS   onnxruntime intra-op threads, default 1
 */
import { serve } from "@hono/node-server";
import { resolve } from "node:path";
import { MIN_SECRET_LENGTH } from "../../shared/src/hmac.js";
import { createCloudApp } from "./app.js";
import { loadModels } from "./models.js";

const secret = process.env.FOGLINE_HMAC_SECRET ?? "";
if (secret.length < MIN_SECRET_LENGTH) {
  console.error(`FOGLINE_HMAC_SECRET must be set to at least ${MIN_SECRET_LENGTH} characters (npm start generates one into .dev.vars)`);
  process.exit(1);
}
const port = Number(process.env.FOGLINE_CLOUD_PORT ?? process.env.PORT ?? 8788);
const hostname = process.env.FOGLINE_CLOUD_HOST ?? "127.0.0.1";
const dir = resolve(process.env.FOGLINE_MODELS_DIR ?? "models");

const models = await loadModels(dir, Number(process.env.FOGLINE_ORT_THREADS ?? 1));
const server = serve({ fetch: createCloudApp({ models, secret }).fetch, port, hostname }, (info) => {
  // the test harness and scripts/start.mjs read this line (port 0 picks a free port)
  console.log(`fogline cloud listening on http://${hostname}:${info.port} (models: ${[...models.keys()].join(", ")})`);
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
