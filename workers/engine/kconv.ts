// AssemblyScript source of the packed engine's k-bit kernels (issue 19): the W2A2..W4A4 edges
// of training/onnx_graph.py (int_quant_block with act_bits >= 2). Compiled together with
// binconv.ts into the one module workers/src/engine/binconv.wasm (`npm run build:engine`), whose
// float kernels (stem, residual, residualProjected, exitHead) the k-bit path shares; the host is
// workers/src/engine/kbit.ts.
//
// Conventions, shared with workers/src/engine/kbit.ts:
// - an activation is its level L in 0..n (n = 2^bits - 1; the graph's uint8 ConvInteger input
//   is q = 2L with zero point n, so the value it multiplies is q - n = 2L - n), one byte;
// - a packed activation plane holds channel pairs: [c/2][h+2][w+2] pixels of two bytes
//   (channel 2p, channel 2p+1), zero-padded by one pixel on every side (L = 0: a padded tap adds
//   nothing to sum L*w, and each output's bias counts only its unpadded taps, so every sum is
//   ConvInteger's, whose zero-point padding contributes 0);
// - weights are the graph's signed codes (ConvInteger's uint8 weight minus its zero point), laid
//   out by kbitLayout at load time (kconvImpl says how).
//
// A 3x3 conv is sum_taps (2L - n) * w = 2 * sum L*w - n * sum w. sum L*w runs on
// i16x8.relaxed_dot_i8x16_i7x16_s (x86: one pmaddubsw), 16 multiply-adds per instruction into
// eight i16 lanes = eight output pixels, each lane the two channels of a pair. L <= 15 is a valid
// i7 operand, so the relaxed instruction is deterministic here (its only implementation-defined
// case is an i7 operand >= 128). |pair sum| <= 2 * 15 * 15 = 450 (no saturation), and the i16
// lanes add with wraparound, so they hold a filter's exact sum over as many channels as keep
// that sum within i16: the host checks it from the codes (every conv of the shipped cifar100
// edge, up to 64 channels, needs one chunk; 16 channels always fit).
// The conv's epilogue (issue 19) finishes in registers what were separate passes over int32
// planes: the border bias, DequantizeLinear + Relu + the next quantizer (conv1 -> conv2's packed
// levels), or DequantizeLinear + shift + shortcut + Relu + the next block's quantizer (conv2 of
// an identity block -> the block output and the next conv1's packed levels).
// Built with -O2: at -O3 binaryen sinks each accumulator's nine-tap chain into one expression,
// which keeps 18 loaded vectors live at once and made V8 spill (the convs 1.34x slower in workerd).

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

/** Bytes of one channel pair's weights within a group of FILTERS filters: 9 taps x FILTERS x 16. */
const PAIR_BYTES: i32 = 9 * FILTERS * 16;
/** Bytes of one filter's bias table: 3 row classes x 4 column kinds x 8 lanes of i32. */
const TABLE_BYTES: i32 = 3 * 4 * 8 * 4;

/** What kconv's epilogue does with the exact int32 sums of a pass (its `mode`). */
/** store them: acc [cout][ho*wo] i32 (the projection block's conv2, then residualProjected) */
const SUMS: i32 = 0;
/** DequantizeLinear(dq), Relu, then bn_mid's quantizer: the next conv's packed levels (conv1) */
const LEVELS: i32 = 1;
/** DequantizeLinear(dq: bn_out folded), + shift, + x, Relu: the block's output, a float plane; and
 * with ns != 0 the next block's quantizer of it, its conv1's packed levels (an identity block's conv2) */
const RESIDUAL: i32 = 2;

/** Eight pixels' packed levels of a channel pair: la, lb: the two channels' levels (i32x4 x 2
 * each) -> pixel-major pairs (a0, b0, a1, b1, ...), stored at dst. */
// @ts-ignore: decorator
@inline function storePair(dst: usize, a0: v128, a1: v128, b0: v128, b1: v128): void {
  const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(a0, a1), i16x8.narrow_i32x4_s(b0, b1));
  v128.store(dst, i8x16.shuffle(bytes, bytes, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15));
}

