/**
 * Image decoding for uploads: PNG (fast-png) and JPEG (jpeg-js), both pure JS so they run in
 * workerd. Hostile input is checked before the expensive part: the format is sniffed from the
 * magic bytes, and the pixel count is read from the header and capped before decoding.
 */
import { convertIndexedToRgb, decode as decodePng } from "fast-png";
import jpeg from "jpeg-js";
import { ApiError } from "./errors.js";

export type ImageFormat = "png" | "jpeg";

export interface RgbImage {
  width: number;
  height: number;
  /** 8-bit RGB, interleaved, row-major */
  data: Uint8Array;
}

export interface DecodeLimits {
  /** default 40 megapixels */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return null;
}

/** Width and height from the PNG IHDR or the JPEG SOFn segment, without decoding. */
export function readDimensions(bytes: Uint8Array, format: ImageFormat): { width: number; height: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "png") {
    // signature (8) + chunk length (4) + "IHDR" (4) + width (4) + height (4)
    if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") {
      throw new ApiError("image_decode_failed", "PNG has no IHDR header (truncated or corrupt)");
    }
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  let off = 2;
  while (off + 4 <= bytes.length) {
    if (bytes[off] !== 0xff) throw new ApiError("image_decode_failed", "JPEG marker expected (corrupt file)");
    const marker = bytes[off + 1]!;
    if (marker === 0xff) {
      off += 1; // fill byte
      continue;
    }
    const len = view.getUint16(off + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (off + 9 > bytes.length) break;
      return { height: view.getUint16(off + 5), width: view.getUint16(off + 7) };
    }
    if (len < 2) throw new ApiError("image_decode_failed", "JPEG segment with invalid length");
    off += 2 + len;
  }
  throw new ApiError("image_decode_failed", "JPEG has no frame header (truncated or corrupt)");
}

export function decodeImage(bytes: Uint8Array, limits: DecodeLimits = {}): RgbImage & { format: ImageFormat } {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) throw new ApiError("empty_body", "the image is empty");
  const format = sniffFormat(bytes);
  if (!format) throw new ApiError("not_an_image", "the body is neither a PNG nor a JPEG image");
  const { width, height } = readDimensions(bytes, format);
  if (width === 0 || height === 0) throw new ApiError("image_empty", `the image has zero size (${width}x${height})`);
  if (width * height > maxPixels) {
    throw new ApiError("image_too_large", `${width}x${height} is more than the ${maxPixels} pixels allowed`);
  }
  try {
    const img = format === "png" ? pngToRgb(bytes) : jpegToRgb(bytes, maxPixels);
    if (img.width !== width || img.height !== height) throw new Error("decoded size differs from the header");
    return { ...img, format };
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError("image_decode_failed", `could not decode the ${format.toUpperCase()}: ${(e as Error).message}`);
  }
}

function pngToRgb(bytes: Uint8Array): RgbImage {
  const png = decodePng(bytes);
  const { width, height } = png;
  let channels = png.channels;
  let src: ArrayLike<number> = png.data;
  let depth: number = png.depth;
  if (png.palette) {
    src = convertIndexedToRgb(png);
    channels = png.transparency ? 4 : 3;
    depth = 8;
    // convertIndexedToRgb adds alpha only when there is a tRNS chunk
    if (src.length === width * height * 3) channels = 3;
    else if (src.length === width * height * 4) channels = 4;
  }
  const n = width * height;
  if (src.length !== n * channels) throw new Error(`pixel data is ${src.length} values, expected ${n * channels} (truncated?)`);
  // 16-bit samples keep their high byte, as PIL does when it opens them as 8-bit
  const shift = depth === 16 ? 8 : 0;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    if (channels >= 3) {
      // RGB or RGBA: alpha dropped, not composited (docs/contracts.md)
      out[3 * i] = src[s]! >> shift;
      out[3 * i + 1] = src[s + 1]! >> shift;
      out[3 * i + 2] = src[s + 2]! >> shift;
    } else {
      // grey or grey+alpha: replicate grey
      const g = src[s]! >> shift;
      out[3 * i] = g;
      out[3 * i + 1] = g;
      out[3 * i + 2] = g;
    }
  }
  return { width, height, data: out };
}

function jpegToRgb(bytes: Uint8Array, maxPixels: number): RgbImage {
  const img = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    tolerantDecoding: false,
    maxResolutionInMP: maxPixels / 1e6,
    maxMemoryUsageInMB: 1024,
  });
  return { width: img.width, height: img.height, data: img.data };
}
