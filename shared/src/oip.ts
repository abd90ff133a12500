/**
 * Open Inference Protocol tensors <-> Fogline's pipeline: the input tensor of an infer request
 * becomes the normalised `[N,3,H,W]` batch the edge graph takes, and per-sample answers become
 * the response's outputs and parameters. Runtime-neutral (no ORT, no workerd): the Worker's
 * `/v2` routes are a thin adapter over this.
 */
import { softmax, topK } from "./entropy.js";
import { ApiError } from "./errors.js";
import { decodeRows } from "./image.js";
import { AreaResizer, normalize, type InputSpec } from "./preprocess.js";
import type { Tensor } from "./runner.js";
import type { Manifest } from "./schemas/manifest.js";
import {
  OIP_NAMES,
  type OipInferRequest,
  type OipInferResponse,
  type OipModelMetadata,
  type OipParameters,
} from "./schemas/oip.js";

type OipInput = OipInferRequest["inputs"][number];

const bad = (message: string) => new ApiError("invalid_input", message);

export function modelMetadata(m: Manifest): OipModelMetadata {
  const { height: h, width: w, channels: c } = m.input;
  return {
    name: m.name,
    versions: [m.version],
    platform: "fogline_split_onnx",
    inputs: [
      { name: OIP_NAMES.image, datatype: "FP32", shape: [-1, c, h, w] },
      { name: OIP_NAMES.imageBytes, datatype: "BYTES", shape: [-1] },
    ],
    outputs: [
      { name: OIP_NAMES.probabilities, datatype: "FP32", shape: [-1, m.labels.length] },
      { name: OIP_NAMES.exitPoint, datatype: "BYTES", shape: [-1] },
      { name: OIP_NAMES.entropy, datatype: "FP64", shape: [-1] },
    ],
  };
}

/** Row-major flattening of flat or nested data; no deeper than the declared rank. */
function flatten(data: unknown[], rank: number): unknown[] {
  let out: unknown[] = data;
  for (let depth = 0; depth < rank && out.some(Array.isArray); depth++) {
    if (!out.every(Array.isArray)) throw bad("tensor data mixes nested arrays and scalars");
    out = (out as unknown[][]).flat();
  }
  if (out.some(Array.isArray)) throw bad("tensor data is nested deeper than its shape");
  return out;
}

