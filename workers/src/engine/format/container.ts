/**
 * The container both packed engine formats share (workers/src/engine/format/binary.ts: binary W1A1;
 * workers/src/engine/format/kbit.ts: k-bit): the file's constants, magic + version + JSON header + blob,
 * the blob's typed tensors, the split and the exit head, each checked against the manifest.
 */
import * as z from "zod";
import { CONTRACTS } from "@fogline/shared/contracts";
import { ONNX_DTYPE, onnxInitializers, type OnnxInitializer } from "./onnx-initializers.js";
import type { Manifest } from "@fogline/shared/schemas/manifest";

/** the file's constants: shared/contracts.json ("packed"), which training/pack.py reads too */
export const ENGINE_MAGIC: string = CONTRACTS.packed.magic;
export const ENGINE_VERSION: number = CONTRACTS.packed.version;
export const ENGINE_FORMAT: string = CONTRACTS.packed.format;
/** The k-bit format's name (workers/src/engine/format/kbit.ts). */
export const ENGINE_KBIT_FORMAT: string = CONTRACTS.packed.kbitFormat;
/** One u32 word per pixel holds the channels' sign bits (workers/engine/binconv.ts). */
export const ENGINE_MAX_CHANNELS: number = CONTRACTS.packed.maxChannels;

export class EngineFileError extends Error {
  override readonly name = "EngineFileError";
}

export const dim = z.number().int().positive();
const Dtype = z.enum(["f32", "i32", "u32", "i8", "u8"]);
/** A tensor of the file: in its blob (offset), or (k-bit format) an initializer of the edge.onnx
 * it was built from, by name: that initializer's raw_data, the same numbers byte for byte. */
export const TensorRef = z
  .object({
    offset: z.number().int().nonnegative().multipleOf(4).optional(),
    onnx: z.string().min(1).optional(),
    length: z.number().int().nonnegative(),
    dtype: Dtype,
  })
  .strict()
  // one object with a check rather than a union: a fresh isolate parses ~100 of these, and a
  // union that fails its first branch builds that branch's errors each time
  .refine((r) => (r.offset === undefined) !== (r.onnx === undefined), "a tensor has either offset or onnx");
export type TensorRef = z.infer<typeof TensorRef>;
/** The exit head, the same in both formats. */
export const ExitHeader = z.object({ pool: dim, weight: TensorRef, weightScale: TensorRef, bias: TensorRef });

export interface PackedExit {
  pool: number;
  /** dequantized from the file's int8 codes: the floats edge.onnx's Cast(codes) * scale gives */
  weight: Float32Array;
  bias: Float32Array;
  features: number;
  classes: number;
}

export type Fail = (why: string) => never;
type TypedArray = Float32Array | Int32Array | Uint32Array | Int8Array | Uint8Array;
/** A view of one tensor of the blob, checked for its dtype, length and bounds. */
export type TensorReader = <T extends TypedArray>(ref: TensorRef, dtype: TensorRef["dtype"], length: number, what: string) => T;

/** The container both formats share: magic, version, JSON header, blob (checked against the
 * manifest's edge.onnx). Returns the header as JSON, a 4-aligned copy of the blob and its reader.
 * edgeOnnx: the model's edge.onnx, where the header refers to its initializers (k-bit files). */
