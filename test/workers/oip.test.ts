/**
 * The Open Inference Protocol routes inside workerd, with the real ORT WASM and a real Node
 * cloud (test/global-setup.ts). Same isolate as edge.test.ts (isolate: false), so ORT loads once.
 * test/e2e/oip.test.ts speaks the protocol to `npm start` the way a generic client does; this
 * file covers the details: per-sample exits in a batch, parity with the exported graphs, errors.
 */
import { env } from "cloudflare:workers";
import { SELF } from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import { softmax } from "../../shared/src/entropy.js";
import { ErrorResponse } from "../../shared/src/schemas/error.js";
import { OipInferResponse, OipModelMetadata, type OipInferRequest } from "../../shared/src/schemas/oip.js";
import { app } from "../../workers/src/app.js";
import type { Bindings } from "../../workers/src/env.js";
import { getModel } from "../../workers/src/models/registry.js";
import { DEFAULT_MODEL, makePng, maxAbsDiff, vectorsFor } from "../shared/fixtures.js";

const vectors = vectorsFor(DEFAULT_MODEL).vectors;
const pngs = vectors.filter((v) => v.contentType === "image/png");
const manifest = () => getModel(DEFAULT_MODEL).manifest;
const url = (path: string) => `/v2/models/${DEFAULT_MODEL}${path}`;

function post(path: string, body: unknown, bindings: Partial<Bindings> = {}): Promise<Response> {
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) };
  return Promise.resolve(app.request(path, init, { ...env, ...bindings }));
}

async function infer(body: OipInferRequest, bindings: Partial<Bindings> = {}): Promise<OipInferResponse> {
  const res = await post(url("/infer"), body, bindings);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return OipInferResponse.parse(JSON.parse(text));
}

async function expectError(res: Response, status: number, code: string) {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(ErrorResponse.parse(JSON.parse(text)).error.code).toBe(code);
}

const tensorOf = (inputs: number[][]) => ({
  name: "image",
  datatype: "FP32" as const,
  shape: [inputs.length, 3, manifest().input.height, manifest().input.width],
  data: inputs.flat(),
});

const output = (r: OipInferResponse, name: string) => r.outputs.find((o) => o.name === name)!;
const probsRow = (r: OipInferResponse, i: number) => {
  const o = output(r, "probabilities");
  const c = o.shape[1]!;
  return (o.data as number[]).slice(i * c, (i + 1) * c);
};

