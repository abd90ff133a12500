import { describe, expect, it } from "vitest";
import { entropy, topK } from "../../workers/src/infer/entropy.js";
import { ApiError } from "@fogline/shared/errors";
import { decodeImage } from "../../workers/src/image/image.js";
import { areaWeights, preprocessImage, resizeArea } from "../../workers/src/image/preprocess.js";
import { parseManifest } from "@fogline/shared/schemas/manifest";
import { manifests } from "../models.generated.js";
import { base64ToBytes, jpegHasChromaSubsampling, makePng, maxAbsDiff, meanAbsDiff, modelsWithVectors, pngHeaderOnly, vectorsFor } from "../shared/fixtures.js";

describe("preprocessing parity with the training pipeline (testvectors.json)", () => {
  for (const name of modelsWithVectors()) {
    const manifest = parseManifest(manifests[name]);
    for (const v of vectorsFor(name).vectors) {
      // PNG decoding is exact, so the whole chain must agree to float rounding. JPEG decoders
      // legitimately differ (docs/contracts.md): by a few grey levels from IDCT rounding
      // (libjpeg-turbo in PIL vs jpeg-js), and by much more on noisy images when chroma is
      // subsampled, since libjpeg's "fancy" chroma upsampling differs from jpeg-js's.
      const bytes = base64ToBytes(v.imageBase64);
      const jpeg = v.contentType === "image/jpeg";
      const subsampled = jpeg && jpegHasChromaSubsampling(bytes);
      const tol = !jpeg ? "1e-4" : subsampled ? "JPEG 4:2:x: mean 0.1" : "JPEG 4:4:4: max 0.05, mean 0.01";
      it(`${name}/${v.name}: decode + area resize + normalise matches "input" (${tol})`, () => {
        const input = preprocessImage(bytes, manifest.input);
        expect(input.length).toBe(v.input.length);
        if (subsampled) {
          expect(meanAbsDiff(input, v.input)).toBeLessThan(0.1);
        } else if (jpeg) {
          expect(maxAbsDiff(input, v.input)).toBeLessThan(0.05);
          expect(meanAbsDiff(input, v.input)).toBeLessThan(0.01);
        } else {
          expect(maxAbsDiff(input, v.input)).toBeLessThan(1e-4);
        }
      });
      it(`${name}/${v.name}: exit entropy of "exitLogits" matches "entropy"`, () => {
        expect(Math.abs(entropy(v.exitLogits) - v.entropy)).toBeLessThan(1e-5);
      });
    }
  }
  it("has test vectors for at least one model", () => expect(modelsWithVectors().length).toBeGreaterThan(0));
});

describe("area resize", () => {
  it("has row-stochastic weights and is the identity at the same size", () => {
    for (const [nIn, nOut] of [[32, 32], [45, 32], [20, 32], [1, 32], [1000, 32], [33, 32]] as const) {
      const w = areaWeights(nIn, nOut);
      for (const row of w.weights) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
    const img = decodeImage(makePng(32, 32));
    const out = resizeArea(img, 32, 32);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) expect(out[(0 * 32 + y) * 32 + x]).toBeCloseTo(img.data[(y * 32 + x) * 3]!, 10);
  });

  it("averages 2x2 blocks when halving", () => {
    const img = decodeImage(makePng(64, 64, 7));
    const out = resizeArea(img, 32, 32);
    const px = (x: number, y: number, c: number) => img.data[(y * 64 + x) * 3 + c]!;
    const expected = (px(10, 20, 1) + px(11, 20, 1) + px(10, 21, 1) + px(11, 21, 1)) / 4;
    expect(out[(1 * 32 + 10) * 32 + 5]).toBeCloseTo(expected, 10);
  });
});

describe("hostile images", () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      return (e as ApiError).code;
    }
    return "no error";
  };
  it("rejects text, truncation, zero size and oversized headers with stable codes", () => {
    const png = makePng(40, 30);
    expect(code(() => decodeImage(new TextEncoder().encode("hello, not an image")))).toBe("not_an_image");
    expect(code(() => decodeImage(new Uint8Array(0)))).toBe("empty_body");
    expect(code(() => decodeImage(png.slice(0, png.length - 20)))).toBe("image_decode_failed");
    expect(code(() => decodeImage(png.slice(0, 20)))).toBe("image_decode_failed");
    expect(code(() => decodeImage(pngHeaderOnly(0, 10)))).toBe("image_empty");
    expect(code(() => decodeImage(pngHeaderOnly(100_000, 100_000)))).toBe("image_too_large");
    expect(code(() => decodeImage(makePng(100, 100), { maxPixels: 5000 }))).toBe("image_too_large");
    expect(code(() => decodeImage(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2])))).toBe("image_decode_failed");
  });
});

describe("exit rule helpers", () => {
  it("computes entropy stably and ranks classes", () => {
    expect(entropy([0, 0, 0, 0])).toBeCloseTo(Math.log(4), 12);
    expect(entropy([1000, 0, 0])).toBeCloseTo(0, 12);
    expect(Number.isFinite(entropy([1e4, -1e4, 3]))).toBe(true);
    const top = topK([1, 3, 2], ["a", "b", "c"], 5);
    expect(top.map((t) => t.label)).toEqual(["b", "c", "a"]);
    expect(top.reduce((s, t) => s + t.score, 0)).toBeCloseTo(1, 12);
  });
});