export function readEngineContainer(bytes: ArrayBuffer, manifest: Manifest, edgeOnnx?: ArrayBuffer): { json: unknown; blob: Uint8Array; tensor: TensorReader; fail: Fail } {
  const fail: Fail = (why: string): never => {
    throw new EngineFileError(`packed engine of "${manifest.name}": ${why}`);
  };
  if (bytes.byteLength < 12) fail("file too short");
  const view = new DataView(bytes);
  const magic = String.fromCharCode(...new Uint8Array(bytes, 0, 4));
  if (magic !== ENGINE_MAGIC) fail(`not an engine file (magic ${JSON.stringify(magic)})`);
  const version = view.getUint32(4, true);
  if (version !== ENGINE_VERSION) fail(`format version ${version}, this Worker reads ${ENGINE_VERSION}`);
  const n = view.getUint32(8, true);
  if (n % 4 !== 0 || 12 + n > bytes.byteLength) fail("header length out of range");
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(new Uint8Array(bytes, 12, n)));
  } catch (e) {
    fail(`header is not JSON (${(e as Error).message})`);
  }
  const head = z.object({ source: z.object({ sha256: z.string() }), blobBytes: z.number().int().nonnegative() }).safeParse(json);
  if (!head.success) return fail(`header: ${z.prettifyError(head.error)}`);
  const blob = new Uint8Array(bytes, 12 + n);
  if (blob.byteLength !== head.data.blobBytes) fail(`blob is ${blob.byteLength} bytes, header says ${head.data.blobBytes} (truncated?)`);
  if (head.data.source.sha256 !== manifest.files.edge.sha256) {
    fail(`built from edge.onnx ${head.data.source.sha256.slice(0, 12)}…, the manifest's edge.onnx is ${manifest.files.edge.sha256.slice(0, 12)}… (stale engine file: run python -m training.pack)`);
  }
  // the blob is 4-aligned within a copy we own (typed arrays need aligned offsets)
  const own = new Uint8Array(blob.byteLength);
  own.set(blob);
  let inits: Map<string, OnnxInitializer> | undefined;
  const tensor: TensorReader = <T extends TypedArray>(ref: TensorRef, dtype: TensorRef["dtype"], length: number, what: string): T => {
    if (ref.dtype !== dtype) fail(`${what} is ${ref.dtype}, expected ${dtype}`);
    if (ref.length !== length) fail(`${what} has ${ref.length} values, expected ${length}`);
    const C = { f32: Float32Array, i32: Int32Array, u32: Uint32Array, i8: Int8Array, u8: Uint8Array }[dtype];
    if (ref.onnx !== undefined) {
      if (!edgeOnnx) return fail(`${what} is edge.onnx's "${ref.onnx}": the engine needs the model's edge.onnx`);
      try {
        inits ??= onnxInitializers(new Uint8Array(edgeOnnx));
      } catch (e) {
        return fail(`edge.onnx: ${(e as Error).message}`);
      }
      const init = inits.get(ref.onnx);
      if (!init?.raw) return fail(`${what}: edge.onnx has no raw initializer "${ref.onnx}"`);
      if (init.dataType !== ONNX_DTYPE[dtype]) fail(`${what}: edge.onnx's "${ref.onnx}" has element type ${init.dataType}, expected ${dtype}`);
      if (init.raw.byteLength !== C.BYTES_PER_ELEMENT * length) fail(`${what}: edge.onnx's "${ref.onnx}" has ${init.raw.byteLength} bytes, expected ${C.BYTES_PER_ELEMENT * length}`);
      // a copy: typed arrays need aligned offsets, and the engine may keep it
      const copy = init.raw.slice();
      return new C(copy.buffer, 0, length) as T;
    }
    const offset = ref.offset ?? 0;
    if (offset + C.BYTES_PER_ELEMENT * length > own.byteLength) fail(`${what} lies outside the blob`);
    return new C(own.buffer, offset, length) as T;
  };
  return { json, blob: own, tensor, fail };
}

/** A block's output plane size for its input size and stride (3x3 conv, padding 1). */
export const outSize = (n: number, stride: number): number => Math.floor((n - 1) / stride) + 1;

/** A block's shortcut fields, the same in both formats: identity (shift) or projection (1x1 conv). */
export const ShortcutHeader = { shift: TensorRef.optional(), shortcutWeight: TensorRef.optional(), shortcutBias: TensorRef.optional() };
/** identity shortcut: the bn_out shift; projection: 1x1 conv weight [cout][cin] and bias */
export type PackedShortcut = { kind: "identity"; shift: Float32Array } | { kind: "projection"; weight: Float32Array; bias: Float32Array };

