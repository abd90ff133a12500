/**
 * The one inference pipeline every edge route uses (`POST /v1/classify`, the Open Inference
 * Protocol's `POST /v2/models/{model}/infer`): a normalised batch `[N,3,H,W]` runs through the
 * edge graph; each sample exits at the edge when its exit entropy is under the threshold (paper;
 * BranchyNet rule), and the others go to the cloud tail together, as one `[M,c,h,w]` activation.
 *
 * Cloud failures are decided here once for every route: exit=auto degrades to the edge's own
 * answer, exit=cloud is a 503, and a model mismatch (another export in the cloud) is a 409. So is
 * the per-client limit on cloud-bound samples (workers/src/cloud/rate-limit.ts): once a client's
 * budget is spent, exit=auto degrades (`rate_limited`) and exit=cloud is a 429.
 */
import { MAX_BATCH as CONTRACT_MAX_BATCH } from "@fogline/shared/contracts";
import { entropy, exitsAtEdge } from "./entropy.js";
import { ApiError } from "@fogline/shared/errors";
import { runEdge, type Tensor } from "@fogline/shared/runner";
import type { DegradedReason, EngineChoice, EngineName, ExitMode } from "../schemas/classify.js";
import type { WirePrecision } from "@fogline/shared/schemas/tail";
import { CloudError, callCloud, publicReason } from "../cloud/client.js";
import { admit, type CloudRateLimit } from "../cloud/rate-limit.js";
import { noteCloudAnswer } from "../cloud/readiness.js";
import type { EdgeConfig } from "../env.js";
import type { EdgeModel } from "../models/registry.js";
import { edgeLogger, metrics } from "../observability.js";
import { oodVerdict, type OodVerdict } from "./ood.js";
import { selectRunner } from "./session.js";

/**
 * Largest batch one request may carry: shared/contracts.json's `batch.maxBatch`, the cloud tail's
 * default `maxBatch` too. A cloud set lower (FOGLINE_MAX_BATCH) refuses larger tail calls with
 * `batch_too_large`, which this pipeline passes on to the client in every mode (never a degrade).
 */
export const MAX_BATCH: number = CONTRACT_MAX_BATCH;

export interface PipelineRequest {
  model: EdgeModel;
  /** normalised NCHW float32, `[N, 3, height, width]` of the manifest */
  input: Tensor;
  threshold: number;
  mode: ExitMode;
  cfg: EdgeConfig;
  requestId: string;
  /** the request's `engine` choice (default auto: EDGE_ENGINE decides) */
  engine?: EngineChoice;
  /** the client's limit on cloud-bound samples (`cloudRateLimit(c)`); none without the binding */
  rateLimit?: CloudRateLimit;
}

export interface SampleAnswer {
  at: "edge" | "cloud";
  /** natural-log softmax entropy of the exit head */
  entropy: number;
  /** logits of the head that answered (`C` values) */
  logits: Float32Array;
  /** out-of-distribution flag of the head that answered (./ood.ts); set by runPipeline */
  ood?: OodVerdict;
}

export interface PipelineResult {
  samples: SampleAnswer[];
  /** the cloud was needed but could not answer; the affected samples carry the edge's answer */
  degraded: boolean;
  degradedReason?: DegradedReason;
  /** what went over the wire, when the cloud was called */
  wire?: { precision: WirePrecision; bytes: number };
  /** the engine that ran the edge graph */
  engine: EngineName;
  edgeMs: number;
  cloudMs?: number;
}

function rows(t: Tensor, index: readonly number[]): Tensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  if (index.length === t.dims[0]) return t;
  const data = new Float32Array(index.length * per);
  index.forEach((r, i) => data.set(t.data.subarray(r * per, (r + 1) * per), i * per));
  return { data, dims: [index.length, ...t.dims.slice(1)] };
}

const row = (t: Tensor, r: number): Float32Array => {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return t.data.slice(r * per, (r + 1) * per);
};

export async function runPipeline(req: PipelineRequest): Promise<PipelineResult> {
  const r = await decide(req);
  const { manifest } = req.model;
  for (const s of r.samples) {
    metrics.exits.inc({ model: manifest.name, at: s.at });
    // the exit rule chose this head unless the client forced one or the cloud could not answer
    const routed = req.mode === "auto" && !(r.degraded && s.at === "edge" && !exitsAtEdge(s.entropy, req.threshold));
    const ood = oodVerdict(manifest, s.at, s.logits, routed);
    if (ood) {
      s.ood = ood;
      if (ood.flagged) metrics.oodFlagged.inc({ model: manifest.name, at: s.at });
    }
  }
  return r;
}

