import * as ortModule from "onnxruntime-node";

// CJS package: a namespace import works under tsx, Node ESM and vite-node (test globalSetup) alike
const ort = ((ortModule as { default?: typeof ortModule }).default ?? ortModule) as typeof ortModule;
import type { GraphRunner, Tensor } from "../../../shared/src/runner.js";

/** GraphRunner over an onnxruntime-node session (the cloud's implementation of the shared contract). */
export class OrtNodeRunner implements GraphRunner {
  private constructor(private readonly session: ortModule.InferenceSession) {}

  static async create(onnx: Uint8Array, threads = 1): Promise<OrtNodeRunner> {
    const session = await ort.InferenceSession.create(onnx, {
      executionProviders: ["cpu"],
      graphOptimizationLevel: "all",
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    return new OrtNodeRunner(session);
  }

  async run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ortModule.Tensor> = {};
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
