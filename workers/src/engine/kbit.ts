/**
 * The packed k-bit engine (issue 19): a W2A2..W4A4 edge graph (e.g. the W4A4 `cifar100` edge)
 * run with i8 x i7 dot products in the engine's WASM module (workers/engine/kconv.ts) instead of
 * onnxruntime-web, bit-exact with it. The same GraphRunner contract as OrtWebRunner and the binary
 * PackedRunner (./packed.ts), whose float kernels (stem, projection shortcut, exit head) it shares.
 *
 * Exactness, as the graph computes (training/onnx_graph.py int_quant_block): every quantizer is
 * the graph's float32 Mul, Add, Clip, Add, Mul, Round in order (kconv.ts levels4), giving the
 * level L of the uint8 ConvInteger input q = 2L; each conv's int32 sums are exact integers,
 * sum (2L - n) * code, whatever the order; the DequantizeLinear, Relu, shortcut and exit head run
 * in onnxruntime's float32 order (binconv.ts). Per block: quantPack (only after the stem or a
 * projection block), kconvLevels (conv1 with bn_mid's quantizer fused: conv2's packed levels),
 * then kconvResidual (conv2, shift, shortcut, Relu and the next block's quantizer fused) or
 * kconvSums + residualProjected. test/workers/packed.test.ts checks every level, every sum
 * (the trace reruns the convs in SUMS mode), the split and the exit logits against onnxruntime
 * on every test vector.
 */
import type { GraphRunner, Tensor } from "@fogline/shared/runner";
import { runAsync, runBatch } from "./batch.js";
import type { PackedKbitEdge } from "./format/kbit.js";
import { instantiateKernels, type Kernels, outSize, WasmHeap } from "./kernels.js";
import type { PackedTrace } from "./packed.js";

/** One conv as kconv reads it: its weight groups, border-class bias table and channel chunk. */
interface ConvPtrs {
  wt: number;
  tbl: number;
  chunk: number;
}

/** What one block's kernels read: byte offsets into the module's memory. */
interface BlockPtrs {
  bnScale: number;
  bnShift: number;
  conv1: ConvPtrs;
  conv1Scale: number;
  midScale: number;
  midShift: number;
  conv2: ConvPtrs;
  scale: number;
  shift: number;
  shortcutWeight: number;
  shortcutBias: number;
  /** the packed levels into conv1 ([cin/2][h+2][w+2] x 2 bytes) and conv2, zero borders kept */
  in: number;
  mid: number;
}

/** 2 * sum L*w of a chunk of channel pairs must lie in i16 as sum L*w (kconv.ts): 15 * the
 * filter's positive and negative code sums over the chunk at most 32767. */
const I16_MAX = 32767;

export class KbitRunner implements GraphRunner {
  private readonly k: Kernels;
  private readonly blocks: BlockPtrs[] = [];
  /** n / 2 of the quantizers (n = 2^bits - 1): exact in float32 */
  private readonly halfN: number;
  private readonly stemW: number;
  private readonly stemB: number;
  private readonly fcW: number;
  private readonly fcB: number;
  // scratch (byte offsets)
  private readonly img: number;
  private readonly padIn: number;
  private readonly planes: [number, number];
  /** kconv's scratch: 512 bytes */
  private readonly scratch: number;
  private readonly acc: number;
  private readonly tmp: number;
  private readonly pooled: number;
  private readonly logits: number;

