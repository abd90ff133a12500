/// <reference types="vite/client" />
/**
 * workers/src/image/jpeg.ts against jpeg-js, the decoder it was derived from: bit-exact RGB on every
 * image (jpeg-js's `decode(bytes, { useTArray: true, formatAsRGBA: false })`), rows handed out in
 * order, and clear errors for what it refuses. Runs in Node and in workerd.
 *
 * Images: baseline 4:4:4 JPEGs made here by jpeg-js's encoder (odd sizes, several qualities);
 * test/fixtures/jpeg/*.jpg (libjpeg-turbo's cjpeg and Pillow, made by make-fixtures.sh: 4:2:0,
 * 4:2:2, 4:4:0, 4:1:1, 3x1 and 3x2 sampling, progressive, greyscale, restart intervals, CMYK);
 * the 2000x2000 progressive 4:4:4 fixture; the JPEG test vectors of models/<name>/.
 */
import { decode as jpegJsDecode, encode as jpegJsEncode } from "jpeg-js";
import { describe, expect, it } from "vitest";
import { decodeJpegRows, jpegDecodeBytes, readJpegFrame, type JpegFrameInfo } from "../../workers/src/image/jpeg.js";
import progressive2000Url from "../fixtures/progressive-444-2000x2000.jpg?inline";
import baseline420Url from "../fixtures/baseline-420-2000x2000.jpg?inline";
import { base64ToBytes, modelsWithVectors, vectorsFor } from "../shared/fixtures.js";

