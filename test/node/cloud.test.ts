import { beforeAll, describe, expect, it } from "vitest";
import { createCloudApp } from "../../cloud/src/app.js";
import { newNonce } from "@fogline/shared/hmac";
import { ErrorResponse } from "@fogline/shared/errors";
import { TAIL_CONTENT_TYPE, TAIL_HEADERS, TailResponse, type WirePrecision } from "@fogline/shared/schemas/tail";
import { encodeActivation } from "@fogline/shared/wire";
import { signedTailRequest } from "../../workers/src/cloud/tail-request.js";
import { loadModels } from "../../cloud/src/models.js";
import { OTHER_SECRET, TEST_SECRET } from "../cloud-server.js";
import { manifests, modelsDir } from "../models.generated.js";
import { argmax, DEFAULT_MODEL, maxAbsDiff, modelsWithVectors, vectorsFor } from "../shared/fixtures.js";
import type { CloudModel } from "../../cloud/src/models.js";

let models: Map<string, CloudModel>;
let app: ReturnType<typeof createCloudApp>;
const now = { ms: Date.now() };

beforeAll(async () => {
  models = await loadModels(modelsDir);
  app = createCloudApp({ models, secret: TEST_SECRET, now: () => now.ms, logLevel: "warn" });
});

const vectors = vectorsFor(DEFAULT_MODEL);
const withSplit = vectors.vectors.filter((v) => v.split);
const manifest = () => models.get(DEFAULT_MODEL)!.manifest;

interface TailOverrides {
  model?: string;
  body?: Uint8Array;
  precision?: WirePrecision;
  fingerprint?: string;
  signedFingerprint?: string;
  secret?: string;
  timestamp?: number;
  nonce?: string;
  headers?: Record<string, string | undefined>;
}

async function makeTailRequest(o: TailOverrides = {}): Promise<Response> {
  const m = manifest();
  const split = Float32Array.from(withSplit[0]!.split!);
  const fingerprint = o.fingerprint ?? m.fingerprint;
  const body = o.body ?? encodeActivation(split, [1, ...m.split.shape], fingerprint, o.precision ?? "fp32");
  const { headers } = await signedTailRequest({
    secret: o.secret ?? TEST_SECRET,
    fingerprint: o.signedFingerprint ?? fingerprint,
    body,
    timestampS: o.timestamp ?? Math.floor(now.ms / 1000),
    nonce: o.nonce,
  });
  for (const [k, v] of Object.entries(o.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  return app.request(`/v1/tail/${o.model ?? DEFAULT_MODEL}`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers });
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const body = ErrorResponse.parse(await res.json());
  expect(body.error.code).toBe(code);
  return body;
}

describe("GET /healthz", () => {
  it("answers 200 with the loaded models", async () => {
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; role: string; models: { name: string; fingerprint: string }[] };
    expect(body).toMatchObject({ status: "ok", role: "cloud" });
    // every shipped model, by name and fingerprint (the default one among them)
    const shipped = Object.values(manifests) as { name: string; fingerprint: string }[];
    const pairs = (ms: { name: string; fingerprint: string }[]) => ms.map((m) => `${m.name} ${m.fingerprint}`).sort();
    expect(pairs(body.models)).toEqual(pairs(shipped));
    expect(body.models.map((m) => m.name)).toContain(DEFAULT_MODEL);
  });
});

