import { Hono } from "hono";
import { summarize } from "../../../shared/src/schemas/manifest.js";
import type { HealthResponse, ModelsResponse } from "../../../shared/src/schemas/models.js";
import type { AppEnv } from "../env.js";
import { allModels } from "../models/registry.js";

export const models = new Hono<AppEnv>();

models.get("/v1/models", (c) => {
  const body: ModelsResponse = { models: [...allModels().values()].map((m) => summarize(m.manifest)) };
  return c.json(body);
});

/** Ready when the bundled manifests parse; ORT sessions are created on the first classify. */
models.get("/healthz", (c) => {
  const body: HealthResponse = {
    status: "ok",
    role: "edge",
    models: [...allModels().values()].map(({ manifest: m }) => ({ name: m.name, version: m.version, fingerprint: m.fingerprint })),
  };
  return c.json(body);
});