/** A block's shortcut (both formats): exactly one of shift or shortcutWeight + shortcutBias. */
export function parseShortcut(b: { cin: number; cout: number; stride: number } & { [K in keyof typeof ShortcutHeader]?: TensorRef }, at: string, tensor: TensorReader, fail: Fail): PackedShortcut {
  if (b.shift && !b.shortcutWeight && !b.shortcutBias) {
    if (b.stride !== 1 || b.cin !== b.cout) fail(`${at}: an identity shortcut needs stride 1 and equal channels`);
    return { kind: "identity", shift: tensor(b.shift, "f32", b.cout, `${at}.shift`) };
  }
  if (!b.shift && b.shortcutWeight && b.shortcutBias) {
    return {
      kind: "projection",
      weight: tensor(b.shortcutWeight, "f32", b.cout * b.cin, `${at}.shortcutWeight`),
      bias: tensor(b.shortcutBias, "f32", b.cout, `${at}.shortcutBias`),
    };
  }
  return fail(`${at}: needs either shift or shortcutWeight + shortcutBias`);
}

/** The full-precision stem (both formats), checked against the manifest's input size. */
export interface PackedStem {
  weight: Float32Array;
  bias: Float32Array;
  cout: number;
}
export function parseStem(input: readonly [number, number, number], stem: { weight: TensorRef; bias: TensorRef }, cout: number, manifest: Manifest, tensor: TensorReader, fail: Fail): PackedStem {
  const [inC, inH, inW] = input;
  if (inH !== manifest.input.height || inW !== manifest.input.width) fail(`input ${inH}x${inW} differs from the manifest's`);
  if (inW % 8 !== 0) fail(`input width ${inW}: the stem kernel needs a multiple of 8`);
  return {
    weight: tensor<Float32Array>(stem.weight, "f32", cout * inC * 9, "stem.weight"),
    bias: tensor<Float32Array>(stem.bias, "f32", cout, "stem.bias"),
    cout,
  };
}

/** The split [c, h, w] against the header's and the manifest's, and the exit head (both formats). */
export function parseSplitAndExit(split: readonly [number, number, number], headerSplit: readonly number[], exit: z.infer<typeof ExitHeader>, manifest: Manifest, tensor: TensorReader, fail: Fail): PackedExit {
  const [c, ph, pw] = split;
  if (headerSplit.join() !== split.join()) fail(`header split ${headerSplit.join("x")} differs from the blocks' output ${split.join("x")}`);
  if (manifest.split.shape.join() !== split.join()) fail(`split ${split.join("x")} differs from the manifest's ${manifest.split.shape.join("x")}`);
  const k = exit.pool;
  if (k > ph || k > pw) fail(`exit pool ${k} is larger than the split plane`);
  const features = c * (Math.floor((ph - k) / k) + 1) * (Math.floor((pw - k) / k) + 1);
  const classes = manifest.labels.length;
  const codes = tensor<Int8Array>(exit.weight, "i8", classes * features, "exit.weight");
  if (codes.includes(-128)) fail("exit.weight has a code of -128 (int8 codes lie in [-127, 127])");
  const rowScale = tensor<Float32Array>(exit.weightScale, "f32", classes, "exit.weightScale");
  // float(code) * scale rounded to float32: exactly what edge.onnx's Cast and Mul compute (ORT folds them)
  // (a plain loop: a fresh isolate runs this once, where a per-element callback is slow)
  const weight = new Float32Array(codes.length);
  for (let r = 0; r < classes; r++) {
    const s = rowScale[r]!;
    for (let j = r * features; j < (r + 1) * features; j++) weight[j] = codes[j]! * s;
  }
  return { pool: k, weight, bias: tensor<Float32Array>(exit.bias, "f32", classes, "exit.bias"), features, classes };
}