  /** `module`: the compiled kernels; only tools outside workerd pass their own. `maxChunk`
   * (tests): at most this many channel pairs per i16 accumulation, to run kconv's multi-chunk
   * path, which no layer of the shipped cifar100 edge needs. */
  constructor(readonly edge: PackedKbitEdge, module?: WebAssembly.Module, maxChunk = Infinity) {
    this.k = instantiateKernels(module);
    const heap = new WasmHeap(this.k);
    const n = 2 ** edge.actBits - 1;
    this.halfN = n / 2;
    const put = (a: Float32Array | Int32Array | Int8Array) => heap.put(a);
    /** One conv's codes [cout][cin][9] as kconv reads them: weights in groups of KBIT_FILTERS
     * filters, [cout/4][cin/2][9][4] v128 (the (2p, 2p+1) code pair eight times); the bias
     * table [cout][3 row classes][4 column kinds][8 lanes] i32; the largest exact chunk. */
    let maxCodes = 0;
    for (const b of edge.blocks) maxCodes = Math.max(maxCodes, b.conv1.length, b.conv2.length);
    const codesAt = heap.alloc(maxCodes);
    const maxCout = Math.max(...edge.blocks.map((b) => b.cout));
    const tapSumAt = heap.alloc(4 * 9 * maxCout);
    const pairSumsAt = heap.alloc(8 * maxCout * Math.max(...edge.blocks.map((b) => Math.max(b.cin, b.cout))));
    const conv = (codes: Int8Array, cin: number, cout: number, h: number, w: number, stride: number): ConvPtrs => {
      const pairs = cin / 2;
      // the weight layout and per-tap code sums in WASM (kbitLayout): a cold isolate's JS is slow at it
      const wt = heap.alloc(cout * pairs * 9 * 16);
      new Int8Array(this.k.memory.buffer, codesAt, codes.length).set(codes);
      this.k.kbitLayout(codesAt, cin, cout, wt, tapSumAt, pairSumsAt);
      const tapSum = new Int32Array(this.k.memory.buffer, tapSumAt, cout * 9).slice();
      const pairSums = new Int32Array(this.k.memory.buffer, pairSumsAt, cout * pairs * 2).slice();
      // kconv computes 2 * sum L*w over every tap; a padded tap reads L = 0 and adds nothing, as
      // ConvInteger's zero-point padding does, so an output's bias is -n * the sum of the codes
      // of its unpadded taps: one value per border class (top/middle/bottom row x first/middle/
      // last column), laid out per 8-pixel vector (first and/or last of its row)
      const ho = outSize(h, stride);
      const wo = outSize(w, stride);
      const inside = (y: number, x: number, t: number) => {
        const iy = y * stride + Math.floor(t / 3) - 1;
        const ix = x * stride + (t % 3) - 1;
        return iy >= 0 && iy < h && ix >= 0 && ix < w;
      };
      // the sum of the unpadded taps' codes of a pixel in row class r (top, middle, bottom) and
      // column class c (first, middle, last), from a representative pixel of each
      const rows = [0, Math.min(1, ho - 1), ho - 1];
      const cols = [0, Math.min(1, wo - 1), wo - 1];
      const masks = rows.flatMap((y) => cols.map((x) => [0, 1, 2, 3, 4, 5, 6, 7, 8].filter((t) => inside(y, x, t))));
      const colClass = (x: number) => (x === 0 ? 0 : x === wo - 1 ? 2 : 1);
      const tbl = new Int32Array(cout * 96);
      const cls = new Int32Array(9);
      for (let o = 0; o < cout; o++) {
        for (let i = 0; i < 9; i++) cls[i] = masks[i]!.reduce((a, t) => a + tapSum[o * 9 + t]!, 0);
        for (let r = 0; r < 3; r++) {
          for (let kind = 0; kind < 4; kind++) {
            // a vector of the kind: + 1 first of its row, + 2 last (x0 its first column)
            const x0 = kind === 0 ? Math.min(8, wo - 8) : kind === 2 ? wo - 8 : 0;
            for (let j = 0; j < 8; j++) tbl[o * 96 + (r * 4 + kind) * 8 + j] = -n * cls[r * 3 + colClass(x0 + j)]!;
          }
        }
      }
      // the largest chunk of channel pairs whose sum L*w fits i16 in every filter (8 always does)
      const fits = (chunk: number) => {
        for (let o = 0; o < cout; o++) {
          for (let p0 = 0; p0 < pairs; p0 += chunk) {
            let pos = 0;
            let neg = 0;
            for (let p = p0; p < Math.min(pairs, p0 + chunk); p++) {
              pos += pairSums[(o * pairs + p) * 2]!;
              neg += pairSums[(o * pairs + p) * 2 + 1]!;
            }
            if (n * Math.max(pos, neg) > I16_MAX) return false;
          }
        }
        return true;
      };
      let chunk = pairs;
      while (chunk > 8 && (chunk > maxChunk || !fits(chunk))) chunk = Math.max(8, chunk >> 1);
      return { wt, tbl: put(tbl), chunk };
    };
    const packedPlane = (c: number, ph: number, pw: number) => heap.alloc(c * (ph + 2) * (pw + 2) + 32);
    this.stemW = put(edge.stem.weight);
    this.stemB = put(edge.stem.bias);
    const [c, h, w] = edge.input;
    let maxPlane = edge.stem.cout * h * w;
    for (const b of edge.blocks) {
      const ho = outSize(b.h, b.stride);
      const wo = outSize(b.w, b.stride);
      const sc = b.shortcut;
      this.blocks.push({
        bnScale: put(b.bnScale),
        bnShift: put(b.bnShift),
        conv1: conv(b.conv1, b.cin, b.cout, b.h, b.w, b.stride),
        conv1Scale: put(b.conv1Scale),
        midScale: put(b.midScale),
        midShift: put(b.midShift),
        conv2: conv(b.conv2, b.cout, b.cout, ho, wo, 1),
        scale: put(b.scale),
        shift: sc.kind === "identity" ? put(sc.shift) : 0,
        shortcutWeight: sc.kind === "projection" ? put(sc.weight) : 0,
        shortcutBias: sc.kind === "projection" ? put(sc.bias) : 0,
        // + 32: a stride-2 conv's last vector loads 16 bytes past its row's last pixel pair
        in: packedPlane(b.cin, b.h, b.w),
        mid: packedPlane(b.cout, ho, wo),
      });
      maxPlane = Math.max(maxPlane, b.cin * b.h * b.w, b.cout * ho * wo);
    }
    this.fcW = put(edge.exit.weight);
    this.fcB = put(edge.exit.bias);
    this.img = heap.alloc(4 * c * h * w);
    this.padIn = heap.alloc(4 * c * (h + 2) * (w + 2));
    this.planes = [heap.alloc(4 * maxPlane), heap.alloc(4 * maxPlane)];
    this.scratch = heap.alloc(512);
    this.acc = heap.alloc(4 * maxPlane);
    this.tmp = heap.alloc(4 * maxPlane);
    this.pooled = heap.alloc(4 * edge.exit.features);
    this.logits = heap.alloc(4 * edge.exit.classes);
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
      const next = e.blocks[i + 1] && this.blocks[i + 1];
      const ho = outSize(b.h, b.stride);
      const wo = outSize(b.w, b.stride);
      const plane = b.cout * ho * wo;
      // the block's input levels: written by the previous block's conv2 unless it had a projection
      if (i === 0 || e.blocks[i - 1]!.shortcut.kind === "projection") {
        k.quantPack(x, false, 0, p.bnScale, p.bnShift, this.halfN, p.in, b.cin, b.h, b.w);
      }
      // conv1, DequantizeLinear(conv1Scale), Relu, bn_mid's quantizer: conv2's input levels
      const c1 = p.conv1;
      (b.stride === 2 ? k.kconvLevelsStride2 : k.kconvLevels)(p.in, c1.wt, c1.tbl, b.cin, b.cout, b.h, b.w, c1.chunk, p.mid, p.conv1Scale, p.midScale, p.midShift, this.halfN, this.scratch);
      const c2 = p.conv2;
      if (trace) {
        // the int32 sums the fused kernels keep in registers, from the same kernel's SUMS mode
        (b.stride === 2 ? k.kconvSumsStride2 : k.kconvSums)(p.in, c1.wt, c1.tbl, b.cin, b.cout, b.h, b.w, c1.chunk, this.acc, this.scratch);
        const s1 = new Int32Array(k.memory.buffer, this.acc, plane).slice();
        k.kconvSums(p.mid, c2.wt, c2.tbl, b.cout, b.cout, ho, wo, c2.chunk, this.acc, this.scratch);
        trace.levels.push([this.levels(p.in, b.cin, b.h, b.w), this.levels(p.mid, b.cout, ho, wo)]);
        trace.sums.push([s1, new Int32Array(k.memory.buffer, this.acc, plane).slice()]);
      }
      if (b.shortcut.kind === "identity") {
        // conv2, + shift, + x, Relu, and the next block's quantizer of that
        k.kconvResidual(p.mid, c2.wt, c2.tbl, b.cout, b.cout, ho, wo, c2.chunk, p.scale, p.shift, x, y, next ? next.in : 0, next ? next.bnScale : 0, next ? next.bnShift : 0, this.halfN, this.scratch);
      } else {
        k.kconvSums(p.mid, c2.wt, c2.tbl, b.cout, b.cout, ho, wo, c2.chunk, this.acc, this.scratch);
        k.residualProjected(this.acc, p.scale, x, p.shortcutWeight, p.shortcutBias, y, b.cin, b.cout, b.h, b.w, b.stride, this.tmp);
      }
      [x, y] = [y, x];
      trace?.floats.push(new Float32Array(k.memory.buffer, x, plane).slice());
    });
    const [sc, sh, sw] = e.split;
    k.exitHead(x, this.pooled, this.fcW, this.fcB, this.logits, sc, sh, sw, e.exit.pool, e.exit.classes);
    return x;
  }

  /** A packed plane as ONNX's uint8 ConvInteger input q = 2L, [c][h][w] (tests only). */
  private levels(at: number, c: number, h: number, w: number): Uint8Array {
    const bytes = new Uint8Array(this.k.memory.buffer, at, c * (h + 2) * (w + 2));
    const out = new Uint8Array(c * h * w);
    for (let ch = 0; ch < c; ch++) {
      for (let yy = 0; yy < h; yy++) {
        for (let xx = 0; xx < w; xx++) out[(ch * h + yy) * w + xx] = 2 * bytes[(((ch >> 1) * (h + 2) + yy + 1) * (w + 2) + xx + 1) * 2 + (ch & 1)]!;
      }
    }
    return out;
  }
}