const fromDataUrl = (url: string) => base64ToBytes(url.slice(url.indexOf(",") + 1));
const fixtureUrls = import.meta.glob<string>("../fixtures/jpeg/*.jpg", { query: "?inline", import: "default", eager: true });
const fixtures: Record<string, Uint8Array> = Object.fromEntries(
  Object.entries(fixtureUrls).map(([path, url]) => [path.replace(/^.*\//, ""), fromDataUrl(url)]),
);

/** Our decoder's whole image, checking the row protocol on the way. */
function decodeOurs(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  let next = 0, data = new Uint8Array(0), width = 0;
  const size = decodeJpegRows(bytes, (y, rgb) => {
    if (y === 0) {
      width = rgb.length / 3;
      data = new Uint8Array(0);
    }
    if (y !== next) throw new Error(`row ${y} came when ${next} was expected`);
    if (rgb.length !== 3 * width) throw new Error(`row ${y} has ${rgb.length} bytes`);
    const grown = new Uint8Array(data.length + rgb.length);
    grown.set(data);
    grown.set(rgb, data.length);
    data = grown;
    next++;
  });
  if (next !== size.height || width !== size.width) throw new Error(`${next} rows of ${width} for ${size.width}x${size.height}`);
  return { ...size, data };
}

/** Faster for big images: rows straight into a preallocated image. */
function decodeOursInto(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  const { width, height } = readJpegFrame(bytes);
  const data = new Uint8Array(3 * width * height);
  let next = 0;
  decodeJpegRows(bytes, (y, rgb) => {
    if (y !== next++) throw new Error(`row ${y} out of order`);
    data.set(rgb, y * 3 * width);
  });
  return { width, height, data };
}

function expectSameAsJpegJs(bytes: Uint8Array, big = false): void {
  const ref = jpegJsDecode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  const ours = big ? decodeOursInto(bytes) : decodeOurs(bytes);
  expect([ours.width, ours.height]).toEqual([ref.width, ref.height]);
  const refData = ref.data as Uint8Array;
  expect(ours.data.length).toBe(refData.length);
  let first = -1, count = 0;
  for (let i = 0; i < refData.length; i++) {
    if (ours.data[i] !== refData[i]) {
      if (first < 0) first = i;
      count++;
    }
  }
  const where = first < 0 ? "" : `first at pixel (${(first / 3) % ref.width | 0}, ${(first / 3 / ref.width) | 0}): ${ours.data[first]} vs ${refData[first]}`;
  expect(count, `${count} bytes differ from jpeg-js; ${where}`).toBe(0);
}

/** A deterministic test picture: gradients, a checkerboard and noise. */
function picture(width: number, height: number, seed: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      const noise = (s >> 24) - 64;
      const i = 4 * (y * width + x);
      data[i] = ((x * 255) / Math.max(1, width - 1) + noise) & 255;
      data[i + 1] = ((y * 255) / Math.max(1, height - 1) - noise) & 255;
      data[i + 2] = ((x >> 2) + (y >> 2)) % 2 ? 230 : 20;
      data[i + 3] = 255;
    }
  }
  return data;
}

const patched = (bytes: Uint8Array, at: number, values: number[]) => {
  const out = bytes.slice();
  out.set(values, at);
  return out;
};
function markerOffset(bytes: Uint8Array, marker: number): number {
  for (let off = 2; off + 4 <= bytes.length;) {
    if (bytes[off + 1] === marker) return off;
    off += 2 + ((bytes[off + 2]! << 8) | bytes[off + 3]!);
  }
  throw new Error(`no marker ff${marker.toString(16)}`);
}

describe("JPEG decoder: bit-exact with jpeg-js", () => {
  const sizes: [number, number][] = [[1, 1], [7, 13], [17, 9], [33, 65], [100, 75], [16, 16], [64, 48], [8, 1], [1, 40]];
  for (const [w, h] of sizes) {
    for (const quality of [30, 90, 100]) {
      it(`jpeg-js encoder, baseline 4:4:4, ${w}x${h}, quality ${quality}`, () => {
        const { data } = jpegJsEncode({ width: w, height: h, data: picture(w, h, w * 1000 + h + quality) }, quality);
        expectSameAsJpegJs(new Uint8Array(data));
      });
    }
  }

  const names = Object.keys(fixtures).filter((n) => !n.includes("arithmetic")).sort();
  it("has the fixtures", () => expect(names.length).toBeGreaterThanOrEqual(15));
  for (const name of names) it(`fixture ${name}`, () => expectSameAsJpegJs(fixtures[name]!));

  it("YCCK (the CMYK fixture with the Adobe transform flag set)", () => {
    const cmyk = fixtures["pil-cmyk.jpg"]!;
    const adobe = markerOffset(cmyk, 0xee);
    expect(cmyk[adobe + 4 + 11]).toBe(0);
    expectSameAsJpegJs(patched(cmyk, adobe + 4 + 11, [2]));
  });

  it("test fixture progressive-444-2000x2000.jpg", () => expectSameAsJpegJs(fromDataUrl(progressive2000Url), true), 120_000);
  it("test fixture baseline-420-2000x2000.jpg", () => expectSameAsJpegJs(fromDataUrl(baseline420Url), true), 120_000);

  for (const model of modelsWithVectors()) {
    const jpegs = vectorsFor(model).vectors.filter((v) => v.contentType === "image/jpeg");
    for (const v of jpegs) it(`models/${model} test vector ${v.name}`, () => expectSameAsJpegJs(base64ToBytes(v.imageBase64)));
  }
});

describe("JPEG decoder: refuses what it cannot decode, with a clear Error", () => {
  const base = () => fixtures["cjpeg-restart-420.jpg"]!;
  const sof = () => markerOffset(base(), 0xc0);

  it("arithmetic coding", () => {
    expect(() => decodeJpegRows(fixtures["cjpeg-arithmetic.jpg"]!, () => {})).toThrow(/arithmetic-coded JPEG/);
    expect(() => readJpegFrame(fixtures["cjpeg-arithmetic.jpg"]!)).toThrow(/arithmetic-coded JPEG/);
  });
  it("12-bit samples, lossless and hierarchical processes", () => {
    expect(() => decodeJpegRows(patched(base(), sof() + 4, [12]), () => {})).toThrow(/12-bit JPEG is not supported/);
    expect(() => decodeJpegRows(patched(base(), sof() + 1, [0xc3]), () => {})).toThrow(/lossless JPEG/);
    expect(() => decodeJpegRows(patched(base(), sof() + 1, [0xc5]), () => {})).toThrow(/hierarchical JPEG/);
  });
  it("component counts other than 1, 3 and 4; 4 without an Adobe marker; sampling factors over 4", () => {
    expect(() => decodeJpegRows(patched(base(), sof() + 9, [2]), () => {})).toThrow(/2 components/);
    expect(() => decodeJpegRows(patched(base(), sof() + 11, [0x52]), () => {})).toThrow(/sampling factor 5x2/);
    const cmyk = fixtures["pil-cmyk.jpg"]!;
    const adobe = markerOffset(cmyk, 0xee);
    expect(() => decodeJpegRows(patched(cmyk, adobe + 4, [0x41, 0x41]), () => {})).toThrow(/without an Adobe marker/);
  });
  it("truncated files, at every length", () => {
    const bytes = fixtures["cjpeg-progressive-420-restart.jpg"]!;
    for (let n = 0; n < bytes.length - 2; n += 7) {
      expect(() => decodeJpegRows(bytes.subarray(0, n), () => {}), `truncated to ${n} bytes`).toThrow(Error);
    }
    expect(() => decodeJpegRows(bytes.subarray(0, 100), () => {})).toThrow(/truncated/);
  });
  it("not a JPEG; a scan before the frame; a marker inside scan data", () => {
    expect(() => decodeJpegRows(new Uint8Array([0x89, 0x50, 0x4e, 0x47]), () => {})).toThrow(/not a JPEG/);
    const b = base();
    const sos = markerOffset(b, 0xda);
    expect(() => decodeJpegRows(patched(b, sof() + 1, [0xe5]), () => {})).toThrow(/scan before its frame header/);
    const withMarker = patched(b, sos + 40, [0xff, 0xc4]);
    expect(() => decodeJpegRows(withMarker, () => {})).toThrow(Error);
  });
  it("a decode over maxBytes, before allocating", () => {
    const b = fixtures["cjpeg-baseline-422.jpg"]!;
    const needed = jpegDecodeBytes(readJpegFrame(b));
    let rows = 0;
    expect(() => decodeJpegRows(b, () => rows++, { maxBytes: needed - 1 })).toThrow(/would take/);
    expect(rows).toBe(0);
    decodeJpegRows(b, () => rows++, { maxBytes: needed });
    expect(rows).toBe(61);
  });
  it("random bytes behind a JPEG header never crash the decoder (only Errors)", () => {
    const b = base();
    const sos = markerOffset(b, 0xda);
    let s = 12345;
    for (let i = 0; i < 200; i++) {
      const m = b.slice();
      for (let k = 0; k < 1 + (i % 5); k++) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        const at = 2 + (s % (m.length - 2));
        m[at] = i < 100 && at < sos ? m[at]! ^ (1 << (s % 8)) : s >> 16;
      }
      try {
        decodeJpegRows(m, () => {}, { maxBytes: 48 * 2 ** 20 });
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        expect(e).not.toBeInstanceOf(RangeError);
        expect(e).not.toBeInstanceOf(TypeError);
      }
    }
  });
});

