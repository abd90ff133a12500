/**
 * The inference contract both halves implement: onnxruntime-web in workers/, onnxruntime-node
 * in cloud/. Graph input/output names are fixed by docs/contracts.md.
 */
import { CONTRACTS } from "./contracts.js";

export interface Tensor {
  data: Float32Array;
  dims: readonly number[];
}

/** One ONNX graph, loaded once, run many times. */
export interface GraphRunner {
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
}

/** The part of an onnxruntime InferenceSession that onnxruntime-web and -node share. */
export interface OrtSessionLike<OrtTensor> {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, { type: string; data: unknown; dims: readonly number[] }>>;
}

/**
 * One run of an onnxruntime session (web or node) on our float32 tensors; `toOrt` builds the
 * runtime's own Tensor. Every graph of docs/contracts.md has float32 outputs only.
 */
export async function runOrtSession<OrtTensor>(
  session: OrtSessionLike<OrtTensor>,
  toOrt: (t: Tensor) => OrtTensor,
  feeds: Record<string, Tensor>,
): Promise<Record<string, Tensor>> {
  const ortFeeds: Record<string, OrtTensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
  const out = await session.run(ortFeeds);
  const result: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(out)) {
    if (t.type !== "float32") throw new Error(`output ${name} is ${t.type}, expected float32`);
    result[name] = { data: t.data as Float32Array, dims: t.dims };
  }
  return result;
}

/** the graphs' input and output names: shared/contracts.json ("graph"), which training/onnx_graph.py writes */
export const EDGE_INPUT: string = CONTRACTS.graph.edge.input;
export const EDGE_OUTPUTS = { exitLogits: CONTRACTS.graph.edge.exitLogits, split: CONTRACTS.graph.edge.split } as const;
export const CLOUD_INPUT: string = CONTRACTS.graph.cloud.input;
export const CLOUD_OUTPUT: string = CONTRACTS.graph.cloud.output;

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
