// AssemblyScript source of the packed binary engine's kernels (docs/performance.md, issue 7).
// Built by `npm run build:engine` into workers/src/engine/binconv.wasm (committed; a Node test
// rebuilds it and compares the bytes). The host (workers/src/engine/packed.ts) owns the memory
// layout and calls these kernels with byte offsets into this module's exported memory.
//
// Conventions, shared with training/pack.py:
// - a binary activation or weight is one bit per channel in a u32 word (channel c = bit c,
//   at most 32 channels): bit 1 means -1, bit 0 means +1;
// - packed activation planes are zero-padded by one pixel on every side ((h+2) x (w+2) words),
//   i.e. the padding reads as +1 and the host's border correction removes its contribution
//   (ONNX ConvInteger pads with the zero point, so a padded tap contributes exactly 0);
// - float planes are [C][H][W] f32, unpadded unless named "pad".
//
// Float kernels use the float32 operations of the ONNX graph in its order (mul then add, no
// fused multiply-add, sums from the first tap to the last) so they round like onnxruntime's.
// Relu is f32x4.pmax(0, v): max(v, 0) exactly for every non-NaN v, -0 included, in one maxps
// (V8 lowers f32x4.max to a sequence for its NaN and signed-zero rules).

// ---- the float stem: relu(conv3x3(x) + bias), stride 1, x given zero-padded ----------------

/** pad: [cin][h+2][w+2] f32, wt: [cout][cin][3][3] f32, bias: [cout] f32, out: [cout][h][w] f32.
 * Eight pixels (two vectors) per step share each splatted weight; w must be a multiple of 8. */
export function stem(pad: usize, wt: usize, bias: usize, out: usize, cin: i32, cout: i32, h: i32, w: i32): void {
  const pw = w + 2;
  const zero = f32x4.splat(0);
  for (let o = 0; o < cout; o++) {
    const b = f32x4.splat(load<f32>(bias + (<usize>o << 2)));
    const wo = wt + (<usize>(o * cin * 9) << 2);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x += 8) {
        let acc0 = zero;
        let acc1 = zero;
        // im2col order (channel, ky, kx), as onnxruntime's Conv feeds its GEMM: a sum from the
        // first tap to the last, mul then add (no FMA in WASM SIMD), bias after the sum
        for (let c = 0; c < cin; c++) {
          const base = pad + (<usize>((c * (h + 2) + y) * pw + x) << 2);
          const wc = wo + (<usize>(c * 9) << 2);
          for (let ky = 0; ky < 3; ky++) {
            const row = base + (<usize>(ky * pw) << 2);
            const wr = wc + (<usize>(ky * 3) << 2);
            const k0 = f32x4.splat(load<f32>(wr));
            const k1 = f32x4.splat(load<f32>(wr, 4));
            const k2 = f32x4.splat(load<f32>(wr, 8));
            acc0 = f32x4.add(acc0, f32x4.mul(v128.load(row), k0));
            acc1 = f32x4.add(acc1, f32x4.mul(v128.load(row, 16), k0));
            acc0 = f32x4.add(acc0, f32x4.mul(v128.load(row, 4), k1));
            acc1 = f32x4.add(acc1, f32x4.mul(v128.load(row, 20), k1));
            acc0 = f32x4.add(acc0, f32x4.mul(v128.load(row, 8), k2));
            acc1 = f32x4.add(acc1, f32x4.mul(v128.load(row, 24), k2));
          }
        }
        const dst = out + (<usize>((o * h + y) * w + x) << 2);
        v128.store(dst, f32x4.pmax(zero, f32x4.add(acc0, b)));
        v128.store(dst, f32x4.pmax(zero, f32x4.add(acc1, b)), 16);
      }
    }
  }
}

/** Copies [c][h][w] f32 into the interior of a zeroed [c][h+2][w+2] plane. */
export function padFloat(src: usize, dst: usize, c: i32, h: i32, w: i32): void {
  memory.fill(dst, 0, <usize>(c * (h + 2) * (w + 2)) << 2);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      memory.copy(dst + (<usize>((ch * (h + 2) + y + 1) * (w + 2) + 1) << 2), src + (<usize>((ch * h + y) * w) << 2), <usize>w << 2);
    }
  }
}

// ---- sign decisions into packed planes -----------------------------------------------------

