import { Hono } from "hono";
import { summarize } from "@fogline/shared/schemas/manifest";
import type { HealthResponse, ModelsResponse } from "@fogline/shared/schemas/models";
import { cloudProblems } from "../cloud/readiness.js";
import { edgeConfig, type AppEnv } from "../env.js";
import { servingRunner } from "../infer/session.js";
import { allModels } from "../models/registry.js";

export const models = new Hono<AppEnv>();

models.get("/v1/models", (c) => {
  const body: ModelsResponse = { models: [...allModels().values()].map((m) => summarize(m.manifest)) };
  return c.json(body);
});

/**
 * Ready when the bundled manifests parse, every model's serving engine loads (so the first call
 * warms the isolate: ORT start-up + session creation, ~0.5 s, or the packed engine's few ms,
 * happens here rather than in a classify), and the edge can call the cloud: a missing or weak
 * secret, a missing or unparseable CLOUD_URL, a cloud that refuses the edge's signature or serves
 * another export (remembered from the last call, else probed at most every 30 s:
 * workers/src/cloud/readiness.ts) is 503 `misconfigured` with the problems, although the edge
 * still answers what exits there (and degrades the rest).
 */
models.get("/healthz", async (c) => {
  const cfg = edgeConfig(c.env);
  const all = [...allModels().values()];
  await Promise.all(all.map((m) => servingRunner(m, cfg)));
  const problems = [...cfg.problems, ...(await cloudProblems(cfg, all, c.get("requestId")))];
  const body: HealthResponse = {
    status: problems.length ? "misconfigured" : "ok",
    role: "edge",
    models: all.map(({ manifest: m }) => ({ name: m.name, version: m.version, fingerprint: m.fingerprint })),
    ...(problems.length > 0 && { problems }),
  };
  return c.json(body, problems.length ? 503 : 200);
});
