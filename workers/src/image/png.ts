/**
 * A PNG decoder that streams 8-bit RGB rows, so that the memory it takes is bounded by one or
 * two scanlines rather than by the image (docs/reliability.md, "Image memory"):
 *
 * - only the chunks that carry pixels are read (IHDR, PLTE, IDAT, IEND); every ancillary chunk
 *   (iCCP, zTXt, iTXt, ...) is skipped unread, so a compressed profile or text cannot inflate;
 * - the image data is inflated in 1 KiB slices and counted: it may not inflate beyond the bytes
 *   its header's size needs (a decompression bomb stops there);
 * - non-interlaced images are unfiltered line by line and handed out as they complete; an
 *   interlaced (Adam7) image is assembled into one RGB buffer (3 bytes per pixel) first, since
 *   its passes fill rows out of order.
 *
 * Conversion (docs/contracts.md "Preprocessing"): 16-bit samples keep their high byte, grey
 * below 8 bits is scaled to 0..255 (v * 255 / (2^d - 1), as PIL does), palette indices map
 * through PLTE (an index beyond it reads as black), grey is replicated, alpha is dropped.
 */
import { Unzlib } from "fflate";

export interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

/** Samples per pixel of each PNG colour type (spec 11.2.2). */
export const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const VALID_DEPTHS: Readonly<Record<number, readonly number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;
/** Compressed bytes fed to the inflater at a time: each push inflates to at most ~1 MiB. */
const SLICE = 1024;

export class PngError extends Error {}

/** Bytes the zlib stream inflates to: each scanline plus its filter byte (spec 7.2, 8.2). */
export function pngRawSize(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) total += rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy));
  return total;
}

interface PngChunks {
  header: PngHeader;
  palette: Uint8Array | null;
  idat: Uint8Array[];
}

/** The chunks that carry pixels; everything else is stepped over without being read. */
export function readPngChunks(bytes: Uint8Array): PngChunks {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let header: PngHeader | null = null;
  let palette: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let off = 8;
  for (;;) {
    if (off + 8 > bytes.length) throw new PngError("the file ends before its IEND chunk (truncated)");
    const length = view.getUint32(off);
    const type = String.fromCharCode(bytes[off + 4]!, bytes[off + 5]!, bytes[off + 6]!, bytes[off + 7]!);
    const end = off + 12 + length;
    if (end > bytes.length) throw new PngError(`the ${type} chunk runs past the end of the file (truncated)`);
    const data = bytes.subarray(off + 8, off + 8 + length);
    if (!header && type !== "IHDR") throw new PngError("the first chunk is not IHDR");
    if (type === "IHDR") header = readHeader(data);
    else if (type === "PLTE") palette = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    else if (type.charCodeAt(0) < 0x61) throw new PngError(`unknown critical chunk ${JSON.stringify(type)}`);
    off = end;
  }
  if (!header) throw new PngError("no IHDR chunk");
  if (idat.length === 0) throw new PngError("no image data (IDAT)");
  if (header.colorType === 3 && !palette) throw new PngError("an indexed-colour image without a palette (PLTE)");
  return { header, palette, idat };
}

function readHeader(data: Uint8Array): PngHeader {
  if (data.length !== 13) throw new PngError("IHDR is not 13 bytes");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const header = { width: view.getUint32(0), height: view.getUint32(4), depth: data[8]!, colorType: data[9]!, interlaced: data[12] === 1 };
  if (!VALID_DEPTHS[header.colorType]?.includes(header.depth)) {
    throw new PngError(`colour type ${header.colorType} with bit depth ${header.depth} is not a valid PNG`);
  }
  if (data[10] !== 0 || data[11] !== 0 || data[12]! > 1) throw new PngError("unknown compression, filter or interlace method");
  return header;
}

/** Undo one scanline's filter in place (`line` holds the filtered bytes, `prev` the previous
 * unfiltered line, zeros for the first line of a pass). */