/** The pass's exact sums of one filter for its 16 pixels: the i16 lanes (a: pixels p..p+7, b: p+8..p+15)
 * widened, plus the earlier channel chunks' (sc, when more), times 2, plus the bias of each pixel's
 * border class (ta, tb: the filter's table rows for the two vectors). Returns the 4 vectors
 * through out[0..3] (a small fixed scratch: AssemblyScript returns one value). */
// @ts-ignore: decorator
@inline function exact(a: v128, b: v128, more: bool, sc: usize, ta: usize, tb: usize, k: usize): void {
  let v0 = i32x4.extend_low_i16x8_s(a), v1 = i32x4.extend_high_i16x8_s(a);
  let v2 = i32x4.extend_low_i16x8_s(b), v3 = i32x4.extend_high_i16x8_s(b);
  if (more) {
    v0 = i32x4.add(v0, v128.load(sc));
    v1 = i32x4.add(v1, v128.load(sc, 16));
    v2 = i32x4.add(v2, v128.load(sc, 32));
    v3 = i32x4.add(v3, v128.load(sc, 48));
  }
  v128.store(k, i32x4.add(i32x4.shl(v0, 1), v128.load(ta)));
  v128.store(k, i32x4.add(i32x4.shl(v1, 1), v128.load(ta, 16)), 16);
  v128.store(k, i32x4.add(i32x4.shl(v2, 1), v128.load(tb)), 32);
  v128.store(k, i32x4.add(i32x4.shl(v3, 1), v128.load(tb, 16)), 48);
}

/** Adds (first: stores) a chunk's widened i16 lanes into the pass's i32 partial sums at sc. */
// @ts-ignore: decorator
@inline function spill(a: v128, b: v128, first: bool, sc: usize): void {
  let v0 = i32x4.extend_low_i16x8_s(a), v1 = i32x4.extend_high_i16x8_s(a);
  let v2 = i32x4.extend_low_i16x8_s(b), v3 = i32x4.extend_high_i16x8_s(b);
  if (!first) {
    v0 = i32x4.add(v0, v128.load(sc));
    v1 = i32x4.add(v1, v128.load(sc, 16));
    v2 = i32x4.add(v2, v128.load(sc, 32));
    v3 = i32x4.add(v3, v128.load(sc, 48));
  }
  v128.store(sc, v0);
  v128.store(sc, v1, 16);
  v128.store(sc, v2, 32);
  v128.store(sc, v3, 48);
}

/** The epilogue of one filter pair (f, f + 1) of a pass: their exact sums (at k, k + 64, from
 * exact()) as the mode wants them. pa, pb: where the two vectors' pixels lie in a [c/2][ho+2][wo+2]
 * packed plane (pair 0, padding included); p: the pass's first pixel; n = ho * wo. */
