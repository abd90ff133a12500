/**
 * A lean, streaming JPEG decoder for uploads (baseline and progressive Huffman-coded 8-bit JPEG),
 * pure TypeScript with no Node APIs, so it runs in workerd and Node alike.
 *
 * Derived from the decoder of jpeg-js 0.4.4 (node_modules/jpeg-js/lib/decoder.js,
 * https://github.com/eugeneware/jpeg-js), whose notices follow. That file is a port of pdf.js's
 * jpg.js by notmasteryet (Apache License 2.0, notice kept below); the jpeg-js package is
 * distributed under the BSD-3-Clause licence (notice kept below).
 *
 *   Copyright 2011 notmasteryet
 *
 *   Licensed under the Apache License, Version 2.0 (the "License");
 *   you may not use this file except in compliance with the License.
 *   You may obtain a copy of the License at
 *
 *       http://www.apache.org/licenses/LICENSE-2.0
 *
 *   Unless required by applicable law or agreed to in writing, software
 *   distributed under the License is distributed on an "AS IS" BASIS,
 *   WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 *   See the License for the specific language governing permissions and
 *   limitations under the License.
 *
 *   Copyright (c) 2014, Eugene Ware
 *   All rights reserved.
 *
 *   Redistribution and use in source and binary forms, with or without
 *   modification, are permitted provided that the following conditions are met:
 *
 *   1. Redistributions of source code must retain the above copyright
 *      notice, this list of conditions and the following disclaimer.
 *   2. Redistributions in binary form must reproduce the above copyright
 *      notice, this list of conditions and the following disclaimer in the
 *      documentation and/or other materials provided with the distribution.
 *   3. Neither the name of Eugene Ware nor the names of its contributors
 *      may be used to endorse or promote products derived from this software
 *      without specific prior written permission.
 *
 *   THIS SOFTWARE IS PROVIDED BY EUGENE WARE ''AS IS'' AND ANY
 *   EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
 *   WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
 *   DISCLAIMED. IN NO EVENT SHALL EUGENE WARE BE LIABLE FOR ANY
 *   DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES
 *   (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES;
 *   LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND
 *   ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT
 *   (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS
 *   SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
 *
 * Changes from jpeg-js (Fogline, 2026), to bound memory in a 128 MB Worker isolate
 * (docs/reliability.md, "Image memory"); the output is bit-exact with jpeg-js's
 * `decode(bytes, { useTArray: true, formatAsRGBA: false })` on valid files
 * (test/workers/jpeg.test.ts):
 * - Coefficients: one Int16Array per component over its MCU-padded block grid (2 bytes per
 *   sample) instead of one Int32Array(64) object per 8x8 block in nested arrays (~15 times as
 *   much). The block decoders write at an offset into it. (For 8-bit JPEG every valid
 *   coefficient fits 16 bits; a corrupt file's out-of-range DC sums wrap, where jpeg-js's would
 *   wrap at 32 bits.)
 * - Output: the IDCT runs one MCU row at a time into per-component row buffers (the MCU row's
 *   lines plus the previous row's last line), which are upsampled (jpeg-js's nearest-neighbour
 *   index arithmetic, kept exactly) and colour-converted (jpeg-js's float formulas, kept
 *   exactly) one output row at a time into `onRow`. No full-image plane or RGB image exists.
 * - Memory is estimated from the frame header (`jpegDecodeBytes`) and checked before anything
 *   is allocated.
 * - Huffman decoding reads through a 32-bit bit buffer and a 9-bit lookup table (plus the
 *   canonical maxcode walk for longer codes) instead of walking a tree one bit at a time.
 * - Strict: unsupported processes (lossless, hierarchical, arithmetic coding), precisions other
 *   than 8 bits, component counts other than 1, 3 or 4, sampling factors outside 1-4, missing
 *   tables, truncated data and markers inside entropy-coded data throw an Error with a clear
 *   message. jpeg-js's "tolerant" recoveries (skipping missing blocks, re-synchronising on
 *   misaligned markers, malformed APP1 lengths) are gone; scans stop at their last MCU even when
 *   the restart interval does not divide it (jpeg-js overran there); extraneous bytes before a
 *   restart marker are skipped (jpeg-js threw).
 * - Dropped: JFIF/EXIF/comment extraction, 2-component output, the colorTransform option (its
 *   default behaviour is kept: 3 components are always YCbCr, 4 are YCCK when the Adobe marker's
 *   transform flag is set and CMYK otherwise), RGBA output.
 */

/** Zig-zag order index -> natural (row-major) index. */
const ZIGZAG = new Int32Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]);

const dctCos1 = 4017; // cos(pi/16)
const dctSin1 = 799; // sin(pi/16)
const dctCos3 = 3406; // cos(3*pi/16)
const dctSin3 = 2276; // sin(3*pi/16)
const dctCos6 = 1567; // cos(6*pi/16)
const dctSin6 = 3784; // sin(6*pi/16)
const dctSqrt2 = 5793; // sqrt(2)
const dctSqrt1d2 = 2896; // sqrt(2) / 2

export interface JpegComponentInfo {
  id: number;
  /** horizontal and vertical sampling factors, 1-4 */
  h: number;
  v: number;
  /** quantization table id, 0-3 */
  tq: number;
}

