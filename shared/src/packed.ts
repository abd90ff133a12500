/**
 * The packed engine file (`models/<name>/edge.packed.bin`, written by `python -m training.pack`;
 * layout in training/pack.py and docs/contracts.md): a W1A1 edge graph as bit-packed binary
 * weights, integer thresholds and float32 affines, derived from edge.onnx. This module parses and
 * checks it against the model's manifest; workers/src/engine/ runs it. A file that does not fit
 * its manifest (other edge.onnx, other split, truncated, wrong checksum) is refused with an
 * EngineFileError, so a mismatched engine can never answer silently.
 */
import * as z from "zod";
import { CONTRACTS } from "./contracts.js";
import { bytesToHex } from "./hex.js";
import type { Manifest } from "./schemas/manifest.js";

/** the file's constants: shared/contracts.json ("packed"), which training/pack.py reads too */
export const ENGINE_MAGIC: string = CONTRACTS.packed.magic;
export const ENGINE_VERSION: number = CONTRACTS.packed.version;
export const ENGINE_FORMAT: string = CONTRACTS.packed.format;
/** One u32 word per pixel holds the channels' sign bits (workers/engine/binconv.ts). */
export const ENGINE_MAX_CHANNELS: number = CONTRACTS.packed.maxChannels;

export class EngineFileError extends Error {
  override readonly name = "EngineFileError";
}

const dim = z.number().int().positive();
const TensorRef = z.object({
  offset: z.number().int().nonnegative().multipleOf(4),
  length: z.number().int().nonnegative(),
  dtype: z.enum(["f32", "i32", "u32", "i8"]),
});
type TensorRef = z.infer<typeof TensorRef>;

const BlockHeader = z.object({
  cin: dim,
  cout: dim,
  stride: dim,
  h: dim,
  w: dim,
  bnScale: TensorRef,
  bnNegShift: TensorRef,
  conv1: TensorRef,
  threshold: TensorRef,
  conv2: TensorRef,
  scale: TensorRef,
  shift: TensorRef.optional(),
  shortcutWeight: TensorRef.optional(),
  shortcutBias: TensorRef.optional(),
});

const EngineHeader = z.object({
  format: z.literal(ENGINE_FORMAT),
  source: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  input: z.tuple([z.literal(3), dim, dim]),
  stem: z.object({ weight: TensorRef, bias: TensorRef }),
  blocks: z.array(BlockHeader).min(1),
  split: z.tuple([dim, dim, dim]),
  /** weight: int8 codes [classes][features]; weightScale: float32 per class (float(code) * scale) */
  exit: z.object({ pool: dim, weight: TensorRef, weightScale: TensorRef, bias: TensorRef }),
  blobBytes: z.number().int().nonnegative(),
});

export interface PackedBlock {
  cin: number;
  cout: number;
  stride: number;
  /** input plane size; the output is ((h-1)/stride+1) x ((w-1)/stride+1) */
  h: number;
  w: number;
  bnScale: Float32Array;
  bnNegShift: Float32Array;
  /** [cout][9] sign words, bit c = input channel c, 1 = -1 */
  conv1: Uint32Array;
  threshold: Int32Array;
  conv2: Uint32Array;
  scale: Float32Array;
  /** identity shortcut: the bn_out shift; projection: 1x1 conv weight [cout][cin] and bias */
  shortcut: { kind: "identity"; shift: Float32Array } | { kind: "projection"; weight: Float32Array; bias: Float32Array };
}

export interface PackedEdge {
  sourceSha256: string;
  input: readonly [number, number, number];
  stem: { weight: Float32Array; bias: Float32Array; cout: number };
  blocks: PackedBlock[];
  split: readonly [number, number, number];
  /** weight: dequantized from the file's int8 codes: the floats edge.onnx's Cast(codes) * scale gives */
  exit: { pool: number; weight: Float32Array; bias: Float32Array; features: number; classes: number };
  /** the blob the arrays above view (little-endian, 4-aligned offsets; exit.weight is a dequantized copy) */
  blob: Uint8Array;
}

