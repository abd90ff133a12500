import { describe, expect, it } from "vitest";
import { fromHalf, toHalf } from "@fogline/shared/fp16";
import { decodeActivation, decodeHeader, encodeActivation, encodedSize, WireFormatError } from "@fogline/shared/wire";
import { maxAbsDiff } from "./fixtures.js";

const FP = "ab".repeat(32);
const SHAPE = [1, 32, 16, 16];

function activation(n: number): Float32Array {
  // ReLU-like: non-negative with many exact zeros, as split activations are
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = i % 3 === 0 ? 0 : Math.abs(Math.sin(i * 0.37)) * 4.2;
  return a;
}

describe("wire format", () => {
  const data = activation(32 * 16 * 16);

  it("round-trips fp32 exactly", () => {
    const bytes = encodeActivation(data, SHAPE, FP, "fp32");
    expect(bytes.length).toBe(64 + 32 * 1024);
    const { header, data: out } = decodeActivation(bytes);
    expect(header).toMatchObject({ dtype: "float32", precision: "fp32", fingerprint: FP, shape: SHAPE, version: 1 });
    expect(Array.from(out)).toEqual(Array.from(data));
  });

  it("round-trips fp16 within half precision", () => {
    const bytes = encodeActivation(data, SHAPE, FP, "fp16");
    expect(bytes.length).toBe(64 + 16 * 1024);
    const { header, data: out } = decodeActivation(bytes);
    expect(header.dtype).toBe("float16");
    for (let i = 0; i < data.length; i++) expect(Math.abs(out[i]! - data[i]!)).toBeLessThanOrEqual(Math.abs(data[i]!) * 2 ** -11 + 1e-7);
  });

  it("round-trips int8 within half a quantization step, keeping zero exact", () => {
    const bytes = encodeActivation(data, SHAPE, FP, "int8");
    expect(bytes.length).toBe(64 + 8 * 1024);
    expect(encodedSize(SHAPE, "int8")).toBe(bytes.length);
    const { header, data: out } = decodeActivation(bytes);
    expect(header.dtype).toBe("uint8");
    expect(header.scale).toBeGreaterThan(0);
    expect(maxAbsDiff(out, data)).toBeLessThanOrEqual(header.scale / 2 + 1e-6);
    for (let i = 0; i < data.length; i += 3) expect(out[i]).toBe(0);
  });

  it("quantizes signed and constant tensors", () => {
    const signed = Float32Array.from([-2, -1, 0, 0.5, 3]);
    const r = decodeActivation(encodeActivation(signed, [5], FP, "int8"));
    expect(maxAbsDiff(r.data, signed)).toBeLessThanOrEqual(r.header.scale / 2 + 1e-6);
    const flat = new Float32Array(8);
    expect(Array.from(decodeActivation(encodeActivation(flat, [8], FP, "int8")).data)).toEqual(Array.from(flat));
  });

  it("converts half floats at the edges of the range", () => {
    for (const v of [0, -0, 1, -1, 65504, 2 ** -14, 2 ** -24, 0.1, 1e-8]) {
      expect(Math.abs(fromHalf(toHalf(v)) - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
    }
    expect(fromHalf(toHalf(1e6))).toBe(Infinity);
    expect(Number.isNaN(fromHalf(toHalf(NaN)))).toBe(true);
  });

  describe("rejects", () => {
    const good = encodeActivation(activation(8), [1, 2, 2, 2], FP, "fp32");
    const mutate = (f: (b: Uint8Array, v: DataView) => void, bytes: Uint8Array = good) => {
      const b = bytes.slice();
      f(b, new DataView(b.buffer));
      return b;
    };
    it.each([
      ["an empty payload", new Uint8Array(0)],
      ["a bad magic", mutate((b) => (b[0] = 0))],
      ["an unknown version", mutate((b) => (b[4] = 9))],
      ["an unknown dtype", mutate((b) => (b[5] = 7))],
      ["rank 0", mutate((b) => (b[6] = 0))],
      ["a truncated tensor", good.slice(0, good.length - 1)],
      ["trailing bytes", Uint8Array.from([...good, 0])],
      ["a shape that disagrees with the size", mutate((_, v) => v.setUint32(48, 1000, true))],
      ["a huge claimed shape", mutate((_, v) => [0, 1, 2, 3].forEach((i) => v.setUint32(48 + 4 * i, 0xffffffff, true)))],
      ["a zero dimension", mutate((_, v) => v.setUint32(52, 0, true))],
      ["a zero int8 scale", mutate((_, v) => v.setFloat32(40, 0, true), encodeActivation(activation(8), [1, 2, 2, 2], FP, "int8"))],
    ])("%s", (_name, bytes) => {
      expect(() => decodeHeader(bytes)).toThrow(WireFormatError);
    });
  });
});
