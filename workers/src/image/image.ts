/**
 * Image decoding for uploads: PNG (png.ts) and JPEG (jpeg.ts, derived from jpeg-js), both our
 * own streaming decoders in pure TypeScript so they run in workerd. Hostile input is refused
 * before the expensive part, from the header alone: the format is sniffed from the magic bytes,
 * and the size is checked against the limits below, which are sized so that no upload can take
 * a Worker isolate (128 MB, the models loaded) past its memory (docs/reliability.md, "Image
 * memory").
 *
 * Decoding hands out 8-bit RGB rows in order (`decodeRows`), so the caller can reduce them as
 * they come (preprocess.ts resizes into the 32x32 output) and never hold the image.
 */
import { ApiError } from "@fogline/shared/errors";
import { decodeJpegRows, jpegDecodeBytes, readJpegFrame, type JpegFrameInfo } from "./jpeg.js";
import { decodePngRows, PNG_CHANNELS, pngRawSize } from "./png.js";

export type ImageFormat = "png" | "jpeg";

export interface RgbImage {
  width: number;
  height: number;
  /** 8-bit RGB, interleaved, row-major */
  data: Uint8Array;
}

export interface DecodeLimits {
  /** width x height; default DEFAULT_MAX_PIXELS */
  maxPixels?: number;
  /** bytes the decoder may hold at once (estimated from the header); default DEFAULT_MAX_DECODE_BYTES */
  maxDecodeBytes?: number;
}

/** 4 MP: a 12-megapixel phone photo must be scaled down first (it is classified at 32x32). */
export const DEFAULT_MAX_PIXELS = 4_000_000;
/** What one decode may hold: 48 MiB, measured to stay well inside a 128 MB isolate beside the models. */
export const DEFAULT_MAX_DECODE_BYTES = 48 * 1024 * 1024;
/** Longest side and most elongated shape accepted: beyond them a 32x32 thumbnail means nothing,
 * and a 1 x 4,000,000 strip costs seconds of CPU for four million rows. */
export const MAX_SIDE = 16384;
export const MAX_ASPECT = 32;

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return null;
}

interface Frame {
  width: number;
  height: number;
  /** PNG: bits per pixel and interlacing; JPEG: components */
  bitsPerPixel: number;
  interlaced: boolean;
  components: number;
  /** JPEG: the frame header (sampling factors), for the memory estimate */
  jpeg?: JpegFrameInfo;
}

/** Size and layout from the PNG IHDR or the JPEG SOFn segment, without decoding. */
function readFrame(bytes: Uint8Array, format: ImageFormat): Frame {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "png") {
    // signature (8) + chunk length (4) + "IHDR" (4) + width, height, depth, colour type, ..., interlace
    if (bytes.length < 29 || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") {
      throw new ApiError("image_decode_failed", "PNG has no IHDR header (truncated or corrupt)");
    }
    const channels = PNG_CHANNELS[bytes[25]!];
    if (!channels) throw new ApiError("image_decode_failed", `PNG colour type ${bytes[25]} does not exist`);
    return { width: view.getUint32(16), height: view.getUint32(20), bitsPerPixel: bytes[24]! * channels, interlaced: bytes[28] === 1, components: channels };
  }
  let jpeg: JpegFrameInfo;
  try {
    jpeg = readJpegFrame(bytes);
  } catch (e) {
    throw new ApiError("image_decode_failed", `could not decode the JPEG: ${(e as Error).message}`);
  }
  const n = jpeg.components.length;
  return { width: jpeg.width, height: jpeg.height, bitsPerPixel: 8 * n, interlaced: false, components: n, jpeg };
}

/**
 * Peak bytes a decode holds, from the header (an upper bound of what the decoders allocate,
 * checked by test/node/image-memory.test.ts). A non-interlaced PNG streams: two scanlines and
 * one RGB row. An interlaced PNG holds the RGB image. A JPEG holds its DCT coefficients (2 bytes
 * per sample, MCU-padded, per component) and an MCU row of samples (`jpegDecodeBytes`).
 */
export function decodeBytesNeeded(f: Frame, format: ImageFormat): number {
  const pixels = f.width * f.height;
  if (format === "png") {
    const line = Math.ceil((f.width * f.bitsPerPixel) / 8) + 1;
    return 2 * line + 3 * f.width + (f.interlaced ? 3 * pixels : 0);
  }
  if (!f.jpeg) throw new Error("decodeBytesNeeded: a JPEG frame without its header");
  return jpegDecodeBytes(f.jpeg);
}

