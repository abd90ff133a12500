import type { GraphRunner, Tensor } from "../../../shared/src/runner.js";
import type { EdgeModel } from "../models/registry.js";
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

  private async runNow(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor("float32", t.data, t.dims);
    const out = await this.session.run(ortFeeds);
    const result: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(out)) {
      if (t.type !== "float32") throw new Error(`output ${name} is ${t.type}, expected float32`);
      result[name] = { data: t.data as Float32Array, dims: t.dims };
    }
    return result;
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