describe("GET /v2 health and metadata", () => {
  it("is live and ready", async () => {
    expect(await (await SELF.fetch("http://edge/v2/health/live")).json()).toEqual({ live: true });
    const ready = await SELF.fetch("http://edge/v2/health/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    expect(await (await SELF.fetch(`http://edge${url("/ready")}`)).json()).toEqual({ name: DEFAULT_MODEL, ready: true });
  });

  it("describes the server and the model from its manifest", async () => {
    const server = (await (await SELF.fetch("http://edge/v2")).json()) as { name: string; extensions: string[] };
    expect(server).toMatchObject({ name: "fogline", extensions: ["classification"] });
    const meta = OipModelMetadata.parse(await (await SELF.fetch(`http://edge${url("")}`)).json());
    const m = manifest();
    expect(meta.versions).toEqual([m.version]);
    expect(meta.inputs).toContainEqual({ name: "image", datatype: "FP32", shape: [-1, 3, m.input.height, m.input.width] });
    expect(meta.inputs).toContainEqual({ name: "image_bytes", datatype: "BYTES", shape: [-1] });
    expect(meta.outputs).toContainEqual({ name: "probabilities", datatype: "FP32", shape: [-1, m.labels.length] });
  });

  it("serves /versions/{version} for the bundled version only", async () => {
    expect((await SELF.fetch(`http://edge${url(`/versions/${manifest().version}`)}`)).status).toBe(200);
    await expectError(await SELF.fetch(`http://edge${url("/versions/0-other/ready")}`), 404, "model_not_found");
    await expectError(await SELF.fetch("http://edge/v2/models/imagenet-9000"), 404, "model_not_found");
  });
});

describe("POST /v2/models/{model}/infer", () => {
  it("answers an FP32 tensor like the exported edge graph (threshold high: edge exit)", async () => {
    const v = pngs[0]!;
    const r = await infer({ id: "req-1", inputs: [tensorOf([v.input])], parameters: { threshold: 100 } });
    expect(r).toMatchObject({ model_name: DEFAULT_MODEL, model_version: manifest().version, id: "req-1" });
    expect(output(r, "probabilities").shape).toEqual([1, manifest().labels.length]);
    expect(maxAbsDiff(probsRow(r, 0), softmax(v.exitLogits))).toBeLessThan(1e-4);
    expect(r.parameters).toMatchObject({ exit_point: "edge", edge_exits: 1, threshold: 100, exit_mode: "auto", degraded: false });
    expect(Math.abs(Number(r.parameters!.entropy) - v.entropy)).toBeLessThan(1e-3);
    expect(output(r, "exit_point")).toEqual({ name: "exit_point", datatype: "BYTES", shape: [1], data: ["edge"] });
  });

  it("accepts nested tensor data as well as flat", async () => {
    const m = manifest();
    const v = pngs[0]!;
    const plane = m.input.height * m.input.width;
    const nested = [[0, 1, 2].map((c) => Array.from({ length: m.input.height }, (_, y) => v.input.slice(c * plane + y * m.input.width, c * plane + (y + 1) * m.input.width)))];
    const r = await infer({ inputs: [{ ...tensorOf([v.input]), data: nested }], parameters: { exit: "edge" } });
    expect(maxAbsDiff(probsRow(r, 0), softmax(v.exitLogits))).toBeLessThan(1e-4);
  });

  it("runs the cloud tail for exit=cloud (fp32 wire: the exported logits)", async () => {
    const v = pngs[0]!;
    const r = await infer({ inputs: [tensorOf([v.input])], parameters: { exit: "cloud" } }, { WIRE_PRECISION: "fp32" });
    expect(r.parameters).toMatchObject({ exit_point: "cloud", edge_exits: 0 });
    expect(maxAbsDiff(probsRow(r, 0), softmax(v.logits))).toBeLessThan(1e-4);
  });

  it("decodes BYTES input (base64 PNG/JPEG) exactly like /v1/classify", async () => {
    const r = await infer({
      inputs: [{ name: "image_bytes", datatype: "BYTES", shape: [2], data: [pngs[1]!.imageBase64, `data:image/png;base64,${pngs[2]!.imageBase64}`] }],
      parameters: { exit: "edge" },
    });
    expect(maxAbsDiff(probsRow(r, 0), softmax(pngs[1]!.exitLogits))).toBeLessThan(1e-3);
    expect(maxAbsDiff(probsRow(r, 1), softmax(pngs[2]!.exitLogits))).toBeLessThan(1e-3);
  });

  it("exits per sample in a batch of 4: edge below the threshold, the rest in one cloud call", async () => {
    const four = pngs.slice(0, 4);
    const probe = await infer({ inputs: [tensorOf(four.map((v) => v.input))], parameters: { exit: "edge" } });
    const entropies = output(probe, "entropy").data as number[];
    const sorted = [...entropies].sort((a, b) => a - b);
    const threshold = (sorted[1]! + sorted[2]!) / 2; // two exit at the edge, two go to the cloud
    const r = await infer({ inputs: [tensorOf(four.map((v) => v.input))], parameters: { threshold } }, { WIRE_PRECISION: "fp32" });
    const points = (r.parameters!.exit_point as string).split(",");
    expect(points).toEqual(entropies.map((h) => (h < threshold ? "edge" : "cloud")));
    expect(output(r, "exit_point").data).toEqual(points);
    expect(r.parameters!.edge_exits).toBe(2);
    four.forEach((v, i) => {
      const want = points[i] === "edge" ? v.exitLogits : v.logits;
      expect(maxAbsDiff(probsRow(r, i), softmax(want)), v.name).toBeLessThan(1e-4);
      expect(Math.abs((output(r, "entropy").data[i] as number) - v.entropy)).toBeLessThan(1e-3);
    });
  });

  it("returns the top k as 'score:index:label' with the classification extension, and only the outputs asked for", async () => {
    const r = await infer({ inputs: [tensorOf([pngs[0]!.input])], outputs: [{ name: "probabilities", parameters: { classification: 3 } }], parameters: { exit: "edge" } });
    expect(r.outputs).toHaveLength(1);
    expect(r.outputs[0]).toMatchObject({ name: "probabilities", datatype: "BYTES", shape: [1, 3] });
    const [score, index, label] = (r.outputs[0]!.data[0] as string).split(":");
    expect(manifest().labels[Number(index)]).toBe(label);
    expect(Number(score)).toBeCloseTo(Math.max(...softmax(pngs[0]!.exitLogits)), 5);
  });

  it("degrades every cloud-bound sample to the edge answer when the cloud is down", async () => {
    const r = await infer({ inputs: [tensorOf(pngs.slice(0, 2).map((v) => v.input))], parameters: { threshold: 0 } }, { CLOUD_URL: `http://127.0.0.1:${inject("closedPort")}` });
    expect(r.parameters).toMatchObject({ exit_point: "edge,edge", degraded: true });
    expect(r.parameters!.degraded_reason).toBe("cloud_unreachable");
  });

  describe("rejects a malformed request with 400 invalid_input", () => {
    const m = () => manifest();
    const png = () => pngs[0]!;
    it.each<[string, () => unknown]>([
      ["a body that is not JSON", () => "not json"],
      ["no inputs", () => ({ inputs: [] })],
      ["two inputs", () => ({ inputs: [tensorOf([png().input]), tensorOf([png().input])] })],
      ["a wrong image size", () => ({ inputs: [{ ...tensorOf([png().input]), shape: [1, 3, 16, 16] }] })],
      ["data shorter than the shape", () => ({ inputs: [{ ...tensorOf([png().input]), data: png().input.slice(1) }] })],
      ["a non-number in FP32 data", () => ({ inputs: [{ ...tensorOf([png().input]), data: ["x", ...png().input.slice(1)] }] })],
      ["an unsupported datatype", () => ({ inputs: [{ ...tensorOf([png().input]), datatype: "INT64" }] })],
      ["a batch over 64", () => ({ inputs: [{ name: "image", datatype: "FP32", shape: [65, 3, m().input.height, m().input.width], data: [] }] })],
      ["BYTES that are not base64", () => ({ inputs: [{ name: "image_bytes", datatype: "BYTES", shape: [1], data: ["%%%"] }] })],
      ["an unknown output", () => ({ inputs: [tensorOf([png().input])], outputs: [{ name: "logits" }] })],
      ["a negative threshold", () => ({ inputs: [tensorOf([png().input])], parameters: { threshold: -1 } })],
    ])("%s", async (_name, body) => {
      await expectError(await post(url("/infer"), body()), 400, "invalid_input");
    });

    it("400 not_an_image for BYTES that are not PNG/JPEG, 413 for too many pixels in the batch", async () => {
      await expectError(await post(url("/infer"), { inputs: [{ name: "image_bytes", datatype: "BYTES", shape: [1], data: [btoa("hello")] }] }), 400, "not_an_image");
      const big = btoa(Array.from(makePng(300, 300), (b) => String.fromCharCode(b)).join(""));
      await expectError(await post(url("/infer"), { inputs: [{ name: "image_bytes", datatype: "BYTES", shape: [2], data: [big, big] }] }, { MAX_PIXELS: "100000" }), 413, "image_too_large");
    });
  });
});
