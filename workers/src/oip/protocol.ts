/**
 * Open Inference Protocol tensors <-> Fogline's pipeline: the input tensor of an infer request
 * becomes the normalised `[N,3,H,W]` batch the edge graph takes, and per-sample answers become
 * the response's outputs and parameters. Runtime-neutral (no ORT, no workerd): the Worker's
 * `/v2` routes are a thin adapter over this.
 */
import { softmax, topK } from "../infer/entropy.js";
import { ApiError } from "@fogline/shared/errors";
import { decodeRows, sniffFormat } from "../image/image.js";
import { AreaResizer, normalize, type InputSpec } from "../image/preprocess.js";
import type { Tensor } from "@fogline/shared/runner";
import type { Manifest } from "@fogline/shared/schemas/manifest";
import {
  OIP_NAMES,
  type OipInferRequest,
  type OipInferResponse,
  type OipModelMetadata,
  type OipParameters,
  type TritonModelConfig,
} from "../schemas/oip.js";

type OipInput = OipInferRequest["inputs"][number];

const bad = (message: string) => new ApiError("invalid_input", message);

/**
 * Largest magnitude an FP32 input element may have. The model's input is normalised pixels,
 * `(p / 255 - mean) / std`: |x| <= 1 / std for any mean in [0, 1], i.e. 2 for the shipped models
 * (mean 0.5, std 0.5) and under 100 for any sane std. 1e4 leaves every real normalisation room
 * (std down to 1e-4) while keeping the graphs far from float32 overflow: measured on the shipped
 * exports, inputs of +-1e4 in the worst of several patterns give exit logits up to 1.1e6 and
 * split activations up to 2.0e5 (MAX_ABS_ACTIVATION, shared/src/wire.ts, is 1e8), where 1e38
 * made them NaN (a 500 with exit=auto, nulls with exit=edge).
 */
export const MAX_ABS_INPUT = 1e4;

/**
 * The budget of a JSON infer body, from the largest legal request, in one place (docs/reliability.md
 * "Open Inference Protocol"). What JSON.parse costs is the number of values and containers it
 * builds (a number is 8-24 bytes of heap, an empty array or object 16-56), not the bytes: 10 MB of
 * `0,` or `[],` was ~250-310 MiB in a Worker. With N = MAX_BATCH (shared/contracts.json) and a `[C,H,W]` input:
 *
 *   total bytes      <= MAX_BODY_BYTES           (base64 BYTES images live in strings: unchanged)
 *   structure bytes  <= 64 KiB + N*C*H*W * 32    (non-whitespace bytes outside string contents)
 *   commas           <= 4096 + N*C*H*W           (so values <= commas + containers)
 *   arrays + objects <= 1024 + N*(1 + C + C*H)   (`data` nested as [N][C][H][W], plus the envelope)
 *   nesting depth    <= 16                       (a nested rank-4 tensor in the envelope is 7)
 *
 * 32 bytes per number holds the longest float64 a client may write (`-1.2345678901234567e-308`,
 * 24 characters, for a float32 value widened to float64 by numpy's `tolist()`) with its separator
 * `, ` and its share of the nesting brackets; whitespace is not counted, so pretty-printed JSON
 * passes too. 64 KiB, 4096 and 1024 cover the envelope (`id`, names, parameters, outputs). For a
 * 32x32 RGB model: 6,356,992 structure bytes, 200,704 commas, 7,424 containers; JSON.parse of the
 * largest legal request then holds about 5 MiB besides the text.
 */
export const JSON_NUMBER_BYTES = 32;
export const JSON_ENVELOPE_BYTES = 64 * 1024;
export const JSON_ENVELOPE_VALUES = 4096;
export const JSON_ENVELOPE_CONTAINERS = 1024;
export const JSON_MAX_DEPTH = 16;