function epilogue(mode: i32, k: usize, f: i32, p: i32, n: i32, out: usize, pk: usize, pa: usize, pb: usize, planeBytes: usize,
                          dq: usize, ms: usize, mt: usize, shift: usize, x: usize, ns: usize, nt: usize, hn: v128): void {
  const fo = <usize>f << 2;
  if (mode == SUMS) {
    const o0 = out + (<usize>(f * n + p) << 2);
    const o1 = o0 + (<usize>n << 2);
    v128.store(o0, v128.load(k));
    v128.store(o0, v128.load(k, 16), 16);
    v128.store(o0, v128.load(k, 32), 32);
    v128.store(o0, v128.load(k, 48), 48);
    v128.store(o1, v128.load(k, 64));
    v128.store(o1, v128.load(k, 80), 16);
    v128.store(o1, v128.load(k, 96), 32);
    v128.store(o1, v128.load(k, 112), 48);
    return;
  }
  const d0 = f32x4.splat(load<f32>(dq + fo)), d1 = f32x4.splat(load<f32>(dq + fo, 4));
  const plane = <usize>(f >> 1) * planeBytes;
  if (mode == LEVELS) {
    const s0 = f32x4.splat(load<f32>(ms + fo)), s1 = f32x4.splat(load<f32>(ms + fo, 4));
    const t0 = f32x4.splat(load<f32>(mt + fo)), t1 = f32x4.splat(load<f32>(mt + fo, 4));
    storePair(pk + plane + pa,
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k)), d0)), s0, t0, hn),
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 16)), d0)), s0, t0, hn),
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 64)), d1)), s1, t1, hn),
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 80)), d1)), s1, t1, hn));
    storePair(pk + plane + pb,
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 32)), d0)), s0, t0, hn),
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 48)), d0)), s0, t0, hn),
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 96)), d1)), s1, t1, hn),
      levels4(relu(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 112)), d1)), s1, t1, hn));
    return;
  }
  // RESIDUAL: binconv.ts residual()'s order, relu(fl(fl(fl(acc) * scale) + shift) + x)
  const t0 = f32x4.splat(load<f32>(shift + fo)), t1 = f32x4.splat(load<f32>(shift + fo, 4));
  const x0 = x + (<usize>(f * n + p) << 2);
  const x1 = x0 + (<usize>n << 2);
  const o0 = out + (<usize>(f * n + p) << 2);
  const o1 = o0 + (<usize>n << 2);
  const zero = f32x4.splat(0);
  const r0 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k)), d0), t0), v128.load(x0)));
  const r1 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 16)), d0), t0), v128.load(x0, 16)));
  const r2 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 32)), d0), t0), v128.load(x0, 32)));
  const r3 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 48)), d0), t0), v128.load(x0, 48)));
  const q0 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 64)), d1), t1), v128.load(x1)));
  const q1 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 80)), d1), t1), v128.load(x1, 16)));
  const q2 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 96)), d1), t1), v128.load(x1, 32)));
  const q3 = f32x4.pmax(zero, f32x4.add(f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(v128.load(k, 112)), d1), t1), v128.load(x1, 48)));
  v128.store(o0, r0);
  v128.store(o0, r1, 16);
  v128.store(o0, r2, 32);
  v128.store(o0, r3, 48);
  v128.store(o1, q0);
  v128.store(o1, q1, 16);
  v128.store(o1, q2, 32);
  v128.store(o1, q3, 48);
  if (ns != 0) {
    const s0 = f32x4.splat(load<f32>(ns + fo)), s1 = f32x4.splat(load<f32>(ns + fo, 4));
    const u0 = f32x4.splat(load<f32>(nt + fo)), u1 = f32x4.splat(load<f32>(nt + fo, 4));
    storePair(pk + plane + pa, levels4(r0, s0, u0, hn), levels4(r1, s0, u0, hn), levels4(q0, s1, u1, hn), levels4(q1, s1, u1, hn));
    storePair(pk + plane + pb, levels4(r2, s0, u0, hn), levels4(r3, s0, u0, hn), levels4(q2, s1, u1, hn), levels4(q3, s1, u1, hn));
  }
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

/** The exact ConvInteger sums of a 3x3, pad 1 conv over packed levels, 2 * sum L*w + bias, and
 * the mode's epilogue on them (SUMS, LEVELS, RESIDUAL above). inp: packed pairs plane of h x w;
 * wt: groups of FILTERS filters, [cout/FILTERS][cin/2][9 taps][FILTERS] v128, each a filter's
 * (channel 2p, 2p+1) code pair splatted eight times, so a pass reads its weights from one pointer
 * with immediate offsets; tbl: [cout][3 row classes][4 column kinds][8] i32, the bias of each
 * output pixel's border class (-n * the sum of its unpadded taps' codes: the padded taps read
 * L = 0 and add nothing, as ConvInteger's zero-point padding does).
 * FILTERS filters x sixteen output pixels (two vectors) per pass: each activation load feeds
 * four dot products, each weight load two; the nine taps are unrolled with immediate offsets.
 * The i16 lanes add with wraparound, so they hold the exact sum of `chunk` channel pairs whenever
 * that sum lies in i16 (the host picks chunk from the codes: 15 * the filter's positive and
 * negative code sums over a chunk within 32767; every layer of the shipped cifar100 edge needs
 * one chunk); further chunks add in i32 at scratch. scratch: 512 bytes.
 * Needs ho * wo a multiple of 16, wo of 8, cout of FILTERS (the host checks). */