function base64ToBytes(s: string): Uint8Array {
  // tolerate a data: URL prefix and whitespace/line breaks, as browsers and `base64` write them
  const b64 = s.replace(/^data:[^,]*;base64,/, "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw bad("a BYTES element is not base64");
  let bin: string;
  try {
    bin = atob(b64);
  } catch {
    throw bad("a BYTES element is not base64");
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export interface InputLimits {
  maxBatch: number;
  /** decoded pixels over every image of the batch together */
  maxPixels: number;
  /** what decoding one image may hold (image.ts DecodeLimits) */
  maxDecodeBytes?: number;
}

/**
 * The request's one input to the edge graph's `[N,3,H,W]` float32 batch. FP32: already
 * normalised as the manifest says, shape `[N,3,H,W]`. BYTES: `[N]` (or `[N,1]`) base64 PNG/JPEG
 * files, decoded and preprocessed exactly like `POST /v1/classify` uploads.
 */
export function decodeInput(input: OipInput, spec: InputSpec, limits: InputLimits): Tensor {
  const { height: h, width: w } = spec;
  const n = input.shape[0] ?? 0;
  if (n < 1 || n > limits.maxBatch) throw bad(`batch size ${n} is not in 1..${limits.maxBatch}`);

  if (input.datatype === "FP32") {
    const want = [n, 3, h, w];
    if (input.shape.length !== 4 || input.shape.some((d, i) => d !== want[i])) {
      throw bad(`FP32 input "${input.name}" has shape [${input.shape.join(",")}], expected [N,3,${h},${w}] (N <= ${limits.maxBatch})`);
    }
    const flat = flatten(input.data, 4);
    if (flat.length !== n * 3 * h * w) throw bad(`FP32 input has ${flat.length} values, its shape says ${n * 3 * h * w}`);
    const data = new Float32Array(flat.length);
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      if (typeof v !== "number" || !Number.isFinite(v)) throw bad(`FP32 element ${i} is not a finite number`);
      data[i] = v;
    }
    return { data, dims: want };
  }

  if (input.datatype === "BYTES") {
    if (!(input.shape.length === 1 || (input.shape.length === 2 && input.shape[1] === 1))) {
      throw bad(`BYTES input "${input.name}" has shape [${input.shape.join(",")}], expected [N] (one encoded image each)`);
    }
    const flat = flatten(input.data, input.shape.length);
    if (flat.length !== n) throw bad(`BYTES input has ${flat.length} elements, its shape says ${n}`);
    const per = 3 * h * w;
    const data = new Float32Array(n * per);
    let pixelsLeft = limits.maxPixels;
    flat.forEach((v, i) => {
      if (typeof v !== "string") throw bad(`BYTES element ${i} is not a base64 string`);
      // the size is checked from the header before decoding; the pixel budget is shared by the batch
      const resizer = new AreaResizer(h, w);
      const { width, height } = decodeRows(base64ToBytes(v), resizer, { maxPixels: pixelsLeft, maxDecodeBytes: limits.maxDecodeBytes });
      data.set(normalize(resizer.out, spec), i * per);
      pixelsLeft -= width * height;
    });
    return { data, dims: [n, 3, h, w] };
  }

  throw bad(`input datatype ${input.datatype} is not supported: send FP32 [N,3,${h},${w}] or BYTES [N] (base64 PNG/JPEG)`);
}

export interface SampleOutcome {
  at: "edge" | "cloud";
  entropy: number;
  logits: ArrayLike<number>;
}

export interface BatchOutcome {
  samples: SampleOutcome[];
  threshold: number;
  mode: string;
  degraded: boolean;
  degradedReason?: string;
  /** the engine that ran the edge graph */
  engine?: string;
}

const KNOWN_OUTPUTS: readonly string[] = [OIP_NAMES.probabilities, OIP_NAMES.exitPoint, OIP_NAMES.entropy];

/** Checks the requested outputs before any inference runs. */
export function checkRequestedOutputs(req: OipInferRequest): void {
  for (const o of req.outputs ?? []) {
    if (!KNOWN_OUTPUTS.includes(o.name)) throw bad(`unknown output "${o.name}" (outputs: ${KNOWN_OUTPUTS.join(", ")})`);
    const k = o.parameters?.classification;
    if (k !== undefined && (o.name !== OIP_NAMES.probabilities || typeof k !== "number" || !Number.isInteger(k) || k < 1)) {
      throw bad(`"classification" is a positive integer parameter of the "${OIP_NAMES.probabilities}" output`);
    }
  }
}

export function inferResponse(m: Manifest, req: OipInferRequest, out: BatchOutcome): OipInferResponse {
  const n = out.samples.length;
  const classes = m.labels.length;
  const wanted = req.outputs ?? KNOWN_OUTPUTS.map((name) => ({ name, parameters: undefined }));
  const outputs: OipInferResponse["outputs"] = wanted.map((o) => {
    if (o.name === OIP_NAMES.probabilities) {
      const k = o.parameters?.classification;
      if (typeof k === "number") {
        const kk = Math.min(k, classes);
        // Triton's classification extension: "score:index:label", best first
        const data = out.samples.flatMap((s) => topK(s.logits, m.labels, kk).map((t) => `${t.score}:${t.classIndex}:${t.label}`));
        return { name: o.name, datatype: "BYTES", shape: [n, kk], data };
      }
      const data = out.samples.flatMap((s) => Array.from(softmax(s.logits)));
      return { name: o.name, datatype: "FP32", shape: [n, classes], data };
    }
    if (o.name === OIP_NAMES.exitPoint) return { name: o.name, datatype: "BYTES", shape: [n], data: out.samples.map((s) => s.at) };
    return { name: OIP_NAMES.entropy, datatype: "FP64", shape: [n], data: out.samples.map((s) => s.entropy) };
  });
  const parameters: OipParameters = {
    exit_point: out.samples.map((s) => s.at).join(","),
    entropy: out.samples.map((s) => String(s.entropy)).join(","),
    edge_exits: out.samples.filter((s) => s.at === "edge").length,
    threshold: out.threshold,
    exit_mode: out.mode,
    degraded: out.degraded,
    ...(out.degradedReason !== undefined && { degraded_reason: out.degradedReason }),
    ...(out.engine !== undefined && { engine: out.engine }),
  };
  return {
    model_name: m.name,
    model_version: m.version,
    ...(req.id !== undefined && { id: req.id }),
    parameters,
    outputs,
  };
}