describe("POST /v1/tail/{model}", () => {
  it.each(modelsWithVectors())("returns the exported %s tail's logits for the test vectors (onnxruntime-node parity, 1e-3)", async (name) => {
    const m = models.get(name)!.manifest;
    const vs = vectorsFor(name).vectors.filter((v) => v.split);
    expect(vs.length).toBeGreaterThan(0);
    for (const v of vs) {
      const body = encodeActivation(Float32Array.from(v.split!), [1, ...m.split.shape], m.fingerprint, "fp32");
      const res = await makeTailRequest({ body, model: name, fingerprint: m.fingerprint });
      expect(res.status).toBe(200);
      const tail = TailResponse.parse(await res.json());
      expect(tail.shape).toEqual([1, m.labels.length]);
      expect(maxAbsDiff(tail.logits, v.logits)).toBeLessThan(1e-3);
      expect(argmax(tail.logits)).toBe(argmax(v.logits));
    }
  });

  it.each(["fp16", "int8"] as const)("accepts %s activations", async (precision) => {
    const res = await makeTailRequest({ precision });
    expect(res.status).toBe(200);
    const tail = TailResponse.parse(await res.json());
    const scale = Math.max(...withSplit[0]!.logits.map(Math.abs), 1);
    expect(maxAbsDiff(tail.logits, withSplit[0]!.logits)).toBeLessThan((precision === "fp16" ? 1e-2 : 0.1) * scale);
  });

  it("returns 409 when the edge's model fingerprint differs from the cloud's", async () => {
    const body = await expectError(await makeTailRequest({ fingerprint: "1".repeat(64) }), 409, "model_mismatch");
    expect(body.error.message).toContain(manifest().version);
  });

  it("returns 401 for forged, unsigned, stale and future calls", async () => {
    await expectError(await makeTailRequest({ secret: OTHER_SECRET }), 401, "unauthorized");
    await expectError(await makeTailRequest({ headers: { [TAIL_HEADERS.signature]: undefined } }), 401, "unauthorized");
    await expectError(await makeTailRequest({ headers: { [TAIL_HEADERS.signature]: "0".repeat(64) } }), 401, "unauthorized");
    await expectError(await makeTailRequest({ timestamp: Math.floor(now.ms / 1000) - 120 }), 401, "unauthorized");
    await expectError(await makeTailRequest({ timestamp: Math.floor(now.ms / 1000) + 120 }), 401, "unauthorized");
  });

  it("returns 401 when a signed call is replayed within the window, and accepts the same activation under a new nonce", async () => {
    const nonce = newNonce();
    expect((await makeTailRequest({ nonce })).status).toBe(200);
    const replay = await expectError(await makeTailRequest({ nonce }), 401, "unauthorized");
    expect(replay.error.message).toMatch(/replay/);
    // the same bytes, timestamp and signature arriving again later in the window: still a replay
    now.ms += 30_000;
    try {
      await expectError(await makeTailRequest({ nonce, timestamp: Math.floor((now.ms - 30_000) / 1000) }), 401, "unauthorized");
    } finally {
      now.ms -= 30_000;
    }
    expect((await makeTailRequest()).status).toBe(200);
  });

  it("returns 401 when a signed call is replayed after the window", async () => {
    const saved = now.ms;
    const req = await makeTailRequest(); // signed now
    expect(req.status).toBe(200);
    now.ms += 61_000;
    try {
      await expectError(await makeTailRequest({ timestamp: Math.floor(saved / 1000) }), 401, "unauthorized");
    } finally {
      now.ms = saved;
    }
  });

  it("returns 400 for a payload whose header disagrees with its size or the model's split shape", async () => {
    const m = manifest();
    const good = encodeActivation(new Float32Array(m.split.shape.reduce((a, b) => a * b, 1)), [1, ...m.split.shape], m.fingerprint, "fp32");
    await expectError(await makeTailRequest({ body: good.slice(0, good.length - 4) }), 400, "invalid_payload");
    const [c, h, w] = m.split.shape as [number, number, number];
    const wrongShape = encodeActivation(new Float32Array(c * h * w), [1, h, c, w], m.fingerprint, "fp32");
    if (c !== h) await expectError(await makeTailRequest({ body: wrongShape }), 400, "invalid_payload");
    const flat = encodeActivation(new Float32Array(c * h * w), [1, c * h * w], m.fingerprint, "fp32");
    await expectError(await makeTailRequest({ body: flat }), 400, "invalid_payload");
    await expectError(await makeTailRequest({ body: new TextEncoder().encode("definitely not a tensor") }), 400, "invalid_payload");
  });

  it("refuses a batch over its FOGLINE_MAX_BATCH with 413 batch_too_large, not a generic error", async () => {
    const m = manifest();
    const per = m.split.shape.reduce((a, b) => a * b, 1);
    const saved = app;
    app = createCloudApp({ models, secret: TEST_SECRET, maxBatch: 2, now: () => now.ms, logLevel: "silent" });
    try {
      // an fp32 batch over the lowered limit but within the contract's is read and refused by name
      const three = encodeActivation(new Float32Array(3 * per), [3, ...m.split.shape], m.fingerprint, "fp32");
      const res = await expectError(await makeTailRequest({ body: three }), 413, "batch_too_large");
      expect(res.error.message).toMatch(/FOGLINE_MAX_BATCH/);
      const two = encodeActivation(new Float32Array(2 * per), [2, ...m.split.shape], m.fingerprint, "fp32");
      expect((await makeTailRequest({ body: two })).status).toBe(200);
    } finally {
      app = saved;
    }
  });

  it("returns 400 when the signed fingerprint differs from the payload's", async () => {
    await expectError(await makeTailRequest({ signedFingerprint: "2".repeat(64) }), 400, "invalid_payload");
  });

  it("returns 413 for a body larger than any legal batch, before reading it", async () => {
    const big = new Uint8Array(70 * 4 * manifest().split.shape.reduce((a, b) => a * b, 1));
    await expectError(await makeTailRequest({ body: big }), 413, "payload_too_large");
  });

  it("returns 404 for an unknown model and an unknown route", async () => {
    await expectError(await makeTailRequest({ model: "no-such-model" }), 404, "model_not_found");
    await expectError(await app.request("/v1/nothing"), 404, "not_found");
  });
});