// @ts-ignore: decorator
@inline function kconvImpl(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, stride2: bool, chunk: i32,
                           mode: i32, out: usize, pk: usize, dq: usize, ms: usize, mt: usize, shift: usize, x: usize,
                           ns: usize, nt: usize, halfN: f32, scratch: usize): void {
  const stride = stride2 ? 2 : 1;
  const ho = (h - 1) / stride + 1;
  const wo = (w - 1) / stride + 1;
  const pairs = cin >> 1;
  const rowBytes = <usize>(w + 2) << 1;
  const planeBytes = <usize>(h + 2) * rowBytes;
  const orow = <usize>(wo + 2) << 1;
  const oplane = <usize>(ho + 2) * orow;
  const groupBytes = <usize>pairs * PAIR_BYTES;
  const n = ho * wo;
  const hn = f32x4.splat(halfN);
  const sc = scratch, k = scratch + 256;
  for (let o = 0; o < cout; o += FILTERS) {
    const wg = wt + <usize>(o >> 2) * groupBytes;
    const tf = tbl + <usize>o * TABLE_BYTES;
    // the two vectors' first output pixels (p, p + 8), stepped without divisions
    let ya = 0, xa0 = 0, yb = 8 / wo, xb0 = 8 % wo;
    for (let p = 0; p < n; p += 16) {
      const ina = inp + <usize>(ya * stride) * rowBytes + (<usize>(xa0 * stride) << 1);
      const inb = inp + <usize>(yb * stride) * rowBytes + (<usize>(xb0 * stride) << 1);
      // border classes (row: top 0, middle 4, bottom 8; + 1 first vector of a row, + 2 last) and packed output places
      const ta = tf + (<usize>((ya == 0 ? 0 : ya == ho - 1 ? 8 : 4) + (xa0 == 0 ? 1 : 0) + (xa0 + 8 == wo ? 2 : 0)) << 5);
      const tb = tf + (<usize>((yb == 0 ? 0 : yb == ho - 1 ? 8 : 4) + (xb0 == 0 ? 1 : 0) + (xb0 + 8 == wo ? 2 : 0)) << 5);
      const pa = <usize>(ya + 1) * orow + (<usize>(xa0 + 1) << 1);
      const pb = <usize>(yb + 1) * orow + (<usize>(xb0 + 1) << 1);
      xa0 += 16;
      while (xa0 >= wo) { xa0 -= wo; ya++; }
      xb0 += 16;
      while (xb0 >= wo) { xb0 -= wo; yb++; }
      for (let c0 = 0; c0 < pairs; c0 += chunk) {
        const end = min(pairs, c0 + chunk);
        let a0 = i16x8.splat(0), b0 = i16x8.splat(0), a1 = i16x8.splat(0), b1 = i16x8.splat(0);
        let a2 = i16x8.splat(0), b2 = i16x8.splat(0), a3 = i16x8.splat(0), b3 = i16x8.splat(0);
        let ra = ina + <usize>c0 * planeBytes, rb = inb + <usize>c0 * planeBytes;
        let wk = wg + <usize>c0 * PAIR_BYTES;
        const stop = wg + <usize>end * PAIR_BYTES;
        do {
          const ra1 = ra + rowBytes, ra2 = ra + 2 * rowBytes;
          const rb1 = rb + rowBytes, rb2 = rb + 2 * rowBytes;
          let xa: v128, xb: v128, f: v128;
          xa = pixels(ra, 0, stride2);
          xb = pixels(rb, 0, stride2);
          f = v128.load(wk, 0);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 16);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 32);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 48);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra, 1, stride2);
          xb = pixels(rb, 1, stride2);
          f = v128.load(wk, 64);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 80);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 96);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 112);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra, 2, stride2);
          xb = pixels(rb, 2, stride2);
          f = v128.load(wk, 128);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 144);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 160);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 176);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra1, 0, stride2);
          xb = pixels(rb1, 0, stride2);
          f = v128.load(wk, 192);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 208);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 224);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 240);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra1, 1, stride2);
          xb = pixels(rb1, 1, stride2);
          f = v128.load(wk, 256);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 272);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 288);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 304);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra1, 2, stride2);
          xb = pixels(rb1, 2, stride2);
          f = v128.load(wk, 320);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 336);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 352);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 368);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra2, 0, stride2);
          xb = pixels(rb2, 0, stride2);
          f = v128.load(wk, 384);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 400);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 416);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 432);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra2, 1, stride2);
          xb = pixels(rb2, 1, stride2);
          f = v128.load(wk, 448);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 464);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 480);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 496);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          xa = pixels(ra2, 2, stride2);
          xb = pixels(rb2, 2, stride2);
          f = v128.load(wk, 512);
          a0 = i16x8.add(a0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b0 = i16x8.add(b0, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 528);
          a1 = i16x8.add(a1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b1 = i16x8.add(b1, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 544);
          a2 = i16x8.add(a2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b2 = i16x8.add(b2, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          f = v128.load(wk, 560);
          a3 = i16x8.add(a3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xa));
          b3 = i16x8.add(b3, i16x8.relaxed_dot_i8x16_i7x16_s(f, xb));
          ra += planeBytes;
          rb += planeBytes;
          wk += PAIR_BYTES;
        } while (wk < stop);
        if (end < pairs) {
          const first = c0 == 0;
          spill(a0, b0, first, sc);
          spill(a1, b1, first, sc + 64);
          spill(a2, b2, first, sc + 128);
          spill(a3, b3, first, sc + 192);
          continue;
        }
        const more = c0 > 0;
        exact(a0, b0, more, sc, ta, tb, k);
        exact(a1, b1, more, sc + 64, ta + TABLE_BYTES, tb + TABLE_BYTES, k + 64);
        exact(a2, b2, more, sc + 128, ta + 2 * TABLE_BYTES, tb + 2 * TABLE_BYTES, k + 128);
        exact(a3, b3, more, sc + 192, ta + 3 * TABLE_BYTES, tb + 3 * TABLE_BYTES, k + 192);
        epilogue(mode, k, o, p, n, out, pk, pa, pb, oplane, dq, ms, mt, shift, x, ns, nt, hn);
        epilogue(mode, k + 128, o + 2, p, n, out, pk, pa, pb, oplane, dq, ms, mt, shift, x, ns, nt, hn);
      }
    }
  }
}

