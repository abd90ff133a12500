/**
 * The packed binary engine: the W1A1 edge graph run with XNOR + popcount in a small WASM SIMD
 * module (workers/engine/binconv.ts, built to binconv.wasm) instead of onnxruntime-web
 * (issue 7's moonshot; docs/performance.md has the figures and the exactness argument). It
 * implements the same GraphRunner contract as OrtWebRunner: image [N,3,H,W] in, exit_logits
 * [N,C] and split [N,c,h,w] out, so the pipeline, the wire format and the cloud tail are unchanged.
 *
 * The module and its memory: ./kernels.ts. A k-bit edge runs on ./kbit.ts instead.
 */
import type { GraphRunner, Tensor } from "@fogline/shared/runner";
import { runAsync, runBatch } from "./batch.js";
import type { PackedEdge } from "./format/binary.js";
import { type BorderFix, instantiateKernels, type Kernels, outSize, paddedTaps, WasmHeap } from "./kernels.js";

/** What one block's kernels read: byte offsets into the module's memory. */
interface BlockPtrs {
  bnScale: number;
  bnNegShift: number;
  conv1: number;
  fix1: BorderFix;
  threshold: number;
  conv2: number;
  fix2: BorderFix;
  scale: number;
  shift: number;
  shortcutWeight: number;
  shortcutBias: number;
}

/** Per-layer integer results, for tests: the levels fed to each conv and its int32 sums (both engines). */
export interface PackedTrace {
  /** per block: [act1 levels, act2 levels] as ONNX's uint8 ConvInteger inputs (binary: Where outputs, 0 = -1, 2 = +1), NCHW */
  levels: Uint8Array[][];
  /** per block: [conv1 sums, conv2 sums] as ONNX's ConvInteger outputs, NCHW */
  sums: Int32Array[][];
  /** the float planes: the stem's output, then each block's output (ONNX's Relu outputs) */
  floats: Float32Array[];
}

const popcount = (v: number) => {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
};
/** bconv16 reads u16 words, eight pixels at a time. */
const narrowable = (channels: number, width: number) => channels <= 16 && width % 8 === 0;

export class PackedRunner implements GraphRunner {
  private readonly k: Kernels;
  private readonly blocks: BlockPtrs[] = [];
  private readonly stemW: number;
  private readonly stemB: number;
  private readonly fcW: number;
  private readonly fcB: number;
  // scratch planes (byte offsets)
  private readonly img: number;
  private readonly padIn: number;
  private readonly planes: [number, number];
  private readonly packed: number;
  private readonly acc: number;
  /** the projection shortcut's subsampled input */
  private readonly tmp: number;
  private readonly pooled: number;
  private readonly logits: number;

