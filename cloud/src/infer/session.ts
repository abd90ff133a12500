import * as ortModule from "onnxruntime-node";

// CJS package: a namespace import works under tsx, Node ESM and vite-node (test globalSetup) alike
const ort = ((ortModule as { default?: typeof ortModule }).default ?? ortModule) as typeof ortModule;
import { type GraphRunner, runOrtSession, type Tensor } from "@fogline/shared/runner";

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

  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return runOrtSession(this.session, (t) => new ort.Tensor("float32", t.data, t.dims), feeds);
  }
}