const outSize = (n: number, stride: number) => Math.floor((n - 1) / stride) + 1;

/** Parses and checks an engine file against the model's manifest. Throws EngineFileError. */
export function parsePackedEdge(bytes: ArrayBuffer, manifest: Manifest): PackedEdge {
  const fail = (why: string): never => {
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
  const r = EngineHeader.safeParse(json);
  if (!r.success) return fail(`header: ${z.prettifyError(r.error)}`);
  const h = r.data;
  const blob = new Uint8Array(bytes, 12 + n);
  if (blob.byteLength !== h.blobBytes) fail(`blob is ${blob.byteLength} bytes, header says ${h.blobBytes} (truncated?)`);
  if (h.source.sha256 !== manifest.files.edge.sha256) {
    fail(`built from edge.onnx ${h.source.sha256.slice(0, 12)}…, the manifest's edge.onnx is ${manifest.files.edge.sha256.slice(0, 12)}… (stale engine file: run python -m training.pack)`);
  }

  // the blob is 4-aligned within a copy we own (typed arrays need aligned offsets)
  const own = new Uint8Array(blob.byteLength);
  own.set(blob);
  const tensor = <T extends Float32Array | Int32Array | Uint32Array | Int8Array>(ref: TensorRef, dtype: TensorRef["dtype"], length: number, what: string): T => {
    if (ref.dtype !== dtype) fail(`${what} is ${ref.dtype}, expected ${dtype}`);
    if (ref.length !== length) fail(`${what} has ${ref.length} values, expected ${length}`);
    const C = { f32: Float32Array, i32: Int32Array, u32: Uint32Array, i8: Int8Array }[dtype];
    if (ref.offset + C.BYTES_PER_ELEMENT * length > own.byteLength) fail(`${what} lies outside the blob`);
    return new C(own.buffer, ref.offset, length) as T;
  };
  const checkWords = (words: Uint32Array, cin: number, what: string) => {
    const mask = cin === 32 ? 0 : ~((1 << cin) - 1) >>> 0;
    if (words.some((w) => (w & mask) !== 0)) fail(`${what} sets bits beyond its ${cin} channels`);
  };

  const [inC, inH, inW] = h.input;
  if (inH !== manifest.input.height || inW !== manifest.input.width) fail(`input ${inH}x${inW} differs from the manifest's`);
  if (inW % 8 !== 0) fail(`input width ${inW}: the stem kernel needs a multiple of 8`);
  const stemOut = h.blocks[0]!.cin;
  const stem = {
    weight: tensor<Float32Array>(h.stem.weight, "f32", stemOut * inC * 9, "stem.weight"),
    bias: tensor<Float32Array>(h.stem.bias, "f32", stemOut, "stem.bias"),
    cout: stemOut,
  };
  let c = stemOut;
  let ph = inH;
  let pw = inW;
  const blocks: PackedBlock[] = h.blocks.map((b, i) => {
    const at = `block ${i}`;
    if (b.cin !== c || b.h !== ph || b.w !== pw) fail(`${at} takes ${b.cin}x${b.h}x${b.w}, the previous layer gives ${c}x${ph}x${pw}`);
    if (b.cin > ENGINE_MAX_CHANNELS || b.cout > ENGINE_MAX_CHANNELS) fail(`${at}: more than ${ENGINE_MAX_CHANNELS} channels`);
    if (b.stride !== 1 && b.stride !== 2) fail(`${at}: stride ${b.stride} (the kernels run 1 and 2)`);
    const ho = outSize(b.h, b.stride);
    const wo = outSize(b.w, b.stride);
    if (b.w % 4 !== 0 || wo % 4 !== 0) fail(`${at}: plane widths must be multiples of 4`);
    const conv1 = tensor<Uint32Array>(b.conv1, "u32", b.cout * 9, `${at}.conv1`);
    const conv2 = tensor<Uint32Array>(b.conv2, "u32", b.cout * 9, `${at}.conv2`);
    checkWords(conv1, b.cin, `${at}.conv1`);
    checkWords(conv2, b.cout, `${at}.conv2`);
    let shortcut: PackedBlock["shortcut"];
    if (b.shift && !b.shortcutWeight && !b.shortcutBias) {
      if (b.stride !== 1 || b.cin !== b.cout) fail(`${at}: an identity shortcut needs stride 1 and equal channels`);
      shortcut = { kind: "identity", shift: tensor(b.shift, "f32", b.cout, `${at}.shift`) };
    } else if (!b.shift && b.shortcutWeight && b.shortcutBias) {
      shortcut = {
        kind: "projection",
        weight: tensor(b.shortcutWeight, "f32", b.cout * b.cin, `${at}.shortcutWeight`),
        bias: tensor(b.shortcutBias, "f32", b.cout, `${at}.shortcutBias`),
      };
    } else {
      return fail(`${at}: needs either shift or shortcutWeight + shortcutBias`);
    }
    c = b.cout;
    ph = ho;
    pw = wo;
    return {
      cin: b.cin,
      cout: b.cout,
      stride: b.stride,
      h: b.h,
      w: b.w,
      bnScale: tensor(b.bnScale, "f32", b.cin, `${at}.bnScale`),
      bnNegShift: tensor(b.bnNegShift, "f32", b.cin, `${at}.bnNegShift`),
      conv1,
      threshold: tensor(b.threshold, "i32", b.cout, `${at}.threshold`),
      conv2,
      scale: tensor(b.scale, "f32", b.cout, `${at}.scale`),
      shortcut,
    };
  });
  const split = [c, ph, pw] as const;
  if (h.split.join() !== split.join()) fail(`header split ${h.split.join("x")} differs from the blocks' output ${split.join("x")}`);
  if (manifest.split.shape.join() !== split.join()) fail(`split ${split.join("x")} differs from the manifest's ${manifest.split.shape.join("x")}`);
  const k = h.exit.pool;
  if (k > ph || k > pw) fail(`exit pool ${k} is larger than the split plane`);
  const features = c * (Math.floor((ph - k) / k) + 1) * (Math.floor((pw - k) / k) + 1);
  const classes = manifest.labels.length;
  const codes = tensor<Int8Array>(h.exit.weight, "i8", classes * features, "exit.weight");
  if (codes.includes(-128)) fail("exit.weight has a code of -128 (int8 codes lie in [-127, 127])");
  const rowScale = tensor<Float32Array>(h.exit.weightScale, "f32", classes, "exit.weightScale");
  // float(code) * scale rounded to float32: exactly what edge.onnx's Cast and Mul compute (ORT folds them)
  const weight = Float32Array.from(codes, (q, i) => q * rowScale[Math.floor(i / features)]!);
  const exit = {
    pool: k,
    weight,
    bias: tensor<Float32Array>(h.exit.bias, "f32", classes, "exit.bias"),
    features,
    classes,
  };
  return { sourceSha256: h.source.sha256, input: h.input, stem, blocks, split, exit, blob: own };
}

/** sha256 of the engine file must equal manifest.files.engine.sha256 (crypto.subtle: Web standard). */
export async function verifyEngineChecksum(bytes: ArrayBuffer, manifest: Manifest): Promise<void> {
  const expected = manifest.files.engine?.sha256;
  if (!expected) throw new EngineFileError(`"${manifest.name}" has no packed engine in its manifest`);
  const got = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  if (got !== expected) {
    throw new EngineFileError(`packed engine of "${manifest.name}": sha256 ${got.slice(0, 12)}… differs from manifest.files.engine.sha256 ${expected.slice(0, 12)}… (corrupt or stale file)`);
  }
}
