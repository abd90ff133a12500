/**
 * The hostile-image corpus of the memory checks (issue 17): decompression bombs in pixel and
 * ancillary chunks, strips, headers that lie, 16-bit RGBA, interlaced and palette PNGs, baseline
 * and progressive JPEGs, and images on each side of every limit. Each entry says what the edge
 * answers with the default limits ("ok" or the error code). Used by test/node/image-memory.test.ts
 * (the decode path, in Node) and test/e2e/memory.test.ts (workerd under `npm start`).
 */
import { readFileSync } from "node:fs";
import { Zlib } from "fflate";
import { encode as encodeJpeg } from "jpeg-js";
import { encodeFlatPng, encodePngSpec, type PngSpec } from "./shared/png-encoder.js";

export interface HostileImage {
  name: string;
  /** "ok" or the error code the edge answers */
  expected: string;
  contentType: "image/png" | "image/jpeg";
  /** built on demand: some are megapixels */
  bytes(): Uint8Array<ArrayBuffer>;
}

/** A zlib stream of `mib` MiB of zeros, built without holding them. */
function zeroStream(mib: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const z = new Zlib({ level: 9 }, (chunk) => parts.push(chunk));
  const zeros = new Uint8Array(2 ** 20);
  for (let i = 0; i < mib; i++) z.push(zeros, i === mib - 1);
  return Uint8Array.from(parts.flatMap((p) => [...p]));
}

/** A PNG whose IHDR claims `width x height` around the data of a small real image. */
function claiming(png: Uint8Array | PngSpec, width: number, height: number): Uint8Array {
  const out = png instanceof Uint8Array ? png.slice() : encodePngSpec(png);
  const view = new DataView(out.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  return out;
}

/** A real PNG of one flat colour (any colour type, depth, interlacing), built without a sample array. */
function flat(width: number, height: number, colorType: PngSpec["colorType"], depth: PngSpec["depth"], interlaced = false): Uint8Array {
  return encodeFlatPng({ width, height, colorType, depth, interlaced });
}

/** A baseline 4:4:4 JPEG (jpeg-js's encoder does no chroma subsampling) of a gradient. */
function gradientJpeg(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([(i % width) & 255, (i / width) & 255, 128, 255], 4 * i);
  return encodeJpeg({ width, height, data }, 90).data;
}

const small = { width: 1, height: 1, colorType: 2 as const, depth: 8 as const, samples: [1, 2, 3] };

const entry = (contentType: HostileImage["contentType"]) => (name: string, expected: string, make: () => Uint8Array): HostileImage =>
  ({ name, expected, contentType, bytes: () => Uint8Array.from(make()) });
const png = entry("image/png");
const jpeg = entry("image/jpeg");

/** The corpus, in a fixed order. */
export const HOSTILE_IMAGES: readonly HostileImage[] = [
  png("1x1 PNG with a 300 MiB iCCP bomb", "ok", () => encodePngSpec({ ...small, extra: [{ type: "iCCP", data: new Uint8Array([105, 99, 99, 0, 0, ...zeroStream(300)]) }] })),
  png("1x1 PNG with 300 MiB zTXt and iTXt bombs", "ok", () => {
    const z = zeroStream(300);
    return encodePngSpec({ ...small, extra: [{ type: "zTXt", data: new Uint8Array([65, 0, 0, ...z]) }, { type: "iTXt", data: new Uint8Array([65, 0, 1, 0, 0, 0, ...z]) }] });
  }),
  png("IDAT bomb: claims 32x32, inflates to 3000x3000", "image_decode_failed", () => claiming(flat(3000, 3000, 0, 8), 32, 32)),
  png("1 x 200,000 strip (under 1 KB)", "image_too_large", () => claiming(small, 1, 200_000)),
  png("1 x 4,000,000 strip", "image_too_large", () => claiming(small, 1, 4_000_000)),
  png("40 MP PNG (117 KB in issue 17)", "image_too_large", () => claiming(small, 8000, 5000)),
  png("2000x2000 8-bit RGB PNG (at the 4 MP limit)", "ok", () => flat(2000, 2000, 2, 8)),
  png("2001x2000 PNG (just over 4 MP)", "image_too_large", () => claiming(small, 2001, 2000)),
  png("2000x2000 16-bit RGBA PNG", "ok", () => flat(2000, 2000, 6, 16)),
  png("2000x2000 16-bit RGBA interlaced PNG", "ok", () => flat(2000, 2000, 6, 16, true)),
  png("2000x2000 palette PNG, interlaced", "ok", () => flat(2000, 2000, 3, 8, true)),
  png("2000x2000 1-bit grey PNG", "ok", () => flat(2000, 2000, 0, 1)),
  png("11296x353 wide strip (32:1, 4 MP)", "ok", () => flat(11296, 353, 2, 8)),
  png("353x11296 tall strip (32:1, 4 MP)", "ok", () => flat(353, 11296, 2, 8)),
  png("11300x350 (beyond 32:1)", "image_unsupported", () => claiming(small, 11300, 350)),
  jpeg("1000x1000 baseline JPEG (4:4:4)", "ok", () => gradientJpeg(1000, 1000)),
  jpeg("2000x2000 baseline JPEG (4:4:4, at the 4 MP limit)", "ok", () => gradientJpeg(2000, 2000)),
  jpeg("2000x2000 baseline JPEG (4:2:0)", "ok", () => readFileSync(new URL("./fixtures/baseline-420-2000x2000.jpg", import.meta.url))),
  jpeg("2000x2000 progressive JPEG (4:4:4)", "ok", () => readFileSync(new URL("./fixtures/progressive-444-2000x2000.jpg", import.meta.url))),
  jpeg("JPEG claiming 65535x65535", "image_too_large", () => {
    const j = gradientJpeg(16, 16);
    for (let i = 2; i < j.length; i++) if (j[i] === 0xff && j[i + 1] === 0xc0) { j.set([0xff, 0xff, 0xff, 0xff], i + 5); break; }
    return j;
  }),
];