async function decide(req: PipelineRequest): Promise<PipelineResult> {
  const { model, input, threshold, mode, cfg } = req;
  const { manifest } = model;
  const n = input.dims[0] ?? 0;
  if (n < 1 || n > MAX_BATCH) throw new ApiError("invalid_input", `batch size ${n} is not in 1..${MAX_BATCH}`);

  const t0 = Date.now();
  const { runner, engine } = await selectRunner(model, req.engine ?? "auto", cfg.edgeEngine, cfg.logLevel);
  const { exitLogits, split } = await runEdge(runner, input);
  const edgeMs = Date.now() - t0;
  metrics.inference.observe({ model: manifest.name, stage: "edge" }, edgeMs / 1000);

  const samples: SampleAnswer[] = [];
  const toCloud: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits = row(exitLogits, i);
    const h = entropy(logits);
    samples.push({ at: "edge", entropy: h, logits });
    if (mode === "cloud" || (mode === "auto" && !exitsAtEdge(h, threshold))) toCloud.push(i);
  }
  if (toCloud.length === 0) return { samples, degraded: false, engine, edgeMs };

  // Only work that would reach the cloud is counted: an edge that cannot call it spends nothing.
  if (req.rateLimit && cfg.cloudUrl && cfg.hmacSecret) {
    const verdict = await admit(req.rateLimit, toCloud.length);
    const log = edgeLogger(cfg.logLevel);
    if ("error" in verdict) log.log("warn", "rate limiter failed; admitted", { requestId: req.requestId, error: verdict.error });
    if (!verdict.admitted) {
      metrics.rateLimited.inc({ model: manifest.name, mode });
      // info, not warn: a client over its budget is the limit working, and floods would bury the log
      log.log("info", "cloud-bound samples over the client's limit", { requestId: req.requestId, samples: toCloud.length, mode });
      if (mode === "cloud") {
        const retry = cfg.cloudRateLimitPeriodS;
        throw new ApiError(
          "rate_limited",
          `exit=cloud, but this client's budget of cloud-bound samples is spent: retry after ${retry} s, or use exit=auto or exit=edge`,
          { "retry-after": String(retry) },
        );
      }
      metrics.degraded.inc({ model: manifest.name, reason: "rate_limited" });
      return { samples, degraded: true, degradedReason: "rate_limited", engine, edgeMs };
    }
  }

  try {
    const cloud = await callCloud({
      cloudUrl: cfg.cloudUrl,
      secret: cfg.hmacSecret,
      manifest,
      split: rows(split, toCloud),
      precision: cfg.wirePrecision,
      timeoutMs: cfg.cloudTimeoutMs,
      requestId: req.requestId,
    });
    noteCloudAnswer(cfg, manifest.name, "ok");
    const classes = manifest.labels.length;
    toCloud.forEach((r, i) => {
      samples[r] = { at: "cloud", entropy: samples[r]!.entropy, logits: cloud.logits.slice(i * classes, (i + 1) * classes) };
    });
    return { samples, degraded: false, wire: { precision: cfg.wirePrecision, bytes: cloud.wireBytes }, engine, edgeMs, cloudMs: cloud.ms };
  } catch (e) {
    if (!(e instanceof CloudError)) throw e;
    // readiness remembers a refused signature or another export (workers/src/cloud/readiness.ts)
    noteCloudAnswer(cfg, manifest.name, e.reason, e.message);
    // A model mismatch is a broken deployment, not an outage: refuse loudly in every mode.
    if (e.reason === "model_mismatch") {
      throw new ApiError(
        "model_mismatch",
        `edge and cloud serve different versions of "${manifest.name}" (edge ${manifest.version}, fingerprint ${manifest.fingerprint.slice(0, 12)}…): ${e.message}`,
      );
    }
    // A cloud that takes fewer samples per call than this request sent it (FOGLINE_MAX_BATCH set
    // below the contract's maxBatch) is a deployment limit, not an outage: say so in every mode.
    // The cloud's own message (its limit and setting name) goes to the log only, as below.
    if (e.reason === "batch_too_large") {
      edgeLogger(cfg.logLevel).log("warn", "the cloud takes fewer samples per call than this request sent it", {
        requestId: req.requestId,
        samples: toCloud.length,
        detail: e.message,
      });
      throw new ApiError(
        "batch_too_large",
        `${toCloud.length} samples of this request needed the cloud, more than it takes in one call: send smaller batches, or use exit=edge`,
      );
    }
    // The client gets a fixed code; the detail (addresses, the cloud's own messages, setting
    // names) goes to the log only, under the request id.
    const reason = publicReason(e.reason);
    edgeLogger(cfg.logLevel).log("warn", mode === "cloud" ? "cloud unavailable for exit=cloud" : "degraded to the edge answer", {
      requestId: req.requestId,
      reason,
      failure: e.reason,
      detail: e.message,
    });
    if (mode === "cloud") throw new ApiError("cloud_unavailable", `exit=cloud, but the cloud could not answer (${reason})`);
    metrics.degraded.inc({ model: manifest.name, reason: e.reason });
    // exit=auto: the edge's own prediction beats an error (issue 6)
    return { samples, degraded: true, degradedReason: reason, engine, edgeMs };
  }
}
