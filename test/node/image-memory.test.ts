/**
 * The steering check of issue 17: no upload may raise the decode path's peak memory by more
 * than 64 MiB over its warm peak, so that a 128 MB Worker isolate with the models loaded
 * survives every image. Each image of the hostile corpus (test/hostile-images.ts) runs in its own Node process
 * (decode-peak.ts), which reports the rise of its peak resident set; the decode path is the
 * Worker's own code (workers/src/image/image.ts, png.ts, preprocess.ts) with the default limits.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MAX_DECODE_BYTES } from "../../workers/src/image/image.js";
import { HOSTILE_IMAGES } from "../hostile-images.js";

const BUDGET_MIB = 64;
const dir = mkdtempSync(join(tmpdir(), "fogline-hostile-"));

const results: Record<string, { expected: string; code: string; peakMiB: number }> = {};

beforeAll(() => {
  HOSTILE_IMAGES.forEach(({ name, expected, bytes }, i) => {
    const file = join(dir, `${i}.img`);
    writeFileSync(file, bytes());
    const out = execFileSync(process.execPath, ["--import", "tsx", "test/node/decode-peak.ts", file], { encoding: "utf8", timeout: 60_000 });
    results[name] = { expected, ...JSON.parse(out) };
  });
  console.log(Object.entries(results).map(([n, r]) => `${r.peakMiB.toFixed(1).padStart(6)} MiB  ${r.code.padEnd(20)} ${n}`).join("\n"));
}, 300_000);

describe(`every hostile image stays under ${BUDGET_MIB} MiB of decode memory`, () => {
  for (const { name } of HOSTILE_IMAGES) {
    it(name, () => {
      const r = results[name]!;
      expect(r.code).toBe(r.expected);
      expect(r.peakMiB).toBeLessThan(BUDGET_MIB);
    });
  }
  it("the default decode budget leaves the steering margin", () => expect(DEFAULT_MAX_DECODE_BYTES / 2 ** 20).toBeLessThanOrEqual(BUDGET_MIB - 8));
  it("the meter sees memory: an interlaced 2000x2000 PNG holds its 11.4 MiB RGB image", () => {
    expect(results["2000x2000 16-bit RGBA interlaced PNG"]!.peakMiB).toBeGreaterThan(11);
  });
  it("the meter sees memory: a 2000x2000 4:4:4 JPEG holds its 22.9 MiB of coefficients", () => {
    expect(results["2000x2000 progressive JPEG (4:4:4)"]!.peakMiB).toBeGreaterThan(22);
  });
});