export interface JsonBodyLimits {
  maxBytes: number;
  maxStructureBytes: number;
  maxCommas: number;
  maxContainers: number;
  maxDepth: number;
}

export function inferBodyLimits(spec: { height: number; width: number; channels?: number }, maxBatch: number, maxBodyBytes: number): JsonBodyLimits {
  const c = spec.channels ?? 3;
  const values = maxBatch * c * spec.height * spec.width;
  return {
    maxBytes: maxBodyBytes,
    maxStructureBytes: JSON_ENVELOPE_BYTES + values * JSON_NUMBER_BYTES,
    maxCommas: JSON_ENVELOPE_VALUES + values,
    maxContainers: JSON_ENVELOPE_CONTAINERS + maxBatch * (1 + c + c * spec.height),
    maxDepth: JSON_MAX_DEPTH,
  };
}

/**
 * Counts a JSON body's structure while it streams (readLimited's `inspect`), without parsing or
 * allocating: string state, commas, containers and depth outside strings. Refuses with 413
 * `payload_too_large` as soon as the body holds more than the largest legal request can, and with
 * 400 `invalid_input` when it nests deeper than one can, before JSON.parse sees any of it.
 * It does not validate JSON; JSON.parse does that afterwards, on a body now known to be small.
 */
export class JsonBudget {
  private inString = false;
  private escaped = false;
  private depth = 0;
  structureBytes = 0;
  commas = 0;
  containers = 0;

  constructor(private readonly limits: JsonBodyLimits) {}

  push(chunk: Uint8Array): void {
    let { inString, escaped, depth, structureBytes, commas, containers } = this;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === 0x5c) escaped = true; // backslash
        else if (b === 0x22) {
          inString = false;
          structureBytes++;
        }
        continue;
      }
      if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
      structureBytes++;
      if (b === 0x22) inString = true;
      else if (b === 0x2c) commas++;
      else if (b === 0x5b || b === 0x7b) {
        containers++;
        if (++depth > this.limits.maxDepth) throw bad(`the JSON nests deeper than ${this.limits.maxDepth} levels`);
      } else if (b === 0x5d || b === 0x7d) depth--;
    }
    Object.assign(this, { inString, escaped, depth, structureBytes, commas, containers });
    const l = this.limits;
    const over =
      structureBytes > l.maxStructureBytes
        ? `${structureBytes} bytes of JSON outside strings (at most ${l.maxStructureBytes})`
        : commas > l.maxCommas
          ? `more than ${l.maxCommas} values`
          : containers > l.maxContainers
            ? `more than ${l.maxContainers} arrays and objects`
            : undefined;
    if (over) throw new ApiError("payload_too_large", `the body holds ${over}: more than the largest legal request, a batch of the model's input tensors, can`);
  }
}

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

const TRITON_TYPES: Record<string, string> = { FP32: "TYPE_FP32", FP64: "TYPE_FP64", BYTES: "TYPE_STRING" };

/**
 * The model as a Triton model configuration (`GET /v2/models/{model}/config`), from the same
 * tensors as its metadata: batched (max_batch_size), so dims leave out the batch dimension, and
 * the `[N]` tensors are Triton's `dims: [1]` with `reshape: {shape: []}`.
 */
