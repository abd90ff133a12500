/**
 * The GraphRunner surface both packed engines share (./packed.ts: binary, ./kbit.ts: k-bit):
 * check the image batch against the engine file's input, run the images one by one through the
 * engine's forward pass, and gather the graph's two outputs (exit_logits [N,C], split [N,c,h,w])
 * as onnxruntime returns them.
 */
import { EDGE_INPUT, EDGE_OUTPUTS, type Tensor } from "@fogline/shared/runner";
import type { AnyPackedEdge } from "./format/binary.js";

/** One image through the engine: returns the byte offset of its split plane in `memory`; its
 * exit logits are at `logitsAt`. Synchronous, so concurrent requests cannot interleave. */
export type ForwardOne = (image: Float32Array) => number;

export function runBatch(edge: AnyPackedEdge, feeds: Record<string, Tensor>, memory: WebAssembly.Memory, logitsAt: number, forward: ForwardOne): Record<string, Tensor> {
  const image = feeds[EDGE_INPUT];
  const [c, h, w] = edge.input;
  if (!image || image.dims.length !== 4 || image.dims[1] !== c || image.dims[2] !== h || image.dims[3] !== w) {
    throw new Error(`packed engine: input "${EDGE_INPUT}" must be [N,${c},${h},${w}], got [${image?.dims.join(",") ?? ""}]`);
  }
  const batch = image.dims[0]!;
  const [sc, sh, sw] = edge.split;
  const per = sc * sh * sw;
  const classes = edge.exit.classes;
  const split = new Float32Array(batch * per);
  const exitLogits = new Float32Array(batch * classes);
  for (let i = 0; i < batch; i++) {
    const x = forward(image.data.subarray(i * c * h * w, (i + 1) * c * h * w));
    // views of memory.buffer taken after forward: the module's memory may have grown
    split.set(new Float32Array(memory.buffer, x, per), i * per);
    exitLogits.set(new Float32Array(memory.buffer, logitsAt, classes), i * classes);
  }
  return {
    [EDGE_OUTPUTS.exitLogits]: { data: exitLogits, dims: [batch, classes] },
    [EDGE_OUTPUTS.split]: { data: split, dims: [batch, sc, sh, sw] },
  };
}

/** GraphRunner.run over a synchronous run: its throw becomes the promise's rejection. */
export function runAsync(runSync: () => Record<string, Tensor>): Promise<Record<string, Tensor>> {
  try {
    return Promise.resolve(runSync());
  } catch (e) {
    return Promise.reject(e);
  }
}
