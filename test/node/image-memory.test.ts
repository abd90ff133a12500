/**
 * The steering check of issue 17: no upload may raise the decode path's peak memory by more
 * than 64 MiB over its warm peak, so that a 128 MB Worker isolate with the models loaded
 * survives every image. Each image of a hostile corpus runs in its own Node process
 * (decode-peak.ts), which reports the rise of its peak resident set; the decode path is the
 * Worker's own code (shared/src/image.ts, png.ts, preprocess.ts) with the default limits.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Zlib } from "fflate";
import { encode as encodeJpeg } from "jpeg-js";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MAX_DECODE_BYTES } from "../../shared/src/image.js";
import { encodeFlatPng, encodePngSpec, type PngSpec } from "../shared/png-encoder.js";

const BUDGET_MIB = 64;
const dir = mkdtempSync(join(tmpdir(), "fogline-hostile-"));

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

function jpeg(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([(i % width) & 255, (i / width) & 255, 128, 255], 4 * i);
  return encodeJpeg({ width, height, data }, 90).data;
}

const small = { width: 1, height: 1, colorType: 2 as const, depth: 8 as const, samples: [1, 2, 3] };

/** name -> [file bytes, expected outcome] */
const corpus: Record<string, () => [Uint8Array, string]> = {
  "1x1 PNG with a 300 MiB iCCP bomb": () => [encodePngSpec({ ...small, extra: [{ type: "iCCP", data: new Uint8Array([105, 99, 99, 0, 0, ...zeroStream(300)]) }] }), "ok"],
  "1x1 PNG with 300 MiB zTXt and iTXt bombs": () => {
    const z = zeroStream(300);
    return [encodePngSpec({ ...small, extra: [{ type: "zTXt", data: new Uint8Array([65, 0, 0, ...z]) }, { type: "iTXt", data: new Uint8Array([65, 0, 1, 0, 0, 0, ...z]) }] }), "ok"];
  },
  "IDAT bomb: claims 32x32, inflates to 3000x3000": () => [claiming(flat(3000, 3000, 0, 8), 32, 32), "image_decode_failed"],
  "1 x 200,000 strip (under 1 KB)": () => [claiming(small, 1, 200_000), "image_too_large"],
  "1 x 4,000,000 strip": () => [claiming(small, 1, 4_000_000), "image_too_large"],
  "40 MP PNG (117 KB in issue 17)": () => [claiming(small, 8000, 5000), "image_too_large"],
  "2000x2000 8-bit RGB PNG (at the 4 MP limit)": () => [flat(2000, 2000, 2, 8), "ok"],
  "2001x2000 PNG (just over 4 MP)": () => [claiming(small, 2001, 2000), "image_too_large"],
  "2000x2000 16-bit RGBA PNG": () => [flat(2000, 2000, 6, 16), "ok"],
  "2000x2000 16-bit RGBA interlaced PNG": () => [flat(2000, 2000, 6, 16, true), "ok"],
  "2000x2000 palette PNG, interlaced": () => [flat(2000, 2000, 3, 8, true), "ok"],
  "2000x2000 1-bit grey PNG": () => [flat(2000, 2000, 0, 1), "ok"],
  "11296x353 wide strip (32:1, 4 MP)": () => [flat(11296, 353, 2, 8), "ok"],
  "353x11296 tall strip (32:1, 4 MP)": () => [flat(353, 11296, 2, 8), "ok"],
  "11300x350 (beyond 32:1)": () => [claiming(small, 11300, 350), "image_unsupported"],
  "1000x1000 baseline JPEG (4:2:0)": () => [jpeg(1000, 1000), "ok"],
  "2000x2000 baseline JPEG (4:2:0, over the JPEG decode budget)": () => [jpeg(2000, 2000), "image_too_large"],
  "2000x2000 progressive JPEG (4:4:4, over the JPEG decode budget)": () => [readFileSync(new URL("../fixtures/progressive-444-2000x2000.jpg", import.meta.url)), "image_too_large"],
  "JPEG claiming 65535x65535": () => {
    const j = jpeg(16, 16);
    for (let i = 2; i < j.length; i++) if (j[i] === 0xff && j[i + 1] === 0xc0) { j.set([0xff, 0xff, 0xff, 0xff], i + 5); break; }
    return [j, "image_too_large"];
  },
};

const results: Record<string, { expected: string; code: string; peakMiB: number }> = {};

beforeAll(() => {
  Object.entries(corpus).forEach(([name, make], i) => {
    const [bytes, expected] = make();
    const file = join(dir, `${i}.img`);
    writeFileSync(file, bytes);
    const out = execFileSync(process.execPath, ["--import", "tsx", "test/node/decode-peak.ts", file], { encoding: "utf8", timeout: 60_000 });
    results[name] = { expected, ...JSON.parse(out) };
  });
  console.log(Object.entries(results).map(([n, r]) => `${r.peakMiB.toFixed(1).padStart(6)} MiB  ${r.code.padEnd(20)} ${n}`).join("\n"));
}, 300_000);

describe(`every hostile image stays under ${BUDGET_MIB} MiB of decode memory`, () => {
  for (const name of Object.keys(corpus)) {
    it(name, () => {
      const r = results[name]!;
      expect(r.code).toBe(r.expected);
      expect(r.peakMiB).toBeLessThan(BUDGET_MIB);
    });
  }
  it("the default decode budget leaves the steering margin", () => expect(DEFAULT_MAX_DECODE_BYTES / 2 ** 20).toBeLessThanOrEqual(BUDGET_MIB - 8));
  it("the meter sees memory: an interlaced 2000x2000 PNG holds its 11.4 MiB RGB image", () => {
    expect(results["2000x2000 16-bit RGBA interlaced PNG"]!.peakMiB).toBeGreaterThan(11);
  });
});
