/**
 * Preprocessing, identical in Python and TypeScript (docs/contracts.md "Preprocessing"):
 * decode to 8-bit RGB, resize with area averaging, normalise with the manifest's mean/std,
 * NCHW float32. The testvectors.json written by the training side checks this file.
 */
import { decodeRows, type DecodeLimits, type RgbImage, type RowSink } from "./image.js";
import type { Manifest } from "@fogline/shared/schemas/manifest";

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

/**
 * `out[c] = Ry @ img[c] @ Rx^T`, in float64, accumulated row by row as the decoder hands rows
 * out (image.ts `RowSink`): each source row is reduced to `outW` columns, then added, weighted,
 * into the output rows it overlaps. Memory is the output plus one reduced row, whatever the
 * source size. Each output value sums its terms in source-row order, as `Ry @ (img @ Rx^T)`
 * does, so the result is the same to the last bit.
 */
export class AreaResizer implements RowSink {
  /** planar `[3, outH, outW]`, 0..255 values */
  readonly out: Float64Array;
  private rx!: AreaWeights;
  private ry!: AreaWeights;
  private readonly reduced: Float64Array;
  /** first output row whose source range is not yet behind the current row */
  private firstOpen = 0;

  constructor(
    readonly outH: number,
    readonly outW: number,
  ) {
    this.out = new Float64Array(3 * outH * outW);
    this.reduced = new Float64Array(3 * outW);
  }

  start(width: number, height: number): void {
    this.rx = areaWeights(width, this.outW);
    this.ry = areaWeights(height, this.outH);
    this.firstOpen = 0;
    this.out.fill(0);
  }

  row(y: number, rgb: Uint8Array): void {
    const { rx, ry, reduced, out, outH, outW } = this;
    for (let ox = 0; ox < outW; ox++) {
      const w = rx.weights[ox]!;
      const x0 = rx.start[ox]!;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < w.length; k++) {
        const p = (x0 + k) * 3;
        r += w[k]! * rgb[p]!;
        g += w[k]! * rgb[p + 1]!;
        b += w[k]! * rgb[p + 2]!;
      }
      reduced[ox] = r;
      reduced[outW + ox] = g;
      reduced[2 * outW + ox] = b;
    }
    while (this.firstOpen < outH && ry.start[this.firstOpen]! + ry.weights[this.firstOpen]!.length <= y) this.firstOpen++;
    for (let oy = this.firstOpen; oy < outH && ry.start[oy]! <= y; oy++) {
      const wy = ry.weights[oy]![y - ry.start[oy]!]!;
      for (let c = 0; c < 3; c++) {
        const base = (c * outH + oy) * outW;
        for (let ox = 0; ox < outW; ox++) out[base + ox] = out[base + ox]! + wy * reduced[c * outW + ox]!;
      }
    }
  }
}

/** An RGB image resized by area averaging: planar `[3, outH, outW]` of 0..255 values. */
export function resizeArea(img: RgbImage, outH: number, outW: number): Float64Array {
  const resizer = new AreaResizer(outH, outW);
  resizer.start(img.width, img.height);
  const row = 3 * img.width;
  for (let y = 0; y < img.height; y++) resizer.row(y, img.data.subarray(y * row, (y + 1) * row));
  return resizer.out;
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

/** Bytes of a PNG/JPEG upload to the model input tensor data (`[1, 3, h, w]`), decoded row by
 * row into the resize: the image itself is never held (image.ts, `decodeRows`). */
export function preprocessImage(bytes: Uint8Array, spec: InputSpec, limits?: DecodeLimits): Float32Array {
  const resizer = new AreaResizer(spec.height, spec.width);
  decodeRows(bytes, resizer, limits);
  return normalize(resizer.out, spec);
}