export function modelConfig(m: Manifest, maxBatch: number): TritonModelConfig {
  const meta = modelMetadata(m);
  const tensor = (t: OipModelMetadata["inputs"][number], format: string) => {
    const dims = t.shape.slice(1);
    return {
      name: t.name,
      data_type: TRITON_TYPES[t.datatype] ?? `TYPE_${t.datatype}`,
      format: dims.length === 3 ? format : "FORMAT_NONE",
      dims: dims.length ? dims : [1],
      ...(dims.length === 0 && { reshape: { shape: [] } }),
    };
  };
  return {
    name: m.name,
    platform: meta.platform,
    backend: "fogline",
    version_policy: { specific: { versions: meta.versions } },
    max_batch_size: maxBatch,
    input: meta.inputs.map((t) => tensor(t, "FORMAT_NCHW")),
    output: meta.outputs.map((t) => ({ ...tensor(t, "FORMAT_NONE"), format: "FORMAT_NONE" })),
    parameters: { exit_threshold: { string_value: String(m.exit.threshold) } },
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

/**
 * Row-major FP32 data, flat or nested no deeper than `rank`, straight into a Float32Array of the
 * shape's `count` (no flattened copy): stops at the first value past `count`, and refuses anything
 * but finite numbers within +-MAX_ABS_INPUT.
 */
function fillFp32(data: unknown[], rank: number, count: number): Float32Array {
  const out = new Float32Array(count);
  let k = 0;
  const walk = (arr: unknown[], depth: number): void => {
    const nested = arr.length > 0 && Array.isArray(arr[0]);
    if (nested && depth + 1 >= rank) throw bad("tensor data is nested deeper than its shape");
    for (const v of arr) {
      if (Array.isArray(v) !== nested) throw bad("tensor data mixes nested arrays and scalars");
      if (nested) {
        walk(v as unknown[], depth + 1);
        continue;
      }
      if (k >= count) throw bad(`FP32 input has more values than its shape says (${count})`);
      if (typeof v !== "number") throw bad(`FP32 element ${k} is not a number (${typeof v === "string" ? "a string" : JSON.stringify(v)})`);
      if (!(Math.abs(v) <= MAX_ABS_INPUT)) {
        throw bad(`FP32 element ${k} is ${v}: inputs are normalised pixels, finite and within +-${MAX_ABS_INPUT}`);
      }
      out[k++] = v;
    }
  };
  walk(data, 0);
  if (k !== count) throw bad(`FP32 input has ${k} values, its shape says ${count}`);
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

/**
 * One BYTES element of the binary part: the PNG/JPEG file itself, as Triton sends bytes. A client
 * that put base64 text there (a JSON-mode habit) is understood too: text that is all base64 and
 * not an image is decoded.
 */
function imageElement(bytes: Uint8Array): Uint8Array {
  if (sniffFormat(bytes) || bytes.length === 0 || bytes.length % 4 === 1) return bytes;
  for (const b of bytes) {
    const base64 = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2b || b === 0x2f || b === 0x3d;
    if (!base64) return bytes;
  }
  return base64ToBytes(new TextDecoder().decode(bytes));
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
 * normalised as the manifest says, shape `[N,3,H,W]`. BYTES: `[N]` (or `[N,1]`) PNG/JPEG files,
 * decoded and preprocessed exactly like `POST /v1/classify` uploads. In JSON (`data`) BYTES
 * elements are base64 strings; with the binary tensor data extension `binary` holds the tensor
 * (bindBinaryInputs): FP32 as 4-byte little-endian floats, exactly as many as the shape says,
 * BYTES as a 4-byte little-endian length and the file, per element. Both pass the same checks.
 */
export function decodeInput(input: OipInput, spec: InputSpec, limits: InputLimits, binary?: Uint8Array): Tensor {
  const { height: h, width: w } = spec;
  const n = input.shape[0] ?? 0;
  if (n < 1 || n > limits.maxBatch) throw bad(`batch size ${n} is not in 1..${limits.maxBatch}`);
  if (binary === undefined && input.data === undefined) throw bad(`input "${input.name}" has neither "data" nor a "binary_data_size" parameter`);

  if (input.datatype === "FP32") {
    const want = [n, 3, h, w];
    if (input.shape.length !== 4 || input.shape.some((d, i) => d !== want[i])) {
      throw bad(`FP32 input "${input.name}" has shape [${input.shape.join(",")}], expected [N,3,${h},${w}] (N <= ${limits.maxBatch})`);
    }
    const count = n * 3 * h * w;
    if (binary !== undefined) return { data: readFp32(binary, count, input.shape), dims: want };
    const data = input.data!;
    // the common flat layout: a length mismatch is refused before anything is allocated
    if (data.length > 0 && !Array.isArray(data[0]) && data.length !== count) {
      throw bad(`FP32 input has ${data.length} values, its shape says ${count}`);
    }
    return { data: fillFp32(data, 4, count), dims: want };
  }

  if (input.datatype === "BYTES") {
    if (!(input.shape.length === 1 || (input.shape.length === 2 && input.shape[1] === 1))) {
      throw bad(`BYTES input "${input.name}" has shape [${input.shape.join(",")}], expected [N] (one encoded image each)`);
    }
    let image: (i: number) => Uint8Array;
    if (binary !== undefined) {
      const elements = splitBytesTensor(binary, n);
      image = (i) => imageElement(elements[i]!);
    } else {
      const flat = flatten(input.data!, input.shape.length);
      if (flat.length !== n) throw bad(`BYTES input has ${flat.length} elements, its shape says ${n}`);
      flat.forEach((v, i) => {
        if (typeof v !== "string") throw bad(`BYTES element ${i} is not a base64 string`);
      });
      image = (i) => base64ToBytes(flat[i] as string);
    }
    const per = 3 * h * w;
    const data = new Float32Array(n * per);
    let pixelsLeft = limits.maxPixels;
    for (let i = 0; i < n; i++) {
      // the size is checked from the header before decoding; the pixel budget is shared by the batch
      const resizer = new AreaResizer(h, w);
      const { width, height } = decodeRows(image(i), resizer, { maxPixels: pixelsLeft, maxDecodeBytes: limits.maxDecodeBytes });
      data.set(normalize(resizer.out, spec), i * per);
      pixelsLeft -= width * height;
    }
    return { data, dims: [n, 3, h, w] };
  }

  throw bad(`input datatype ${input.datatype} is not supported: send FP32 [N,3,${h},${w}] or BYTES [N] (PNG/JPEG files)`);
}

/** A binary FP32 tensor: exactly `count` little-endian floats, each as checked as a JSON one. */
function readFp32(binary: Uint8Array, count: number, shape: readonly number[]): Float32Array {
  // the size is the shape's, checked before anything is allocated
  if (binary.length !== count * 4) {
    throw bad(`FP32 input has ${binary.length} bytes of binary data, its shape [${shape.join(",")}] says ${count * 4} (4 bytes per element)`);
  }
  const view = new DataView(binary.buffer, binary.byteOffset, binary.byteLength);
  const out = new Float32Array(count);
  for (let k = 0; k < count; k++) {
    const v = view.getFloat32(k * 4, true);
    if (!(Math.abs(v) <= MAX_ABS_INPUT)) throw bad(`FP32 element ${k} is ${v}: inputs are normalised pixels, finite and within +-${MAX_ABS_INPUT}`);
    out[k] = v;
  }
  return out;
}

/**
 * The elements of a binary BYTES tensor (4-byte little-endian length, then the bytes), as views
 * of the body: exactly `n` of them, filling it exactly. Nothing is allocated from a length.
 */
export function splitBytesTensor(binary: Uint8Array, n: number): Uint8Array[] {
  const view = new DataView(binary.buffer, binary.byteOffset, binary.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < binary.length) {
    if (out.length >= n) throw bad(`BYTES input has more than ${n} elements in its binary data, its shape says ${n}`);
    if (binary.length - at < 4) throw bad(`BYTES element ${out.length} is cut off inside its 4-byte length`);
    const len = view.getUint32(at, true);
    at += 4;
    if (len > binary.length - at) throw bad(`BYTES element ${out.length} says ${len} bytes, ${binary.length - at} follow`);
    out.push(binary.subarray(at, at + len));
    at += len;
  }
  if (out.length !== n) throw bad(`BYTES input has ${out.length} elements in its binary data, its shape says ${n}`);
  return out;
}

/** The header of the binary tensor data extension: how many bytes of the body are the JSON. */
export const INFERENCE_HEADER = "inference-header-content-length";

/** `Inference-Header-Content-Length`, checked: undefined when absent (a plain JSON body). */
export function parseHeaderLength(value: string | undefined, maxBytes: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*\d{1,15}\s*$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= maxBytes)) throw bad(`Inference-Header-Content-Length is "${value.slice(0, 32)}": it must be the JSON header's size in bytes, 1..${maxBytes}`);
  return n;
}

/** A readLimited `inspect` that shows the JSON budget the first `jsonBytes` of the body only. */
export function jsonPrefix(budget: JsonBudget, jsonBytes: number | undefined): (chunk: Uint8Array) => void {
  let seen = 0;
  return (chunk) => {
    if (jsonBytes === undefined) return budget.push(chunk);
    if (seen < jsonBytes) budget.push(chunk.subarray(0, jsonBytes - seen));
    seen += chunk.length;
  };
}

/**
 * The binary part of a body, cut per input by its `binary_data_size`, in input order; the sizes
 * must account for every byte of it. `undefined` for an input sent as JSON `data`.
 */
export function bindBinaryInputs(req: OipInferRequest, binary: Uint8Array | undefined): (Uint8Array | undefined)[] {
  let at = 0;
  const out = req.inputs.map((input) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined) return undefined;
    if (binary === undefined) throw bad(`input "${input.name}" has "binary_data_size" but the request has no Inference-Header-Content-Length header (binary tensor data extension)`);
    if (input.data !== undefined) throw bad(`input "${input.name}" has both "data" and "binary_data_size"`);
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) throw bad(`input "${input.name}": "binary_data_size" is not a byte count`);
    if (size > binary.length - at) throw bad(`input "${input.name}" says ${size} bytes of binary data, ${binary.length - at} follow the JSON header`);
    const part = binary.subarray(at, at + size);
    at += size;
    return part;
  });
  if (binary !== undefined && at !== binary.length) {
    throw bad(`${binary.length - at} bytes after the JSON header belong to no input ("binary_data_size" of the inputs: ${at} bytes in all)`);
  }
  return out;
}

