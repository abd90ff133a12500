/**
 * The packed engines (workers/src/engine/: binary W1A1 for cifar10, k-bit W4A4 for cifar100)
 * against onnxruntime-web, the reference, inside workerd, on every test vector of every model
 * that ships an engine file:
 * - every activation level (the uint8 levels feeding each ConvInteger: signs for W1A1, 2L for
 *   k bits) and every int32 sum identical to ORT's intermediate tensors (exposed as extra graph
 *   outputs, test/workers/onnx-outputs.ts);
 * - the split tensor and the exit logits equal to ORT's bit for bit (TOLERANCE below says so);
 * - hence the same exit decision and argmax.
 * A corrupt, truncated or mismatched engine file is refused; auto falls back to ORT.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EngineFileError, parsePackedEdge, verifyEngineChecksum } from "../../workers/src/engine/format/binary.js";
import { runEdge } from "@fogline/shared/runner";
import { ClassifyResponse } from "../../workers/src/schemas/classify.js";
import { ErrorResponse } from "@fogline/shared/errors";
import { entropy, exitsAtEdge } from "../../workers/src/infer/entropy.js";
import { app } from "../../workers/src/app.js";
import { packedEngine, type PackedEngine } from "../../workers/src/engine/engine.js";
import { KbitRunner } from "../../workers/src/engine/kbit.js";
import type { PackedTrace } from "../../workers/src/engine/packed.js";
import { initOrt } from "../../workers/src/infer/ort.js";
import { EDGE_SESSION_OPTIONS, edgeRunner, selectRunner } from "../../workers/src/infer/session.js";
import { allModels, getModel, type EdgeModel } from "../../workers/src/models/registry.js";
import { argmax, base64ToBytes, vectorsFor } from "../shared/fixtures.js";
import { ELEM, graphNodes, withOutputs } from "./onnx-outputs.js";

/**
 * Outputs must match the serving ORT session (graphOptimizationLevel "all") exactly: 0 = bit for
 * bit. The float kernels follow its float32 operation order (workers/engine/binconv.ts: the stem
 * conv's im2col order, the fused Conv+Add+Relu of the projection block, the GEMM's K blocks of
 * 256). Against an unoptimised ORT session the split and logits differ by <= 1e-6 (one or two
 * float32 ulps), because ORT's own fusion changes the rounding. If a future ORT changes its
 * kernels, the sign and sum checks stay exact regardless: raise this only to float32 rounding.
 */
const TOLERANCE = 0;

const packedModels = () => [...allModels().values()].filter((m) => m.engine).map((m) => m.manifest.name);

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function packedFor(model: EdgeModel): Promise<PackedEngine> {
  await verifyEngineChecksum(model.engine!, model.manifest, model.edgeOnnx);
  return packedEngine(parsePackedEdge(model.engine!, model.manifest, model.edgeOnnx));
}

