/**
 * The k-bit packed engine file (format `fogline-packed-kbit/2`, issue 19; written by
 * training/pack_kbit.py, layout there and in docs/contracts.md): a W2A2..W4A4 edge graph as its
 * ConvInteger weight codes, zero points, quantizer affines and float32 parts, derived from
 * edge.onnx. Its tensors are references to edge.onnx's initializers (the same bytes) wherever
 * the graph holds them as such, so the Worker bundles each weight once: parsing needs the
 * model's edge.onnx. Parsed and checked here against the manifest; workers/src/engine/kbit.ts runs it.
 */
import * as z from "zod";
import { dim, ExitHeader, type Fail, outSize, type PackedExit, type PackedShortcut, type PackedStem, parseShortcut, parseSplitAndExit, parseStem, ShortcutHeader, type TensorReader, TensorRef } from "./container.js";
import type { Manifest } from "@fogline/shared/schemas/manifest";

/** 2..4-bit activations: levels up to 15, a valid i7 operand of the engine's dot product, and
 * weight codes within +-15 keep 72 pair sums in an i16 lane (workers/engine/kconv.ts). */
export const KBIT_MIN_BITS = 2;
export const KBIT_MAX_BITS = 4;
const MAX_CODE = 15;
/** filters per pass of the conv kernel (kconv's FILTERS): cout must be a multiple */
export const KBIT_FILTERS = 4;

const BlockHeader = z.object({
  cin: dim,
  cout: dim,
  stride: dim,
  h: dim,
  w: dim,
  bnScale: TensorRef,
  bnShift: TensorRef,
  conv1: TensorRef,
  conv1Zero: z.number().int(),
  conv1Scale: TensorRef,
  midScale: TensorRef,
  midShift: TensorRef,
  conv2: TensorRef,
  conv2Zero: z.number().int(),
  scale: TensorRef,
  ...ShortcutHeader,
});

const KbitHeader = z.object({
  format: z.string(),
  source: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  input: z.tuple([z.literal(3), dim, dim]),
  actBits: z.number().int().min(KBIT_MIN_BITS).max(KBIT_MAX_BITS),
  stem: z.object({ weight: TensorRef, bias: TensorRef }),
  blocks: z.array(BlockHeader).min(1),
  split: z.tuple([dim, dim, dim]),
  exit: ExitHeader,
  blobBytes: z.number().int().nonnegative(),
});

export interface PackedKbitBlock {
  cin: number;
  cout: number;
  stride: number;
  /** input plane size; the output is ((h-1)/stride+1) x ((w-1)/stride+1) */
  h: number;
  w: number;
  /** bn_in: the graph's Mul and Add before the first quantizer, per input channel */
  bnScale: Float32Array;
  bnShift: Float32Array;
  /** signed weight codes [cout][cin][3][3] (ConvInteger's uint8 weight minus its zero point) */
  conv1: Int8Array;
  /** conv1's DequantizeLinear scale, per filter (then Relu) */
  conv1Scale: Float32Array;
  /** bn_mid: the second quantizer's Mul and Add */
  midScale: Float32Array;
  midShift: Float32Array;
  conv2: Int8Array;
  /** conv2's DequantizeLinear scale (bn_out folded in) */
  scale: Float32Array;
  shortcut: PackedShortcut;
}

export interface PackedKbitEdge {
  kind: "kbit";
  sourceSha256: string;
  input: readonly [number, number, number];
  /** activation levels L in 0..n, n = 2^actBits - 1 (the ConvInteger input is 2L, zero point n) */
  actBits: number;
  stem: PackedStem;
  blocks: PackedKbitBlock[];
  split: readonly [number, number, number];
  exit: PackedExit;
  blob: Uint8Array;
}

/** The header of a k-bit file (already read by readEngineContainer) as the engine's structure. */
export function parseKbitEdge(json: unknown, blob: Uint8Array, tensor: TensorReader, fail: Fail, manifest: Manifest): PackedKbitEdge {
  const r = KbitHeader.safeParse(json);
  if (!r.success) return fail(`header: ${z.prettifyError(r.error)}`);
  const h = r.data;
  // codes: two per byte as edge.onnx's nibble initializers hold them (element i in the low nibble
  // of byte i, element half + i in its high nibble, half = ceil(count / 2)), each the uint8
  // weight halved: code = 2 * nibble - zero
  const codes = (ref: TensorRef, zero: number, count: number, what: string): Int8Array => {
    if (zero < 1 || zero > MAX_CODE || zero % 2 !== 1) fail(`${what}: zero point ${zero} (odd, at most ${MAX_CODE})`);
    const half = Math.ceil(count / 2);
    const bytes = tensor<Uint8Array>(ref, "u8", half, what);
    const out = new Int8Array(count);
    // codes lie in [-zero, 30 - zero]: within +-MAX_CODE unless a nibble exceeds (MAX_CODE + zero) / 2
    const top = (MAX_CODE + zero) >> 1;
    let big = 0;
    for (let i = 0; i < half; i++) {
      const b = bytes[i]!;
      out[i] = 2 * (b & 15) - zero;
      big |= (b & 15) > top ? 1 : 0;
    }
    for (let i = half; i < count; i++) {
      const h = bytes[i - half]! >> 4;
      out[i] = 2 * h - zero;
      big |= h > top ? 1 : 0;
    }
    if (big) fail(`${what}: a code beyond +-${MAX_CODE}`);
    return out;
  };
  const stem = parseStem(h.input, h.stem, h.blocks[0]!.cin, manifest, tensor, fail);
  const [, inH, inW] = h.input;
  let c = stem.cout;
  let ph = inH;
  let pw = inW;
  const blocks: PackedKbitBlock[] = h.blocks.map((b, i) => {
    const at = `block ${i}`;
    if (b.cin !== c || b.h !== ph || b.w !== pw) fail(`${at} takes ${b.cin}x${b.h}x${b.w}, the previous layer gives ${c}x${ph}x${pw}`);
    if (b.stride !== 1 && b.stride !== 2) fail(`${at}: stride ${b.stride} (the kernels run 1 and 2)`);
    if (b.cin % 2 !== 0 || b.cout % KBIT_FILTERS !== 0) fail(`${at}: ${b.cin} -> ${b.cout} channels (even inputs, outputs in fours)`);
    const ho = outSize(b.h, b.stride);
    const wo = outSize(b.w, b.stride);
    if (b.w % 8 !== 0 || wo % 8 !== 0 || (ho * wo) % 16 !== 0) fail(`${at}: plane widths must be multiples of 8, planes of 16 pixels`);
    const shortcut = parseShortcut(b, at, tensor, fail);
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
      bnShift: tensor(b.bnShift, "f32", b.cin, `${at}.bnShift`),
      conv1: codes(b.conv1, b.conv1Zero, b.cout * b.cin * 9, `${at}.conv1`),
      conv1Scale: tensor(b.conv1Scale, "f32", b.cout, `${at}.conv1Scale`),
      midScale: tensor(b.midScale, "f32", b.cout, `${at}.midScale`),
      midShift: tensor(b.midShift, "f32", b.cout, `${at}.midShift`),
      conv2: codes(b.conv2, b.conv2Zero, b.cout * b.cout * 9, `${at}.conv2`),
      scale: tensor(b.scale, "f32", b.cout, `${at}.scale`),
      shortcut,
    };
  });
  const split = [c, ph, pw] as const;
  const exit = parseSplitAndExit(split, h.split, h.exit, manifest, tensor, fail);
  return { kind: "kbit", sourceSha256: h.source.sha256, input: h.input, actBits: h.actBits, stem, blocks, split, exit, blob };
}
