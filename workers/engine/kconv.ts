// AssemblyScript source of the packed engine's k-bit kernels (issue 19): the W2A2..W4A4 edges
// of training/onnx_graph.py (int_quant_block with act_bits >= 2). Compiled together with
// binconv.ts into the one module workers/src/engine/binconv.wasm (`npm run build:engine`), whose
// float kernels (stem, residual, residualProjected, exitHead) the k-bit path shares; the host is
// workers/src/engine/kbit.ts.
//
// Conventions, shared with training/pack.py:
// - an activation is its level L in 0..n (n = 2^bits - 1; the graph's uint8 ConvInteger input
//   is q = 2L with zero point n, so the value it multiplies is q - n = 2L - n), one byte;
// - a packed activation plane holds channel pairs: [c/2][h+2][w+2] pixels of two bytes
//   (channel 2p, channel 2p+1), zero-padded by one pixel on every side (L = 0; the host's border
//   correction turns the padded taps' contribution into ConvInteger's 0);
// - weights are the graph's signed codes (ConvInteger's uint8 weight minus its zero point),
//   [cout][cin/2][9] pairs of i8 in the same channel order.
//
// A 3x3 conv is sum_taps (2L - n) * w = 2 * sum L*w - n * sum w. sum L*w runs on
// i16x8.relaxed_dot_i8x16_i7x16_s (x86: one pmaddubsw), 16 multiply-adds per instruction into
// eight i16 lanes = eight output pixels, each lane the two channels of a pair. L <= 15 is a valid
// i7 operand, so the relaxed instruction is deterministic here (its only implementation-defined
// case is an i7 operand >= 128). |pair sum| <= 2 * 15 * 15 = 450, so an i16 lane holds 72 pair
// sums exactly: 8 channel pairs x 9 taps (16 channels), then the lanes are widened to i32.

/** Channel pairs per i16 accumulation (72 pair sums of at most 450 each: < 32768). */
const PAIRS_PER_CHUNK: i32 = 8;
/** Filters per pass of kconv (cout a multiple of it; 4 x 2 i16 accumulators fit the registers). */
const FILTERS: i32 = 4;

// ---- activation quantizer: affine -> Clip(-1, 1) -> +1 -> *n/2 -> Round -> levels ------------

/** 2^23 as float32: adding it to u in [0, 2^22] rounds u to an integer, half to even (the
 * default rounding of every float add), and leaves that integer in the low mantissa bits. */
const ROUND_MAGIC: f32 = 8388608.0;
const ROUND_MAGIC_BITS: i32 = 0x4b000000;

/** Levels of 4 pixels: the graph's float32 ops in its order (Mul, Add, Clip, Add, Mul, Round;
 * its Mul by 2 and Cast give q = 2L, exact). Round is ORT's round half to even; here it is the
 * add of ROUND_MAGIC (u = fl((clip + 1) * n/2) lies in [0, 15]) and the integer read from the bits:
 * the same integer as f32x4.nearest + i32x4.trunc_sat_f32x4_s, in 2 instructions instead of
 * about 9 (V8 lowers the saturating conversion to a sequence). */
// @ts-ignore: decorator
@inline function levels4(v: v128, s: v128, t: v128, halfN: v128): v128 {
  let u = f32x4.add(f32x4.mul(v, s), t);
  u = f32x4.pmin(f32x4.splat(1), f32x4.pmax(f32x4.splat(-1), u)); // Clip(u, -1, 1), see relu()
  u = f32x4.mul(f32x4.add(u, f32x4.splat(1)), halfN);
  return i32x4.sub(f32x4.add(u, f32x4.splat(ROUND_MAGIC)), i32x4.splat(ROUND_MAGIC_BITS));
}

/** max(v, 0) as wasm's f32x4.max defines it, for every v but NaN (none occurs: finite sums),
 * -0 included: pmax(0, v) = 0 < v ? v : 0. pmax/pmin are one maxps/minps, where V8 lowers
 * f32x4.max/min to a sequence for their NaN and signed-zero rules (the quantizer took 0.37 ms of
 * the cifar100 edge with them). Clip's pmax(-1, u), pmin(1, u) are exact the same way. */
// @ts-ignore: decorator
@inline function relu(v: v128): v128 {
  return f32x4.pmax(f32x4.splat(0), v);
}

/** The next conv's packed input from a float plane x [c][h][w] (a block's input: bn_in) or, with
 * fromAcc, from a conv's int32 sums (bn_mid after the graph's DequantizeLinear(acc, dq) and Relu:
 * max(fl(float(acc) * dq), 0)). scale, shift, dq: per channel f32. c even, w a multiple of 8. */