function unfilter(filter: number, line: Uint8Array, prev: Uint8Array, bpp: number): void {
  const n = line.length;
  switch (filter) {
    case 0:
      return;
    case 1:
      for (let i = bpp; i < n; i++) line[i] = (line[i]! + line[i - bpp]!) & 0xff;
      return;
    case 2:
      for (let i = 0; i < n; i++) line[i] = (line[i]! + prev[i]!) & 0xff;
      return;
    case 3:
      for (let i = 0; i < n; i++) line[i] = (line[i]! + (((i >= bpp ? line[i - bpp]! : 0) + prev[i]!) >> 1)) & 0xff;
      return;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? line[i - bpp]! : 0;
        const b = prev[i]!;
        const c = i >= bpp ? prev[i - bpp]! : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        line[i] = (line[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
      return;
    default:
      throw new PngError(`unknown scanline filter ${filter}`);
  }
}

/** Writes `width` pixels of an unfiltered line as RGB into `out` at pixel positions
 * `x0, x0 + dx, ...` (dx > 1 for an interlaced pass). */
function lineToRgb(line: Uint8Array, h: PngHeader, palette: Uint8Array | null, width: number, out: Uint8Array, x0: number, dx: number): void {
  const channels = PNG_CHANNELS[h.colorType]!;
  const { depth } = h;
  for (let i = 0; i < width; i++) {
    const o = 3 * (x0 + i * dx);
    if (depth < 8) {
      const bit = i * depth;
      const v = (line[bit >> 3]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
      if (h.colorType === 3) {
        const p = 3 * v;
        const inside = p + 2 < palette!.length;
        out[o] = inside ? palette![p]! : 0;
        out[o + 1] = inside ? palette![p + 1]! : 0;
        out[o + 2] = inside ? palette![p + 2]! : 0;
      } else {
        const g = (v * 255) / ((1 << depth) - 1);
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
      }
      continue;
    }
    const step = depth === 16 ? 2 : 1; // 16-bit: the high (first, big-endian) byte of each sample
    const s = i * channels * step;
    if (h.colorType === 3) {
      const p = 3 * line[s]!;
      const inside = p + 2 < palette!.length;
      out[o] = inside ? palette![p]! : 0;
      out[o + 1] = inside ? palette![p + 1]! : 0;
      out[o + 2] = inside ? palette![p + 2]! : 0;
    } else if (channels >= 3) {
      out[o] = line[s]!;
      out[o + 1] = line[s + step]!;
      out[o + 2] = line[s + 2 * step]!;
    } else {
      const g = line[s]!;
      out[o] = g;
      out[o + 1] = g;
      out[o + 2] = g;
    }
  }
}

interface Pass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  width: number;
  height: number;
}

function passesOf(h: PngHeader): Pass[] {
  if (!h.interlaced) return [{ x0: 0, y0: 0, dx: 1, dy: 1, width: h.width, height: h.height }];
  return ADAM7.map(([x0, y0, dx, dy]) => ({ x0, y0, dx, dy, width: Math.ceil((h.width - x0) / dx), height: Math.ceil((h.height - y0) / dy) }))
    .filter((p) => p.width > 0 && p.height > 0);
}

/**
 * Decodes a PNG and calls `onRow(y, rgb)` for y = 0..height-1 in order, with `rgb` the row as
 * 8-bit RGB (3 x width bytes, valid only during the call). Throws PngError on a malformed file.
 */
export function decodePngRows(bytes: Uint8Array, onRow: (y: number, rgb: Uint8Array) => void): PngHeader {
  const { header: h, palette, idat } = readPngChunks(bytes);
  const channels = PNG_CHANNELS[h.colorType]!;
  const bitsPerPixel = h.depth * channels;
  const bpp = Math.max(1, bitsPerPixel >> 3); // filter distance in bytes
  const raw = pngRawSize(h.width, h.height, bitsPerPixel, h.interlaced);
  const passes = passesOf(h);
  // interlaced: passes land in one full RGB image; otherwise each line goes straight out
  const full = h.interlaced ? new Uint8Array(3 * h.width * h.height) : null;
  const rgbRow = full ? null : new Uint8Array(3 * h.width);
  const maxLine = Math.ceil((h.width * bitsPerPixel) / 8);
  let line = new Uint8Array(maxLine + 1); // filter byte + the line
  let prev = new Uint8Array(maxLine + 1);
  let pass = 0;
  let row = 0; // within the pass
  let filled = 0; // bytes of `line` received
  let lineLen = 1 + Math.ceil((passes[0]!.width * bitsPerPixel) / 8);
  let inflated = 0;

  const finishLine = () => {
    const p = passes[pass]!;
    const body = line.subarray(1, lineLen);
    unfilter(line[0]!, body, prev.subarray(1, lineLen), bpp);
    const y = p.y0 + row * p.dy;
    if (full) lineToRgb(body, h, palette, p.width, full.subarray(3 * h.width * y), p.x0, p.dx);
    else {
      lineToRgb(body, h, palette, p.width, rgbRow!, 0, 1);
      onRow(y, rgbRow!);
    }
    [line, prev] = [prev, line];
    row++;
    filled = 0;
    if (row === p.height) {
      pass++;
      row = 0;
      prev.fill(0); // each pass starts as a new image: no line above its first
      if (pass < passes.length) lineLen = 1 + Math.ceil((passes[pass]!.width * bitsPerPixel) / 8);
    }
  };

  const inflator = new Unzlib((chunk) => {
    inflated += chunk.length;
    // a little slack for encoders that pad the stream; anything beyond is never used
    if (inflated > raw + 65536) throw new PngError(`the image data inflates to more than the ${raw} bytes a ${h.width}x${h.height} image needs`);
    let i = 0;
    while (i < chunk.length && pass < passes.length) {
      const take = Math.min(lineLen - filled, chunk.length - i);
      line.set(chunk.subarray(i, i + take), filled);
      filled += take;
      i += take;
      if (filled === lineLen) finishLine();
    }
  });
  try {
    for (const data of idat) for (let i = 0; i < data.length; i += SLICE) inflator.push(data.subarray(i, i + SLICE), false);
    inflator.push(new Uint8Array(0), true);
  } catch (e) {
    if (e instanceof PngError) throw e;
    throw new PngError(`the image data is not a valid zlib stream (${(e as Error).message})`);
  }
  if (pass < passes.length) throw new PngError(`the image data ends after ${inflated} of ${raw} bytes (truncated)`);
  if (full) for (let y = 0; y < h.height; y++) onRow(y, full.subarray(3 * h.width * y, 3 * h.width * (y + 1)));
  return h;
}