/** What the frame header (SOFn) says, read before decoding. */
export interface JpegFrameInfo {
  width: number;
  height: number;
  progressive: boolean;
  components: JpegComponentInfo[];
}

export interface JpegDecodeOptions {
  /** refuse (before allocating) a decode whose `jpegDecodeBytes` exceeds this; default no limit */
  maxBytes?: number;
}

const hex = (n: number) => n.toString(16).padStart(2, "0");

/** Parses a SOFn segment at `off` (the 0xFF of its marker); throws on what this decoder cannot do. */
function parseSof(data: Uint8Array, off: number): JpegFrameInfo {
  const marker = data[off + 1]!;
  if (marker >= 0xc9) throw new Error(`arithmetic-coded JPEG (SOF ff${hex(marker)}) is not supported`);
  if (marker === 0xc3) throw new Error("lossless JPEG (SOF ffc3) is not supported");
  if (marker >= 0xc5) throw new Error(`hierarchical JPEG (SOF ff${hex(marker)}) is not supported`);
  const len = (data[off + 2]! << 8) | data[off + 3]!;
  if (off + 10 > data.length || off + 2 + len > data.length) throw new Error("JPEG frame header is truncated");
  const precision = data[off + 4]!;
  if (precision !== 8) throw new Error(`${precision}-bit JPEG is not supported (only 8-bit samples)`);
  const height = (data[off + 5]! << 8) | data[off + 6]!;
  const width = (data[off + 7]! << 8) | data[off + 8]!;
  const n = data[off + 9]!;
  if (n !== 1 && n !== 3 && n !== 4) throw new Error(`JPEG with ${n} components is not supported (only 1, 3 or 4)`);
  if (len < 8 + 3 * n) throw new Error("JPEG frame header is truncated");
  const components: JpegComponentInfo[] = [];
  for (let i = 0; i < n; i++) {
    const p = off + 10 + 3 * i;
    const id = data[p]!, h = data[p + 1]! >> 4, v = data[p + 1]! & 15, tq = data[p + 2]!;
    if (h < 1 || h > 4 || v < 1 || v > 4) throw new Error(`invalid JPEG sampling factor ${h}x${v} (expected 1-4)`);
    if (tq > 3) throw new Error(`invalid JPEG quantization table id ${tq}`);
    if (components.some((c) => c.id === id)) throw new Error(`JPEG frame header names component ${id} twice`);
    components.push({ id, h, v, tq });
  }
  return { width, height, progressive: marker === 0xc2, components };
}

/**
 * The frame header (the first SOFn), without decoding: walks the segments from SOI. Throws an
 * Error for a file that is not a JPEG, is truncated before its frame header, or uses a process
 * this decoder does not support.
 */
export function readJpegFrame(data: Uint8Array): JpegFrameInfo {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) throw new Error("not a JPEG (no SOI marker)");
  let off = 2;
  while (off + 4 <= data.length) {
    if (data[off] !== 0xff) throw new Error(`JPEG marker expected at byte ${off} (corrupt file)`);
    const marker = data[off + 1]!;
    if (marker === 0xff) {
      off += 1; // fill byte
      continue;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return parseSof(data, off);
    if (marker === 0xda || marker === 0xd9) throw new Error("JPEG has no frame header before its image data (corrupt file)");
    const len = (data[off + 2]! << 8) | data[off + 3]!;
    if (len < 2) throw new Error("JPEG segment with invalid length");
    off += 2 + len;
  }
  throw new Error("JPEG has no frame header (truncated or corrupt)");
}

interface Layout {
  maxH: number;
  maxV: number;
  mcusPerLine: number;
  mcusPerColumn: number;
}

function layout(f: JpegFrameInfo): Layout {
  let maxH = 1, maxV = 1;
  for (const c of f.components) {
    if (maxH < c.h) maxH = c.h;
    if (maxV < c.v) maxV = c.v;
  }
  // jpeg-js's expressions, kept as they are
  return { maxH, maxV, mcusPerLine: Math.ceil(f.width / 8 / maxH), mcusPerColumn: Math.ceil(f.height / 8 / maxV) };
}

/** Fixed costs: Huffman lookup tables (8 x 1 KiB), quantization tables, IDCT scratch, objects. */
const JPEG_FIXED_BYTES = 16 * 1024;

/**
 * The most memory `decodeJpegRows` holds for a frame (bytes), from its header alone: per
 * component, its coefficients (2 bytes per sample over the MCU-padded block grid), its row
 * buffer (the MCU row's lines plus one, MCU-padded width) and its column map (4 bytes per output
 * column); one RGB output row; small fixed tables. Not counted: the file itself.
 */
export function jpegDecodeBytes(f: JpegFrameInfo): number {
  const { mcusPerLine, mcusPerColumn } = layout(f);
  let bytes = JPEG_FIXED_BYTES + 3 * f.width;
  for (const c of f.components) {
    const blocksWide = mcusPerLine * c.h, blocksHigh = mcusPerColumn * c.v;
    bytes += blocksWide * blocksHigh * 64 * 2 + (8 * c.v + 1) * blocksWide * 8 + 4 * f.width;
  }
  return bytes;
}

