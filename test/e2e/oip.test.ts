/**
 * The Open Inference Protocol spoken to `npm start` the way a generic v2 client does: plain
 * HTTP/JSON, shapes and names taken from the model metadata, nothing Fogline-specific except
 * reading the exit point and entropy the response carries as parameters.
 */
import { describe, expect, inject, it } from "vitest";
import { base64ToBytes, DEFAULT_MODEL, vectorsFor } from "../shared/fixtures.js";

const base = () => inject("edgeUrl");
const pngs = vectorsFor(DEFAULT_MODEL).vectors.filter((v) => v.contentType === "image/png");
const jpeg = vectorsFor(DEFAULT_MODEL).vectors.find((v) => v.contentType === "image/jpeg");

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
  parameters?: Record<string, unknown>;
}
interface InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, string | number | boolean>;
  outputs: Tensor[];
}

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base()}${path}`);
  return { status: res.status, body: await res.json() };
}

async function infer(model: string, request: unknown): Promise<InferResponse> {
  const res = await fetch(`${base()}/v2/models/${model}/infer`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request) });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as InferResponse;
}

/** What a generic client checks of any v2 response: names, datatypes, data length = prod(shape). */
function checkOutputs(r: InferResponse, meta: { outputs: { name: string; datatype: string; shape: number[] }[] }, batch: number) {
  for (const o of r.outputs) {
    const declared = meta.outputs.find((m) => m.name === o.name)!;
    expect(declared, o.name).toBeDefined();
    expect(o.datatype).toBe(declared.datatype);
    expect(o.shape.length).toBe(declared.shape.length);
    expect(o.shape[0]).toBe(batch);
    expect(o.data.length).toBe(o.shape.reduce((a, b) => a * b, 1));
  }
  const probs = r.outputs.find((o) => o.name === "probabilities")!;
  const classes = probs.shape[1]!;
  for (let i = 0; i < batch; i++) {
    const row = (probs.data as number[]).slice(i * classes, (i + 1) * classes);
    expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  }
  const points = String(r.parameters!.exit_point).split(",");
  const entropies = String(r.parameters!.entropy).split(",").map(Number);
  expect(points).toHaveLength(batch);
  expect(entropies).toHaveLength(batch);
  for (const p of points) expect(["edge", "cloud"]).toContain(p);
  for (const h of entropies) expect(h).toBeGreaterThanOrEqual(0);
  return { points, entropies };
}

describe("Open Inference Protocol v2, as a generic client", () => {
  it("health: live and ready", async () => {
    expect(await get("/v2/health/live")).toEqual({ status: 200, body: { live: true } });
    expect(await get("/v2/health/ready")).toEqual({ status: 200, body: { ready: true } });
    expect((await get("/v2")).body.name).toBe("fogline");
  });

  it("metadata and readiness of the model; an unknown model is a 404", async () => {
    const { status, body } = await get(`/v2/models/${DEFAULT_MODEL}`);
    expect(status).toBe(200);
    expect(body.name).toBe(DEFAULT_MODEL);
    expect(body.versions).toHaveLength(1);
    expect(body.inputs.map((i: Tensor) => i.datatype).sort()).toEqual(["BYTES", "FP32"]);
    expect((await get(`/v2/models/${DEFAULT_MODEL}/ready`)).body).toEqual({ name: DEFAULT_MODEL, ready: true });
    expect((await get("/v2/models/no-such-model")).status).toBe(404);
  });

  it("infers an FP32 tensor shaped as the metadata says, and a batch of 4 exiting per sample", async () => {
    const meta = (await get(`/v2/models/${DEFAULT_MODEL}`)).body;
    const input = meta.inputs.find((i: Tensor) => i.datatype === "FP32");
    const [, c, h, w] = input.shape as number[];
    expect(pngs[0]!.input).toHaveLength(c! * h! * w!);

    const one = await infer(DEFAULT_MODEL, { id: "one", inputs: [{ name: input.name, shape: [1, c, h, w], datatype: "FP32", data: pngs[0]!.input }] });
    expect(one).toMatchObject({ model_name: DEFAULT_MODEL, id: "one" });
    checkOutputs(one, meta, 1);

    const inputs = [{ name: input.name, shape: [4, c, h, w], datatype: "FP32", data: pngs.slice(0, 4).flatMap((v) => v.input) }];
    // a threshold between the samples' entropies: the batch must split between edge and cloud
    const probe = await infer(DEFAULT_MODEL, { parameters: { exit: "edge" }, inputs });
    const sorted = String(probe.parameters!.entropy).split(",").map(Number).sort((a, b) => a - b);
    const threshold = (sorted[1]! + sorted[2]!) / 2;
    const batch = await infer(DEFAULT_MODEL, { parameters: { threshold }, inputs });
    const { points, entropies } = checkOutputs(batch, meta, 4);
    expect(points).toEqual(entropies.map((e) => (e < threshold ? "edge" : "cloud")));
    expect(new Set(points)).toEqual(new Set(["edge", "cloud"]));
    expect(batch.parameters).toMatchObject({ threshold, degraded: false, edge_exits: 2 });
  });

  it("infers encoded images sent as a BYTES input (base64 in JSON)", async () => {
    const meta = (await get(`/v2/models/${DEFAULT_MODEL}`)).body;
    const input = meta.inputs.find((i: Tensor) => i.datatype === "BYTES");
    const images = [pngs[0]!.imageBase64, ...(jpeg ? [jpeg.imageBase64] : [])];
    const r = await infer(DEFAULT_MODEL, { inputs: [{ name: input.name, shape: [images.length], datatype: "BYTES", data: images }] });
    checkOutputs(r, meta, images.length);
    // the same image as a PNG body of /v1/classify gets the same answer
    const res = await fetch(`${base()}/v1/classify`, { method: "POST", headers: { "content-type": "image/png" }, body: base64ToBytes(pngs[0]!.imageBase64) });
    const classify = (await res.json()) as { exit: { at: string; entropy: number } };
    expect(String(r.parameters!.exit_point).split(",")[0]).toBe(classify.exit.at);
    expect(Number(String(r.parameters!.entropy).split(",")[0])).toBeCloseTo(classify.exit.entropy, 6);
  });

  it("answers a malformed request with a 400 and the protocol's error body, {\"error\": \"<message>\"}", async () => {
    const res = await fetch(`${base()}/v2/models/${DEFAULT_MODEL}/infer`, { method: "POST", body: JSON.stringify({ inputs: [{ name: "image", shape: [1, 3], datatype: "FP32", data: [1, 2, 3] }] }) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: unknown; code: string };
    expect(typeof body.error).toBe("string");
    expect(body.code).toBe("invalid_input");
  });
});
