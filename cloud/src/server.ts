/**
 * Starts the cloud half on Node: `tsx cloud/src/server.ts`. Configuration by environment
 * (cloud/src/config.ts; docs/configuration.md#cloud):
 *   FOGLINE_HMAC_SECRET        required, the same key the edge signs with: 64+ hex characters
 *                              or 43+ random ones (shared/src/secret.ts); placeholders refused
 *   FOGLINE_CLOUD_PORT         default 8788 (PORT also honoured, for PaaS hosts)
 *   FOGLINE_CLOUD_HOST         default 127.0.0.1 (0.0.0.0 in a container)
 *   FOGLINE_MODELS_DIR         default models/
 *   FOGLINE_ORT_THREADS        onnxruntime intra-op threads, default 1
 *   FOGLINE_MAX_SKEW_S         signature window, default 60
 *   FOGLINE_REPLAY_CACHE_SIZE  signatures remembered against replays, default 100000
 *   FOGLINE_MAX_BATCH          largest batch per tail call, default and maximum: shared/contracts.json maxBatch
 *   FOGLINE_LOG_LEVEL          debug | info | warn | error | silent, default info
 *   FOGLINE_METRICS_TOKEN      when set, GET /metrics needs "Authorization: Bearer <token>"
 *   FOGLINE_HEADERS_TIMEOUT_MS a request's headers must arrive within this, default 5000
 *   FOGLINE_REQUEST_TIMEOUT_MS its headers and body within this, default 10000
 *   FOGLINE_KEEP_ALIVE_TIMEOUT_MS  an idle kept-alive connection is closed after this, default 65000
 *   FOGLINE_MAX_CONNECTIONS    open connections at most; more are dropped at accept, default 256
 *
 * An exception or rejection that escapes every handler is logged and the process exits with 1:
 * its state is unknown, and the supervisor (systemd Restart=on-failure, a container restart
 * policy) starts a clean one (docs/deploy.md).
 */
import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import { resolve } from "node:path";
import { createLogger } from "@fogline/shared/log";
import { Registry } from "@fogline/shared/metrics";
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
const { port, host, modelsDir, ortThreads, headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, maxConnections, ...options } = config;
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
const server = serve(
  {
    fetch: app.fetch,
    port,
    hostname: host,
    // read by http.createServer only: Node checks both timeouts every connectionsCheckingInterval
    // (30 s by default, far coarser than the timeouts themselves)
    serverOptions: {
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
    },
  },
  (info) => {
    // the test harness and scripts/start.ts read this line (port 0 picks a free port)
    console.log(`fogline cloud listening on http://${host}:${info.port} (models: ${[...models.keys()].join(", ")})`);
  },
) as Server;
// headersTimeout runs from a request's first byte to the end of its headers (a new connection that
// sends nothing gets a 408 after it too), requestTimeout to the end of its body; neither counts the
// time the handler then takes. An idle kept-alive connection is governed by keepAliveTimeout
// alone, kept longer than any client pool's (workerd's closes idle ones after 5 s; a load balancer's
// idle timeout is set by its operator): when both sides time out together, a request written into the closing
// socket fails with "Network connection lost" on the edge, so the client must close first.
server.keepAliveTimeout = keepAliveTimeoutMs;
// beyond it, Node closes a new connection at accept ("drop" event)
server.maxConnections = maxConnections;
let drops = 0;
server.on("drop", () => {
  // at most one line per second of drops: an attacker at the cap must not flood the log too
  if (drops++ === 0) {
    setTimeout(() => {
      logger.log("warn", "connections dropped: FOGLINE_MAX_CONNECTIONS reached", { dropped: drops, maxConnections });
      drops = 0;
    }, 1000).unref();
  }
});
server.once("error", (e) => {
  // e.g. the port is taken: nothing to serve, so stop rather than linger
  console.error(`cannot listen on ${host}:${port}: ${e.message}`);
  process.exit(1);
});

// A request's errors end in app.onError. Anything that escapes every handler leaves the process
// in an unknown state (a half-run session, a leaked stream): log it and exit non-zero, so the
// supervisor restarts a clean process, rather than serve on in a state no test has seen.
// Logged at any FOGLINE_LOG_LEVEL, silent included: the reason for a restart must not be lost.
const fatal = createLogger("cloud", "error");
function die(kind: "uncaughtException" | "unhandledRejection", err: unknown): never {
  fatal.log("error", `${kind === "uncaughtException" ? "uncaught exception" : "unhandled rejection"}; exiting`, {
    kind,
    error: String(err),
    stack: (err as Error)?.stack,
  });
  process.exit(1);
}
process.on("unhandledRejection", (reason) => die("unhandledRejection", reason));
process.on("uncaughtException", (err) => die("uncaughtException", err));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