export interface SampleOutcome {
  at: "edge" | "cloud";
  entropy: number;
  logits: ArrayLike<number>;
  /** out-of-distribution flag of the answering head, for a model with an `ood` calibration */
  ood?: { score: number; flagged: boolean };
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
    const b = o.parameters?.binary_data;
    if (b !== undefined && typeof b !== "boolean") throw bad(`"binary_data" of output "${o.name}" is a boolean parameter`);
    const k = o.parameters?.classification;
    if (k !== undefined && (o.name !== OIP_NAMES.probabilities || typeof k !== "number" || !Number.isInteger(k) || k < 1)) {
      throw bad(`"classification" is a positive integer parameter of the "${OIP_NAMES.probabilities}" output`);
    }
  }
}

/**
 * Every number an answer will carry must be finite: JSON has no NaN or Infinity, and would send
 * them as null. Inputs within MAX_ABS_INPUT keep the shipped graphs finite, so this firing means a
 * model that cannot answer this input: 422 `output_not_finite`, never nulls.
 */
export function checkFiniteOutputs(samples: readonly SampleOutcome[]): void {
  samples.forEach((s, i) => {
    let ok = Number.isFinite(s.entropy);
    for (let j = 0; ok && j < s.logits.length; j++) ok = Number.isFinite(s.logits[j]!);
    if (ok) {
      const p = softmax(s.logits);
      for (let j = 0; ok && j < p.length; j++) ok = Number.isFinite(p[j]!);
    }
    if (!ok) throw new ApiError("output_not_finite", `the ${s.at === "edge" ? "exit head's" : "cloud tail's"} answer for sample ${i} is not finite`);
  });
}

