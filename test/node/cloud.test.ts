import { beforeAll, describe, expect, it } from "vitest";
import { createCloudApp } from "../../cloud/src/app.js";
import { sign } from "../../shared/src/hmac.js";
import { ErrorResponse, TailResponse } from "../../shared/src/schemas/index.js";
import { TAIL_CONTENT_TYPE, TAIL_HEADERS } from "../../shared/src/schemas/tail.js";
import type { WirePrecision } from "../../shared/src/schemas/classify.js";
import { encodeActivation } from "../../shared/src/wire.js";
import { loadModels } from "../../cloud/src/models.js";
import { TEST_SECRET } from "../cloud-server.js";
import { modelsDir } from "../models.generated.js";
import { argmax, DEFAULT_MODEL, maxAbsDiff, modelsWithVectors, vectorsFor } from "../shared/fixtures.js";
import type { CloudModel } from "../../cloud/src/models.js";

let models: Map<string, CloudModel>;
let app: ReturnType<typeof createCloudApp>;
const now = { ms: Date.now() };

beforeAll(async () => {
  models = await loadModels(modelsDir);
  app = createCloudApp({ models, secret: TEST_SECRET, now: () => now.ms });
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
  headers?: Record<string, string | undefined>;
}

async function makeTailRequest(o: TailOverrides = {}): Promise<Response> {
  const m = manifest();
  const split = Float32Array.from(withSplit[0]!.split!);
  const fingerprint = o.fingerprint ?? m.fingerprint;
  const body = o.body ?? encodeActivation(split, [1, ...m.split.shape], fingerprint, o.precision ?? "fp32");
  const ts = String(o.timestamp ?? Math.floor(now.ms / 1000));
  const signedFp = o.signedFingerprint ?? fingerprint;
  const headers: Record<string, string> = {
    "content-type": TAIL_CONTENT_TYPE,
    [TAIL_HEADERS.timestamp]: ts,
    [TAIL_HEADERS.fingerprint]: signedFp,
    [TAIL_HEADERS.signature]: await sign(o.secret ?? TEST_SECRET, signedFp, ts, body),
  };
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
    expect(await res.json()).toMatchObject({ status: "ok", role: "cloud", models: [{ name: DEFAULT_MODEL }] });
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
    await expectError(await makeTailRequest({ secret: "not-the-secret-not-the-secret-not-the-secret" }), 401, "unauthorized");
    await expectError(await makeTailRequest({ headers: { [TAIL_HEADERS.signature]: undefined } }), 401, "unauthorized");
    await expectError(await makeTailRequest({ headers: { [TAIL_HEADERS.signature]: "0".repeat(64) } }), 401, "unauthorized");
    await expectError(await makeTailRequest({ timestamp: Math.floor(now.ms / 1000) - 120 }), 401, "unauthorized");
    await expectError(await makeTailRequest({ timestamp: Math.floor(now.ms / 1000) + 120 }), 401, "unauthorized");
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
