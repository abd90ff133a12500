/**
 * The packed engine's WASM module (workers/engine/binconv.ts + kconv.ts, built by
 * `npm run build:engine` into binconv.wasm): its exports, typed, and a bump allocator over its
 * memory. Both engines (packed.ts: binary, kbit.ts: k-bit) instantiate it once each.
 *
 * workerd forbids compiling WASM from bytes, so binconv.wasm is imported as a module (wrangler's
 * default CompiledWasm rule) and instantiated synchronously: a small module with no imports.
 * It uses relaxed SIMD (kconv), which workerd's V8 enables by default; Node 20 needs
 * --experimental-wasm-relaxed-simd to compile it.
 */
import engineModule from "./binconv.wasm";

export interface Kernels {
  memory: WebAssembly.Memory;
  heapBase(): number;
  padFloat(src: number, dst: number, c: number, h: number, w: number): void;
  stem(pad: number, wt: number, bias: number, out: number, cin: number, cout: number, h: number, w: number): void;
  signPack(x: number, scale: number, negShift: number, dst: number, c: number, h: number, w: number, narrow: boolean): void;
  thresholdPack(acc: number, thr: number, dst: number, c: number, h: number, w: number, narrow: boolean): void;
  bconv(inp: number, wt: number, acc: number, cin: number, cout: number, h: number, w: number): void;
  bconv16(inp: number, wt: number, acc: number, cin: number, cout: number, h: number, w: number): void;
  bconvStride2(inp: number, wt: number, acc: number, cin: number, cout: number, h: number, w: number): void;
  borderFix(acc: number, pos: number, fix: number, n: number, cout: number, plane: number): void;
  residual(acc: number, scale: number, shift: number, x: number, out: number, c: number, n: number): void;
  residualProjected(acc: number, scale: number, x: number, wt: number, bias: number, out: number, cin: number, cout: number, h: number, w: number, stride: number, tmp: number): void;
  exitHead(x: number, pooled: number, wt: number, bias: number, logits: number, c: number, h: number, w: number, k: number, classes: number): void;
  // k-bit (kconv.ts)
  quantPack(x: number, fromAcc: boolean, dq: number, scale: number, shift: number, halfN: number, dst: number, c: number, h: number, w: number): void;
  kconvLevels(inp: number, wt: number, tbl: number, cin: number, cout: number, h: number, w: number, chunk: number, pk: number, dq: number, ms: number, mt: number, halfN: number, scratch: number): void;
  kconvLevelsStride2(inp: number, wt: number, tbl: number, cin: number, cout: number, h: number, w: number, chunk: number, pk: number, dq: number, ms: number, mt: number, halfN: number, scratch: number): void;
  kconvSums(inp: number, wt: number, tbl: number, cin: number, cout: number, h: number, w: number, chunk: number, acc: number, scratch: number): void;
  kconvSumsStride2(inp: number, wt: number, tbl: number, cin: number, cout: number, h: number, w: number, chunk: number, acc: number, scratch: number): void;
  kbitLayout(codes: number, cin: number, cout: number, wt: number, tapSum: number, pairSums: number): void;
  kconvResidual(inp: number, wt: number, tbl: number, cin: number, cout: number, h: number, w: number, chunk: number, scale: number, shift: number, x: number, out: number, pk: number, ns: number, nt: number, halfN: number, scratch: number): void;
}

/** A fresh instance (own memory); `module`: the compiled kernels, only tools outside workerd pass their own. */
export function instantiateKernels(module: WebAssembly.Module = engineModule): Kernels {
  return new WebAssembly.Instance(module, {}).exports as unknown as Kernels;
}

/** A bump allocator over the module's memory, 16-byte aligned for the v128 loads. */
export class WasmHeap {
  private top: number;

  constructor(private readonly k: Kernels) {
    this.top = k.heapBase();
  }

  alloc(bytes: number): number {
    const at = Math.ceil(this.top / 16) * 16;
    this.top = at + bytes;
    this.ensure();
    return at;
  }

  /** Copies an array into fresh memory; returns its byte offset. */
  put(a: Float32Array | Int32Array | Uint32Array | Int8Array | Uint8Array): number {
    const at = this.alloc(a.byteLength);
    new Uint8Array(this.k.memory.buffer, at, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return at;
  }

  private ensure(): void {
    const have = this.k.memory.buffer.byteLength;
    if (this.top > have) this.k.memory.grow(Math.ceil((this.top - have) / 65536));
  }
}

/** A conv's border correction as the borderFix kernel reads it: n output offsets and [cout][n] sums to subtract. */
export interface BorderFix {
  pos: number;
  fix: number;
  n: number;
}

export const outSize = (n: number, stride: number) => Math.floor((n - 1) / stride) + 1;

/** The outputs of a 3x3, pad 1 conv that read padding: their offsets in the output plane and
 * their padded taps (0..8, row-major). */
export function paddedTaps(h: number, w: number, stride: number): { pos: number[]; taps: number[][] } {
  const ho = outSize(h, stride);
  const wo = outSize(w, stride);
  const pos: number[] = [];
  const taps: number[][] = [];
  for (let y = 0; y < ho; y++) {
    for (let x = 0; x < wo; x++) {
      const padded: number[] = [];
      for (let t = 0; t < 9; t++) {
        const iy = y * stride + Math.floor(t / 3) - 1;
        const ix = x * stride + (t % 3) - 1;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) padded.push(t);
      }
      if (padded.length) {
        pos.push(y * wo + x);
        taps.push(padded);
      }
    }
  }
  return { pos, taps };
}
