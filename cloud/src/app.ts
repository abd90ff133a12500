import { Hono } from "hono";
import { DEFAULT_MAX_SKEW_S } from "@fogline/shared/hmac";
import { metricsHandler, notFound, observe, onError, requestId } from "@fogline/shared/http";
import { createLogger } from "@fogline/shared/log";
import { Registry } from "@fogline/shared/metrics";
import { ReplayGuard } from "./replay.js";
import { summarize } from "@fogline/shared/schemas/manifest";
import type { HealthResponse, ModelsResponse } from "@fogline/shared/schemas/models";
import { DEFAULT_MAX_BATCH, DEFAULT_REPLAY_CACHE_SIZE } from "./config.js";
import type { CloudEnv, CloudOptions, CloudState } from "./env.js";
import { cloudMetrics } from "./metrics.js";
import { tail } from "./routes/tail.js";

export type CloudAppOptions = Pick<CloudOptions, "models" | "secret"> & Partial<CloudOptions> & { registry?: Registry };

/**
 * The cloud half. Stateless apart from this instance's replay cache and metrics, so any number
 * of these can sit behind a load balancer (see docs/reliability.md for what per-instance means).
 */
export function createCloudApp(options: CloudAppOptions): Hono<CloudEnv> {
  const { registry = new Registry(), ...rest } = options;
  const opts: CloudOptions = {
    maxSkewS: DEFAULT_MAX_SKEW_S,
    maxBatch: DEFAULT_MAX_BATCH,
    replayCacheSize: DEFAULT_REPLAY_CACHE_SIZE,
    logLevel: "info",
    now: Date.now,
    ...rest,
  };
  const replay = new ReplayGuard(opts.maxSkewS, opts.replayCacheSize);
  const cloud: CloudState = { ...opts, replay, metrics: cloudMetrics(registry, replay), logger: createLogger("cloud", opts.logLevel) };
  const logger = () => cloud.logger;

  const app = new Hono<CloudEnv>();
  app.use(requestId());
  app.use(observe(cloud.metrics.http, logger));
  app.use(async (c, next) => {
    c.set("cloud", cloud);
    await next();
  });
  app.get("/healthz", (c) => {
    const body: HealthResponse = {
      status: "ok",
      role: "cloud",
      models: [...cloud.models.values()].map(({ manifest: m }) => ({ name: m.name, version: m.version, fingerprint: m.fingerprint })),
    };
    return c.json(body);
  });
  app.get("/v1/models", (c) => {
    const body: ModelsResponse = { models: [...cloud.models.values()].map((m) => summarize(m.manifest)) };
    return c.json(body);
  });
  app.get("/metrics", metricsHandler(registry, () => cloud.metricsToken));
  app.route("/", tail);
  app.notFound(notFound);
  app.onError(onError("cloud", logger));
  return app;
}