export function inferResponse(m: Manifest, req: OipInferRequest, out: BatchOutcome): OipInferResponse {
  checkFiniteOutputs(out.samples);
  const n = out.samples.length;
  const classes = m.labels.length;
  const wanted = req.outputs ?? KNOWN_OUTPUTS.map((name) => ({ name, parameters: undefined }));
  const outputs: OipInferResponse["outputs"] = wanted.map((o) => {
    if (o.name === OIP_NAMES.probabilities) {
      const b = o.parameters?.binary_data;
    if (b !== undefined && typeof b !== "boolean") throw bad(`"binary_data" of output "${o.name}" is a boolean parameter`);
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
    ...(out.samples.every((s) => s.ood !== undefined) && {
      ood_flagged: out.samples.map((s) => String(s.ood!.flagged)).join(","),
      ood_score: out.samples.map((s) => String(s.ood!.score)).join(","),
    }),
  };
  return {
    model_name: m.name,
    model_version: m.version,
    ...(req.id !== undefined && { id: req.id }),
    parameters,
    outputs,
  };
}

/**
 * The outputs to send in the binary part (binary tensor data extension): those whose own
 * `binary_data` parameter is true, and with `binary_data_output: true` every one that does not
 * say false.
 */
export function binaryOutputs(req: OipInferRequest): Set<string> {
  const all = req.parameters?.binary_data_output === true;
  const asked = new Map((req.outputs ?? []).map((o) => [o.name, o.parameters?.binary_data]));
  const names = req.outputs ? req.outputs.map((o) => o.name) : KNOWN_OUTPUTS;
  return new Set(names.filter((name) => (asked.get(name) ?? all) === true));
}

/** A tensor's contents as Triton lays them out in the binary part: little-endian, row-major. */
export function tensorBytes(datatype: string, data: readonly (number | string)[]): Uint8Array {
  if (datatype === "FP32" || datatype === "FP64") {
    const size = datatype === "FP32" ? 4 : 8;
    const out = new Uint8Array(data.length * size);
    const view = new DataView(out.buffer);
    data.forEach((v, i) => (size === 4 ? view.setFloat32(i * 4, Number(v), true) : view.setFloat64(i * 8, Number(v), true)));
    return out;
  }
  if (datatype === "BYTES") {
    const encoded = data.map((v) => new TextEncoder().encode(String(v)));
    const out = new Uint8Array(encoded.reduce((a, e) => a + 4 + e.length, 0));
    const view = new DataView(out.buffer);
    let at = 0;
    for (const e of encoded) {
      view.setUint32(at, e.length, true);
      out.set(e, at + 4);
      at += 4 + e.length;
    }
    return out;
  }
  throw new Error(`no binary layout for ${datatype}`);
}

/**
 * The answer with the outputs named in `binary` moved to the binary part: each gets
 * `parameters.binary_data_size` instead of `data`, and its bytes follow the JSON header in output
 * order. `undefined` when no output goes binary (the answer stays plain JSON).
 */
export function binaryResponse(body: OipInferResponse, binary: ReadonlySet<string>): { body: Uint8Array<ArrayBuffer>; headerLength: number } | undefined {
  if (!body.outputs.some((o) => binary.has(o.name))) return undefined;
  const parts: Uint8Array[] = [];
  const outputs = body.outputs.map((o) => {
    if (!binary.has(o.name)) return o;
    const bytes = tensorBytes(o.datatype, o.data ?? []);
    parts.push(bytes);
    const { data: _data, ...rest } = o;
    return { ...rest, parameters: { ...o.parameters, binary_data_size: bytes.length } };
  });
  const header = new TextEncoder().encode(JSON.stringify({ ...body, outputs }));
  const out = new Uint8Array(header.length + parts.reduce((a, p) => a + p.length, 0));
  out.set(header, 0);
  let at = header.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { body: out, headerLength: header.length };
}