/** kconvImpl at stride 1 and 2, the mode a run-time argument: two copies of the conv loop rather
 * than one per mode (the module stays small: a fresh isolate compiles it first). */
function kconvStride1(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, chunk: i32, mode: i32, out: usize, pk: usize,
                      dq: usize, ms: usize, mt: usize, shift: usize, x: usize, ns: usize, nt: usize, halfN: f32, scratch: usize): void {
  kconvImpl(inp, wt, tbl, cin, cout, h, w, false, chunk, mode, out, pk, dq, ms, mt, shift, x, ns, nt, halfN, scratch);
}

function kconvStride2(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, chunk: i32, mode: i32, out: usize, pk: usize,
                      dq: usize, ms: usize, mt: usize, shift: usize, x: usize, ns: usize, nt: usize, halfN: f32, scratch: usize): void {
  kconvImpl(inp, wt, tbl, cin, cout, h, w, true, chunk, mode, out, pk, dq, ms, mt, shift, x, ns, nt, halfN, scratch);
}

/** conv1 of a block, stride 1: its packed output levels (LEVELS) into pk, a [cout/2][ho+2][wo+2]
 * plane whose zero border the host keeps. */
export function kconvLevels(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, chunk: i32,
                            pk: usize, dq: usize, ms: usize, mt: usize, halfN: f32, scratch: usize): void {
  kconvStride1(inp, wt, tbl, cin, cout, h, w, chunk, LEVELS, 0, pk, dq, ms, mt, 0, 0, 0, 0, halfN, scratch);
}

