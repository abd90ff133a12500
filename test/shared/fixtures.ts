/**
 * Fixtures both test projects use: the training side's testvectors.json (docs/contracts.md),
 * parsed and checked, and small images made on the fly.
 */
import { encode as encodePng } from "fast-png";
import { z } from "zod";
import { testVectors } from "../models.generated.js";

export const TestVector = z.object({
  name: z.string(),
  contentType: z.string(),
  imageBase64: z.string(),
  input: z.array(z.number()),
  exitLogits: z.array(z.number()),
  entropy: z.number(),
  /** may be null to keep the file small; `splitSum` is then given (at least one vector has it in full) */
  split: z.array(z.number()).nullable(),
  splitSum: z.number().optional(),
  logits: z.array(z.number()),
});
export type TestVector = z.infer<typeof TestVector>;

const EnergyFigures = z.record(z.string(), z.number());
/** training/energy.py's figures for one request answered at the edge / by the cloud */
const RequestEnergyFigures = z.object({ paper: EnergyFigures, op45nm: EnergyFigures });

export const TestVectors = z.object({
  model: z.string(),
  fingerprint: z.string(),
  energy: z.object({ edgeExit: RequestEnergyFigures, cloudExit: RequestEnergyFigures }),
  vectors: z.array(TestVector).min(1),
});
export type TestVectors = z.infer<typeof TestVectors>;

/** The default model the HTTP contract names; tests use it when present. */
export const DEFAULT_MODEL = "cifar10";

export function vectorsFor(model: string = DEFAULT_MODEL): TestVectors {
  const raw = testVectors[model];
  if (!raw) throw new Error(`models/${model}/testvectors.json is missing (run scripts/gen-model-registry.ts)`);
  return TestVectors.parse(raw);
}

export const modelsWithVectors = (): string[] => Object.keys(testVectors).sort();

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** True when a JPEG's components have different sampling factors (e.g. 4:2:0 chroma). */
export function jpegHasChromaSubsampling(bytes: Uint8Array): boolean {
  let off = 2;
  while (off + 4 <= bytes.length && bytes[off] === 0xff) {
    const marker = bytes[off + 1]!;
    const len = (bytes[off + 2]! << 8) | bytes[off + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const n = bytes[off + 9]!;
      const factors = new Set<number>();
      for (let c = 0; c < n; c++) factors.add(bytes[off + 11 + 3 * c]!);
      return factors.size > 1;
    }
    off += 2 + len;
  }
  return false;
}

/** A deterministic RGB PNG of any size. */
export function makePng(width: number, height: number, seed = 1): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    data[i] = s >> 23;
  }
  return new Uint8Array(encodePng({ width, height, data, channels: 3, depth: 8 }));
}

/** A PNG whose IHDR claims `width` x `height` but carries no pixel data. */
export function pngHeaderOnly(width: number, height: number): Uint8Array<ArrayBuffer> {
  const real = makePng(1, 1);
  const out = real.slice(0, 33); // signature + IHDR chunk (with its CRC, now stale)
  const view = new DataView(out.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  return out;
}
