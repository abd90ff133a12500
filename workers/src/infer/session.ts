import { ApiError } from "@fogline/shared/errors";
import type { LogLevel } from "@fogline/shared/log";
import { parsePackedEdge, verifyEngineChecksum } from "../engine/format/binary.js";
import { type GraphRunner, runOrtSession, type Tensor } from "@fogline/shared/runner";
import type { EngineChoice, EngineName } from "../schemas/classify.js";
import { packedEngine, type PackedEngine } from "../engine/engine.js";
import type { EdgeConfig } from "../env.js";
import type { EdgeModel } from "../models/registry.js";
import { edgeLogger } from "../observability.js";
import { initOrt, ort } from "./ort.js";

/** Session options of every edge session (scripts/bench/worker.ts compares levels against these). */
export const EDGE_SESSION_OPTIONS = {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
} satisfies ort.InferenceSession.SessionOptions;

/** GraphRunner over an onnxruntime-web session (the edge's implementation of the shared contract). */
export class OrtWebRunner implements GraphRunner {
  private queue: Promise<unknown> = Promise.resolve();
  constructor(private readonly session: ort.InferenceSession) {}

  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    // one run at a time per session: requests interleave at awaits within an isolate
    const next = this.queue.then(() => this.runNow(feeds));
    this.queue = next.catch(() => {});
    return next;
  }

  private runNow(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return runOrtSession(this.session, (t) => new ort.Tensor("float32", t.data, t.dims), feeds);
  }
}

// Sessions are created lazily, once per isolate and model (ORT start-up + session: ~0.5 s).
const sessions = new Map<string, Promise<GraphRunner>>();

export function edgeRunner(model: EdgeModel): Promise<GraphRunner> {
  const key = model.manifest.fingerprint;
  let runner = sessions.get(key);
  if (!runner) {
    const o = initOrt();
    runner = o.InferenceSession.create(new Uint8Array(model.edgeOnnx), EDGE_SESSION_OPTIONS).then((s) => new OrtWebRunner(s));
    // a failed creation is not cached, so the next request retries
    runner.catch(() => sessions.delete(key));
    sessions.set(key, runner);
  }
  return runner;
}

// One packed runner per isolate and model. A refused engine file stays refused (its bytes are
// bundled: retrying cannot fix them), so the promise is cached whatever its outcome.
const packed = new Map<string, Promise<PackedEngine>>();

export function packedRunner(model: EdgeModel): Promise<PackedEngine> {
  const key = model.manifest.fingerprint;
  let runner = packed.get(key);
  if (!runner) {
    const bytes = model.engine;
    runner = bytes
      ? verifyEngineChecksum(bytes, model.manifest, model.edgeOnnx).then(() => packedEngine(parsePackedEdge(bytes, model.manifest, model.edgeOnnx)))
      : Promise.reject(new Error(`"${model.manifest.name}" ships no packed engine`));
    runner.catch(() => {}); // observed by every caller; no unhandled rejection
    packed.set(key, runner);
  }
  return runner;
}

export interface SelectedRunner {
  runner: GraphRunner;
  engine: EngineName;
}

/**
 * The engine for one request: the `engine` query, else EDGE_ENGINE, else auto. `ort` is always
 * onnxruntime-web. `packed` needs a model with an engine file (a query asking for it on another
 * model is a 400; EDGE_ENGINE=packed leaves such models on onnxruntime) and fails the request
 * when the file is refused. `auto` takes the packed engine where the model ships one
 * (test/workers/packed.test.ts checks it against onnxruntime on every test vector; `npm run bench`
 * measures it faster, docs/performance.md), and falls back to onnxruntime with an error log when the file is refused: never a
 * silent wrong answer, and never an outage because of the optional engine.
 */
export async function selectRunner(model: EdgeModel, query: EngineChoice, env: EngineChoice, logLevel: LogLevel): Promise<SelectedRunner> {
  const choice = query !== "auto" ? query : env;
  const ortRunner = async (): Promise<SelectedRunner> => ({ runner: await edgeRunner(model), engine: "ort" });
  if (choice === "ort" || !model.engine) {
    if (query === "packed") throw new ApiError("invalid_query", `model "${model.manifest.name}" ships no packed engine (engine=ort or auto)`);
    return ortRunner();
  }
  try {
    return { runner: await packedRunner(model), engine: "packed" };
  } catch (e) {
    const message = (e as Error).message;
    if (choice === "packed") throw new Error(`packed engine refused: ${message}`);
    if (!warned.has(model.manifest.fingerprint)) {
      warned.add(model.manifest.fingerprint);
      edgeLogger(logLevel).log("error", "packed engine refused; serving this model with onnxruntime", { model: model.manifest.name, detail: message });
    }
    return ortRunner();
  }
}
const warned = new Set<string>();

/** The runner a request without an `engine` query gets (readiness routes load this one). */
export function servingRunner(model: EdgeModel, cfg: EdgeConfig): Promise<SelectedRunner> {
  return selectRunner(model, "auto", cfg.edgeEngine, cfg.logLevel);
}
