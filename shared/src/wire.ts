/**
 * Binary wire format of the split activation (edge -> cloud). Little-endian throughout. The layout
 * is in docs/contracts.md, its constants (magic, version, header size, dtype codes, the int8
 * quantisation) in shared/contracts.json ("wire"), which training/ reads too. The int8 precision
 * is per-tensor asymmetric uint8 over [min, max] (the activation after a ReLU is non-negative, so
 * a signed symmetric code would waste a bit); sizes per precision: docs/background.md#serving-choices.
 */
import { fromHalf, toHalf } from "./fp16.js";
import { bytesToHex, hexToBytes } from "./hex.js";
import { CONTRACTS } from "./contracts.js";
import type { WirePrecision } from "./schemas/tail.js";

const W = CONTRACTS.wire;
/** the magic's four ASCII bytes read as a little-endian uint32 */
export const WIRE_MAGIC = new DataView(new TextEncoder().encode(W.magic).buffer).getUint32(0, true);
export const WIRE_VERSION: number = W.version;
export const MAX_RANK: number = W.maxRank;
const FIXED_HEADER: number = W.fixedHeaderBytes;
const FINGERPRINT_BYTES: number = W.fingerprintBytes;
/** each header field's byte offset (contracts.json "wire".offsets; training/wire.py uses the same) */
const AT = W.offsets;
const { levels: Q_LEVELS, qmin: QMIN, qmax: QMAX } = W.int8;

type DtypeName = keyof typeof W.dtypes;
export const DTYPE = {
  float32: W.dtypes.float32.code,
  float16: W.dtypes.float16.code,
  uint8: W.dtypes.uint8.code,
} as const satisfies Record<DtypeName, number>;
type DtypeCode = number;
const DTYPE_NAMES = Object.keys(W.dtypes) as DtypeName[];
const BY_CODE = new Map<DtypeCode, DtypeName>(DTYPE_NAMES.map((d) => [W.dtypes[d].code, d]));
const ELEMENT_BYTES: Record<DtypeCode, number> = Object.fromEntries(DTYPE_NAMES.map((d) => [W.dtypes[d].code, W.dtypes[d].bytes]));
const PRECISION_DTYPE = Object.fromEntries(DTYPE_NAMES.map((d) => [W.dtypes[d].precision, W.dtypes[d].code])) as Record<WirePrecision, DtypeCode>;

/**
 * Largest magnitude of a split activation the cloud accepts (400 `invalid_payload` beyond it, like
 * NaN and Infinity). Real images give at most ~16 on the shipped exports; the most the edge makes
 * from any legal OIP input (|x| <= MAX_ABS_INPUT, 1e4, workers/src/oip/protocol.ts) measured 2.0e5, so 1e8
 * leaves a margin of 500. The tails' gain measured at most ~3 (activations of 1e30 gave logits
 * of 3e30), so accepted activations keep the logits far below float32's 3.4e38, where a signed
 * frame of huge values used to give logits of Infinity, sent as null.
 */
export const MAX_ABS_ACTIVATION = 1e8;
const HALF_MAX = 65504;

/** Index of the first value that is not finite or beyond +-MAX_ABS_ACTIVATION, or -1. */
export function firstOutOfRange(data: ArrayLike<number>, max = MAX_ABS_ACTIVATION): number {
  for (let i = 0; i < data.length; i++) if (!(Math.abs(data[i]!) <= max)) return i;
  return -1;
}

export class WireFormatError extends Error {
  override name = "WireFormatError";
}

export interface WireHeader {
  version: number;
  dtype: "float32" | "float16" | "uint8";
  precision: WirePrecision;
  fingerprint: string;
  scale: number;
  zeroPoint: number;
  shape: number[];
  headerBytes: number;
}

export interface DecodedActivation {
  header: WireHeader;
  data: Float32Array;
}

export function headerSize(rank: number): number {
  return FIXED_HEADER + 4 * rank;
}

export function encodedSize(shape: readonly number[], precision: WirePrecision): number {
  return headerSize(shape.length) + count(shape) * ELEMENT_BYTES[PRECISION_DTYPE[precision]]!;
}

