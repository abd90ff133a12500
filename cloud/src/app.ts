import { Hono } from "hono";
import { DEFAULT_MAX_SKEW_S } from "../../shared/src/hmac.js";
import { notFound, onError, requestId } from "../../shared/src/http.js";
import { summarize } from "../../shared/src/schemas/manifest.js";
import type { HealthResponse, ModelsResponse } from "../../shared/src/schemas/models.js";
import type { CloudEnv, CloudOptions } from "./env.js";
import { tail } from "./routes/tail.js";

/** The cloud half: stateless, so any number of these can sit behind a load balancer. */
export function createCloudApp(options: Pick<CloudOptions, "models" | "secret"> & Partial<CloudOptions>): Hono<CloudEnv> {
  const cloud: CloudOptions = { maxSkewS: DEFAULT_MAX_SKEW_S, maxBatch: 64, now: Date.now, ...options };
  const app = new Hono<CloudEnv>();
  app.use(requestId());
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
  app.route("/", tail);
  app.notFound(notFound);
  app.onError(onError("cloud"));
  return app;
}
