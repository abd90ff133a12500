/**
 * Open Inference Protocol (KServe v2) on the edge: health, server and model metadata, readiness
 * and infer, with and without a `/versions/{version}` segment. Inference goes through the same
 * pipeline as `POST /v1/classify`; a batch exits per sample, and the samples that stay go to the
 * cloud together. Also Triton's binary tensor data extension on infer (tritonclient's default),
 * and the Triton endpoints its client calls: model config, statistics, repository index.
 * Errors are the protocol's `{"error": "<message>"}` with Fogline's `code` beside it
 * (shared/src/http.ts renders every `/v2` error so); a wrong method is 405 with `Allow`.
 */
import { Hono, type Context } from "hono";
import { cors } from "hono/cors";
import pkg from "../../../package.json";
import { ApiError } from "@fogline/shared/errors";
import {
  binaryOutputs,
  binaryResponse,
  bindBinaryInputs,
  checkRequestedOutputs,
  decodeInput,
  INFERENCE_HEADER,
  inferBodyLimits,
  inferResponse,
  JsonBudget,
  jsonPrefix,
  modelConfig,
  modelMetadata,
  parseHeaderLength,
} from "../oip/protocol.js";
import {
  OipInferRequest,
  type OipLive,
  type OipModelReady,
  type OipReady,
  type OipServerMetadata,
  type TritonRepositoryIndex,
  type TritonStatistics,
} from "../schemas/oip.js";
import { readLimited } from "@fogline/shared/body";
import * as z from "zod";
import { cloudRateLimit } from "../cloud/rate-limit.js";
import { cloudProblems } from "../cloud/readiness.js";
import { edgeConfig, type AppEnv } from "../env.js";
import { MAX_BATCH, runPipeline } from "../infer/pipeline.js";
import { servingRunner } from "../infer/session.js";
import { allModels, getModel, type EdgeModel } from "../models/registry.js";

export const oip = new Hono<AppEnv>();

/** What a browser on another origin may call: no credentials, so any origin. */
oip.use(
  "/v2/*",
  cors({
    origin: "*",
    allowMethods: ["GET", "HEAD", "POST", "OPTIONS"],
    allowHeaders: ["content-type", INFERENCE_HEADER, "x-request-id"],
    exposeHeaders: [INFERENCE_HEADER, "x-request-id", "server-timing"],
    maxAge: 86400,
  }),
);
oip.use("/v2", cors({ origin: "*", allowMethods: ["GET", "HEAD", "OPTIONS"] }));

const OIP_EXTENSIONS = ["classification", "binary_tensor_data", "model_configuration", "statistics"];

oip.get("/v2", (c) => c.json({ name: "fogline", version: pkg.version, extensions: OIP_EXTENSIONS } satisfies OipServerMetadata));

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

/** Per model, this isolate's infer counters (Triton's statistics extension); isolates do not share them. */
interface Counters {
  last: number;
  samples: number;
  requests: number;
  success: { count: number; ns: number };
  fail: { count: number; ns: number };
}
const counters = new Map<string, Counters>();
function countersOf(name: string): Counters {
  let k = counters.get(name);
  if (!k) counters.set(name, (k = { last: 0, samples: 0, requests: 0, success: { count: 0, ns: 0 }, fail: { count: 0, ns: 0 } }));
  return k;
}

function statistics(models: EdgeModel[]): TritonStatistics {
  const zero = { count: 0, ns: 0 };
  return {
    model_stats: models.map(({ manifest }) => {
      const k = countersOf(manifest.name);
      return {
        name: manifest.name,
        version: manifest.version,
        last_inference: k.last,
        inference_count: k.samples,
        execution_count: k.requests,
        inference_stats: { success: { ...k.success }, fail: { ...k.fail }, queue: zero, compute_input: zero, compute_infer: zero, compute_output: zero, cache_hit: zero, cache_miss: zero },
        batch_stats: [],
        memory_usage: [],
      };
    }),
  };
}

oip.get("/v2/models/stats", (c) => c.json(statistics([...allModels().values()])));

oip.post("/v2/repository/index", (c) =>
  c.json([...allModels().values()].map(({ manifest }) => ({ name: manifest.name, version: manifest.version, state: "READY" as const })) satisfies TritonRepositoryIndex),
);

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

  oip.get(`${base}/config`, (c) => c.json(modelConfig(pathModel(c).manifest, MAX_BATCH)));

  oip.get(`${base}/stats`, (c) => c.json(statistics([pathModel(c)])));

  oip.post(`${base}/infer`, async (c) => {
    const t0 = Date.now();
    const model = pathModel(c);
    const k = countersOf(model.manifest.name);
    try {
      const res = await infer(c, model, t0);
      k.success.count++;
      k.success.ns += (Date.now() - t0) * 1e6;
      return res;
    } catch (e) {
      k.fail.count++;
      k.fail.ns += (Date.now() - t0) * 1e6;
      throw e;
    } finally {
      k.last = Date.now();
    }
  });
}

