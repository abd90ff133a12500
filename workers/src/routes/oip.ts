/**
 * Open Inference Protocol (KServe v2) on the edge: health, server and model metadata, readiness
 * and infer, with and without a `/versions/{version}` segment. Inference goes through the same
 * pipeline as `POST /v1/classify`; a batch exits per sample, and the samples that stay go to the
 * cloud together. Errors use Fogline's one envelope, `{error: {code, message}}`.
 */
import { Hono, type Context } from "hono";
import pkg from "../../../package.json";
import { ApiError } from "../../../shared/src/errors.js";
import { checkRequestedOutputs, decodeInput, inferBodyLimits, inferResponse, JsonBudget, modelMetadata } from "../../../shared/src/oip.js";
import {
  OipInferRequest,
  type OipLive,
  type OipModelReady,
  type OipReady,
  type OipServerMetadata,
} from "../../../shared/src/schemas/oip.js";
import { readLimited } from "../../../shared/src/upload.js";
import * as z from "zod";
import { cloudRateLimit } from "../cloud/rate-limit.js";
import { cloudProblems } from "../cloud/readiness.js";
import { edgeConfig, type AppEnv } from "../env.js";
import { MAX_BATCH, runPipeline } from "../infer/pipeline.js";
import { servingRunner } from "../infer/session.js";
import { allModels, getModel, type EdgeModel } from "../models/registry.js";

export const oip = new Hono<AppEnv>();

oip.get("/v2", (c) => c.json({ name: "fogline", version: pkg.version, extensions: ["classification"] } satisfies OipServerMetadata));

oip.get("/v2/health/live", (c) => c.json({ live: true } satisfies OipLive));

/**
 * Ready when every bundled model's serving engine loads, the edge can call the cloud (secret and
 * CLOUD_URL usable) and the cloud accepts its calls (no refused signature, same exports: probed at
 * most every 30 s, workers/src/cloud/readiness.ts); /healthz says the same. A cloud that is down
 * does not make it unready: auto requests degrade.
 */
oip.get("/v2/health/ready", async (c) => {
  try {
    const cfg = edgeConfig(c.env);
    await Promise.all([...allModels().values()].map((m) => servingRunner(m, cfg)));
    const problems = [...cfg.problems, ...(await cloudProblems(cfg, [...allModels().values()], c.get("requestId")))];
    if (problems.length) return c.json({ ready: false, problems } satisfies OipReady, 503);
    return c.json({ ready: true } satisfies OipReady);
  } catch (e) {
    console.error(JSON.stringify({ level: "error", msg: "not ready", error: String(e), requestId: c.get("requestId") }));
    return c.json({ ready: false } satisfies OipReady, 503);
  }
});

/** The model of the path; a `/versions/{v}` segment must name the version this Worker bundles. */
function pathModel(c: Context<AppEnv>): EdgeModel {
  const model = getModel(c.req.param("model") ?? "");
  const version = c.req.param("version");
  if (version !== undefined && version !== model.manifest.version) {
    throw new ApiError("model_not_found", `model "${model.manifest.name}" has no version "${version}" (served: ${model.manifest.version})`);
  }
  return model;
}

for (const base of ["/v2/models/:model", "/v2/models/:model/versions/:version"]) {
  oip.get(base, (c) => c.json(modelMetadata(pathModel(c).manifest)));

  oip.get(`${base}/ready`, async (c) => {
    const model = pathModel(c);
    await servingRunner(model, edgeConfig(c.env));
    return c.json({ name: model.manifest.name, ready: true } satisfies OipModelReady);
  });

  oip.post(`${base}/infer`, async (c) => {
    const t0 = Date.now();
    const cfg = edgeConfig(c.env);
    const model = pathModel(c);
    const { manifest } = model;

    // The body's budget comes from the largest legal request (shared/src/oip.ts inferBodyLimits),
    // counted while it streams: an oversized or over-nested body is refused before JSON.parse.
    const limits = inferBodyLimits(manifest.input, MAX_BATCH, cfg.maxBodyBytes);
    const declared = Number(c.req.header("content-length") ?? "");
    if (Number.isFinite(declared) && declared > limits.maxBytes) {
      throw new ApiError("payload_too_large", `the body is ${declared} bytes, more than the ${limits.maxBytes} allowed`);
    }
    const budget = new JsonBudget(limits);
    const text = new TextDecoder().decode(await readLimited(c.req.raw.body, limits.maxBytes, (chunk) => budget.push(chunk)));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ApiError("invalid_input", "the body is not JSON (the binary tensor extension is not supported)");
    }
    const parsed = OipInferRequest.safeParse(json);
    if (!parsed.success) throw new ApiError("invalid_input", z.prettifyError(parsed.error).replace(/\n/g, "; "));
    const req = parsed.data;
    checkRequestedOutputs(req);

    const input = decodeInput(req.inputs[0]!, manifest.input, { maxBatch: MAX_BATCH, maxPixels: cfg.maxPixels, maxDecodeBytes: cfg.maxDecodeBytes });
    const threshold = req.parameters?.threshold ?? manifest.exit.threshold;
    const mode = req.parameters?.exit ?? "auto";
    const r = await runPipeline({ model, input, threshold, mode, cfg, requestId: c.get("requestId"), engine: req.parameters?.engine ?? "auto", rateLimit: cloudRateLimit(c) });
    const body = inferResponse(manifest, req, { samples: r.samples, threshold, mode, degraded: r.degraded, degradedReason: r.degradedReason, engine: r.engine });
    c.header("server-timing", [`edge;dur=${r.edgeMs}`, ...(r.cloudMs !== undefined ? [`cloud;dur=${r.cloudMs}`] : []), `total;dur=${Date.now() - t0}`].join(", "));
    return c.json(body);
  });
}