export function quantPack(x: usize, fromAcc: bool, dq: usize, scale: usize, shift: usize, halfN: f32, dst: usize, c: i32, h: i32, w: i32): void {
  const pw = w + 2;
  memory.fill(dst, 0, <usize>((c >> 1) * (h + 2) * pw) << 1);
  const hn = f32x4.splat(halfN);
  for (let p = 0; p < c >> 1; p++) {
    const c0 = 2 * p;
    const s0 = f32x4.splat(load<f32>(scale + (<usize>c0 << 2))), s1 = f32x4.splat(load<f32>(scale + (<usize>c0 << 2), 4));
    const t0 = f32x4.splat(load<f32>(shift + (<usize>c0 << 2))), t1 = f32x4.splat(load<f32>(shift + (<usize>c0 << 2), 4));
    const d0 = f32x4.splat(fromAcc ? load<f32>(dq + (<usize>c0 << 2)) : 1), d1 = f32x4.splat(fromAcc ? load<f32>(dq + (<usize>c0 << 2), 4) : 1);
    for (let y = 0; y < h; y++) {
      const src0 = x + (<usize>((c0 * h + y) * w) << 2);
      const src1 = src0 + (<usize>(h * w) << 2);
      const out = dst + (<usize>((p * (h + 2) + y + 1) * pw + 1) << 1);
      for (let xx = 0; xx < w; xx += 8) {
        const off = <usize>xx << 2;
        let a0 = v128.load(src0 + off), a1 = v128.load(src0 + off, 16);
        let b0 = v128.load(src1 + off), b1 = v128.load(src1 + off, 16);
        if (fromAcc) {
          a0 = relu(f32x4.mul(f32x4.convert_i32x4_s(a0), d0));
          a1 = relu(f32x4.mul(f32x4.convert_i32x4_s(a1), d0));
          b0 = relu(f32x4.mul(f32x4.convert_i32x4_s(b0), d1));
          b1 = relu(f32x4.mul(f32x4.convert_i32x4_s(b1), d1));
        }
        const la = i16x8.narrow_i32x4_s(levels4(a0, s0, t0, hn), levels4(a1, s0, t0, hn));
        const lb = i16x8.narrow_i32x4_s(levels4(b0, s1, t1, hn), levels4(b1, s1, t1, hn));
        // [a0..a7, b0..b7] -> pixel-major pairs (a0, b0, a1, b1, ...)
        const bytes = i8x16.narrow_i16x8_u(la, lb);
        v128.store(out + (<usize>xx << 1), i8x16.shuffle(bytes, bytes, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15));
      }
    }
  }
}

// ---- the k-bit 3x3 convolution -----------------------------------------------------------------

/** Ends one channel chunk of one filter: its 16 pixels' i16 lanes widened and added into acc
 * (i32); after the last chunk, acc = 2 * sum + bias. */
// @ts-ignore: decorator
@inline function flush(out: usize, lo: v128, hi: v128, first: bool, last: bool, bias: v128): void {
  let v0 = i32x4.extend_low_i16x8_s(lo), v1 = i32x4.extend_high_i16x8_s(lo);
  let v2 = i32x4.extend_low_i16x8_s(hi), v3 = i32x4.extend_high_i16x8_s(hi);
  if (!first) {
    v0 = i32x4.add(v0, v128.load(out));
    v1 = i32x4.add(v1, v128.load(out, 16));
    v2 = i32x4.add(v2, v128.load(out, 32));
    v3 = i32x4.add(v3, v128.load(out, 48));
  }
  if (last) {
    v0 = i32x4.add(i32x4.shl(v0, 1), bias);
    v1 = i32x4.add(i32x4.shl(v1, 1), bias);
    v2 = i32x4.add(i32x4.shl(v2, 1), bias);
    v3 = i32x4.add(i32x4.shl(v3, 1), bias);
  }
  v128.store(out, v0);
  v128.store(out, v1, 16);
  v128.store(out, v2, 32);
  v128.store(out, v3, 48);
}

/** Eight output pixels' input at one tap (kx = 0, 1, 2: an immediate offset of kx pixels):
 * stride 1 reads them as they lie; stride 2 takes every other pixel (two bytes) of sixteen. */