  /** `module`: the compiled kernels; only tools outside workerd pass their own. */
  constructor(readonly edge: PackedEdge, module?: WebAssembly.Module) {
    this.k = instantiateKernels(module);
    const heap = new WasmHeap(this.k);
    const alloc = (bytes: number) => heap.alloc(bytes);
    const put = (a: Float32Array | Int32Array | Uint32Array) => heap.put(a);
    /** each value four times: the pack kernels load a channel's constant as one v128 */
    const put4 = (a: Float32Array | Int32Array) => {
      const out = new (a.constructor as Float32ArrayConstructor | Int32ArrayConstructor)(a.length * 4);
      a.forEach((v, i) => out.fill(v, 4 * i, 4 * i + 4));
      return put(out);
    };
    // A padded tap reads +1 and adds sum_c w[o][c][tap] = cin - 2 popcount(word); ONNX pads with
    // the zero point (adds 0). Per border output, the sum over its padded taps is subtracted.
    const borderFix = (words: Uint32Array, cin: number, h: number, w: number, stride: number): BorderFix => {
      const cout = words.length / 9;
      const { pos, taps } = paddedTaps(h, w, stride);
      const fix = new Int32Array(cout * pos.length);
      for (let o = 0; o < cout; o++) {
        taps.forEach((ts, i) => {
          fix[o * pos.length + i] = ts.reduce((a, t) => a + cin - 2 * popcount(words[o * 9 + t]!), 0);
        });
      }
      return { pos: put(Int32Array.from(pos)), fix: put(fix), n: pos.length };
    };
    this.stemW = put(edge.stem.weight);
    this.stemB = put(edge.stem.bias);
    let maxPlane = edge.stem.cout * edge.input[1] * edge.input[2];
    let maxPadded = (edge.input[1] + 2) * (edge.input[2] + 2);
    for (const b of edge.blocks) {
      const sc = b.shortcut;
      this.blocks.push({
        bnScale: put4(b.bnScale),
        bnNegShift: put4(b.bnNegShift),
        conv1: put(b.conv1),
        fix1: borderFix(b.conv1, b.cin, b.h, b.w, b.stride),
        threshold: put4(b.threshold),
        conv2: put(b.conv2),
        fix2: borderFix(b.conv2, b.cout, outSize(b.h, b.stride), outSize(b.w, b.stride), 1),
        scale: put(b.scale),
        shift: sc.kind === "identity" ? put(sc.shift) : 0,
        shortcutWeight: sc.kind === "projection" ? put(sc.weight) : 0,
        shortcutBias: sc.kind === "projection" ? put(sc.bias) : 0,
      });
      maxPlane = Math.max(maxPlane, b.cin * b.h * b.w, b.cout * outSize(b.h, b.stride) * outSize(b.w, b.stride));
      maxPadded = Math.max(maxPadded, (b.h + 2) * (b.w + 2));
    }
    this.fcW = put(edge.exit.weight);
    this.fcB = put(edge.exit.bias);
    const [c, h, w] = edge.input;
    this.img = alloc(4 * c * h * w);
    this.padIn = alloc(4 * c * (h + 2) * (w + 2));
    this.planes = [alloc(4 * maxPlane), alloc(4 * maxPlane)];
    this.packed = alloc(4 * maxPadded);
    this.acc = alloc(4 * maxPlane);
    this.tmp = alloc(4 * maxPlane);
    this.pooled = alloc(4 * edge.exit.features);
    this.logits = alloc(4 * edge.exit.classes);
  }

  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return runAsync(() => this.runSync(feeds));
  }

  /** Synchronous: no await inside, so concurrent requests of an isolate cannot interleave here. */
  runSync(feeds: Record<string, Tensor>, trace?: PackedTrace): Record<string, Tensor> {
    return runBatch(this.edge, feeds, this.k.memory, this.logits, (image) => this.forward(image, trace));
  }

  /** One image; returns the byte offset of its split plane (the exit logits are in this.logits). */
  private forward(image: Float32Array, trace?: PackedTrace): number {
    const k = this.k;
    const e = this.edge;
    const [c, h, w] = e.input;
    new Float32Array(k.memory.buffer, this.img, c * h * w).set(image);
    k.padFloat(this.img, this.padIn, c, h, w);
    let [x, y] = this.planes;
    k.stem(this.padIn, this.stemW, this.stemB, x, c, e.stem.cout, h, w);
    trace?.floats.push(new Float32Array(k.memory.buffer, x, e.stem.cout * h * w).slice());
    e.blocks.forEach((b, i) => {
      const p = this.blocks[i]!;
      const ho = outSize(b.h, b.stride);
      const wo = outSize(b.w, b.stride);
      // u16 words where a stride-1 conv reads at most 16 channels (bconv16: twice the pixels per vector)
      const narrow1 = b.stride === 1 && narrowable(b.cin, b.w);
      const narrow2 = narrowable(b.cout, wo);
      k.signPack(x, p.bnScale, p.bnNegShift, this.packed, b.cin, b.h, b.w, narrow1);
      const t1 = trace && this.levels(b.cin, b.h, b.w, narrow1);
      if (b.stride !== 1) k.bconvStride2(this.packed, p.conv1, this.acc, b.cin, b.cout, b.h, b.w);
      else if (narrow1) k.bconv16(this.packed, p.conv1, this.acc, b.cin, b.cout, b.h, b.w);
      else k.bconv(this.packed, p.conv1, this.acc, b.cin, b.cout, b.h, b.w);
      k.borderFix(this.acc, p.fix1.pos, p.fix1.fix, p.fix1.n, b.cout, ho * wo);
      const s1 = trace && new Int32Array(k.memory.buffer, this.acc, b.cout * ho * wo).slice();
      k.thresholdPack(this.acc, p.threshold, this.packed, b.cout, ho, wo, narrow2);
      const t2 = trace && this.levels(b.cout, ho, wo, narrow2);
      if (narrow2) k.bconv16(this.packed, p.conv2, this.acc, b.cout, b.cout, ho, wo);
      else k.bconv(this.packed, p.conv2, this.acc, b.cout, b.cout, ho, wo);
      k.borderFix(this.acc, p.fix2.pos, p.fix2.fix, p.fix2.n, b.cout, ho * wo);
      if (trace && t1 && t2 && s1) {
        trace.levels.push([t1, t2]);
        trace.sums.push([s1, new Int32Array(k.memory.buffer, this.acc, b.cout * ho * wo).slice()]);
      }
      if (b.shortcut.kind === "identity") k.residual(this.acc, p.scale, p.shift, x, y, b.cout, ho * wo);
      else k.residualProjected(this.acc, p.scale, x, p.shortcutWeight, p.shortcutBias, y, b.cin, b.cout, b.h, b.w, b.stride, this.tmp);
      [x, y] = [y, x];
      trace?.floats.push(new Float32Array(k.memory.buffer, x, b.cout * ho * wo).slice());
    });
    const [sc, sh, sw] = e.split;
    k.exitHead(x, this.pooled, this.fcW, this.fcB, this.logits, sc, sh, sw, e.exit.pool, e.exit.classes);
    return x;
  }

  /** The packed plane as ONNX uint8 levels [c][h][w] (tests only). */
  private levels(c: number, h: number, w: number, narrow: boolean): Uint8Array {
    const words = narrow ? new Uint16Array(this.k.memory.buffer, this.packed, (h + 2) * (w + 2)) : new Uint32Array(this.k.memory.buffer, this.packed, (h + 2) * (w + 2));
    const out = new Uint8Array(c * h * w);
    for (let ch = 0; ch < c; ch++) {
      for (let yy = 0; yy < h; yy++) {
        for (let xx = 0; xx < w; xx++) out[(ch * h + yy) * w + xx] = (words[(yy + 1) * (w + 2) + xx + 1]! >>> ch) & 1 ? 0 : 2;
      }
    }
    return out;
  }
}