describe("packed engine vs onnxruntime-web", () => {
  it("ships for both shipped models: the binary engine for cifar10, the k-bit one for cifar100", () => {
    expect(packedModels()).toEqual(expect.arrayContaining(["cifar10", "cifar100"]));
    expect(parsePackedEdge(getModel("cifar10").engine!, getModel("cifar10").manifest).kind).toBe("binary");
    const kbit = parsePackedEdge(getModel("cifar100").engine!, getModel("cifar100").manifest, getModel("cifar100").edgeOnnx);
    expect(kbit.kind === "kbit" && kbit.actBits).toBe(getModel("cifar100").manifest.architecture.activationBits);
  });

  it("the k-bit file refers to its edge.onnx's weights: it needs that file, and refuses another or a damaged one", async () => {
    const m = getModel("cifar100");
    // every weight lives once in the bundle: the engine file is a header and the few tensors the graph does not hold as they are
    expect(m.engine!.byteLength).toBeLessThan(m.edgeOnnx.byteLength / 10);
    expect(() => parsePackedEdge(m.engine!, m.manifest)).toThrow(/needs the model's edge.onnx/);
    expect(() => parsePackedEdge(m.engine!, m.manifest, getModel("cifar10").edgeOnnx)).toThrow(/edge.onnx has no raw initializer/);
    await expect(verifyEngineChecksum(m.engine!, m.manifest, getModel("cifar10").edgeOnnx)).rejects.toThrow(/edge.onnx sha256 .* differs from manifest.files.edge.sha256/);
    const cut = m.edgeOnnx.slice(0, m.edgeOnnx.byteLength - 1000);
    expect(() => parsePackedEdge(m.engine!, m.manifest, cut)).toThrow(EngineFileError);
  });

  it("cifar100: the k-bit convs' multi-chunk path (i16 sums of 8 channel pairs, added in i32) gives the same sums and outputs", () => {
    const m = getModel("cifar100");
    const edge = parsePackedEdge(m.engine!, m.manifest, m.edgeOnnx);
    if (edge.kind !== "kbit") throw new Error("cifar100 is a k-bit edge");
    // the shipped edge fits every conv in one chunk (16-64 channels); force 8 pairs (16 channels)
    const one = new KbitRunner(edge);
    const chunked = new KbitRunner(edge, undefined, 8);
    for (const v of vectorsFor("cifar100").vectors) {
      const feeds = { image: { data: Float32Array.from(v.input), dims: [1, 3, m.manifest.input.height, m.manifest.input.width] } };
      const ta: PackedTrace = { levels: [], sums: [], floats: [] };
      const tb: PackedTrace = { levels: [], sums: [], floats: [] };
      const a = one.runSync(feeds, ta);
      const b = chunked.runSync(feeds, tb);
      // every level and sum of every conv, the split and the logits: identical (maxDiff 0)
      ta.sums.forEach((pair, i) => pair.forEach((x, j) => expect(maxDiff(tb.sums[i]![j]!, x), `sums ${i}.${j}`).toBe(0)));
      ta.levels.forEach((pair, i) => pair.forEach((x, j) => expect(maxDiff(tb.levels[i]![j]!, x), `levels ${i}.${j}`).toBe(0)));
      for (const k of Object.keys(a)) expect(maxDiff(b[k]!.data as Float32Array, a[k]!.data as Float32Array), k).toBe(0);
    }
  });

  it.each(packedModels())("%s: every activation level and integer sum equals ORT's on every test vector", async (name) => {
    const model = getModel(name);
    const m = model.manifest;
    const nodes = graphNodes(new Uint8Array(model.edgeOnnx));
    const convs = nodes.filter((n) => n.op === "ConvInteger");
    const extra: Record<string, number> = {};
    for (const c of convs) {
      extra[c.inputs[0]!] = ELEM.uint8;
      extra[c.outputs[0]!] = ELEM.int32;
    }
    const ort = initOrt(); // the precompiled-module loader (ORT cannot compile WASM inside workerd)
    const session = await ort.InferenceSession.create(withOutputs(new Uint8Array(model.edgeOnnx), extra), EDGE_SESSION_OPTIONS);
    const packed = await packedFor(model);
    let decisions = 0;
    for (const v of vectorsFor(name).vectors) {
      const dims = [1, 3, m.input.height, m.input.width];
      const ref = await session.run({ image: new ort.Tensor("float32", Float32Array.from(v.input), dims) });
      const trace: PackedTrace = { levels: [], sums: [], floats: [] };
      const out = packed.runSync({ image: { data: Float32Array.from(v.input), dims } }, trace);
      expect(trace.sums.length * 2).toBe(convs.length);
      convs.forEach((c, i) => {
        const [block, which] = [Math.floor(i / 2), i % 2];
        const levels = ref[c.inputs[0]!]!.data as Uint8Array;
        const sums = ref[c.outputs[0]!]!.data as Int32Array;
        const mineLevels = trace.levels[block]![which]!;
        const mineSums = trace.sums[block]![which]!;
        const badLevel = mineLevels.findIndex((x, j) => x !== levels[j]);
        expect(badLevel, `${v.name}: ${c.inputs[0]} differs at ${badLevel}`).toBe(-1);
        expect(mineLevels.length).toBe(levels.length);
        const badSum = mineSums.findIndex((x, j) => x !== sums[j]);
        expect(badSum, `${v.name}: ${c.outputs[0]} differs at ${badSum} (${mineSums[badSum]} vs ${sums[badSum]})`).toBe(-1);
        decisions += levels.length;
      });
      expect(maxDiff(out["split"]!.data, ref["split"]!.data as Float32Array), `${v.name}: split`).toBeLessThanOrEqual(TOLERANCE);
      expect(maxDiff(out["exit_logits"]!.data, ref["exit_logits"]!.data as Float32Array), `${v.name}: exit logits`).toBeLessThanOrEqual(TOLERANCE);
    }
    expect(decisions).toBeGreaterThan(0);
    console.log(`${name}: ${vectorsFor(name).vectors.length} test vectors, ${decisions} activation levels and as many int32 sums identical to onnxruntime's`);
  });

  it.each(packedModels())("%s: same split, exit logits, exit decision and argmax as the serving ORT session, batched", async (name) => {
    const model = getModel(name);
    const m = model.manifest;
    const vs = vectorsFor(name).vectors;
    const per = 3 * m.input.height * m.input.width;
    const batch = { data: new Float32Array(vs.length * per), dims: [vs.length, 3, m.input.height, m.input.width] };
    vs.forEach((v, i) => batch.data.set(v.input, i * per));
    const ref = await runEdge(await edgeRunner(model), batch);
    const mine = await runEdge(await packedFor(model), batch);
    expect(mine.split.dims).toEqual(ref.split.dims);
    expect(maxDiff(mine.split.data, ref.split.data)).toBeLessThanOrEqual(TOLERANCE);
    expect(maxDiff(mine.exitLogits.data, ref.exitLogits.data)).toBeLessThanOrEqual(TOLERANCE);
    const classes = m.labels.length;
    vs.forEach((v, i) => {
      const a = mine.exitLogits.data.subarray(i * classes, (i + 1) * classes);
      const b = ref.exitLogits.data.subarray(i * classes, (i + 1) * classes);
      expect(argmax(a), v.name).toBe(argmax(b));
      expect(exitsAtEdge(entropy(a), m.exit.threshold), v.name).toBe(exitsAtEdge(entropy(b), m.exit.threshold));
      expect(argmax(a), v.name).toBe(argmax(v.exitLogits)); // and the exporter's onnxruntime
    });
  });
});

describe("packed engine file checks", () => {
  const model = () => getModel(packedModels()[0]!);
  /** A model whose manifest lists `engine` (a different fingerprint keeps runner caches apart). */
  const variant = (engine: ArrayBuffer, tag: string, engineSha?: string): EdgeModel => {
    const base = model();
    const fingerprint = `${tag.padEnd(8, "0")}${base.manifest.fingerprint.slice(8)}`;
    const files = { ...base.manifest.files, engine: { ...base.manifest.files.engine!, ...(engineSha && { sha256: engineSha }) } };
    return { manifest: { ...base.manifest, fingerprint, files }, edgeOnnx: base.edgeOnnx, engine };
  };
  const sha = async (b: ArrayBuffer) => [...new Uint8Array(await crypto.subtle.digest("SHA-256", b))].map((x) => x.toString(16).padStart(2, "0")).join("");

  it("refuses a corrupted file by its checksum", async () => {
    const bad = model().engine!.slice(0);
    new Uint8Array(bad)[bad.byteLength - 100]! ^= 0x01;
    await expect(verifyEngineChecksum(bad, model().manifest)).rejects.toThrow(/sha256 .* differs from manifest.files.engine.sha256/);
  });

  it("refuses the k-bit file of cifar100 for cifar10's manifest (another edge.onnx)", () => {
    expect(() => parsePackedEdge(getModel("cifar100").engine!, getModel("cifar10").manifest)).toThrow(/built from edge.onnx .*stale engine file/);
  });

  it("refuses a file built from another edge.onnx, a truncated file and a foreign file, each with a reason", () => {
    const m = model().manifest;
    const otherEdge = { ...m, files: { ...m.files, edge: { ...m.files.edge, sha256: "0".repeat(64) } } };
    expect(() => parsePackedEdge(model().engine!, otherEdge)).toThrow(/built from edge.onnx .*stale engine file/);
    expect(() => parsePackedEdge(model().engine!.slice(0, model().engine!.byteLength - 4), m)).toThrow(/truncated/);
    expect(() => parsePackedEdge(model().edgeOnnx, m)).toThrow(EngineFileError);
    const otherSplit = { ...m, split: { ...m.split, shape: [16, 32, 32] } };
    expect(() => parsePackedEdge(model().engine!, otherSplit)).toThrow(/split .* differs from the manifest/);
  });

  it("a model without an engine file runs on ORT; asking for packed there is a 400", async () => {
    const base = model();
    const plain: EdgeModel = { manifest: { ...base.manifest, fingerprint: `0e0e0e0e${base.manifest.fingerprint.slice(8)}` }, edgeOnnx: base.edgeOnnx };
    expect((await selectRunner(plain, "auto", "auto", "silent")).engine).toBe("ort");
    expect((await selectRunner(plain, "auto", "packed", "silent")).engine).toBe("ort");
    await expect(selectRunner(plain, "packed", "auto", "silent")).rejects.toMatchObject({ code: "invalid_query" });
  });

  it("auto falls back to onnxruntime for a refused file; engine=packed fails instead of answering", async () => {
    const bad = model().engine!.slice(0);
    new Uint8Array(bad)[bad.byteLength - 100]! ^= 0x01;
    const corrupt = variant(bad, "badc0de1");
    const auto = await selectRunner(corrupt, "auto", "auto", "silent");
    expect(auto.engine).toBe("ort");
    await expect(selectRunner(corrupt, "packed", "auto", "silent")).rejects.toThrow(/packed engine refused: .*sha256/);
    // the checksum matches, but the file was built from another graph: refused by its header
    const m = model().manifest;
    const stale = variant(model().engine!, "5ta1e000", await sha(model().engine!));
    stale.manifest = { ...stale.manifest, files: { ...stale.manifest.files, edge: { ...m.files.edge, sha256: "1".repeat(64) } } };
    expect((await selectRunner(stale, "auto", "auto", "silent")).engine).toBe("ort");
    await expect(selectRunner(stale, "packed", "auto", "silent")).rejects.toThrow(/stale engine file/);
  });
});

describe("POST /v1/classify engine selection", () => {
  const png = () => base64ToBytes(vectorsFor("cifar10").vectors[0]!.imageBase64);
  const classify = async (query: Record<string, string>, bindings: Record<string, string> = {}) => {
    const res = await app.request(`/v1/classify?${new URLSearchParams({ exit: "edge", ...query })}`, { method: "POST", headers: { "content-type": "image/png" }, body: png() }, { ...env, ...bindings });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as unknown };
  };

  it("runs the packed engine by default where the model ships one, and says which engine answered", async () => {
    const r = ClassifyResponse.parse((await classify({})).body);
    expect(r.engine).toBe("packed");
  });

  it("honours ?engine= and EDGE_ENGINE, with identical answers", async () => {
    const ortR = ClassifyResponse.parse((await classify({ engine: "ort" })).body);
    const packedR = ClassifyResponse.parse((await classify({ engine: "packed" })).body);
    expect([ortR.engine, packedR.engine]).toEqual(["ort", "packed"]);
    expect(packedR.exit.entropy).toBe(ortR.exit.entropy);
    expect(packedR.top).toEqual(ortR.top);
    expect(ClassifyResponse.parse((await classify({}, { EDGE_ENGINE: "ort" })).body).engine).toBe("ort");
    expect(ClassifyResponse.parse((await classify({ engine: "packed" }, { EDGE_ENGINE: "ort" })).body).engine).toBe("packed");
  });

  it("OIP infer takes the engine as a request parameter and reports it", async () => {
    const m = getModel("cifar10").manifest;
    const v = vectorsFor("cifar10").vectors[0]!;
    const infer = async (engine: string) => {
      const body = { inputs: [{ name: "image", shape: [1, 3, m.input.height, m.input.width], datatype: "FP32", data: v.input }], parameters: { engine, exit: "edge" } };
      const res = await app.request("/v2/models/cifar10/infer", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }, env);
      expect(res.status).toBe(200);
      return (await res.json()) as { parameters: Record<string, unknown>; outputs: { name: string; data: unknown[] }[] };
    };
    const [o, p] = [await infer("ort"), await infer("packed")];
    expect([o.parameters["engine"], p.parameters["engine"]]).toEqual(["ort", "packed"]);
    expect(p.parameters["entropy"]).toBe(o.parameters["entropy"]);
    expect(p.outputs).toEqual(o.outputs);
  });

  it("serves cifar100 (k-bit edge) with the packed engine by default; engine=ort gives the same answer", async () => {
    const png = base64ToBytes(vectorsFor("cifar100").vectors[0]!.imageBase64);
    const ask = async (engine?: string) => {
      const q = new URLSearchParams({ model: "cifar100", exit: "edge", ...(engine && { engine }) });
      const res = await app.request(`/v1/classify?${q}`, { method: "POST", headers: { "content-type": "image/png" }, body: png }, env);
      expect(res.status).toBe(200);
      return ClassifyResponse.parse(await res.json());
    };
    const [auto, ortR, packedR] = [await ask(), await ask("ort"), await ask("packed")];
    expect([auto.engine, ortR.engine, packedR.engine]).toEqual(["packed", "ort", "packed"]);
    expect(packedR.exit.entropy).toBe(ortR.exit.entropy);
    expect(packedR.top).toEqual(ortR.top);
  });

  it("400 for an unknown engine", async () => {
    const r = await classify({ engine: "gpu" });
    expect(r.status).toBe(400);
    expect(ErrorResponse.parse(r.body).error.code).toBe("invalid_query");
  });
});