describe("JPEG decoder: memory estimate from the frame header", () => {
  const frame = (width: number, height: number, sampling: [number, number][]): JpegFrameInfo => ({
    width, height, progressive: false, components: sampling.map(([h, v], i) => ({ id: i + 1, h, v, tq: 0 })),
  });
  it("is 2 bytes per coefficient over whole MCUs, plus an MCU row of samples", () => {
    // 2000x2000 4:2:0: MCUs of 16x16, 125x125 of them; Y 250x250 blocks, Cb and Cr 125x125
    const coefficients = 2 * 64 * (250 * 250 + 2 * 125 * 125);
    const rows = 17 * 2000 + 2 * 9 * 1000 + 3 * 4 * 2000 + 3 * 2000;
    expect(jpegDecodeBytes(frame(2000, 2000, [[2, 2], [1, 1], [1, 1]]))).toBe(coefficients + rows + 16 * 1024);
    // 4:4:4 at 4 MP: 24 MB of coefficients
    expect(jpegDecodeBytes(frame(2000, 2000, [[1, 1], [1, 1], [1, 1]])) / 2 ** 20).toBeCloseTo(23.0, 1);
  });
  it("stays within the 48 MiB default for every shape within 4 MP and 32:1, any sampling", () => {
    let worst = 0;
    for (let w = 64; w <= 11314; w += 1 + (w >> 7)) {
      const h = Math.min(Math.floor(4_000_000 / w), 32 * w);
      if (w > 32 * h) continue;
      for (const s of [[[4, 4], [4, 4], [4, 4], [4, 4]], [[4, 1], [1, 1], [1, 1]], [[1, 4], [1, 1], [1, 1]], [[2, 2], [1, 1], [1, 1]]] as [number, number][][]) {
        worst = Math.max(worst, jpegDecodeBytes(frame(w, h, s)));
      }
    }
    expect(worst / 2 ** 20).toBeLessThan(48);
  });
});
