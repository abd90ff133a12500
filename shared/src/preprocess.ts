/**
 * Preprocessing, identical in Python and TypeScript (docs/contracts.md "Preprocessing"):
 * decode to 8-bit RGB, resize with area averaging, normalise with the manifest's mean/std,
 * NCHW float32. The testvectors.json written by the training side checks this file.
 */
import { decodeImage, type DecodeLimits, type RgbImage } from "./image.js";
import type { Manifest } from "./schemas/manifest.js";

/**
 * Row-stochastic area weights `R[o, i]`: output cell `o` covers `[o*nIn/nOut, (o+1)*nIn/nOut)`
 * of the source and averages the source cells it overlaps, weighted by the overlap. Covers up-
 * and down-scaling; the identity when nIn === nOut. Stored sparsely: each output touches at
 * most ceil(nIn/nOut)+1 inputs.
 */
export interface AreaWeights {
  start: Int32Array;
  /** weights[o] has the weights for inputs start[o], start[o]+1, ... */
  weights: Float64Array[];
}

export function areaWeights(nIn: number, nOut: number): AreaWeights {
  const start = new Int32Array(nOut);
  const weights: Float64Array[] = [];
  for (let o = 0; o < nOut; o++) {
    const a = (o * nIn) / nOut;
    const b = ((o + 1) * nIn) / nOut;
    const i0 = Math.floor(a);
    const i1 = Math.ceil(b);
    const w = new Float64Array(i1 - i0);
    let sum = 0;
    for (let i = i0; i < i1; i++) {
      const overlap = Math.max(0, Math.min(b, i + 1) - Math.max(a, i));
      w[i - i0] = overlap;
      sum += overlap;
    }
    for (let k = 0; k < w.length; k++) w[k]! /= sum;
    start[o] = i0;
    weights.push(w);
  }
  return { start, weights };
}

/** `out[c] = Ry @ img[c] @ Rx^T`, in float64, planar output `[3, outH, outW]` of 0..255 values. */
export function resizeArea(img: RgbImage, outH: number, outW: number): Float64Array {
  const { width: W, height: H, data } = img;
  const rx = areaWeights(W, outW);
  const ry = areaWeights(H, outH);
  // columns first: tmp[c][y][ox] over every source row y
  const tmp = new Float64Array(3 * H * outW);
  for (let y = 0; y < H; y++) {
    const row = y * W * 3;
    for (let ox = 0; ox < outW; ox++) {
      const w = rx.weights[ox]!;
      const x0 = rx.start[ox]!;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < w.length; k++) {
        const p = row + (x0 + k) * 3;
        r += w[k]! * data[p]!;
        g += w[k]! * data[p + 1]!;
        b += w[k]! * data[p + 2]!;
      }
      tmp[(0 * H + y) * outW + ox] = r;
      tmp[(1 * H + y) * outW + ox] = g;
      tmp[(2 * H + y) * outW + ox] = b;
    }
  }
  const out = new Float64Array(3 * outH * outW);
  for (let c = 0; c < 3; c++) {
    for (let oy = 0; oy < outH; oy++) {
      const w = ry.weights[oy]!;
      const y0 = ry.start[oy]!;
      for (let ox = 0; ox < outW; ox++) {
        let s = 0;
        for (let k = 0; k < w.length; k++) s += w[k]! * tmp[(c * H + y0 + k) * outW + ox]!;
        out[(c * outH + oy) * outW + ox] = s;
      }
    }
  }
  return out;
}

export type InputSpec = Pick<Manifest["input"], "height" | "width" | "mean" | "std">;

/** `x = (v / 255 - mean[c]) / std[c]`, NCHW float32 with N = 1. */
export function normalize(planar: Float64Array, spec: InputSpec): Float32Array {
  const plane = spec.height * spec.width;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = spec.mean[c]!;
    const std = spec.std[c]!;
    for (let i = 0; i < plane; i++) out[c * plane + i] = (planar[c * plane + i]! / 255 - mean) / std;
  }
  return out;
}

export function preprocessRgb(img: RgbImage, spec: InputSpec): Float32Array {
  return normalize(resizeArea(img, spec.height, spec.width), spec);
}

/** Bytes of a PNG/JPEG upload to the model input tensor data (`[1, 3, h, w]`). */
export function preprocessImage(bytes: Uint8Array, spec: InputSpec, limits?: DecodeLimits): Float32Array {
  return preprocessRgb(decodeImage(bytes, limits), spec);
}