/** Stores four pixels' words: u32, or u16 (narrow: planes of at most 16 channels, read by bconv16). */
// @ts-ignore: decorator
@inline function storeWords(dst: usize, index: i32, word: v128, narrow: bool): void {
  if (narrow) v128.store64_lane(dst + (<usize>index << 1), i16x8.narrow_i32x4_u(word, word), 0);
  else v128.store(dst + (<usize>index << 2), word);
}

/** bn_in: bit c of pixel p is 1 (value -1) unless fl(x*scale) >= negShift (the graph's Mul and
 * GreaterOrEqual, training/onnx_graph.py affine_act_u8). x: [c][h][w] f32, dst padded words.
 * scale, negShift: per channel, each value repeated 4 times (one v128 load, no splat per pixel). */
export function signPack(x: usize, scale: usize, negShift: usize, dst: usize, c: i32, h: i32, w: i32, narrow: bool): void {
  const pw = w + 2;
  const hw = h * w;
  memory.fill(dst, 0, <usize>((h + 2) * pw) << (narrow ? 1 : 2));
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx += 4) {
      let word = i32x4.splat(0);
      let bit = i32x4.splat(1);
      const p = y * w + xx;
      for (let ch = 0; ch < c; ch++) {
        const v = f32x4.mul(v128.load(x + (<usize>(ch * hw + p) << 2)), v128.load(scale + (<usize>ch << 4)));
        // not (v >= t): bit set; a NaN never occurs after a ReLU of finite sums
        word = v128.or(word, v128.andnot(bit, f32x4.ge(v, v128.load(negShift + (<usize>ch << 4)))));
        bit = i32x4.add(bit, bit);
      }
      storeWords(dst, (y + 1) * pw + xx + 1, word, narrow);
    }
  }
}

/** bn_mid as the integer threshold: bit o is 1 (value -1) unless acc >= thr[o]. acc: [c][h][w] i32;
 * thr: per channel, repeated 4 times. */
export function thresholdPack(acc: usize, thr: usize, dst: usize, c: i32, h: i32, w: i32, narrow: bool): void {
  const pw = w + 2;
  const hw = h * w;
  memory.fill(dst, 0, <usize>((h + 2) * pw) << (narrow ? 1 : 2));
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w; xx += 4) {
      let word = i32x4.splat(0);
      let bit = i32x4.splat(1);
      const p = y * w + xx;
      for (let ch = 0; ch < c; ch++) {
        const lt = i32x4.lt_s(v128.load(acc + (<usize>(ch * hw + p) << 2)), v128.load(thr + (<usize>ch << 4)));
        word = v128.or(word, v128.and(lt, bit));
        bit = i32x4.add(bit, bit);
      }
      storeWords(dst, (y + 1) * pw + xx + 1, word, narrow);
    }
  }
}

// ---- binary 3x3 convolution: XNOR + popcount ------------------------------------------------

/** Per-byte popcount of nine vectors, summed: a Harley-Seal carry-save adder tree (full adder:
 * sum = a ^ b ^ c, carry = majority = bitselect(c, a, a ^ b)) reduces the nine to bit planes of
 * weight 1, 2, 4, 8, so only four i8x16.popcnt run instead of nine (a popcnt is ~8 x64
 * instructions without AVX-512). Each byte's count is at most 9 * 8 = 72. */
// @ts-ignore: decorator
@inline function popcount9(t0: v128, t1: v128, t2: v128, t3: v128, t4: v128, t5: v128, t6: v128, t7: v128, t8: v128): v128 {
  let x = v128.xor(t0, t1);
  const s1 = v128.xor(x, t2);
  const c1 = v128.bitselect(t2, t0, x);
  x = v128.xor(t3, t4);
  const s2 = v128.xor(x, t5);
  const c2 = v128.bitselect(t5, t3, x);
  x = v128.xor(t6, t7);
  const s3 = v128.xor(x, t8);
  const c3 = v128.bitselect(t8, t6, x);
  x = v128.xor(s1, s2);
  const ones = v128.xor(x, s3);
  const c4 = v128.bitselect(s3, s1, x);
  x = v128.xor(c1, c2);
  const twosA = v128.xor(x, c3);
  const fours1 = v128.bitselect(c3, c1, x);
  const twos = v128.xor(twosA, c4);
  const fours2 = v128.and(twosA, c4);
  const fours = v128.xor(fours1, fours2);
  const eights = v128.and(fours1, fours2);
  let n = i8x16.popcnt(eights);
  n = i8x16.add(i8x16.add(n, n), i8x16.popcnt(fours));
  n = i8x16.add(i8x16.add(n, n), i8x16.popcnt(twos));
  return i8x16.add(i8x16.add(n, n), i8x16.popcnt(ones));
}