interface Huffman {
  /** the next 9 bits -> (code length << 8) | value, or 0 when the code is longer than 9 bits */
  lookup: Uint16Array;
  /** per code length 1-16: the largest code of that length (-1 if none) */
  maxcode: Int32Array;
  /** per code length: index into values of a code of that length, minus the code */
  valptr: Int32Array;
  values: Uint8Array;
}

const LOOKUP_BITS = 9;

function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const lookup = new Uint16Array(1 << LOOKUP_BITS);
  const maxcode = new Int32Array(18).fill(-1);
  const valptr = new Int32Array(18);
  let code = 0, k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1]!;
    valptr[len] = k - code;
    for (let i = 0; i < n; i++, code++, k++) {
      if (code >= 1 << len) throw new Error("invalid JPEG Huffman table (could not recreate it)");
      if (len <= LOOKUP_BITS) {
        const shift = LOOKUP_BITS - len, entry = (len << 8) | values[k]!;
        lookup.fill(entry, code << shift, (code + 1) << shift);
      }
    }
    if (n > 0) maxcode[len] = code - 1;
    code <<= 1;
  }
  return { lookup, maxcode, valptr, values };
}

interface Component extends JpegComponentInfo {
  blocksPerLine: number;
  blocksPerColumn: number;
  /** blocks per row of the MCU-padded grid */
  stride: number;
  coef: Int16Array;
  pred: number;
  dc: Huffman | undefined;
  ac: Huffman | undefined;
}

interface Frame extends Layout {
  width: number;
  height: number;
  progressive: boolean;
  components: Component[];
}

type BlockDecoder = (c: Component, o: number) => void;

/**
 * Decodes one scan (its header already parsed) into the components' coefficients; returns the
 * offset of the marker that follows it.
 */
