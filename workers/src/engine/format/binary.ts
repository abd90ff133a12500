/**
 * The packed engine file (`models/<name>/edge.packed.bin`, written by `python -m training.pack`;
 * layout in training/pack.py and docs/contracts.md): a W1A1 edge graph as bit-packed binary
 * weights, integer thresholds and float32 affines, derived from edge.onnx; or, in the k-bit
 * format (workers/src/engine/format/kbit.ts), a W2A2..W4A4 one. This module reads the container, parses
 * the binary format and checks both against the model's manifest; workers/src/engine/ runs them.
 * A file that does not fit its manifest (other edge.onnx, other split, truncated, wrong checksum)
 * is refused with an EngineFileError, so a mismatched engine can never answer silently.
 */
import * as z from "zod";
import { bytesToHex } from "@fogline/shared/hex";
import { dim, ENGINE_FORMAT, ENGINE_KBIT_FORMAT, ENGINE_MAX_CHANNELS, EngineFileError, ExitHeader, outSize, type PackedExit, type PackedShortcut, type PackedStem, parseShortcut, parseSplitAndExit, parseStem, readEngineContainer, ShortcutHeader, TensorRef } from "./container.js";
import { parseKbitEdge, type PackedKbitEdge } from "./kbit.js";
import type { Manifest } from "@fogline/shared/schemas/manifest";

export { ENGINE_FORMAT, ENGINE_KBIT_FORMAT, ENGINE_MAGIC, ENGINE_MAX_CHANNELS, ENGINE_VERSION, EngineFileError, type PackedExit } from "./container.js";

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
  ...ShortcutHeader,
});

const EngineHeader = z.object({
  format: z.literal(ENGINE_FORMAT),
  source: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  input: z.tuple([z.literal(3), dim, dim]),
  stem: z.object({ weight: TensorRef, bias: TensorRef }),
  blocks: z.array(BlockHeader).min(1),
  split: z.tuple([dim, dim, dim]),
  /** weight: int8 codes [classes][features]; weightScale: float32 per class (float(code) * scale) */
  exit: ExitHeader,
  blobBytes: z.number().int().nonnegative(),
});

/** Either format, by its `kind`. */
export type AnyPackedEdge = PackedEdge | PackedKbitEdge;

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
  shortcut: PackedShortcut;
}

export interface PackedEdge {
  kind: "binary";
  sourceSha256: string;
  input: readonly [number, number, number];
  stem: PackedStem;
  blocks: PackedBlock[];
  split: readonly [number, number, number];
  exit: PackedExit;
  /** the blob the arrays above view (little-endian, 4-aligned offsets; exit.weight is a dequantized copy) */
  blob: Uint8Array;
}

/** Parses and checks an engine file, either format, against the model's manifest. Throws EngineFileError. */
export function parsePackedEdge(bytes: ArrayBuffer, manifest: Manifest, edgeOnnx?: ArrayBuffer): AnyPackedEdge {
  const { json, blob, tensor, fail } = readEngineContainer(bytes, manifest, edgeOnnx);
  const format = (json as { format?: unknown } | null)?.format;
  if (format === ENGINE_KBIT_FORMAT) return parseKbitEdge(json, blob, tensor, fail, manifest);
  const r = EngineHeader.safeParse(json);
  if (!r.success) return fail(`header: ${z.prettifyError(r.error)}`);
  const h = r.data;
  const own = blob;
  const checkWords = (words: Uint32Array, cin: number, what: string) => {
    const mask = cin === 32 ? 0 : ~((1 << cin) - 1) >>> 0;
    if (words.some((w) => (w & mask) !== 0)) fail(`${what} sets bits beyond its ${cin} channels`);
  };

  const stem = parseStem(h.input, h.stem, h.blocks[0]!.cin, manifest, tensor, fail);
  const [, inH, inW] = h.input;
  let c = stem.cout;
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
      bnNegShift: tensor(b.bnNegShift, "f32", b.cin, `${at}.bnNegShift`),
      conv1,
      threshold: tensor(b.threshold, "i32", b.cout, `${at}.threshold`),
      conv2,
      scale: tensor(b.scale, "f32", b.cout, `${at}.scale`),
      shortcut,
    };
  });
  const split = [c, ph, pw] as const;
  const exit = parseSplitAndExit(split, h.split, h.exit, manifest, tensor, fail);
  return { kind: "binary", sourceSha256: h.source.sha256, input: h.input, stem, blocks, split, exit, blob: own };
}

/** sha256 of the engine file must equal manifest.files.engine.sha256 (crypto.subtle: Web standard);
 * with edgeOnnx (whose initializers a k-bit file refers to), its sha256 must equal
 * manifest.files.edge.sha256 too. */
export async function verifyEngineChecksum(bytes: ArrayBuffer, manifest: Manifest, edgeOnnx?: ArrayBuffer): Promise<void> {
  const expected = manifest.files.engine?.sha256;
  if (!expected) throw new EngineFileError(`"${manifest.name}" has no packed engine in its manifest`);
  const got = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  if (got !== expected) {
    throw new EngineFileError(`packed engine of "${manifest.name}": sha256 ${got.slice(0, 12)}… differs from manifest.files.engine.sha256 ${expected.slice(0, 12)}… (corrupt or stale file)`);
  }
  if (edgeOnnx) {
    const edge = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", edgeOnnx)));
    if (edge !== manifest.files.edge.sha256) {
      throw new EngineFileError(`packed engine of "${manifest.name}": edge.onnx sha256 ${edge.slice(0, 12)}… differs from manifest.files.edge.sha256 ${manifest.files.edge.sha256.slice(0, 12)}… (stale engine file or edge.onnx: export and pack again)`);
    }
  }
}
