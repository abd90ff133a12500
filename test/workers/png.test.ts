import { decode as fastPngDecode } from "fast-png";
import { zlibSync } from "fflate";
import { describe, expect, it } from "vitest";
import { ApiError } from "@fogline/shared/errors";
import { decodeImage } from "../../workers/src/image/image.js";
import { CHANNELS, encodePngSpec, expectedRgb, type PngSpec } from "../shared/png-encoder.js";

/** Byte equality without a per-byte diff in the failure (images run to thousands of bytes). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function rng(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
}

function spec(colorType: PngSpec["colorType"], depth: PngSpec["depth"], width: number, height: number, interlaced: boolean, seed = 1): PngSpec {
  const r = rng(seed);
  const ch = CHANNELS[colorType];
  const max = colorType === 3 ? Math.min(1 << depth, 6) : 1 << depth; // palette of 5 entries: index 5 is past its end
  const samples = Array.from({ length: width * height * ch }, () => Math.floor(r() * max));
  const palette = colorType === 3 ? Array.from({ length: 5 }, (_, i) => [40 * i, 255 - 30 * i, (97 * i) % 256]) : undefined;
  return { width, height, colorType, depth, samples, palette, interlaced };
}

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof ApiError ? e.code : `not an ApiError: ${e}`;
  }
  return "no error";
};

describe("streaming PNG decoder (workers/src/image/png.ts)", () => {
  const cases: [PngSpec["colorType"], PngSpec["depth"][]][] = [[0, [1, 2, 4, 8, 16]], [2, [8, 16]], [3, [1, 2, 4, 8]], [4, [8, 16]], [6, [8, 16]]];
  for (const [colorType, depths] of cases) {
    for (const depth of depths) {
      for (const interlaced of [false, true]) {
        it(`colour type ${colorType}, ${depth}-bit${interlaced ? ", Adam7" : ""}: every pixel as the spec says, every filter`, () => {
          for (const [w, h] of [[13, 11], [1, 9], [9, 1], [40, 33]] as const) {
            const s = spec(colorType, depth, w, h, interlaced, w * 31 + h);
            const img = decodeImage(encodePngSpec(s));
            expect([img.width, img.height]).toEqual([w, h]);
            expect(sameBytes(img.data, expectedRgb(s)), `${w}x${h}`).toBe(true);
          }
        });
      }
    }
  }

  it("agrees with fast-png on 8- and 16-bit images, interlaced or not", () => {
    for (const [colorType, depth] of [[2, 8], [6, 16], [0, 8], [4, 16]] as const) {
      for (const interlaced of [false, true]) {
        const s = spec(colorType, depth, 37, 29, interlaced, 7);
        const bytes = encodePngSpec(s);
        const ref = fastPngDecode(bytes);
        const ch = CHANNELS[colorType];
        const ours = decodeImage(bytes).data;
        for (let i = 0; i < 37 * 29; i++) {
          const g = (k: number) => (ref.data[i * ch + (ch >= 3 ? k : 0)]! >> (depth === 16 ? 8 : 0));
          expect([ours[3 * i], ours[3 * i + 1], ours[3 * i + 2]]).toEqual([g(0), g(1), g(2)]);
        }
      }
    }
  });

  it("never inflates ancillary chunks: a 64 MiB iCCP and zTXt decode as if absent", () => {
    const bomb = zlibSync(new Uint8Array(64 * 2 ** 20), { level: 9 });
    const s = spec(2, 8, 8, 8, false);
    const plain = decodeImage(encodePngSpec(s)).data;
    const iccp = new Uint8Array([...new TextEncoder().encode("icc"), 0, 0, ...bomb]);
    const ztxt = new Uint8Array([...new TextEncoder().encode("Comment"), 0, 0, ...bomb]);
    const withBombs = encodePngSpec({ ...s, extra: [{ type: "iCCP", data: iccp }, { type: "zTXt", data: ztxt }] });
    expect(decodeImage(withBombs).data).toEqual(plain);
  });

  it("refuses malformed files with image_decode_failed", () => {
    const good = encodePngSpec(spec(2, 8, 16, 16, false));
    expect(code(() => decodeImage(good.slice(0, good.length - 30)))).toBe("image_decode_failed"); // truncated IDAT
    const badFilter = encodePngSpec({ ...spec(2, 8, 16, 16, false), filter: () => 7 });
    expect(code(() => decodeImage(badFilter))).toBe("image_decode_failed");
    const noPalette = encodePngSpec({ ...spec(3, 8, 4, 4, false), palette: undefined });
    expect(code(() => decodeImage(noPalette))).toBe("image_decode_failed");
    const badDepth = encodePngSpec(spec(2, 8, 4, 4, false));
    badDepth[24] = 4; // RGB at 4 bits does not exist
    expect(code(() => decodeImage(badDepth))).toBe("image_decode_failed");
    const unknownCritical = encodePngSpec({ ...spec(2, 8, 4, 4, false), extra: [{ type: "ABCD", data: new Uint8Array(4) }] });
    expect(code(() => decodeImage(unknownCritical))).toBe("image_decode_failed");
    const unknownAncillary = encodePngSpec({ ...spec(2, 8, 4, 4, false), extra: [{ type: "abCD", data: new Uint8Array(4) }] });
    expect(code(() => decodeImage(unknownAncillary))).toBe("no error");
  });
});

describe("image limits, from the header before decoding", () => {
  const header = (w: number, h: number, colorType: PngSpec["colorType"] = 2, depth: PngSpec["depth"] = 8, interlaced = false) => {
    // a real file of the claimed size would be large; the limits must refuse the claim alone
    const s = encodePngSpec({ ...spec(colorType, depth, 1, 1, interlaced) });
    const view = new DataView(s.buffer);
    view.setUint32(16, w);
    view.setUint32(20, h);
    return s;
  };
  it("pixels, longest side, aspect ratio and decode bytes each get their own clear error", () => {
    expect(code(() => decodeImage(header(2001, 2000)))).toBe("image_too_large"); // 4.002 MP > 4 MP default
    expect(code(() => decodeImage(header(100, 100), { maxPixels: 9999 }))).toBe("image_too_large");
    expect(code(() => decodeImage(header(20000, 100), { maxPixels: 1e9 }))).toBe("image_too_large"); // side > 16384
    expect(code(() => decodeImage(header(1, 200_000)))).toBe("image_too_large"); // the 1 x 200,000 strip of issue 17
    expect(code(() => decodeImage(header(3300, 100)))).toBe("image_unsupported"); // 33:1
    expect(code(() => decodeImage(header(2000, 2000, 6, 16, true), { maxDecodeBytes: 8 * 2 ** 20 }))).toBe("image_too_large"); // interlaced: holds 12 MB
  });
});