function decodeScan(data: Uint8Array, start: number, frame: Frame, components: Component[], restartInterval: number,
  spectralStart: number, spectralEnd: number, successivePrev: number, successive: number): number {
  const length = data.length;
  let pos = start, acc = 0, bitCnt = 0, stopped = false;

  function fill(): void {
    while (bitCnt <= 24 && !stopped) {
      if (pos >= length) {
        stopped = true;
        break;
      }
      const b = data[pos]!;
      if (b === 0xff) {
        if (data[pos + 1] === 0) pos += 2;
        else {
          stopped = true; // a marker (or the end): the scan's data ends here
          break;
        }
      } else pos++;
      acc = (acc << 8) | b;
      bitCnt += 8;
    }
  }
  function pastData(): never {
    if (pos + 1 < length) throw new Error(`unexpected marker ff${hex(data[pos + 1]!)} inside JPEG scan data (corrupt or truncated)`);
    throw new Error("JPEG data ends inside a scan (truncated)");
  }
  function decodeHuffman(t: Huffman | undefined): number {
    if (bitCnt < 16) fill();
    const look = bitCnt >= 16 ? (acc >>> (bitCnt - 16)) & 0xffff : (acc << (16 - bitCnt)) & 0xffff;
    const e = t!.lookup[look >> (16 - LOOKUP_BITS)]!;
    if (e !== 0) {
      const len = e >> 8;
      if (len > bitCnt) pastData();
      bitCnt -= len;
      return e & 255;
    }
    for (let len = LOOKUP_BITS + 1; len <= 16; len++) {
      const code = look >> (16 - len);
      if (code <= t!.maxcode[len]!) {
        if (len > bitCnt) pastData();
        bitCnt -= len;
        return t!.values[code + t!.valptr[len]!]!;
      }
    }
    if (bitCnt < 16) pastData();
    throw new Error("invalid Huffman code in JPEG scan data (corrupt)");
  }
  function receive(n: number): number {
    if (n === 0) return 0;
    if (bitCnt < n) {
      fill();
      if (bitCnt < n) pastData();
    }
    bitCnt -= n;
    return (acc >>> bitCnt) & ((1 << n) - 1);
  }
  function receiveAndExtend(n: number): number {
    if (n > 16) throw new Error(`invalid coefficient size ${n} in JPEG scan data (corrupt)`);
    const v = receive(n);
    if (v >= 1 << (n - 1)) return v;
    return v + (-1 << n) + 1;
  }

  const decodeBaseline: BlockDecoder = (c, o) => {
    const coef = c.coef;
    const t = decodeHuffman(c.dc);
    const diff = t === 0 ? 0 : receiveAndExtend(t);
    coef[o] = c.pred += diff;
    let k = 1;
    while (k < 64) {
      const rs = decodeHuffman(c.ac);
      const s = rs & 15, r = rs >> 4;
      if (s === 0) {
        if (r < 15) break;
        k += 16;
        continue;
      }
      k += r;
      const value = receiveAndExtend(s);
      if (k < 64) coef[o + ZIGZAG[k]!] = value; // past the block: jpeg-js drops it too
      k++;
    }
  };
  const decodeDCFirst: BlockDecoder = (c, o) => {
    const t = decodeHuffman(c.dc);
    const diff = t === 0 ? 0 : receiveAndExtend(t) << successive;
    c.coef[o] = c.pred += diff;
  };
  const decodeDCSuccessive: BlockDecoder = (c, o) => {
    c.coef[o] = c.coef[o]! | (receive(1) << successive);
  };
  let eobrun = 0;
  const decodeACFirst: BlockDecoder = (c, o) => {
    if (eobrun > 0) {
      eobrun--;
      return;
    }
    const coef = c.coef;
    let k = spectralStart;
    const e = spectralEnd;
    while (k <= e) {
      const rs = decodeHuffman(c.ac);
      const s = rs & 15, r = rs >> 4;
      if (s === 0) {
        if (r < 15) {
          eobrun = receive(r) + (1 << r) - 1;
          break;
        }
        k += 16;
        continue;
      }
      k += r;
      const value = receiveAndExtend(s) * (1 << successive);
      if (k < 64) coef[o + ZIGZAG[k]!] = value;
      k++;
    }
  };
  let successiveACState = 0, successiveACNextValue = 0;
  const decodeACSuccessive: BlockDecoder = (c, o) => {
    const coef = c.coef;
    let k = spectralStart, r = 0;
    const e = spectralEnd;
    while (k <= e) {
      const z = o + ZIGZAG[k]!;
      const cur = coef[z]!;
      const direction = cur < 0 ? -1 : 1;
      switch (successiveACState) {
        case 0: { // initial state
          const rs = decodeHuffman(c.ac);
          const s = rs & 15;
          r = rs >> 4;
          if (s === 0) {
            if (r < 15) {
              eobrun = receive(r) + (1 << r);
              successiveACState = 4;
            } else {
              r = 16;
              successiveACState = 1;
            }
          } else {
            if (s !== 1) throw new Error("invalid JPEG progressive refinement (ACn encoding)");
            successiveACNextValue = receiveAndExtend(s);
            successiveACState = r ? 2 : 3;
          }
          continue;
        }
        case 1: // skipping r zero items
        case 2:
          if (cur) coef[z] = cur + (receive(1) << successive) * direction;
          else {
            r--;
            if (r === 0) successiveACState = successiveACState === 2 ? 3 : 0;
          }
          break;
        case 3: // set value for a zero item
          if (cur) coef[z] = cur + (receive(1) << successive) * direction;
          else {
            coef[z] = successiveACNextValue << successive;
            successiveACState = 0;
          }
          break;
        case 4: // eob
          if (cur) coef[z] = cur + (receive(1) << successive) * direction;
          break;
      }
      k++;
    }
    if (successiveACState === 4) {
      eobrun--;
      if (eobrun === 0) successiveACState = 0;
    }
  };

  let decode: BlockDecoder;
  if (frame.progressive) {
    if (spectralStart === 0) decode = successivePrev === 0 ? decodeDCFirst : decodeDCSuccessive;
    else decode = successivePrev === 0 ? decodeACFirst : decodeACSuccessive;
  } else decode = decodeBaseline;
  const needsDc = decode === decodeBaseline || decode === decodeDCFirst;
  const needsAc = decode === decodeBaseline || decode === decodeACFirst || decode === decodeACSuccessive;
  for (const c of components) {
    if ((needsDc && !c.dc) || (needsAc && !c.ac)) throw new Error(`JPEG scan uses a Huffman table that was not defined (component ${c.id})`);
  }

  const single = components.length === 1;
  const mcusPerLine = frame.mcusPerLine;
  const mcuExpected = single ? components[0]!.blocksPerLine * components[0]!.blocksPerColumn : mcusPerLine * frame.mcusPerColumn;
  const interval = restartInterval || mcuExpected;
  let mcu = 0;
  while (mcu < mcuExpected) {
    for (const c of components) c.pred = 0;
    eobrun = 0;
    successiveACState = 0;
    if (single) {
      const c = components[0]!;
      const bpl = c.blocksPerLine, stride = c.stride;
      for (let n = 0; n < interval && mcu < mcuExpected; n++, mcu++) {
        const blockRow = (mcu / bpl) | 0, blockCol = mcu % bpl;
        decode(c, (blockRow * stride + blockCol) * 64);
      }
    } else {
      for (let n = 0; n < interval && mcu < mcuExpected; n++, mcu++) {
        const mcuRow = (mcu / mcusPerLine) | 0, mcuCol = mcu % mcusPerLine;
        for (const c of components) {
          const h = c.h, v = c.v, stride = c.stride;
          for (let j = 0; j < v; j++) {
            const rowStart = ((mcuRow * v + j) * stride + mcuCol * h) * 64;
            for (let k = 0; k < h; k++) decode(c, rowStart + k * 64);
          }
        }
      }
    }
    // the interval (or the scan) is over: drop the bits left, find the marker after the data
    acc = 0;
    bitCnt = 0;
    stopped = false;
    while (pos < length && !(data[pos] === 0xff && data[pos + 1] !== 0)) pos++;
    if (pos + 1 >= length) throw new Error("JPEG data ends inside a scan (truncated)");
    const marker = data[pos + 1]!;
    if (marker >= 0xd0 && marker <= 0xd7) pos += 2; // RSTn
    else if (mcu < mcuExpected) throw new Error(`JPEG scan ends after ${mcu} of its ${mcuExpected} MCUs (marker ff${hex(marker)}; truncated or corrupt)`);
  }
  return pos;
}