/** Stride 1, pad 1: acc[o][y][x] = 9*cin - 2 * popcount(sum over taps of in ^ w), before the
 * border correction. in: padded words, wt: [cout][9] words, acc: [cout][h][w] i32. Four pixels
 * per v128; the nine taps' per-byte counts (popcount9, at most 72) are widened once. */
export function bconv(inp: usize, wt: usize, acc: usize, cin: i32, cout: i32, h: i32, w: i32): void {
  const pw = <usize>(w + 2) << 2;
  const full = i32x4.splat(9 * cin);
  for (let o = 0; o < cout; o++) {
    const wp = wt + (<usize>(o * 9) << 2);
    const w0 = i32x4.splat(load<i32>(wp)), w1 = i32x4.splat(load<i32>(wp, 4)), w2 = i32x4.splat(load<i32>(wp, 8));
    const w3 = i32x4.splat(load<i32>(wp, 12)), w4 = i32x4.splat(load<i32>(wp, 16)), w5 = i32x4.splat(load<i32>(wp, 20));
    const w6 = i32x4.splat(load<i32>(wp, 24)), w7 = i32x4.splat(load<i32>(wp, 28)), w8 = i32x4.splat(load<i32>(wp, 32));
    for (let y = 0; y < h; y++) {
      const r0 = inp + <usize>y * pw;
      const r1 = r0 + pw;
      const r2 = r1 + pw;
      const out = acc + (<usize>((o * h + y) * w) << 2);
      for (let x = 0; x < w; x += 4) {
        const off = <usize>x << 2;
        const n = popcount9(
          v128.xor(v128.load(r0 + off), w0), v128.xor(v128.load(r0 + off, 4), w1), v128.xor(v128.load(r0 + off, 8), w2),
          v128.xor(v128.load(r1 + off), w3), v128.xor(v128.load(r1 + off, 4), w4), v128.xor(v128.load(r1 + off, 8), w5),
          v128.xor(v128.load(r2 + off), w6), v128.xor(v128.load(r2 + off, 4), w7), v128.xor(v128.load(r2 + off, 8), w8),
        );
        const count = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(n));
        v128.store(out + off, i32x4.sub(full, i32x4.shl(count, 1)));
      }
    }
  }
}

/** bconv over u16 words (at most 16 input channels): eight pixels per v128, twice bconv's rate on
 * the 16-channel stage. w must be a multiple of 8. */
export function bconv16(inp: usize, wt: usize, acc: usize, cin: i32, cout: i32, h: i32, w: i32): void {
  const pw = <usize>(w + 2) << 1;
  const full = i16x8.splat(<i16>(9 * cin));
  for (let o = 0; o < cout; o++) {
    const wp = wt + (<usize>(o * 9) << 2);
    const w0 = i16x8.splat(<i16>load<i32>(wp)), w1 = i16x8.splat(<i16>load<i32>(wp, 4)), w2 = i16x8.splat(<i16>load<i32>(wp, 8));
    const w3 = i16x8.splat(<i16>load<i32>(wp, 12)), w4 = i16x8.splat(<i16>load<i32>(wp, 16)), w5 = i16x8.splat(<i16>load<i32>(wp, 20));
    const w6 = i16x8.splat(<i16>load<i32>(wp, 24)), w7 = i16x8.splat(<i16>load<i32>(wp, 28)), w8 = i16x8.splat(<i16>load<i32>(wp, 32));
    for (let y = 0; y < h; y++) {
      const r0 = inp + <usize>y * pw;
      const r1 = r0 + pw;
      const r2 = r1 + pw;
      const out = acc + (<usize>((o * h + y) * w) << 2);
      for (let x = 0; x < w; x += 8) {
        const off = <usize>x << 1;
        const n = popcount9(
          v128.xor(v128.load(r0 + off), w0), v128.xor(v128.load(r0 + off, 2), w1), v128.xor(v128.load(r0 + off, 4), w2),
          v128.xor(v128.load(r1 + off), w3), v128.xor(v128.load(r1 + off, 2), w4), v128.xor(v128.load(r1 + off, 4), w5),
          v128.xor(v128.load(r2 + off), w6), v128.xor(v128.load(r2 + off, 2), w7), v128.xor(v128.load(r2 + off, 4), w8),
        );
        const sums = i16x8.sub(full, i16x8.shl(i16x8.extadd_pairwise_i8x16_u(n), 1));
        v128.store(out + (<usize>x << 2), i32x4.extend_low_i16x8_s(sums));
        v128.store(out + (<usize>x << 2), i32x4.extend_high_i16x8_s(sums), 16);
      }
    }
  }
}