function checkLimits(f: Frame, format: ImageFormat, limits: DecodeLimits): void {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxBytes = limits.maxDecodeBytes ?? DEFAULT_MAX_DECODE_BYTES;
  const { width, height } = f;
  if (width === 0 || height === 0) throw new ApiError("image_empty", `the image has zero size (${width}x${height})`);
  if (width * height > maxPixels) {
    throw new ApiError("image_too_large", `${width}x${height} is more than the ${maxPixels} pixels allowed`);
  }
  if (Math.max(width, height) > MAX_SIDE) {
    throw new ApiError("image_too_large", `${width}x${height} has a side over the ${MAX_SIDE} pixels allowed`);
  }
  if (Math.max(width, height) > MAX_ASPECT * Math.min(width, height)) {
    throw new ApiError("image_unsupported", `${width}x${height} is more elongated than the ${MAX_ASPECT}:1 allowed`);
  }
  const needed = decodeBytesNeeded(f, format);
  if (needed > maxBytes) {
    throw new ApiError("image_too_large",
      `decoding this ${width}x${height} ${format.toUpperCase()} would take ${Math.ceil(needed / 2 ** 20)} MiB, more than the ${Math.floor(maxBytes / 2 ** 20)} MiB allowed`);
  }
}

/** Receives a decoded image row by row: `start` once with its size, then `row` for y = 0..height-1
 * in order, with 8-bit RGB that is valid only during the call. */
export interface RowSink {
  start(width: number, height: number): void;
  row(y: number, rgb: Uint8Array): void;
}

/** Decodes a PNG or JPEG upload into `sink`, checking the limits from its header first. */
export function decodeRows(bytes: Uint8Array, sink: RowSink, limits: DecodeLimits = {}): { width: number; height: number; format: ImageFormat } {
  if (bytes.length === 0) throw new ApiError("empty_body", "the image is empty");
  const format = sniffFormat(bytes);
  if (!format) throw new ApiError("not_an_image", "the body is neither a PNG nor a JPEG image");
  const frame = readFrame(bytes, format);
  checkLimits(frame, format, limits);
  const { width, height } = frame;
  // a header may lie in both directions: refuse files too small to hold the image it claims
  // (a decoder would allocate for the claim first); the PNG decoder also stops a stream that
  // inflates beyond the claim (a bomb)
  if (format === "png") checkPngSize(bytes, frame);
  else checkJpegSize(bytes, width, height);
  sink.start(width, height);
  const onRow = (y: number, rgb: Uint8Array) => sink.row(y, rgb);
  try {
    if (format === "png") decodePngRows(bytes, onRow);
    else jpegRows(bytes, limits.maxDecodeBytes ?? DEFAULT_MAX_DECODE_BYTES, width, height, onRow);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError("image_decode_failed", `could not decode the ${format.toUpperCase()}: ${(e as Error).message}`);
  }
  return { width, height, format };
}

/** The whole image as RGB (tests and tools; serving reduces rows as they come, see decodeRows). */
export function decodeImage(bytes: Uint8Array, limits: DecodeLimits = {}): RgbImage & { format: ImageFormat } {
  let data = new Uint8Array(0);
  const { width, height, format } = decodeRows(bytes, {
    start: (w, h) => (data = new Uint8Array(3 * w * h)),
    row: (y, rgb) => data.set(rgb, y * rgb.length),
  }, limits);
  return { width, height, data, format };
}

function jpegRows(bytes: Uint8Array, maxBytes: number, width: number, height: number, onRow: (y: number, rgb: Uint8Array) => void): void {
  // the decoder checks its own estimate (the same as checkLimits's) against maxBytes again
  // before allocating, and streams: coefficients, then one MCU row of samples at a time
  const size = decodeJpegRows(bytes, onRow, { maxBytes });
  if (size.width !== width || size.height !== height) throw new Error("decoded size differs from the header");
}

/** DEFLATE cannot do better than 1032:1 (a 258-byte match in 2 bits, RFC 1951). */
const DEFLATE_MAX_RATIO = 1032;

function checkPngSize(bytes: Uint8Array, f: Frame): void {
  const raw = pngRawSize(f.width, f.height, f.bitsPerPixel, f.interlaced);
  if (bytes.length * DEFLATE_MAX_RATIO + 1024 < raw) {
    throw new ApiError("image_decode_failed", `a ${bytes.length}-byte PNG cannot hold ${f.width}x${f.height} pixels (truncated or corrupt)`);
  }
}

function checkJpegSize(bytes: Uint8Array, width: number, height: number): void {
  // Huffman-coded scans spend at least one bit on the DC term of every 8x8 luma block
  // (ITU T.81 F.1.2.1), so a JPEG smaller than pixels/512 bytes is truncated or lies.
  if (bytes.length * 512 < width * height) {
    throw new ApiError("image_decode_failed", `a ${bytes.length}-byte JPEG cannot hold ${width}x${height} pixels (truncated or corrupt)`);
  }
}

