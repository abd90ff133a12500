/**
 * A small PNG writer for tests: every colour type and bit depth, each of the five scanline
 * filters, Adam7 interlacing, and any extra chunks. Independent of the decoder it tests (it
 * applies the filters forward, as the spec defines them), so a decode that matches the source
 * samples is right.
 */
import { Zlib, zlibSync } from "fflate";

export interface PngSpec {
  width: number;
  height: number;
  colorType: 0 | 2 | 3 | 4 | 6;
  depth: 1 | 2 | 4 | 8 | 16;
  /** samples, row-major, channels interleaved, each in [0, 2^depth) (palette: indices) */
  samples: number[];
  palette?: number[][];
  interlaced?: boolean;
  /** filter of each scanline: `row % 5` unless given */
  filter?: (row: number) => number;
  /** chunks written between IHDR and IDAT, e.g. a compressed iCCP */
  extra?: { type: string; data: Uint8Array }[];
}

export const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function packLine(samples: number[], depth: number): Uint8Array {
  if (depth === 16) return Uint8Array.from(samples.flatMap((s) => [s >> 8, s & 0xff]));
  if (depth === 8) return Uint8Array.from(samples);
  const out = new Uint8Array(Math.ceil((samples.length * depth) / 8));
  samples.forEach((s, i) => (out[(i * depth) >> 3]! |= s << (8 - depth - ((i * depth) & 7))));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function filterLine(type: number, line: Uint8Array, prev: Uint8Array, bpp: number): Uint8Array {
  const out = new Uint8Array(line.length + 1);
  out[0] = type;
  for (let i = 0; i < line.length; i++) {
    const a = i >= bpp ? line[i - bpp]! : 0;
    const b = prev[i] ?? 0;
    const c = i >= bpp ? prev[i - bpp] ?? 0 : 0;
    const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type]!;
    out[i + 1] = (line[i]! - pred) & 0xff;
  }
  return out;
}

export function encodePngSpec(s: PngSpec): Uint8Array<ArrayBuffer> {
  const ch = CHANNELS[s.colorType];
  const bpp = Math.max(1, (ch * s.depth) >> 3);
  const passes = s.interlaced ? ADAM7 : ([[0, 0, 1, 1]] as const);
  const raw: Uint8Array[] = [];
  let row = 0;
  for (const [x0, y0, dx, dy] of passes) {
    let prev: Uint8Array = new Uint8Array(0);
    for (let y = y0; y < s.height; y += dy) {
      const lineSamples: number[] = [];
      for (let x = x0; x < s.width; x += dx) lineSamples.push(...s.samples.slice((y * s.width + x) * ch, (y * s.width + x + 1) * ch));
      if (lineSamples.length === 0) break;
      const line = packLine(lineSamples, s.depth);
      raw.push(filterLine((s.filter ?? ((r) => r % 5))(row++), line, prev, bpp));
      prev = line;
    }
  }
  const total = raw.reduce((n, r) => n + r.length, 0);
  const joined = new Uint8Array(total);
  let off = 0;
  for (const r of raw) {
    joined.set(r, off);
    off += r.length;
  }
  return assemble(s, zlibSync(joined));
}

/** Signature, IHDR, extra chunks, PLTE, one IDAT and IEND around an already compressed stream. */
function assemble(s: Omit<PngSpec, "samples">, idat: Uint8Array): Uint8Array<ArrayBuffer> {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, s.width);
  v.setUint32(4, s.height);
  ihdr.set([s.depth, s.colorType, 0, 0, s.interlaced ? 1 : 0], 8);
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    ...(s.extra ?? []).map((c) => chunk(c.type, c.data)),
    ...(s.palette ? [chunk("PLTE", Uint8Array.from(s.palette.flat()))] : []),
    chunk("IDAT", idat),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * A large PNG of one repeated byte (filter 0 on every line), compressed as it is generated so
 * that megapixel test images cost neither the memory nor the time of a sample array. A palette
 * image gets a 256-entry palette so the byte is a valid index.
 */
export function encodeFlatPng(s: Omit<PngSpec, "samples" | "filter">, byte = 0x55): Uint8Array<ArrayBuffer> {
  const bpp = CHANNELS[s.colorType] * s.depth;
  const parts: Uint8Array[] = [];
  const z = new Zlib({ level: 6 }, (c) => parts.push(c));
  const passes = s.interlaced ? ADAM7 : ([[0, 0, 1, 1]] as const);
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.ceil((s.width - x0) / dx);
    const h = Math.ceil((s.height - y0) / dy);
    if (w <= 0 || h <= 0) continue;
    const line = new Uint8Array(1 + Math.ceil((w * bpp) / 8)).fill(byte);
    line[0] = 0;
    for (let y = 0; y < h; y++) z.push(line);
  }
  z.push(new Uint8Array(0), true);
  const idat = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    idat.set(p, off);
    off += p.length;
  }
  const palette = s.colorType === 3 ? Array.from({ length: 256 }, (_, i) => [i, 255 - i, 128]) : s.palette;
  return assemble({ ...s, palette }, idat);
}

/** What the decoder must produce for a spec: 8-bit RGB per docs/contracts.md. */
export function expectedRgb(s: PngSpec): Uint8Array {
  const ch = CHANNELS[s.colorType];
  const n = s.width * s.height;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const px = s.samples.slice(i * ch, (i + 1) * ch);
    let rgb: number[];
    if (s.colorType === 3) rgb = s.palette![px[0]!] ?? [0, 0, 0];
    else {
      const to8 = (v: number) => (s.depth === 16 ? v >> 8 : s.depth < 8 ? Math.floor((v * 255) / ((1 << s.depth) - 1)) : v);
      rgb = ch >= 3 ? px.slice(0, 3).map(to8) : [to8(px[0]!), to8(px[0]!), to8(px[0]!)];
    }
    out.set(rgb, 3 * i);
  }
  return out;
}
