/**
 * Child process of image-memory.test.ts: runs one image through the edge's decode path
 * (preprocessImage: decode + resize + normalise, the default limits) and prints how far it
 * raised this process's peak resident memory (VmHWM) above its resident memory when warm. The
 * high-water mark is reset after warming (Linux: "5" into /proc/self/clear_refs), so what tsx
 * and module loading touched before cannot hide the image's own peak.
 *
 *   node --import tsx test/node/decode-peak.ts IMAGE_FILE
 */
import { readFileSync, writeFileSync } from "node:fs";
import { ApiError } from "@fogline/shared/errors";
import { preprocessImage } from "../../workers/src/image/preprocess.js";
import { encodePngSpec } from "../shared/png-encoder.js";

const spec = { height: 32, width: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
const bytes = readFileSync(process.argv[2]!);
// warm: the modules loaded and their code run once, so the peak below is the image's own
preprocessImage(encodePngSpec({ width: 64, height: 64, colorType: 2, depth: 8, samples: new Array(64 * 64 * 3).fill(7) }), spec);
const kib = (field: string) => Number(readFileSync("/proc/self/status", "utf8").match(new RegExp(`${field}:\\s+(\\d+) kB`))![1]);
writeFileSync("/proc/self/clear_refs", "5");
const warm = kib("VmRSS");
let code = "ok";
try {
  preprocessImage(bytes, spec);
} catch (e) {
  code = e instanceof ApiError ? e.code : `crash: ${(e as Error).message}`;
  if (process.env.DEBUG_DECODE) console.error(e);
}
const peak = kib("VmHWM");
process.stdout.write(JSON.stringify({ code, peakMiB: (peak - warm) / 1024 }));