/** conv1 of a block, stride 2 (the first block of a stage). */
export function kconvLevelsStride2(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, chunk: i32,
                                   pk: usize, dq: usize, ms: usize, mt: usize, halfN: f32, scratch: usize): void {
  kconvStride2(inp, wt, tbl, cin, cout, h, w, chunk, LEVELS, 0, pk, dq, ms, mt, 0, 0, 0, 0, halfN, scratch);
}

/** conv2 of a projection block: the exact sums into acc [cout][ho*wo] i32 (SUMS). */
export function kconvSums(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, chunk: i32,
                          acc: usize, scratch: usize): void {
  kconvStride1(inp, wt, tbl, cin, cout, h, w, chunk, SUMS, acc, 0, 0, 0, 0, 0, 0, 0, 0, 0, scratch);
}

/** conv2 of an identity block (RESIDUAL): out = relu(fl(fl(fl(acc) * scale) + shift) + x), and with
 * ns != 0 the next block's packed levels of out (its bn_in: ns, nt) into pk. */
export function kconvResidual(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, chunk: i32,
                              scale: usize, shift: usize, x: usize, out: usize, pk: usize, ns: usize, nt: usize, halfN: f32, scratch: usize): void {
  kconvStride1(inp, wt, tbl, cin, cout, h, w, chunk, RESIDUAL, out, pk, scale, 0, 0, shift, x, ns, nt, halfN, scratch);
}

/** The stride-2 conv1's exact sums (SUMS; the tests' trace only). */
export function kconvSumsStride2(inp: usize, wt: usize, tbl: usize, cin: i32, cout: i32, h: i32, w: i32, chunk: i32,
                                 acc: usize, scratch: usize): void {
  kconvStride2(inp, wt, tbl, cin, cout, h, w, chunk, SUMS, acc, 0, 0, 0, 0, 0, 0, 0, 0, 0, scratch);
}

/** Load time: one conv's codes [cout][cin][9] (i8) in kconv's layout at wt (groups of FILTERS
 * filters, [cout/FILTERS][cin/2][9][FILTERS] v128, the (2p, 2p+1) code pair eight times);
 * tapSum [cout][9] i32, the sum of each filter's codes per tap (the host's bias tables); and
 * pairSums [cout][cin/2][2] i32, each filter's positive and negative code sums per channel pair
 * (the host's choice of chunk). Here rather than in JS: a fresh isolate's first answer runs this
 * once per conv. */
export function kbitLayout(codes: usize, cin: i32, cout: i32, wt: usize, tapSum: usize, pairSums: usize): void {
  const pairs = cin >> 1;
  for (let o = 0; o < cout; o++) {
    const ts = tapSum + (<usize>(o * 9) << 2);
    memory.fill(ts, 0, 36);
    const group = wt + (<usize>(o >> 2) * <usize>pairs * <usize>PAIR_BYTES) + (<usize>(o & 3) << 4);
    for (let p = 0; p < pairs; p++) {
      const src = codes + <usize>((o * cin + 2 * p) * 9);
      const dst = group + <usize>p * PAIR_BYTES;
      let pos = 0, neg = 0;
      for (let t = 0; t < 9; t++) {
        const a = <i32>load<i8>(src + t), b = <i32>load<i8>(src + 9 + t);
        v128.store(dst + (<usize>t << 6), i16x8.splat(<i16>((a & 0xff) | (b << 8))));
        store<i32>(ts + (<usize>t << 2), load<i32>(ts + (<usize>t << 2)) + a + b);
        pos += max(a, 0) + max(b, 0);
        neg -= min(a, 0) + min(b, 0);
      }
      const ps = pairSums + (<usize>(o * pairs + p) << 3);
      store<i32>(ps, pos);
      store<i32>(ps, neg, 4);
    }
  }
}