/** Stride 2, pad 1 (the first conv of a stage): as bconv, with the even input columns picked by a
 * shuffle of two loads. Output ho x wo = h/2 x w/2. */
export function bconvStride2(inp: usize, wt: usize, acc: usize, cin: i32, cout: i32, h: i32, w: i32): void {
  const pw = <usize>(w + 2) << 2;
  const ho = (h - 1) / 2 + 1;
  const wo = (w - 1) / 2 + 1;
  const full = i32x4.splat(9 * cin);
  for (let o = 0; o < cout; o++) {
    const wp = wt + (<usize>(o * 9) << 2);
    for (let y = 0; y < ho; y++) {
      const out = acc + (<usize>((o * ho + y) * wo) << 2);
      for (let x = 0; x < wo; x += 4) {
        let n = i8x16.splat(0);
        for (let ky = 0; ky < 3; ky++) {
          const row = inp + <usize>(2 * y + ky) * pw + (<usize>(2 * x) << 2);
          const a = v128.load(row), b = v128.load(row, 16), c = v128.load(row, 32);
          const t0 = v128.shuffle<i32>(a, b, 0, 2, 4, 6); // columns 2x + 0
          const t1 = v128.shuffle<i32>(a, b, 1, 3, 5, 7); // 2x + 1
          const t2 = v128.shuffle<i32>(a, b, 2, 4, 6, 0); // 2x + 2: lane 3 comes from c
          const t2c = i32x4.replace_lane(t2, 3, i32x4.extract_lane(c, 0));
          const wr = wp + (<usize>(ky * 3) << 2);
          n = i8x16.add(n, i8x16.popcnt(v128.xor(t0, i32x4.splat(load<i32>(wr)))));
          n = i8x16.add(n, i8x16.popcnt(v128.xor(t1, i32x4.splat(load<i32>(wr, 4)))));
          n = i8x16.add(n, i8x16.popcnt(v128.xor(t2c, i32x4.splat(load<i32>(wr, 8)))));
        }
        const count = i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(n));
        v128.store(out + (<usize>x << 2), i32x4.sub(full, i32x4.shl(count, 1)));
      }
    }
  }
}

/** Removes the padding's contribution: a padded tap read +1 and added sum_c w[o][c][tap]
 * (ONNX's zero-point padding adds 0). Only border outputs have padded taps; the host lists them
 * once per conv (pos: n output offsets) with each filter's correction (fix: [cout][n] i32).
 * acc: [cout][plane] i32. */
export function borderFix(acc: usize, pos: usize, fix: usize, n: i32, cout: i32, plane: i32): void {
  for (let o = 0; o < cout; o++) {
    const out = acc + (<usize>(o * plane) << 2);
    const f = fix + (<usize>(o * n) << 2);
    for (let i = 0; i < n; i++) {
      const p = out + (<usize>load<i32>(pos + (<usize>i << 2)) << 2);
      store<i32>(p, load<i32>(p) - load<i32>(f + (<usize>i << 2)));
    }
  }
}

// ---- the block's end: per-filter scale, shift, shortcut, ReLU ------------------------------

/** Identity shortcut: out = relu((fl(acc) * scale + shift) + x), the graph's DequantizeLinear,
 * Add, Add, Relu in that order. acc, x, out: [c][n]. */
export function residual(acc: usize, scale: usize, shift: usize, x: usize, out: usize, c: i32, n: i32): void {
  const zero = f32x4.splat(0);
  for (let ch = 0; ch < c; ch++) {
    const s = f32x4.splat(load<f32>(scale + (<usize>ch << 2)));
    const t = f32x4.splat(load<f32>(shift + (<usize>ch << 2)));
    for (let i = 0; i < n; i += 4) {
      const off = <usize>(ch * n + i) << 2;
      const v = f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(acc + off)), s), t), v128.load(x + off));
      v128.store(out + off, f32x4.pmax(zero, v));
    }
  }
}