function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function encodeActivation(
  data: Float32Array,
  shape: readonly number[],
  fingerprint: string,
  precision: WirePrecision,
): Uint8Array {
  if (shape.length < 1 || shape.length > MAX_RANK) throw new WireFormatError(`rank ${shape.length} not in 1..${MAX_RANK}`);
  if (count(shape) !== data.length) throw new WireFormatError(`shape ${shape.join("x")} does not match ${data.length} values`);
  const fp = hexToBytes(fingerprint);
  if (fp.length !== FINGERPRINT_BYTES) throw new WireFormatError(`fingerprint must be ${FINGERPRINT_BYTES} bytes of sha256`);
  const dtype = PRECISION_DTYPE[precision];
  const hs = headerSize(shape.length);
  const out = new Uint8Array(hs + data.length * ELEMENT_BYTES[dtype]!);
  const view = new DataView(out.buffer);
  view.setUint32(AT.magic, WIRE_MAGIC, true);
  view.setUint8(AT.version, WIRE_VERSION);
  view.setUint8(AT.dtype, dtype);
  view.setUint8(AT.rank, shape.length);
  out.set(fp, AT.fingerprint);
  shape.forEach((d, i) => view.setUint32(FIXED_HEADER + 4 * i, d, true));

  let scale = 1;
  let zeroPoint = 0;
  if (dtype === DTYPE.float32) {
    for (let i = 0; i < data.length; i++) view.setFloat32(hs + 4 * i, data[i]!, true);
  } else if (dtype === DTYPE.float16) {
    // saturate at fp16's largest finite value (65504): extreme but legal inputs (workers/src/oip/protocol.ts
    // MAX_ABS_INPUT) make activations of up to ~2e5, which would otherwise travel as Infinity and be
    // refused by the cloud; NaN and Infinity still travel as such (and are refused there)
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      view.setUint16(hs + 2 * i, toHalf(v > HALF_MAX && v < Infinity ? HALF_MAX : v < -HALF_MAX && v > -Infinity ? -HALF_MAX : v), true);
    }
  } else {
    // Asymmetric per-tensor uint8 (the ONNX QuantizeLinear convention): the range always
    // contains 0 so that zero is exact, which ReLU outputs are full of.
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) throw new WireFormatError("cannot quantize a non-finite activation");
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    scale = hi > lo ? (hi - lo) / Q_LEVELS : 1;
    scale = Math.fround(scale);
    zeroPoint = Math.min(QMAX, Math.max(QMIN, Math.round(-lo / scale)));
    const q = out.subarray(hs);
    for (let i = 0; i < data.length; i++) {
      const v = Math.round(data[i]! / scale) + zeroPoint;
      q[i] = v < QMIN ? QMIN : v > QMAX ? QMAX : v;
    }
  }
  view.setFloat32(AT.scale, scale, true);
  view.setInt32(AT.zeroPoint, zeroPoint, true);
  return out;
}

/**
 * Parses the header and checks it against the payload length. Throws WireFormatError. Nothing is
 * allocated from a size the payload claims: the byte count must match first, and the caller
 * compares `shape` with the model's split shape before `decodeTensor`.
 */
export function decodeHeader(bytes: Uint8Array): WireHeader {
  if (bytes.length < FIXED_HEADER) throw new WireFormatError(`payload of ${bytes.length} bytes is shorter than the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(AT.magic, true) !== WIRE_MAGIC) throw new WireFormatError("bad magic: not a Fogline activation");
  const version = view.getUint8(AT.version);
  if (version !== WIRE_VERSION) throw new WireFormatError(`unsupported wire format version ${version}`);
  const code = view.getUint8(AT.dtype);
  const dtype = BY_CODE.get(code);
  if (dtype === undefined) throw new WireFormatError(`unknown dtype ${code}`);
  const rank = view.getUint8(AT.rank);
  if (rank < 1 || rank > MAX_RANK) throw new WireFormatError(`rank ${rank} not in 1..${MAX_RANK}`);
  const hs = headerSize(rank);
  if (bytes.length < hs) throw new WireFormatError("payload ends inside the shape");
  const shape: number[] = [];
  let n = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(FIXED_HEADER + 4 * i, true);
    if (d === 0) throw new WireFormatError("zero-sized dimension");
    shape.push(d);
    n *= d; // exact: the product is compared with the byte count before it could matter
  }
  const expected = hs + n * ELEMENT_BYTES[code]!;
  if (bytes.length !== expected) {
    throw new WireFormatError(`header says ${expected} bytes for shape ${shape.join("x")}, payload has ${bytes.length}`);
  }
  const scale = view.getFloat32(AT.scale, true);
  const zeroPoint = view.getInt32(AT.zeroPoint, true);
  if (dtype === "uint8" && (!(scale > 0) || !Number.isFinite(scale) || zeroPoint < QMIN || zeroPoint > QMAX)) {
    throw new WireFormatError("invalid quantization parameters");
  }
  return {
    version,
    dtype,
    precision: W.dtypes[dtype].precision as WirePrecision,
    fingerprint: bytesToHex(bytes.subarray(AT.fingerprint, AT.fingerprint + FINGERPRINT_BYTES)),
    scale,
    zeroPoint,
    shape,
    headerBytes: hs,
  };
}

/** Decodes the tensor to float32. Call `decodeHeader` first to check fingerprint and shape. */
export function decodeTensor(bytes: Uint8Array, header: WireHeader): Float32Array {
  const n = count(header.shape);
  const out = new Float32Array(n);
  const hs = header.headerBytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (header.dtype === "float32") {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(hs + 4 * i, true);
  } else if (header.dtype === "float16") {
    for (let i = 0; i < n; i++) out[i] = fromHalf(view.getUint16(hs + 2 * i, true));
  } else {
    const { scale, zeroPoint } = header;
    for (let i = 0; i < n; i++) out[i] = scale * (bytes[hs + i]! - zeroPoint);
  }
  return out;
}

export function decodeActivation(bytes: Uint8Array): DecodedActivation {
  const header = decodeHeader(bytes);
  return { header, data: decodeTensor(bytes, header) };
}
