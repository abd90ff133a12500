/**
 * Image decoding for uploads: PNG (fast-png) and JPEG (jpeg-js), both pure JS so they run in
 * workerd. Hostile input is checked before the expensive part: the format is sniffed from the
 * magic bytes, and the pixel count is read from the header and capped before decoding.
 */
import { convertIndexedToRgb, decode as decodePng } from "fast-png";
import { Unzlib } from "fflate";
import decodeJpeg from "jpeg-js/lib/decoder.js";
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
  // a header may lie in both directions: refuse files too small to hold the image it claims
  // (the decoders would allocate for the claim first), and PNGs that inflate beyond it (a bomb)
  if (format === "png") checkPngSize(bytes, width, height);
  else checkJpegSize(bytes, width, height);
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
  const img = decodeJpeg(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    tolerantDecoding: false,
    maxResolutionInMP: maxPixels / 1e6,
    maxMemoryUsageInMB: 1024,
  });
  return { width: img.width, height: img.height, data: img.data };
}

/** DEFLATE cannot do better than 1032:1 (a 258-byte match in 2 bits, RFC 1951). */
const DEFLATE_MAX_RATIO = 1032;
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Bytes the PNG's zlib stream inflates to: each scanline, plus its filter byte (PNG spec 7.2, 8.2). */
export function pngRawSize(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) total += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  return total;
}

function checkPngSize(bytes: Uint8Array, width: number, height: number): void {
  if (bytes.length < 29) return; // fast-png reports the truncation
  const channels = PNG_CHANNELS[bytes[25]!];
  if (!channels) return; // bad colour type: fast-png reports it
  const raw = pngRawSize(width, height, bytes[24]! * channels, bytes[28] === 1);
  if (bytes.length * DEFLATE_MAX_RATIO + 1024 < raw) {
    throw new ApiError("image_decode_failed", `a ${bytes.length}-byte PNG cannot hold ${width}x${height} pixels (truncated or corrupt)`);
  }
  // Inflate the image data once, in small slices, counting: a 10 MB upload could otherwise
  // inflate to 10 GB inside the decoder, whatever the header says.
  const cap = raw + 65536;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  let compressed = 0;
  for (let off = 8; off + 8 <= bytes.length; ) {
    const length = view.getUint32(off);
    const type = String.fromCharCode(bytes[off + 4]!, bytes[off + 5]!, bytes[off + 6]!, bytes[off + 7]!);
    const data = bytes.subarray(off + 8, Math.min(bytes.length, off + 8 + length));
    if (type === "IDAT") {
      idat.push(data);
      compressed += data.length;
    }
    if (type === "IEND") break;
    off += 12 + length;
  }
  if (compressed * DEFLATE_MAX_RATIO <= cap) return; // it cannot inflate beyond the cap
  let inflated = 0;
  const inflator = new Unzlib((chunk) => {
    inflated += chunk.length;
    if (inflated > cap) throw new ApiError("image_decode_failed", `the PNG data inflates to more than the ${raw} bytes a ${width}x${height} image needs`);
  });
  const SLICE = 1024; // each push inflates to at most ~1 MB
  try {
    for (const data of idat) for (let i = 0; i < data.length; i += SLICE) inflator.push(data.subarray(i, i + SLICE), false);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    // a corrupt stream: the decoder reports it below with its own message
  }
}

function checkJpegSize(bytes: Uint8Array, width: number, height: number): void {
  // Huffman-coded scans spend at least one bit on the DC term of every 8x8 luma block
  // (ITU T.81 F.1.2.1), so a JPEG smaller than pixels/512 bytes is truncated or lies.
  if (bytes.length * 512 < width * height) {
    throw new ApiError("image_decode_failed", `a ${bytes.length}-byte JPEG cannot hold ${width}x${height} pixels (truncated or corrupt)`);
  }
}