describe("GET /metrics", () => {
  it("exports requests by route and status, refused calls by reason, tail latency and process memory", async () => {
    await makeTailRequest();
    await makeTailRequest({ headers: { [TAIL_HEADERS.signature]: undefined } });
    await app.request("/v1/nothing");
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^fogline_http_requests_total\{route="\/v1\/tail\/:model",method="POST",status="200"\} \d+$/m);
    expect(text).toMatch(/^fogline_http_requests_total\{route="\/v1\/tail\/:model",method="POST",status="401"\} \d+$/m);
    expect(text).toMatch(/^fogline_http_requests_total\{route="unmatched",method="GET",status="404"\} \d+$/m);
    expect(text).toMatch(/^fogline_http_errors_total\{code="unauthorized"\} \d+$/m);
    expect(text).toMatch(/^fogline_auth_failures_total\{reason="missing"\} \d+$/m);
    expect(text).toMatch(new RegExp(`^fogline_inference_duration_seconds_count\\{model="${DEFAULT_MODEL}",stage="tail"\\} [1-9]\\d*$`, "m"));
    expect(text).toMatch(/^fogline_http_request_duration_seconds_bucket\{route="\/v1\/tail\/:model",le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^fogline_replay_cache_entries [1-9]\d*$/m);
    expect(text).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
  });

  it("needs the bearer token when FOGLINE_METRICS_TOKEN is set", async () => {
    const guarded = createCloudApp({ models, secret: TEST_SECRET, metricsToken: "scrape-me", logLevel: "silent" });
    await expectError(await guarded.request("/metrics"), 401, "unauthorized");
    await expectError(await guarded.request("/metrics", { headers: { authorization: "Bearer wrong" } }), 401, "unauthorized");
    expect((await guarded.request("/metrics", { headers: { authorization: "Bearer scrape-me" } })).status).toBe(200);
  });
});

