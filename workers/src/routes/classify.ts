import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { energyProfile, requestEnergy } from "../infer/energy.js";
import { topK } from "../infer/entropy.js";
import { preprocessImage } from "../image/preprocess.js";
import { ClassifyQuery, type ClassifyResponse } from "../schemas/classify.js";
import { logFields } from "@fogline/shared/http";
import { checkFiniteOutputs } from "../oip/protocol.js";
import { readImageUpload } from "../image/upload.js";
import { edgeConfig, type AppEnv } from "../env.js";
import { cloudRateLimit } from "../cloud/rate-limit.js";
import { runPipeline } from "../infer/pipeline.js";
import { getModel } from "../models/registry.js";
import { queryHook } from "./validation.js";

export const classify = new Hono<AppEnv>();

classify.post("/v1/classify", zValidator("query", ClassifyQuery, queryHook), async (c) => {
  const t0 = Date.now();
  const q = c.req.valid("query");
  const cfg = edgeConfig(c.env);
  const model = getModel(q.model);
  const { manifest } = model;

  const bytes = await readImageUpload(c.req.raw, cfg.maxBodyBytes);
  const input = preprocessImage(bytes, manifest.input, { maxPixels: cfg.maxPixels, maxDecodeBytes: cfg.maxDecodeBytes });
  const t1 = Date.now();
  const threshold = q.threshold ?? manifest.exit.threshold;
  const r = await runPipeline({
    model,
    input: { data: input, dims: [1, 3, manifest.input.height, manifest.input.width] },
    threshold,
    mode: q.exit,
    cfg,
    requestId: c.get("requestId"),
    engine: q.engine,
    rateLimit: cloudRateLimit(c),
  });
  // never a null in the answer: a non-finite exit or tail output is a 422 (workers/src/oip/protocol.ts)
  checkFiniteOutputs(r.samples);
  const { at, entropy, logits, ood } = r.samples[0]!;
  logFields(c, { model: manifest.name, exit: at, engine: r.engine, degraded: r.degraded });
  const top = topK(logits, manifest.labels, 5);
  const best = top[0]!;
  const body: ClassifyResponse = {
    model: { name: manifest.name, version: manifest.version, fingerprint: manifest.fingerprint },
    label: best.label,
    classIndex: best.classIndex,
    score: best.score,
    top,
    exit: { at, entropy, threshold, mode: q.exit },
    engine: r.engine,
    ...(ood !== undefined && { ood }),
    degraded: r.degraded,
    ...(r.degradedReason !== undefined && { degradedReason: r.degradedReason }),
    ...(r.wire !== undefined && { wire: r.wire }),
    energy: requestEnergy(energyProfile(manifest), at === "cloud"),
    timings: {
      decodeMs: t1 - t0,
      edgeMs: r.edgeMs,
      ...(r.cloudMs !== undefined && { cloudMs: r.cloudMs }),
      totalMs: Date.now() - t0,
    },
  };
  return c.json(body);
});