/** Projection shortcut: out = relu((fl(acc) * scale + conv1x1(x, stride)) + bias). x: [cin][h][w],
 * wt: [cout][cin] f32, out: [cout][ho][wo], stride 1 or 2. onnxruntime (graphOptimizationLevel
 * "all", serving's) fuses the graph's Conv + Add + Relu into one FusedConv that starts its GEMM
 * output from the added tensor (the scaled binary sums) and adds the bias afterwards: this order,
 * measured bit-exact in test/workers/packed.test.ts. (Unfused, the graph's own order is
 * DQ + (conv + bias).) The 1x1 conv sums its input channels in order. */
export function residualProjected(acc: usize, scale: usize, x: usize, wt: usize, bias: usize, out: usize,
                                  cin: i32, cout: i32, h: i32, w: i32, stride: i32, tmp: usize): void {
  const ho = (h - 1) / stride + 1;
  const wo = (w - 1) / stride + 1;
  const zero = f32x4.splat(0);
  if (stride == 2) {
    // the subsampled input [cin][ho][wo] once, into tmp, rather than once per output filter
    for (let c = 0; c < cin; c++) {
      for (let y = 0; y < ho; y++) {
        for (let xx = 0; xx < wo; xx += 4) {
          const src = x + (<usize>((c * h + 2 * y) * w + 2 * xx) << 2);
          v128.store(tmp + (<usize>((c * ho + y) * wo + xx) << 2), v128.shuffle<f32>(v128.load(src), v128.load(src, 16), 0, 2, 4, 6));
        }
      }
    }
    x = tmp;
  }
  for (let o = 0; o < cout; o++) {
    const s = f32x4.splat(load<f32>(scale + (<usize>o << 2)));
    const b = f32x4.splat(load<f32>(bias + (<usize>o << 2)));
    const wo_ = wt + (<usize>(o * cin) << 2);
    for (let y = 0; y < ho; y++) {
      for (let xx = 0; xx < wo; xx += 4) {
        const p = <usize>((o * ho + y) * wo + xx) << 2;
        let sum = zero;
        for (let c = 0; c < cin; c++) {
          const v = v128.load(x + (<usize>((c * ho + y) * wo + xx) << 2));
          sum = f32x4.add(sum, f32x4.mul(v, f32x4.splat(load<f32>(wo_ + (<usize>c << 2)))));
        }
        const scaled = f32x4.mul(f32x4.convert_i32x4_s(v128.load(acc + p)), s);
        v128.store(out + p, f32x4.pmax(zero, f32x4.add(f32x4.add(scaled, sum), b)));
      }
    }
  }
}

/** K blocking of onnxruntime's (MLAS) SGEMM in its WASM build, found by measurement. */
const GEMM_STRIDE_K: i32 = 256;

// ---- exit head: AveragePool(k, stride k) -> Flatten -> Gemm(transB) -------------------------

/** x: [c][h][w]; pooled: [c][ph][pw] (the flattened features); wt: [classes][features]. */
export function exitHead(x: usize, pooled: usize, wt: usize, bias: usize, logits: usize, c: i32, h: i32, w: i32, k: i32, classes: i32): void {
  const ph = (h - k) / k + 1;
  const pwid = (w - k) / k + 1;
  const area = <f32>(k * k);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < ph; y++) {
      for (let xx = 0; xx < pwid; xx++) {
        let s: f32 = 0;
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) s += load<f32>(x + (<usize>((ch * h + y * k + ky) * w + xx * k + kx) << 2));
        }
        store<f32>(pooled + (<usize>((ch * ph + y) * pwid + xx) << 2), s / area);
      }
    }
  }
  // onnxruntime's Gemm: the output starts as the bias, and its GEMM adds the sum of each block
  // of GEMM_STRIDE_K products (summed in order from 0) to it: this order is bit-exact with it
  const features = c * ph * pwid;
  for (let j = 0; j < classes; j++) {
    let out = load<f32>(bias + (<usize>j << 2));
    for (let k0 = 0; k0 < features; k0 += GEMM_STRIDE_K) {
      const end = min(features, k0 + GEMM_STRIDE_K);
      let s: f32 = 0;
      for (let i = k0; i < end; i++) s += load<f32>(pooled + (<usize>i << 2)) * load<f32>(wt + (<usize>(j * features + i) << 2));
      out += s;
    }
    store<f32>(logits + (<usize>j << 2), out);
  }
}

/** First free byte after this module's static data: the host allocates from here. */
export function heapBase(): usize {
  return __heap_base;
}
