/**
 * The inference contract both halves implement: onnxruntime-web in workers/, onnxruntime-node
 * in cloud/. Graph input/output names are fixed by docs/contracts.md.
 */
export interface Tensor {
  data: Float32Array;
  dims: readonly number[];
}

/** One ONNX graph, loaded once, run many times. */
export interface GraphRunner {
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
}

export const EDGE_INPUT = "image";
export const EDGE_OUTPUTS = { exitLogits: "exit_logits", split: "split" } as const;
export const CLOUD_INPUT = "split";
export const CLOUD_OUTPUT = "logits";

export interface EdgeResult {
  exitLogits: Tensor;
  split: Tensor;
}

function output(out: Record<string, Tensor>, name: string): Tensor {
  const t = out[name];
  if (!t) throw new Error(`model output "${name}" missing (got ${Object.keys(out).join(", ")})`);
  return t;
}

/** The edge part: normalised image `[N,3,H,W]` to exit logits `[N,C]` and split `[N,c,h,w]`. */
export async function runEdge(runner: GraphRunner, image: Tensor): Promise<EdgeResult> {
  const out = await runner.run({ [EDGE_INPUT]: image });
  return { exitLogits: output(out, EDGE_OUTPUTS.exitLogits), split: output(out, EDGE_OUTPUTS.split) };
}

/** The cloud tail: split `[N,c,h,w]` to logits `[N,C]`. */
export async function runTail(runner: GraphRunner, split: Tensor): Promise<Tensor> {
  return output(await runner.run({ [CLOUD_INPUT]: split }), CLOUD_OUTPUT);
}