describe("request ids", () => {
  it("reuses the edge's x-request-id and echoes it, also on errors", async () => {
    const ok = await makeTailRequest({ headers: { [TAIL_HEADERS.requestId]: "edge-req-123" } });
    expect(ok.headers.get(TAIL_HEADERS.requestId)).toBe("edge-req-123");
    const bad = await makeTailRequest({ headers: { [TAIL_HEADERS.requestId]: "edge-req-456", [TAIL_HEADERS.signature]: undefined } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get(TAIL_HEADERS.requestId)).toBe("edge-req-456");
  });

  it("makes a fresh one for a missing or unsafe id", async () => {
    const res = await makeTailRequest({ headers: { [TAIL_HEADERS.requestId]: "bad id\twith\tcontrol" } });
    expect(res.headers.get(TAIL_HEADERS.requestId)).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("limits", () => {
  it("answers 503 overloaded, not a forgotten signature, when the replay cache is full of live entries", async () => {
    const small = createCloudApp({ models, secret: TEST_SECRET, replayCacheSize: 2, now: () => now.ms, logLevel: "silent" });
    const call = async () => {
      const m = manifest();
      const body = encodeActivation(Float32Array.from(withSplit[0]!.split!), [1, ...m.split.shape], m.fingerprint, "int8");
      return small.request(`/v1/tail/${DEFAULT_MODEL}`, await signedTailRequest({ secret: TEST_SECRET, fingerprint: m.fingerprint, body, timestampS: Math.floor(now.ms / 1000) }));
    };
    expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(200);
    await expectError(await call(), 503, "overloaded");
  });

  it("answers 400 body_incomplete when the body of a well-signed-looking call breaks off mid-stream", async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(100));
      },
      pull(c) {
        c.error(new Error("connection reset"));
      },
    });
    // the headers pass every check made before the body is read; without them the answer is a 401
    const headers = {
      "content-type": TAIL_CONTENT_TYPE,
      [TAIL_HEADERS.fingerprint]: manifest().fingerprint,
      [TAIL_HEADERS.timestamp]: String(Math.floor(now.ms / 1000)),
      [TAIL_HEADERS.nonce]: newNonce(),
      [TAIL_HEADERS.signature]: "ab".repeat(32),
    };
    const req = new Request(`http://cloud/v1/tail/${DEFAULT_MODEL}`, { method: "POST", body, headers, duplex: "half" } as RequestInit);
    await expectError(await app.request(req), 400, "body_incomplete");
  });

  it("refuses an unsigned call with 401 without reading its body", async () => {
    let pulls = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        pulls++;
        c.enqueue(new Uint8Array(1024));
      },
    });
    const req = new Request(`http://cloud/v1/tail/${DEFAULT_MODEL}`, {
      method: "POST",
      body,
      headers: { "content-type": TAIL_CONTENT_TYPE },
      duplex: "half",
    } as RequestInit);
    await expectError(await app.request(req), 401, "unauthorized");
    // a ReadableStream pulls once to fill its queue (highWaterMark 1) before anyone reads
    expect(pulls).toBeLessThanOrEqual(1);
  });
});

describe("configuration from the environment", () => {
  it("has the documented defaults and refuses bad values", async () => {
    const { cloudConfigFromEnv } = await import("../../cloud/src/config.js");
    const c = cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET });
    expect(c).toMatchObject({ port: 8788, host: "127.0.0.1", maxSkewS: 60, maxBatch: 64, replayCacheSize: 100_000, logLevel: "info" });
    expect(c.metricsToken).toBeUndefined();
    expect(cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET, PORT: "9000" }).port).toBe(9000);
    expect(c).toMatchObject({ headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 65_000, maxConnections: 256 });
    expect(() => cloudConfigFromEnv({})).toThrow(/FOGLINE_HMAC_SECRET/);
    expect(() => cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET, FOGLINE_HEADERS_TIMEOUT_MS: "20000" })).toThrow(/FOGLINE_REQUEST_TIMEOUT_MS/);
    expect(() => cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET, FOGLINE_MAX_CONNECTIONS: "0" })).toThrow(/maxConnections/);
    expect(() => cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET, FOGLINE_MAX_SKEW_S: "soon" })).toThrow(/maxSkewS/);
    expect(() => cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET, FOGLINE_LOG_LEVEL: "loud" })).toThrow(/logLevel/);
    // FOGLINE_MAX_BATCH may lower shared/contracts.json's maxBatch, never raise it (no edge sends more)
    expect(cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET, FOGLINE_MAX_BATCH: "16" }).maxBatch).toBe(16);
    expect(() => cloudConfigFromEnv({ FOGLINE_HMAC_SECRET: TEST_SECRET, FOGLINE_MAX_BATCH: "65" })).toThrow(/may only lower/);
  });
});
