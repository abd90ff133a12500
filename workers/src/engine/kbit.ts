/**
 * The packed k-bit engine (issue 19): a W2A2..W4A4 edge graph (e.g. the W4A4 `cifar100` edge)
 * run with i8 x i7 dot products in the engine's WASM module (workers/engine/kconv.ts) instead of
 * onnxruntime-web, bit-exact with it. The same GraphRunner contract as OrtWebRunner and the binary
 * PackedRunner (./packed.ts), whose float kernels (stem, shortcut, exit head) it shares.
 *
 * Exactness, as the graph computes (training/onnx_graph.py int_quant_block): every quantizer is
 * the graph's float32 Mul, Add, Clip, Add, Mul, Round in order (kconv.ts quantPack), giving the
 * level L of the uint8 ConvInteger input q = 2L; each conv's int32 sums are exact integers,
 * sum (2L - n) * code, whatever the order; the DequantizeLinear, Relu, shortcut and exit head run
 * in onnxruntime's float32 order (binconv.ts). test/workers/packed.test.ts checks every level,
 * every sum, the split and the exit logits against onnxruntime on every test vector.
 */
import { EDGE_INPUT, EDGE_OUTPUTS, type GraphRunner, type Tensor } from "../../../shared/src/runner.js";
import type { PackedKbitEdge } from "../../../shared/src/packed-kbit.js";
import { type BorderFix, instantiateKernels, type Kernels, outSize, paddedTaps, WasmHeap } from "./kernels.js";
import type { PackedTrace } from "./packed.js";