/**
 * The IDCT of jpeg-js (a port of poppler's, after Loeffler, Ligtenberg and Moschytz, "Practical
 * Fast 1-D DCT Algorithms with 11 Multiplications", 1989), kept bit for bit: dequantizes the
 * block at `coef[o]` into `p` and writes its 8x8 samples at `out[outOff]`, `stride` apart.
 */
function idctBlock(coef: Int16Array, o: number, qt: Int32Array, p: Int32Array, out: Uint8Array, outOff: number, stride: number): void {
  let v0, v1, v2, v3, v4, v5, v6, v7, t;
  let i;

  // dequant
  for (i = 0; i < 64; i++) p[i] = coef[o + i]! * qt[i]!;

  // inverse DCT on rows
  for (i = 0; i < 8; ++i) {
    const row = 8 * i;

    // check for all-zero AC coefficients
    if (p[1 + row] === 0 && p[2 + row] === 0 && p[3 + row] === 0 &&
        p[4 + row] === 0 && p[5 + row] === 0 && p[6 + row] === 0 &&
        p[7 + row] === 0) {
      t = (dctSqrt2 * p[0 + row]! + 512) >> 10;
      p[0 + row] = t;
      p[1 + row] = t;
      p[2 + row] = t;
      p[3 + row] = t;
      p[4 + row] = t;
      p[5 + row] = t;
      p[6 + row] = t;
      p[7 + row] = t;
      continue;
    }

    // stage 4
    v0 = (dctSqrt2 * p[0 + row]! + 128) >> 8;
    v1 = (dctSqrt2 * p[4 + row]! + 128) >> 8;
    v2 = p[2 + row]!;
    v3 = p[6 + row]!;
    v4 = (dctSqrt1d2 * (p[1 + row]! - p[7 + row]!) + 128) >> 8;
    v7 = (dctSqrt1d2 * (p[1 + row]! + p[7 + row]!) + 128) >> 8;
    v5 = p[3 + row]! << 4;
    v6 = p[5 + row]! << 4;

    // stage 3
    t = (v0 - v1 + 1) >> 1;
    v0 = (v0 + v1 + 1) >> 1;
    v1 = t;
    t = (v2 * dctSin6 + v3 * dctCos6 + 128) >> 8;
    v2 = (v2 * dctCos6 - v3 * dctSin6 + 128) >> 8;
    v3 = t;
    t = (v4 - v6 + 1) >> 1;
    v4 = (v4 + v6 + 1) >> 1;
    v6 = t;
    t = (v7 + v5 + 1) >> 1;
    v5 = (v7 - v5 + 1) >> 1;
    v7 = t;

    // stage 2
    t = (v0 - v3 + 1) >> 1;
    v0 = (v0 + v3 + 1) >> 1;
    v3 = t;
    t = (v1 - v2 + 1) >> 1;
    v1 = (v1 + v2 + 1) >> 1;
    v2 = t;
    t = (v4 * dctSin3 + v7 * dctCos3 + 2048) >> 12;
    v4 = (v4 * dctCos3 - v7 * dctSin3 + 2048) >> 12;
    v7 = t;
    t = (v5 * dctSin1 + v6 * dctCos1 + 2048) >> 12;
    v5 = (v5 * dctCos1 - v6 * dctSin1 + 2048) >> 12;
    v6 = t;

    // stage 1
    p[0 + row] = v0 + v7;
    p[7 + row] = v0 - v7;
    p[1 + row] = v1 + v6;
    p[6 + row] = v1 - v6;
    p[2 + row] = v2 + v5;
    p[5 + row] = v2 - v5;
    p[3 + row] = v3 + v4;
    p[4 + row] = v3 - v4;
  }

  // inverse DCT on columns
  for (i = 0; i < 8; ++i) {
    const col = i;

    // check for all-zero AC coefficients
    if (p[1 * 8 + col] === 0 && p[2 * 8 + col] === 0 && p[3 * 8 + col] === 0 &&
        p[4 * 8 + col] === 0 && p[5 * 8 + col] === 0 && p[6 * 8 + col] === 0 &&
        p[7 * 8 + col] === 0) {
      t = (dctSqrt2 * p[i]! + 8192) >> 14;
      p[0 * 8 + col] = t;
      p[1 * 8 + col] = t;
      p[2 * 8 + col] = t;
      p[3 * 8 + col] = t;
      p[4 * 8 + col] = t;
      p[5 * 8 + col] = t;
      p[6 * 8 + col] = t;
      p[7 * 8 + col] = t;
      continue;
    }

    // stage 4
    v0 = (dctSqrt2 * p[0 * 8 + col]! + 2048) >> 12;
    v1 = (dctSqrt2 * p[4 * 8 + col]! + 2048) >> 12;
    v2 = p[2 * 8 + col]!;
    v3 = p[6 * 8 + col]!;
    v4 = (dctSqrt1d2 * (p[1 * 8 + col]! - p[7 * 8 + col]!) + 2048) >> 12;
    v7 = (dctSqrt1d2 * (p[1 * 8 + col]! + p[7 * 8 + col]!) + 2048) >> 12;
    v5 = p[3 * 8 + col]!;
    v6 = p[5 * 8 + col]!;

    // stage 3
    t = (v0 - v1 + 1) >> 1;
    v0 = (v0 + v1 + 1) >> 1;
    v1 = t;
    t = (v2 * dctSin6 + v3 * dctCos6 + 2048) >> 12;
    v2 = (v2 * dctCos6 - v3 * dctSin6 + 2048) >> 12;
    v3 = t;
    t = (v4 - v6 + 1) >> 1;
    v4 = (v4 + v6 + 1) >> 1;
    v6 = t;
    t = (v7 + v5 + 1) >> 1;
    v5 = (v7 - v5 + 1) >> 1;
    v7 = t;

    // stage 2
    t = (v0 - v3 + 1) >> 1;
    v0 = (v0 + v3 + 1) >> 1;
    v3 = t;
    t = (v1 - v2 + 1) >> 1;
    v1 = (v1 + v2 + 1) >> 1;
    v2 = t;
    t = (v4 * dctSin3 + v7 * dctCos3 + 2048) >> 12;
    v4 = (v4 * dctCos3 - v7 * dctSin3 + 2048) >> 12;
    v7 = t;
    t = (v5 * dctSin1 + v6 * dctCos1 + 2048) >> 12;
    v5 = (v5 * dctCos1 - v6 * dctSin1 + 2048) >> 12;
    v6 = t;

    // stage 1
    p[0 * 8 + col] = v0 + v7;
    p[7 * 8 + col] = v0 - v7;
    p[1 * 8 + col] = v1 + v6;
    p[6 * 8 + col] = v1 - v6;
    p[2 * 8 + col] = v2 + v5;
    p[5 * 8 + col] = v2 - v5;
    p[3 * 8 + col] = v3 + v4;
    p[4 * 8 + col] = v3 - v4;
  }

  // convert to 8-bit integers
  for (let y = 0; y < 8; y++) {
    const row = 8 * y, line = outOff + y * stride;
    for (let x = 0; x < 8; x++) {
      const sample = 128 + ((p[row + x]! + 8) >> 4);
      out[line + x] = sample < 0 ? 0 : sample > 0xff ? 0xff : sample;
    }
  }
}

