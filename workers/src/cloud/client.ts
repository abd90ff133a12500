/**
 * The edge->cloud hop: encode the split activation (shared wire format), sign it (HMAC), POST it
 * to `{CLOUD_URL}/v1/tail/{model}` with a timeout, and validate the answer. Any failure becomes a
 * CloudError with a short reason and a detailed message (for the log only: clients see the fixed
 * code of publicReason); the pipeline decides whether that degrades or fails.
 */
import type { Tensor } from "@fogline/shared/runner";
import type { DegradedReason } from "../schemas/classify.js";
import { TailResponse, type WirePrecision } from "@fogline/shared/schemas/tail";
import type { Manifest } from "@fogline/shared/schemas/manifest";
import { ErrorResponse } from "@fogline/shared/errors";
import { signedTailRequest, tailUrl } from "./tail-request.js";
import { encodeActivation } from "@fogline/shared/wire";
import { metrics } from "../observability.js";

export type CloudFailure =
  | "not_configured"
  | "timeout"
  | "unreachable"
  | "unauthorized"
  | "model_mismatch"
  | "batch_too_large"
  | "rejected"
  | "server_error"
  | "bad_response";

/** What a client is told (`degradedReason`, OIP `degraded_reason`): a fixed code, no internals. */
export function publicReason(reason: CloudFailure): DegradedReason {
  switch (reason) {
    case "not_configured":
      return "cloud_not_configured";
    case "timeout":
      return "cloud_timeout";
    case "unreachable":
      return "cloud_unreachable";
    case "unauthorized":
      return "cloud_refused";
    default:
      return "cloud_error";
  }
}

export class CloudError extends Error {
  override name = "CloudError";
  constructor(
    readonly reason: CloudFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface CloudCall {
  cloudUrl: string | undefined;
  secret: string | undefined;
  manifest: Manifest;
  split: Tensor;
  precision: WirePrecision;
  timeoutMs: number;
  requestId: string;
}

export interface CloudAnswer {
  /** row-major `[N, C]`, N the split's batch */
  logits: Float32Array;
  wireBytes: number;
  ms: number;
}

export async function callCloud(call: CloudCall): Promise<CloudAnswer> {
  const model = call.manifest.name;
  const started = Date.now();
  try {
    const answer = await callOnce(call, started);
    metrics.cloudCalls.inc({ model, outcome: "ok" });
    return answer;
  } catch (e) {
    metrics.cloudCalls.inc({ model, outcome: e instanceof CloudError ? e.reason : "error" });
    throw e;
  } finally {
    // a timer that only advances on I/O is exact here: this whole span is I/O
    metrics.cloudLatency.observe({ model }, (Date.now() - started) / 1000);
  }
}

/**
 * A readiness probe (workers/src/cloud/readiness.ts): the same signed call with a zero activation
 * of one sample, counted in `fogline_cloud_probes_total` rather than with the traffic.
 */
export async function probeCloud(call: Omit<CloudCall, "split">): Promise<CloudAnswer> {
  const { manifest } = call;
  const split: Tensor = { data: new Float32Array(manifest.split.shape.reduce((a, b) => a * b, 1)), dims: [1, ...manifest.split.shape] };
  try {
    const answer = await callOnce({ ...call, split }, Date.now());
    metrics.cloudProbes.inc({ model: manifest.name, outcome: "ok" });
    return answer;
  } catch (e) {
    metrics.cloudProbes.inc({ model: manifest.name, outcome: e instanceof CloudError ? e.reason : "error" });
    throw e;
  }
}

async function callOnce(call: CloudCall, started: number): Promise<CloudAnswer> {
  const { manifest } = call;
  if (!call.cloudUrl) throw new CloudError("not_configured", "CLOUD_URL is not set");
  if (!call.secret) throw new CloudError("not_configured", "FOGLINE_HMAC_SECRET is not set");
  const body = encodeActivation(call.split.data, call.split.dims, manifest.fingerprint, call.precision);
  // One deadline for the whole call, retry included: a request never waits longer than the
  // timeout. A cleared timer rather than AbortSignal.timeout, whose timer outlives the call.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new DOMException("edge->cloud timeout", "TimeoutError")), call.timeoutMs);
  try {
    return await attempt(call, started, body, deadline.signal);
  } finally {
    clearTimeout(timer);
  }
}

async function attempt(call: CloudCall, started: number, body: Uint8Array, deadline: AbortSignal): Promise<CloudAnswer> {
  const { manifest } = call;
  const secret = call.secret!;
  const url = tailUrl(call.cloudUrl!, manifest.name);
  // Signed per attempt: a retry carries a fresh nonce, so the cloud never mistakes it for a replay
  // of a first attempt that did arrive.
  const init = async (): Promise<RequestInit> => ({
    ...(await signedTailRequest({ secret, fingerprint: manifest.fingerprint, body, requestId: call.requestId })),
    signal: deadline,
  });

  let res: Response;
  try {
    res = await fetchWithOneRetry(url, init, () => metrics.cloudRetries.inc({ model: manifest.name }));
  } catch (e) {
    const err = e as Error;
    if (err.name === "TimeoutError" || err.name === "AbortError") {
      throw new CloudError("timeout", `the cloud did not answer within ${call.timeoutMs} ms`);
    }
    throw new CloudError("unreachable", `the cloud is unreachable: ${err.message}`);
  }

  if (!res.ok) {
    const text = await res.text().catch(() => "");
    let detail = `HTTP ${res.status}`;
    const parsed = ErrorResponse.safeParse(safeJson(text));
    if (parsed.success) detail = `${parsed.data.error.code}: ${parsed.data.error.message}`;
    if (res.status === 409) throw new CloudError("model_mismatch", detail);
    if (parsed.success && parsed.data.error.code === "batch_too_large") throw new CloudError("batch_too_large", detail);
    if (res.status === 401) throw new CloudError("unauthorized", `the cloud refused the signature (${detail})`);
    if (res.status >= 500) throw new CloudError("server_error", `the cloud failed (${detail})`);
    throw new CloudError("rejected", `the cloud rejected the call (${detail})`);
  }
  const text = await res.text().catch(() => {
    // headers arrived in time, the body did not
    if (deadline.aborted) throw new CloudError("timeout", `the cloud did not answer within ${call.timeoutMs} ms`);
    return "";
  });
  const parsed = TailResponse.safeParse(safeJson(text));
  if (!parsed.success) throw new CloudError("bad_response", "the cloud's answer is not a valid tail response");
  const classes = manifest.labels.length;
  const batch = call.split.dims[0] ?? 1;
  const [n, c] = parsed.data.shape;
  if (n !== batch || c !== classes || parsed.data.logits.length !== batch * classes) {
    throw new CloudError("bad_response", `the cloud returned ${n}x${c} logits, expected ${batch}x${classes}`);
  }
  return { logits: Float32Array.from(parsed.data.logits), wireBytes: body.length, ms: Date.now() - started };
}

/** One retry, for connection errors only (never after a timeout or an HTTP answer). */
async function fetchWithOneRetry(url: string, init: () => Promise<RequestInit>, onRetry: () => void): Promise<Response> {
  try {
    return await fetch(url, await init());
  } catch (e) {
    const name = (e as Error).name;
    if (name === "TimeoutError" || name === "AbortError") throw e;
    onRetry();
    return await fetch(url, await init());
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
