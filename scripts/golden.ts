/**
 * Writes the golden files of the cross-language contracts (shared/contracts.json) into
 * test/golden/: a wire frame per precision of one small activation, encoded by shared/src/wire.ts.
 * Run once (`npx tsx scripts/golden.ts`) and commit the output; test/shared/golden.test.ts and
 * training/tests/test_contracts.py check the files byte for byte, so a change to the format on
 * either side fails a test until the goldens are deliberately regenerated.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { encodeActivation } from "@fogline/shared/wire";
import type { WirePrecision } from "@fogline/shared/schemas/tail";

const dir = new URL("../test/golden/", import.meta.url);
mkdirSync(dir, { recursive: true });

// [2, 3, 2, 2]: negatives (so the int8 zero point is not 0), exact zeros, a value that rounds
// at a half step, and float32-exact inputs (multiples of 1/64) so JSON carries them losslessly.
const shape = [2, 3, 2, 2];
const data = Array.from({ length: 24 }, (_, i) => ((i * 37) % 23) / 4 - 1.5 + (i % 5 === 0 ? 0.015625 : 0));
data[3] = 0;
data[10] = 0;
const fingerprint = Array.from({ length: 32 }, (_, i) => ((i * 11 + 7) & 0xff).toString(16).padStart(2, "0")).join("");

const frames: Record<string, string> = {};
for (const precision of ["fp32", "fp16", "int8"] as WirePrecision[]) {
  const file = `wire-${precision}.bin`;
  writeFileSync(new URL(file, dir), encodeActivation(Float32Array.from(data), shape, fingerprint, precision));
  frames[precision] = file;
}
writeFileSync(new URL("wire.json", dir), JSON.stringify({ about: "inputs of the wire-*.bin golden frames (scripts/golden.ts)", shape, fingerprint, data, frames }, null, 2) + "\n");
console.log(`golden: wrote ${Object.values(frames).join(", ")} and wire.json to test/golden/`);