const clampTo8bit = (a: number) => (a < 0 ? 0 : a > 255 ? 255 : a);

/**
 * Decodes a baseline or progressive JPEG and hands it out as 8-bit RGB rows: `onRow(y, rgb)` for
 * y = 0..height-1 in order, `rgb` (3 x width bytes) valid only during the call. Throws an Error
 * for a corrupt, truncated or unsupported file, or one whose decode would hold more than
 * `maxBytes` (checked from the frame header before allocating).
 */
export function decodeJpegRows(data: Uint8Array, onRow: (y: number, rgb: Uint8Array) => void, opts: JpegDecodeOptions = {}): { width: number; height: number } {
  const length = data.length;
  if (length < 4 || data[0] !== 0xff || data[1] !== 0xd8) throw new Error("not a JPEG (no SOI marker)");
  const quantizationTables: (Int32Array | undefined)[] = [];
  const dcTables: (Huffman | undefined)[] = [];
  const acTables: (Huffman | undefined)[] = [];
  let frame: Frame | null = null;
  let restartInterval = 0;
  let adobe: { transformCode: number } | null = null;
  let scans = 0;
  let off = 2;
  for (;;) {
    if (off >= length) throw new Error("JPEG ends before its end-of-image marker (truncated)");
    if (data[off] !== 0xff) throw new Error(`JPEG marker expected at byte ${off} (corrupt file)`);
    while (data[off + 1] === 0xff) off++; // fill bytes
    if (off + 1 >= length) throw new Error("JPEG ends before its end-of-image marker (truncated)");
    const marker = data[off + 1]!;
    if (marker === 0xd9) break; // EOI
    if (marker === 0x00 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) throw new Error(`unexpected JPEG marker ff${hex(marker)} at byte ${off}`);
    if (off + 4 > length) throw new Error("JPEG ends inside a segment header (truncated)");
    const segLength = (data[off + 2]! << 8) | data[off + 3]!;
    const end = off + 2 + segLength;
    if (segLength < 2) throw new Error("JPEG segment with invalid length");
    if (end > length) throw new Error(`JPEG segment ff${hex(marker)} is truncated`);
    let p = off + 4;
    switch (marker) {
      case 0xdb: // DQT
        while (p < end) {
          const spec = data[p++]!, pq = spec >> 4, tq = spec & 15;
          if (pq > 1 || tq > 3) throw new Error(`invalid JPEG quantization table spec ${hex(spec)}`);
          if (p + (pq ? 128 : 64) > end) throw new Error("JPEG quantization table is truncated");
          const table = new Int32Array(64);
          for (let j = 0; j < 64; j++) {
            table[ZIGZAG[j]!] = pq ? (data[p]! << 8) | data[p + 1]! : data[p]!;
            p += pq ? 2 : 1;
          }
          quantizationTables[tq] = table;
        }
        break;
      case 0xc4: // DHT
        while (p < end) {
          if (p + 17 > end) throw new Error("JPEG Huffman table is truncated");
          const spec = data[p]!, tc = spec >> 4, th = spec & 15;
          if (tc > 1 || th > 3) throw new Error(`invalid JPEG Huffman table spec ${hex(spec)}`);
          const counts = data.subarray(p + 1, p + 17);
          let total = 0;
          for (let j = 0; j < 16; j++) total += counts[j]!;
          if (p + 17 + total > end) throw new Error("JPEG Huffman table is truncated");
          (tc === 0 ? dcTables : acTables)[th] = buildHuffman(counts, data.subarray(p + 17, p + 17 + total));
          p += 17 + total;
        }
        break;
      case 0xdd: // DRI
        if (segLength < 4) throw new Error("JPEG restart interval segment is truncated");
        restartInterval = (data[p]! << 8) | data[p + 1]!;
        break;
      case 0xdc: // DNL: the height is taken from the frame header
        break;
      case 0xee: // APP14: Adobe
        if (data[p] === 0x41 && data[p + 1] === 0x64 && data[p + 2] === 0x6f && data[p + 3] === 0x62 && data[p + 4] === 0x65 && data[p + 5] === 0 && p + 6 <= end) {
          adobe = { transformCode: p + 11 < end ? data[p + 11]! : 0 };
        }
        break;
      case 0xda: { // SOS
        if (!frame) throw new Error("JPEG scan before its frame header (corrupt file)");
        const n = data[p++]!;
        if (n < 1 || n > 4 || segLength < 6 + 2 * n) throw new Error("invalid JPEG scan header");
        const components: Component[] = [];
        for (let i = 0; i < n; i++) {
          const id = data[p++]!, tables = data[p++]!;
          const c = frame.components.find((x) => x.id === id);
          if (!c) throw new Error(`JPEG scan names component ${id}, which the frame does not have`);
          if (components.includes(c)) throw new Error(`JPEG scan names component ${id} twice`);
          c.dc = (tables >> 4) < 4 ? dcTables[tables >> 4] : undefined;
          c.ac = (tables & 15) < 4 ? acTables[tables & 15] : undefined;
          components.push(c);
        }
        const spectralStart = data[p++]!, spectralEnd = data[p++]!, approximation = data[p++]!;
        if (frame.progressive && (spectralEnd > 63 || spectralStart > spectralEnd || (approximation & 15) > 13)) {
          throw new Error("invalid JPEG progressive scan parameters");
        }
        scans++;
        off = decodeScan(data, end, frame, components, restartInterval, spectralStart, spectralEnd, approximation >> 4, approximation & 15);
        continue;
      }
      default:
        if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc8) {
          if (marker === 0xcc) throw new Error("arithmetic-coded JPEG (DAC) is not supported");
          if (frame) throw new Error("only single frame JPEGs supported");
          frame = allocateFrame(parseSof(data, off), opts.maxBytes ?? Infinity);
        } else if (!((marker >= 0xe0 && marker <= 0xef) || marker === 0xfe)) {
          throw new Error(`unknown JPEG marker ff${hex(marker)}`);
        }
      // APPn and COM: skipped
    }
    off = end;
  }
  if (!frame) throw new Error("JPEG has no frame header");
  if (scans === 0) throw new Error("JPEG has no image data (no scan)");
  if (frame.components.length === 4 && !adobe) throw new Error("4-component JPEG without an Adobe marker (unknown colour space) is not supported");
  emitRows(frame, quantizationTables, adobe !== null && adobe.transformCode !== 0, onRow);
  return { width: frame.width, height: frame.height };
}