// @ts-ignore: decorator
@inline function pixels(row: usize, kx: i32, stride2: bool): v128 {
  if (!stride2) {
    if (kx == 0) return v128.load(row);
    if (kx == 1) return v128.load(row, 2);
    return v128.load(row, 4);
  }
  let a: v128, b: v128;
  if (kx == 0) {
    a = v128.load(row);
    b = v128.load(row, 16);
  } else if (kx == 1) {
    a = v128.load(row, 2);
    b = v128.load(row, 18);
  } else {
    a = v128.load(row, 4);
    b = v128.load(row, 20);
  }
  return i8x16.shuffle(a, b, 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
}

/** acc[o][y][x] = 2 * sum L*w + bias[o] (bias = -n * sum w: the interior pixels' exact
 * ConvInteger sums; the host's borderFix completes the border ones). inp: packed pairs plane of
 * h x w; wt: [cout][cin/2][9] v128, each a filter's (channel 2p, 2p+1) code pair splatted eight
 * times (a plain load per tap instead of a load-and-splat: 1.25 -> 1.12 ms for the cifar100
 * edge's convs in workerd); acc: [cout][ho][wo] i32; pad 1.
 * FILTERS filters x sixteen output pixels (two vectors) per pass: each activation load feeds
 * four dot products, each weight load two; the nine taps are unrolled with immediate offsets.
 * Needs ho * wo a multiple of 16, wo of 8, cout of FILTERS (the host checks). */
// @ts-ignore: decorator
@inline function kconvImpl(inp: usize, wt: usize, bias: usize, acc: usize, cin: i32, cout: i32, h: i32, w: i32, stride2: bool): void {
  const stride = stride2 ? 2 : 1;
  const ho = (h - 1) / stride + 1;
  const wo = (w - 1) / stride + 1;
  const pairs = cin >> 1;
  const rowBytes = <usize>(w + 2) << 1;
  const planeBytes = <usize>(h + 2) * rowBytes;
  const filterBytes = <usize>(pairs * 9) << 4;
  const n = ho * wo;
  const outStride = <usize>n << 2;
  for (let o = 0; o < cout; o += FILTERS) {
    const wf = wt + <usize>o * filterBytes;
    const out0 = acc + (<usize>(o * n) << 2);
    const bias0 = i32x4.splat(load<i32>(bias + (<usize>o << 2))), bias1 = i32x4.splat(load<i32>(bias + (<usize>o << 2), 4));
    const bias2 = i32x4.splat(load<i32>(bias + (<usize>o << 2), 8)), bias3 = i32x4.splat(load<i32>(bias + (<usize>o << 2), 12));
    // the two vectors' first output pixels (p, p + 8), stepped without divisions
    let ya = 0, xa0 = 0, yb = 8 / wo, xb0 = 8 % wo;
    for (let p = 0; p < n; p += 16) {
      // where their inputs start (tap row 0, pair 0)
      const ina = inp + <usize>(ya * stride) * rowBytes + (<usize>(xa0 * stride) << 1);
      const inb = inp + <usize>(yb * stride) * rowBytes + (<usize>(xb0 * stride) << 1);
      xa0 += 16;
      while (xa0 >= wo) { xa0 -= wo; ya++; }
      xb0 += 16;
      while (xb0 >= wo) { xb0 -= wo; yb++; }
      const outp = out0 + (<usize>p << 2);
      for (let c0 = 0; c0 < pairs; c0 += PAIRS_PER_CHUNK) {
        const end = min(pairs, c0 + PAIRS_PER_CHUNK);
        let a0 = i16x8.splat(0), b0 = i16x8.splat(0), a1 = i16x8.splat(0), b1 = i16x8.splat(0);
        let a2 = i16x8.splat(0), b2 = i16x8.splat(0), a3 = i16x8.splat(0), b3 = i16x8.splat(0);
        for (let cp = c0; cp < end; cp++) {
          const plane = <usize>cp * planeBytes;
          const w0 = wf + (<usize>(cp * 9) << 4);
          for (let ky = 0; ky < 3; ky++) {
            const ra = ina + plane + <usize>ky * rowBytes;
            const rb = inb + plane + <usize>ky * rowBytes;
            const wk = w0 + (<usize>(ky * 3) << 4);
            let xa: v128, xb: v128, f: v128;
            xa = pixels(ra, 0, stride2);
            xb = pixels(rb, 0, stride2);
            f = v128.load(wk);
            a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 1 * filterBytes);
            a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 2 * filterBytes);
            a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 3 * filterBytes);
            a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            xa = pixels(ra, 1, stride2);
            xb = pixels(rb, 1, stride2);
            f = v128.load(wk, 16);
            a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 1 * filterBytes, 16);
            a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 2 * filterBytes, 16);
            a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 3 * filterBytes, 16);
            a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            xa = pixels(ra, 2, stride2);
            xb = pixels(rb, 2, stride2);
            f = v128.load(wk, 32);
            a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 1 * filterBytes, 32);
            a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 2 * filterBytes, 32);
            a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
            f = v128.load(wk + 3 * filterBytes, 32);
            a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
            b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          }
        }
        const first = c0 == 0, last = end == pairs;
        flush(outp, a0, b0, first, last, bias0);
        flush(outp + outStride, a1, b1, first, last, bias1);
        flush(outp + 2 * outStride, a2, b2, first, last, bias2);
        flush(outp + 3 * outStride, a3, b3, first, last, bias3);
      }
    }
  }
}

/** Stride 1, pad 1 (kconvImpl). */
export function kconv(inp: usize, wt: usize, bias: usize, acc: usize, cin: i32, cout: i32, h: i32, w: i32): void {
  kconvImpl(inp, wt, bias, acc, cin, cout, h, w, false);
}

/** Stride 2, pad 1 (the first conv of a stage; kconvImpl). */
export function kconvStride2(inp: usize, wt: usize, bias: usize, acc: usize, cin: i32, cout: i32, h: i32, w: i32): void {
  kconvImpl(inp, wt, bias, acc, cin, cout, h, w, true);
}
