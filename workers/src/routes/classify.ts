import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { entropy, exitsAtEdge, topK } from "../../../shared/src/entropy.js";
import { ApiError } from "../../../shared/src/errors.js";
import { preprocessImage } from "../../../shared/src/preprocess.js";
import { runEdge } from "../../../shared/src/runner.js";
import { ClassifyQuery, type ClassifyResponse } from "../../../shared/src/schemas/classify.js";
import { readImageUpload } from "../../../shared/src/upload.js";
import { CloudError, callCloud } from "../cloud/client.js";
import { edgeConfig, type AppEnv } from "../env.js";
import { edgeRunner } from "../infer/session.js";
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
  const input = preprocessImage(bytes, manifest.input, { maxPixels: cfg.maxPixels });
  const t1 = Date.now();
  const runner = await edgeRunner(model);
  const { exitLogits, split } = await runEdge(runner, { data: input, dims: [1, 3, manifest.input.height, manifest.input.width] });
  const t2 = Date.now();

  const h = entropy(exitLogits.data);
  const threshold = q.threshold ?? manifest.exit.threshold;
  const toCloud = q.exit === "cloud" || (q.exit === "auto" && !exitsAtEdge(h, threshold));

  const answer = (
    logits: ArrayLike<number>,
    at: "edge" | "cloud",
    extra: Pick<ClassifyResponse, "degraded" | "degradedReason" | "wire"> & { cloudMs?: number },
  ): ClassifyResponse => {
    const top = topK(logits, manifest.labels, 5);
    const best = top[0]!;
    return {
      model: { name: manifest.name, version: manifest.version, fingerprint: manifest.fingerprint },
      label: best.label,
      classIndex: best.classIndex,
      score: best.score,
      top,
      exit: { at, entropy: h, threshold, mode: q.exit },
      degraded: extra.degraded,
      ...(extra.degradedReason !== undefined && { degradedReason: extra.degradedReason }),
      ...(extra.wire !== undefined && { wire: extra.wire }),
      timings: {
        decodeMs: t1 - t0,
        edgeMs: t2 - t1,
        ...(extra.cloudMs !== undefined && { cloudMs: extra.cloudMs }),
        totalMs: Date.now() - t0,
      },
    };
  };

  if (!toCloud) return c.json(answer(exitLogits.data, "edge", { degraded: false }));

  try {
    const cloud = await callCloud({
      cloudUrl: cfg.cloudUrl,
      secret: cfg.hmacSecret,
      manifest,
      split,
      precision: cfg.wirePrecision,
      timeoutMs: cfg.cloudTimeoutMs,
      requestId: c.get("requestId"),
    });
    return c.json(
      answer(cloud.logits, "cloud", { degraded: false, wire: { precision: cfg.wirePrecision, bytes: cloud.wireBytes }, cloudMs: cloud.ms }),
    );
  } catch (e) {
    if (!(e instanceof CloudError)) throw e;
    // A model mismatch is a broken deployment, not an outage: refuse loudly in every mode.
    if (e.reason === "model_mismatch") {
      throw new ApiError(
        "model_mismatch",
        `edge and cloud serve different versions of "${manifest.name}" (edge ${manifest.version}, fingerprint ${manifest.fingerprint.slice(0, 12)}…): ${e.message}`,
      );
    }
    if (q.exit === "cloud") throw new ApiError("cloud_unavailable", `exit=cloud, but ${e.message}`);
    console.warn(JSON.stringify({ level: "warn", msg: "degraded to the edge answer", reason: e.reason, detail: e.message, requestId: c.get("requestId") }));
    // exit=auto: the edge's own prediction beats an error (issue 6)
    return c.json(answer(exitLogits.data, "edge", { degraded: true, degradedReason: `${e.reason}: ${e.message}` }));
  }
});