function allocateFrame(info: JpegFrameInfo, maxBytes: number): Frame {
  const { width, height } = info;
  if (width === 0 || height === 0) throw new Error(`JPEG has zero size (${width}x${height}; DNL markers are not supported)`);
  const needed = jpegDecodeBytes(info);
  if (needed > maxBytes) throw new Error(`decoding this ${width}x${height} JPEG would take ${Math.ceil(needed / 2 ** 20)} MiB, more than the ${Math.floor(maxBytes / 2 ** 20)} MiB allowed`);
  const l = layout(info);
  const components = info.components.map((c): Component => {
    const stride = l.mcusPerLine * c.h;
    return {
      ...c,
      // jpeg-js's expressions, kept as they are
      blocksPerLine: Math.ceil(Math.ceil(width / 8) * c.h / l.maxH),
      blocksPerColumn: Math.ceil(Math.ceil(height / 8) * c.v / l.maxV),
      stride,
      coef: new Int16Array(stride * l.mcusPerColumn * c.v * 64),
      pred: 0,
      dc: undefined,
      ac: undefined,
    };
  });
  return { ...l, width, height, progressive: info.progressive, components };
}

/** IDCT one MCU row at a time, then upsample and colour-convert each output row (jpeg-js's getData and copyToImageData). */
function emitRows(frame: Frame, quantizationTables: (Int32Array | undefined)[], colorTransform4: boolean, onRow: (y: number, rgb: Uint8Array) => void): void {
  const { width, height, maxV, components } = frame;
  const n = components.length;
  const scratch = new Int32Array(64);
  const rgb = new Uint8Array(3 * width);
  const comps = components.map((c) => {
    const qt = quantizationTables[c.tq];
    if (!qt) throw new Error(`JPEG quantization table ${c.tq} was not defined`);
    const lineWidth = c.stride * 8;
    const scaleX = c.h / frame.maxH, scaleY = c.v / frame.maxV;
    const xmap = new Int32Array(width);
    for (let x = 0; x < width; x++) xmap[x] = 0 | (x * scaleX);
    // slot 0: the previous MCU row's last line; slots 1..8v: this MCU row's lines
    return { c, qt, lineWidth, scaleY, xmap, lines: new Uint8Array((8 * c.v + 1) * lineWidth), lineOff: 0 };
  });
  const mcuRows = frame.mcusPerColumn;
  for (let m = 0; m < mcuRows; m++) {
    const yStart = m * 8 * maxV;
    if (yStart >= height) break;
    for (const s of comps) {
      const { c, qt, lineWidth, lines } = s;
      const v = c.v;
      if (m > 0) lines.copyWithin(0, 8 * v * lineWidth, (8 * v + 1) * lineWidth);
      for (let j = 0; j < v; j++) {
        const blockRow = m * v + j;
        if (blockRow >= c.blocksPerColumn) break;
        const outRow = (1 + 8 * j) * lineWidth;
        for (let blockCol = 0; blockCol < c.blocksPerLine; blockCol++) {
          idctBlock(c.coef, (blockRow * c.stride + blockCol) * 64, qt, scratch, lines, outRow + blockCol * 8, lineWidth);
        }
      }
    }
    const yEnd = Math.min(height, yStart + 8 * maxV);
    for (let y = yStart; y < yEnd; y++) {
      for (const s of comps) {
        const rel = (0 | (y * s.scaleY)) - m * 8 * s.c.v + 1;
        if (rel < 0 || rel > 8 * s.c.v) throw new Error("internal error: JPEG line outside its MCU row");
        s.lineOff = rel * s.lineWidth;
      }
      convertRow(comps, n, width, rgb, colorTransform4);
      onRow(y, rgb);
    }
  }
}

