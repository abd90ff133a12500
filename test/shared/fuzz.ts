/**
 * Seeded fuzzing helpers for the edge and cloud fuzz tests (plain TypeScript: workerd and Node).
 * Every run explores a new seed (vitest.config.ts picks one unless FUZZ_SEED is set) and is
 * reproducible: failures print the seed and the case index, and FUZZ_SEED=<seed> replays them.
 */

/** mulberry32: small, fast, good enough to drive mutations. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** only when a test runs outside vitest.config.ts, which always sets FUZZ_SEED */
export const DEFAULT_FUZZ_SEED = 0x5eed_f06;

export function fuzzSeed(env: Record<string, unknown> | undefined): number {
  const v = Number(env?.FUZZ_SEED);
  return Number.isInteger(v) ? v : DEFAULT_FUZZ_SEED;
}

const INTERESTING_U8 = [0, 1, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U32 = [0, 1, 2, 31, 32, 33, 255, 4096, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff];

type Mutator = (r: Rng, b: Uint8Array<ArrayBuffer>, other: Uint8Array) => Uint8Array<ArrayBuffer>;

function copy(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b);
}

const MUTATORS: Mutator[] = [
  // flip a few bits
  (r, b) => {
    const out = copy(b);
    for (let k = 1 + r.int(8); k > 0 && out.length; k--) out[r.int(out.length)]! ^= 1 << r.int(8);
    return out;
  },
  // set bytes to boundary values
  (r, b) => {
    const out = copy(b);
    for (let k = 1 + r.int(4); k > 0 && out.length; k--) out[r.int(out.length)] = r.pick(INTERESTING_U8);
    return out;
  },
  // write a boundary uint32 (big- or little-endian) somewhere in the first 64 bytes: header fields
  (r, b) => {
    const out = copy(b);
    if (out.length < 4) return out;
    const at = r.int(Math.min(64, out.length - 3));
    new DataView(out.buffer).setUint32(at, r.chance(0.3) ? r.int(2 ** 32) : r.pick(INTERESTING_U32), r.chance(0.5));
    return out;
  },
  // truncate
  (r, b) => b.slice(0, r.int(b.length + 1)),
  // insert random bytes
  (r, b) => {
    const at = r.int(b.length + 1);
    const ins = r.bytes(1 + r.int(64));
    const out = new Uint8Array(b.length + ins.length);
    out.set(b.subarray(0, at), 0);
    out.set(ins, at);
    out.set(b.subarray(at), at + ins.length);
    return out;
  },
  // delete a range
  (r, b) => {
    const at = r.int(b.length + 1);
    const n = r.int(Math.min(256, b.length - at) + 1);
    const out = new Uint8Array(b.length - n);
    out.set(b.subarray(0, at), 0);
    out.set(b.subarray(at + n), at);
    return out;
  },
  // duplicate a range
  (r, b) => {
    const at = r.int(b.length + 1);
    const n = r.int(Math.min(512, b.length - at) + 1);
    const out = new Uint8Array(b.length + n);
    out.set(b.subarray(0, at + n), 0);
    out.set(b.subarray(at), at + n);
    return out;
  },
  // splice: the head of this input, the tail of another
  (r, b, other) => {
    const head = b.subarray(0, r.int(b.length + 1));
    const tail = other.subarray(r.int(other.length + 1));
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  },
];

/** One to four stacked mutations of a seed input. */
export function mutate(r: Rng, seed: Uint8Array, other: Uint8Array): Uint8Array<ArrayBuffer> {
  let b = copy(seed);
  for (let k = 1 + r.int(4); k > 0; k--) b = r.pick(MUTATORS)(r, b, other);
  return b;
}

/** Random bytes, sometimes behind a real magic number so they get past the format sniffing. */
export function randomBody(r: Rng, magics: readonly Uint8Array[], maxLength = 4096): Uint8Array<ArrayBuffer> {
  const body = r.bytes(r.int(maxLength + 1));
  if (magics.length && r.chance(0.5)) {
    const m = r.pick(magics);
    body.set(m.subarray(0, Math.min(m.length, body.length)), 0);
  }
  return body;
}

/** Runs `count` cases `batch` at a time (concurrently within a batch). */
export async function inBatches(count: number, batch: number, run: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, k) => run(i + k)));
  }
}