async function infer(c: Context<AppEnv>, model: EdgeModel, t0: number): Promise<Response> {
  const cfg = edgeConfig(c.env);
  const { manifest } = model;

  // The body's budget comes from the largest legal request (workers/src/oip/protocol.ts inferBodyLimits),
  // counted while it streams: an oversized or over-nested body is refused before JSON.parse. With
  // the binary tensor data extension only the JSON header (Inference-Header-Content-Length) is
  // JSON; the whole body still stays within MAX_BODY_BYTES.
  const limits = inferBodyLimits(manifest.input, MAX_BATCH, cfg.maxBodyBytes);
  const declared = Number(c.req.header("content-length") ?? "");
  if (Number.isFinite(declared) && declared > limits.maxBytes) {
    throw new ApiError("payload_too_large", `the body is ${declared} bytes, more than the ${limits.maxBytes} allowed`);
  }
  const headerLength = parseHeaderLength(c.req.header(INFERENCE_HEADER), limits.maxBytes);
  const raw = await readLimited(c.req.raw.body, limits.maxBytes, jsonPrefix(new JsonBudget(limits), headerLength));
  if (headerLength !== undefined && headerLength > raw.length) {
    throw new ApiError("invalid_input", `Inference-Header-Content-Length is ${headerLength}, the body only ${raw.length} bytes`);
  }
  const text = new TextDecoder().decode(headerLength === undefined ? raw : raw.subarray(0, headerLength));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiError(
      "invalid_input",
      headerLength === undefined
        ? "the body is not JSON (for the binary tensor data extension, send the JSON header's size as Inference-Header-Content-Length)"
        : "the JSON header (the first Inference-Header-Content-Length bytes) is not JSON",
    );
  }
  const parsed = OipInferRequest.safeParse(json);
  if (!parsed.success) throw new ApiError("invalid_input", z.prettifyError(parsed.error).replace(/\n/g, "; "));
  const req = parsed.data;
  checkRequestedOutputs(req);
  const binary = bindBinaryInputs(req, headerLength === undefined ? undefined : raw.subarray(headerLength));

  const input = decodeInput(req.inputs[0]!, manifest.input, { maxBatch: MAX_BATCH, maxPixels: cfg.maxPixels, maxDecodeBytes: cfg.maxDecodeBytes }, binary[0]);
  const threshold = req.parameters?.threshold ?? manifest.exit.threshold;
  const mode = req.parameters?.exit ?? "auto";
  const r = await runPipeline({ model, input, threshold, mode, cfg, requestId: c.get("requestId"), engine: req.parameters?.engine ?? "auto", rateLimit: cloudRateLimit(c) });
  const body = inferResponse(manifest, req, { samples: r.samples, threshold, mode, degraded: r.degraded, degradedReason: r.degradedReason, engine: r.engine });
  countersOf(manifest.name).samples += r.samples.length;
  countersOf(manifest.name).requests++;
  c.header("server-timing", [`edge;dur=${r.edgeMs}`, ...(r.cloudMs !== undefined ? [`cloud;dur=${r.cloudMs}`] : []), `total;dur=${Date.now() - t0}`].join(", "));
  const bin = binaryResponse(body, binaryOutputs(req));
  if (!bin) return c.json(body);
  return c.body(bin.body, 200, { "content-type": "application/octet-stream", [INFERENCE_HEADER]: String(bin.headerLength) });
}

/**
 * 405 with `Allow` for a method a `/v2` route does not serve (registered after the routes: hono
 * runs the first handler that matches, so these only answer what no route did). CORS preflights
 * (OPTIONS) are answered by the cors middleware before.
 */
const ALLOW: Record<string, string> = {};
for (const r of oip.routes) {
  if (r.method === "ALL") continue;
  const methods = r.method === "GET" ? ["GET", "HEAD"] : [r.method];
  ALLOW[r.path] = [...new Set([...(ALLOW[r.path]?.split(", ") ?? []), ...methods])].join(", ");
}
for (const [path, allow] of Object.entries(ALLOW)) {
  oip.all(path, (c) => {
    throw new ApiError("method_not_allowed", `${c.req.method} is not allowed on ${c.req.path}: ${allow}`, { allow: `${allow}, OPTIONS` });
  });
}
