/**
 * Starts the cloud half on Node: `tsx cloud/src/server.ts`. Configuration by environment
 * (cloud/src/config.ts; README "Configuration"):
 *   FOGLINE_HMAC_SECRET        required, the same key the edge signs with
 *   FOGLINE_CLOUD_PORT         default 8788 (PORT also honoured, for PaaS hosts)
 *   FOGLINE_CLOUD_HOST         default 127.0.0.1 (0.0.0.0 in a container)
 *   FOGLINE_MODELS_DIR         default models/
 *   FOGLINE_ORT_THREADS        onnxruntime intra-op threads, default 1
 *   FOGLINE_MAX_SKEW_S         signature window, default 60
 *   FOGLINE_REPLAY_CACHE_SIZE  signatures remembered against replays, default 100000
 *   FOGLINE_MAX_BATCH          largest batch per tail call, default 64
 *   FOGLINE_LOG_LEVEL          debug | info | warn | error | silent, default info
 *   FOGLINE_METRICS_TOKEN      when set, GET /metrics needs "Authorization: Bearer <token>"
 */
import { serve } from "@hono/node-server";
import { resolve } from "node:path";
import { createLogger } from "../../shared/src/log.js";
import { Registry } from "../../shared/src/metrics.js";
import { createCloudApp } from "./app.js";
import { cloudConfigFromEnv, type CloudConfig } from "./config.js";
import { loadModels } from "./models.js";

let config: CloudConfig;
try {
  config = cloudConfigFromEnv(process.env);
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
const { port, host, modelsDir, ortThreads, ...options } = config;
const logger = createLogger("cloud", config.logLevel);
const registry = new Registry();

let models;
try {
  models = await loadModels(resolve(modelsDir), ortThreads);
} catch (e) {
  console.error(`cannot load the models: ${(e as Error).message}`);
  process.exit(1);
}
const app = createCloudApp({ ...options, models, registry });
const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
  // the test harness and scripts/start.mjs read this line (port 0 picks a free port)
  console.log(`fogline cloud listening on http://${host}:${info.port} (models: ${[...models.keys()].join(", ")})`);
});
// Keep idle connections open longer than any client pool does (workerd's closes them after 5 s
// idle, as Node's server would by default): when both time out together, a request written into
// the closing socket fails with "Network connection lost" on the edge. The client closing first
// avoids that race; headersTimeout must exceed keepAliveTimeout (Node docs).
const http = server as unknown as { keepAliveTimeout: number; headersTimeout: number };
http.keepAliveTimeout = 65_000;
http.headersTimeout = 66_000;
server.once("error", (e) => {
  // e.g. the port is taken: nothing to serve, so stop rather than linger
  console.error(`cannot listen on ${host}:${port}: ${e.message}`);
  process.exit(1);
});

// A request's errors end in app.onError; anything that escapes a request must not take the
// process (and every other in-flight request) down with it: log it, count it, keep serving.
const escaped = registry.counter("fogline_uncaught_errors_total", "Errors that escaped every handler (logged; the process keeps serving).", ["kind"]);
process.on("unhandledRejection", (reason) => {
  escaped.inc({ kind: "unhandledRejection" });
  logger.log("error", "unhandled rejection", { error: String(reason), stack: (reason as Error)?.stack });
});
process.on("uncaughtException", (err) => {
  escaped.inc({ kind: "uncaughtException" });
  logger.log("error", "uncaught exception", { error: String(err), stack: err?.stack });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