/** What one block's kernels read: byte offsets into the module's memory. */
interface BlockPtrs {
  bnScale: number;
  bnShift: number;
  conv1: number;
  bias1: number;
  fix1: BorderFix;
  conv1Scale: number;
  midScale: number;
  midShift: number;
  conv2: number;
  bias2: number;
  fix2: BorderFix;
  scale: number;
  shift: number;
  shortcutWeight: number;
  shortcutBias: number;
}

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
  /** the next conv's input: levels of channel pairs, [c/2][h+2][w+2] x 2 bytes, zero-padded */
  private readonly packed: number;
  private readonly acc: number;
  private readonly tmp: number;
  private readonly pooled: number;
  private readonly logits: number;

  /** `module`: the compiled kernels; only tools outside workerd pass their own. */
  constructor(readonly edge: PackedKbitEdge, module?: WebAssembly.Module) {
    this.k = instantiateKernels(module);
    const heap = new WasmHeap(this.k);
    const n = 2 ** edge.actBits - 1;
    this.halfN = n / 2;
    const put = (a: Float32Array | Int32Array | Int8Array) => heap.put(a);
    /** codes [cout][cin][9] -> kconv's [cout][cin/2][9] v128: the (2p, 2p+1) code pair eight times */
    const splatPairs = (codes: Int8Array, cin: number, cout: number) => {
      const out = new Int8Array(cout * (cin / 2) * 9 * 16);
      for (let o = 0; o < cout; o++) {
        for (let p = 0; p < cin / 2; p++) {
          for (let t = 0; t < 9; t++) {
            const a = codes[(o * cin + 2 * p) * 9 + t]!;
            const b = codes[(o * cin + 2 * p + 1) * 9 + t]!;
            const at = ((o * (cin / 2) + p) * 9 + t) * 16;
            for (let r = 0; r < 16; r += 2) {
              out[at + r] = a;
              out[at + r + 1] = b;
            }
          }
        }
      }
      return put(out);
    };
    // kconv computes 2 * sum L*w - n * (sum of all the filter's codes); padding reads L = 0, so
    // a border output also subtracted n * (its padded taps' codes), which ConvInteger's zero-point
    // padding does not: borderFix subtracts fix = -n * that sum.
    const bias = (codes: Int8Array, cout: number) => {
      const per = codes.length / cout;
      return put(Int32Array.from({ length: cout }, (_, o) => -n * codes.subarray(o * per, (o + 1) * per).reduce((a, c) => a + c, 0)));
    };
    const borderFix = (codes: Int8Array, cin: number, cout: number, h: number, w: number, stride: number): BorderFix => {
      const { pos, taps } = paddedTaps(h, w, stride);
      const fix = new Int32Array(cout * pos.length);
      for (let o = 0; o < cout; o++) {
        taps.forEach((ts, i) => {
          let s = 0;
          for (const t of ts) for (let c = 0; c < cin; c++) s += codes[(o * cin + c) * 9 + t]!;
          fix[o * pos.length + i] = -n * s;
        });
      }
      return { pos: put(Int32Array.from(pos)), fix: put(fix), n: pos.length };
    };
    this.stemW = put(edge.stem.weight);
    this.stemB = put(edge.stem.bias);
    const [c, h, w] = edge.input;
    let maxPlane = edge.stem.cout * h * w;
    let maxPacked = 0;
    for (const b of edge.blocks) {
      const ho = outSize(b.h, b.stride);
      const wo = outSize(b.w, b.stride);
      const sc = b.shortcut;
      this.blocks.push({
        bnScale: put(b.bnScale),
        bnShift: put(b.bnShift),
        conv1: splatPairs(b.conv1, b.cin, b.cout),
        bias1: bias(b.conv1, b.cout),
        fix1: borderFix(b.conv1, b.cin, b.cout, b.h, b.w, b.stride),
        conv1Scale: put(b.conv1Scale),
        midScale: put(b.midScale),
        midShift: put(b.midShift),
        conv2: splatPairs(b.conv2, b.cout, b.cout),
        bias2: bias(b.conv2, b.cout),
        fix2: borderFix(b.conv2, b.cout, b.cout, ho, wo, 1),
        scale: put(b.scale),
        shift: sc.kind === "identity" ? put(sc.shift) : 0,
        shortcutWeight: sc.kind === "projection" ? put(sc.weight) : 0,
        shortcutBias: sc.kind === "projection" ? put(sc.bias) : 0,
      });
      maxPlane = Math.max(maxPlane, b.cin * b.h * b.w, b.cout * ho * wo);
      maxPacked = Math.max(maxPacked, b.cin * (b.h + 2) * (b.w + 2), b.cout * (ho + 2) * (wo + 2));
    }
    this.fcW = put(edge.exit.weight);
    this.fcB = put(edge.exit.bias);
    this.img = heap.alloc(4 * c * h * w);
    this.padIn = heap.alloc(4 * c * (h + 2) * (w + 2));
    this.planes = [heap.alloc(4 * maxPlane), heap.alloc(4 * maxPlane)];
    // + 32: a stride-2 conv's last vector loads 16 bytes past its row's last pixel pair
    this.packed = heap.alloc(maxPacked + 32);
    this.acc = heap.alloc(4 * maxPlane);
    this.tmp = heap.alloc(4 * maxPlane);
    this.pooled = heap.alloc(4 * edge.exit.features);
    this.logits = heap.alloc(4 * edge.exit.classes);
  }

  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    try {
      return Promise.resolve(this.runSync(feeds));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Synchronous: no await inside, so concurrent requests of an isolate cannot interleave here. */
  runSync(feeds: Record<string, Tensor>, trace?: PackedTrace): Record<string, Tensor> {
    const image = feeds[EDGE_INPUT];
    const [c, h, w] = this.edge.input;
    if (!image || image.dims.length !== 4 || image.dims[1] !== c || image.dims[2] !== h || image.dims[3] !== w) {
      throw new Error(`packed engine: input "${EDGE_INPUT}" must be [N,${c},${h},${w}], got [${image?.dims.join(",") ?? ""}]`);
    }
    const batch = image.dims[0]!;
    const [sc, sh, sw] = this.edge.split;
    const per = sc * sh * sw;
    const classes = this.edge.exit.classes;
    const split = new Float32Array(batch * per);
    const exitLogits = new Float32Array(batch * classes);
    for (let i = 0; i < batch; i++) {
      const x = this.forward(image.data.subarray(i * c * h * w, (i + 1) * c * h * w), trace);
      split.set(new Float32Array(this.k.memory.buffer, x, per), i * per);
      exitLogits.set(new Float32Array(this.k.memory.buffer, this.logits, classes), i * classes);
    }
    return {
      [EDGE_OUTPUTS.exitLogits]: { data: exitLogits, dims: [batch, classes] },
      [EDGE_OUTPUTS.split]: { data: split, dims: [batch, sc, sh, sw] },
    };
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
      const plane = b.cout * ho * wo;
      k.quantPack(x, false, 0, p.bnScale, p.bnShift, this.halfN, this.packed, b.cin, b.h, b.w);
      const t1 = trace && this.levels(b.cin, b.h, b.w);
      (b.stride === 2 ? k.kconvStride2 : k.kconv)(this.packed, p.conv1, p.bias1, this.acc, b.cin, b.cout, b.h, b.w);
      k.borderFix(this.acc, p.fix1.pos, p.fix1.fix, p.fix1.n, b.cout, ho * wo);
      const s1 = trace && new Int32Array(k.memory.buffer, this.acc, plane).slice();
      // DequantizeLinear(acc, conv1Scale), Relu, then bn_mid's quantizer
      k.quantPack(this.acc, true, p.conv1Scale, p.midScale, p.midShift, this.halfN, this.packed, b.cout, ho, wo);
      const t2 = trace && this.levels(b.cout, ho, wo);
      k.kconv(this.packed, p.conv2, p.bias2, this.acc, b.cout, b.cout, ho, wo);
      k.borderFix(this.acc, p.fix2.pos, p.fix2.fix, p.fix2.n, b.cout, ho * wo);
      if (trace && t1 && t2 && s1) {
        trace.levels.push([t1, t2]);
        trace.sums.push([s1, new Int32Array(k.memory.buffer, this.acc, plane).slice()]);
      }
      if (b.shortcut.kind === "identity") k.residual(this.acc, p.scale, p.shift, x, y, b.cout, ho * wo);
      else k.residualProjected(this.acc, p.scale, x, p.shortcutWeight, p.shortcutBias, y, b.cin, b.cout, b.h, b.w, b.stride, this.tmp);
      [x, y] = [y, x];
      trace?.floats.push(new Float32Array(k.memory.buffer, x, plane).slice());
    });
    const [sc, sh, sw] = e.split;
    k.exitHead(x, this.pooled, this.fcW, this.fcB, this.logits, sc, sh, sw, e.exit.pool, e.exit.classes);
    return x;
  }

  /** The packed plane as ONNX's uint8 ConvInteger input q = 2L, [c][h][w] (tests only). */
  private levels(c: number, h: number, w: number): Uint8Array {
    const bytes = new Uint8Array(this.k.memory.buffer, this.packed, c * (h + 2) * (w + 2));
    const out = new Uint8Array(c * h * w);
    for (let ch = 0; ch < c; ch++) {
      for (let yy = 0; yy < h; yy++) {
        for (let xx = 0; xx < w; xx++) out[(ch * h + yy) * w + xx] = 2 * bytes[(((ch >> 1) * (h + 2) + yy + 1) * (w + 2) + xx + 1) * 2 + (ch & 1)]!;
      }
    }
    return out;
  }
}