interface RowSource {
  lines: Uint8Array;
  lineOff: number;
  xmap: Int32Array;
}

function convertRow(comps: RowSource[], n: number, width: number, rgb: Uint8Array, colorTransform4: boolean): void {
  const s0 = comps[0]!;
  const l0 = s0.lines, o0 = s0.lineOff, x0 = s0.xmap;
  if (n === 1) {
    for (let x = 0, i = 0; x < width; x++, i += 3) {
      const Y = l0[o0 + x0[x]!]!;
      rgb[i] = Y;
      rgb[i + 1] = Y;
      rgb[i + 2] = Y;
    }
    return;
  }
  const s1 = comps[1]!, s2 = comps[2]!;
  const l1 = s1.lines, o1 = s1.lineOff, x1 = s1.xmap;
  const l2 = s2.lines, o2 = s2.lineOff, x2 = s2.xmap;
  if (n === 3) {
    // jpeg-js always converts 3 components from YCbCr (its colorTransform default)
    for (let x = 0, i = 0; x < width; x++, i += 3) {
      const Y = l0[o0 + x0[x]!]!, Cb = l1[o1 + x1[x]!]!, Cr = l2[o2 + x2[x]!]!;
      rgb[i] = clampTo8bit(Y + 1.402 * (Cr - 128));
      rgb[i + 1] = clampTo8bit(Y - 0.3441363 * (Cb - 128) - 0.71413636 * (Cr - 128));
      rgb[i + 2] = clampTo8bit(Y + 1.772 * (Cb - 128));
    }
    return;
  }
  const s3 = comps[3]!;
  const l3 = s3.lines, o3 = s3.lineOff, x3 = s3.xmap;
  for (let x = 0, i = 0; x < width; x++, i += 3) {
    let C, M, Ye;
    const K = l3[o3 + x3[x]!]!;
    if (!colorTransform4) {
      C = l0[o0 + x0[x]!]!;
      M = l1[o1 + x1[x]!]!;
      Ye = l2[o2 + x2[x]!]!;
    } else {
      const Y = l0[o0 + x0[x]!]!, Cb = l1[o1 + x1[x]!]!, Cr = l2[o2 + x2[x]!]!;
      C = 255 - clampTo8bit(Y + 1.402 * (Cr - 128));
      M = 255 - clampTo8bit(Y - 0.3441363 * (Cb - 128) - 0.71413636 * (Cr - 128));
      Ye = 255 - clampTo8bit(Y + 1.772 * (Cb - 128));
    }
    // jpeg-js stores 255 - C, 255 - M, 255 - Ye, 255 - K as bytes (getData), then converts
    // CMYK to RGB from them (copyToImageData)
    const c = (255 - C) | 0, mm = (255 - M) | 0, ye = (255 - Ye) | 0, k = (255 - K) | 0;
    rgb[i] = 255 - clampTo8bit(c * (1 - k / 255) + k);
    rgb[i + 1] = 255 - clampTo8bit(mm * (1 - k / 255) + k);
    rgb[i + 2] = 255 - clampTo8bit(ye * (1 - k / 255) + k);
  }
}
