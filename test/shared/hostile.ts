/**
 * Hostile images for the edge tests: lying headers, a decompression bomb, corrupt streams.
 * Built from the real test vectors so that only the one defect differs.
 */
import { encode as encodePng } from "fast-png";

function chunkOffset(png: Uint8Array, type: string): number {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let off = 8; off + 8 <= png.length; off += 12 + view.getUint32(off)) {
    if (String.fromCharCode(...png.subarray(off + 4, off + 8)) === type) return off;
  }
  throw new Error(`no ${type} chunk`);
}

/** The PNG with its IHDR width/height replaced (CRC left stale: decoders here do not check it). */
export function pngClaiming(png: Uint8Array, width: number, height: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(png);
  const view = new DataView(out.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  return out;
}

/** A few KB that claim 32x32 but inflate to `side`x`side` grey bytes: a decompression bomb. */
export function pngBomb(side = 3000): Uint8Array<ArrayBuffer> {
  const big = encodePng({ width: side, height: side, data: new Uint8Array(side * side), channels: 1, depth: 8 });
  return pngClaiming(big, 32, 32);
}

/** The PNG with its image data replaced by bytes that are not a zlib stream. */
export function pngCorruptData(png: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(png);
  const off = chunkOffset(out, "IDAT");
  const len = new DataView(out.buffer).getUint32(off);
  out.fill(0xff, off + 8, off + 8 + len);
  return out;
}

function sofOffset(jpeg: Uint8Array): number {
  for (let off = 2; off + 4 <= jpeg.length; ) {
    const marker = jpeg[off + 1]!;
    if (marker >= 0xc0 && marker <= 0xc2) return off;
    off += 2 + ((jpeg[off + 2]! << 8) | jpeg[off + 3]!);
  }
  throw new Error("no SOF");
}

/** The JPEG with its frame header's width/height replaced. */
export function jpegClaiming(jpeg: Uint8Array, width: number, height: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(jpeg);
  const off = sofOffset(out);
  const view = new DataView(out.buffer);
  view.setUint16(off + 5, height);
  view.setUint16(off + 7, width);
  return out;
}

/** The JPEG with its entropy-coded data (after the frame header) overwritten with noise. */
export function jpegCorruptScan(jpeg: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(jpeg);
  let s = 7;
  for (let i = sofOffset(out) + 20; i < out.length - 2; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out[i] = (s >> 16) & 0xfe; // never 0xff: no accidental markers
  }
  return out;
}
