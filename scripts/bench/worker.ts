/**
 * Benchmark-only Worker entry (`npm run bench` runs it under wrangler dev; never deployed): the
 * real app unchanged, plus two routes that run the edge graph with nothing else around it, so the
 * benchmark can time it from outside (timers do not advance during CPU work inside workerd,
 * docs/runtime.md#workerds-clock):
 *   GET /__bench/edge?model=M&k=K     K sequential edge inferences (batch 1) on a fixed input;
 *                                     per inference = (t(K) - t(0)) / K, timed by the client.
 *                                     Serving's own cached session, or with &opt=LEVEL a private one
 *                                     created with that graphOptimizationLevel
 *   GET /__bench/session?model=M      a fresh, uncached InferenceSession + one run ("later sessions"),
 *                                     &opt=LEVEL (default: serving's level)
 *   GET /__bench/ping                 no inference: readiness that does not warm ORT, and the HTTP floor
 * Both inference routes take &engine=packed: the packed binary engine (workers/src/engine/) instead
 * of ORT; for /__bench/session a fresh one (checksum, parse, WASM instance) + one run.
 */
import { app } from "../../workers/src/app.js";
import type { Bindings } from "../../workers/src/env.js";
import { initOrt } from "../../workers/src/infer/ort.js";
import { EDGE_SESSION_OPTIONS, edgeRunner, OrtWebRunner, packedRunner } from "../../workers/src/infer/session.js";
import { packedEngine } from "../../workers/src/engine/engine.js";
import { parsePackedEdge, verifyEngineChecksum } from "../../workers/src/engine/format/binary.js";
import { getModel } from "../../workers/src/models/registry.js";
import { runEdge } from "@fogline/shared/runner";

function fixedInput(h: number, w: number): Float32Array {
  // deterministic values in [-1, 1] (a normalised image); a zero image would make every sign equal
  const x = new Float32Array(3 * h * w);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    x[i] = (s / 0x7fffffff) * 2 - 1;
  }
  return x;
}

type Level = "disabled" | "basic" | "extended" | "all";
const LEVELS = new Set(["disabled", "basic", "extended", "all"]);
const private_ = new Map<string, Promise<OrtWebRunner>>();

function options(url: URL) {
  const opt = url.searchParams.get("opt");
  if (opt !== null && !LEVELS.has(opt)) throw new Error(`opt must be one of ${[...LEVELS].join(", ")}`);
  return opt === null ? EDGE_SESSION_OPTIONS : { ...EDGE_SESSION_OPTIONS, graphOptimizationLevel: opt as Level };
}

async function bench(req: Request): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/__bench/ping") return Response.json({ ok: true }); // no ORT: readiness without warming
  const model = getModel(url.searchParams.get("model") ?? "cifar10");
  const { height, width } = model.manifest.input;
  const image = { data: fixedInput(height, width), dims: [1, 3, height, width] };
  if (url.pathname === "/__bench/edge") {
    const k = Number(url.searchParams.get("k") ?? "1");
    const opt = url.searchParams.get("opt");
    let runner;
    if (url.searchParams.get("engine") === "packed") runner = await packedRunner(model);
    else if (url.searchParams.get("engine") === "ort") runner = await edgeRunner(model);
    else if (opt === null) runner = await edgeRunner(model);
    else {
      const key = `${model.manifest.name}/${opt}`;
      if (!private_.has(key)) private_.set(key, initOrt().InferenceSession.create(new Uint8Array(model.edgeOnnx), options(url)).then((s) => new OrtWebRunner(s)));
      runner = await private_.get(key)!;
    }
    let checksum = 0;
    for (let i = 0; i < k; i++) checksum += (await runEdge(runner, image)).exitLogits.data[0]!;
    return Response.json({ k, checksum });
  }
  if (url.pathname === "/__bench/session" && url.searchParams.get("engine") === "packed") {
    const bytes = model.engine;
    if (!bytes) throw new Error(`${model.manifest.name} ships no packed engine`);
    await verifyEngineChecksum(bytes, model.manifest, model.edgeOnnx);
    await runEdge(packedEngine(parsePackedEdge(bytes, model.manifest, model.edgeOnnx)), image);
    return Response.json({ ok: true });
  }
  if (url.pathname === "/__bench/session") {
    const ort = initOrt();
    const session = await ort.InferenceSession.create(new Uint8Array(model.edgeOnnx), options(url));
    await session.run({ image: new ort.Tensor("float32", image.data, image.dims) });
    await session.release();
    return Response.json({ ok: true });
  }
  return new Response("not found", { status: 404 });
}

export default {
  fetch(req: Request, env: Bindings, ctx: ExecutionContext): Response | Promise<Response> {
    if (new URL(req.url).pathname.startsWith("/__bench/")) return bench(req);
    return app.fetch(req, env, ctx);
  },
} satisfies ExportedHandler<Bindings>;
