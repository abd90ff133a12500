/**
 * Benchmark-only baseline "everything in the cloud": the whole full-precision ResNet-32 in
 * onnxruntime-node behind the same API (`POST /v1/classify` with an image body; the same shared
 * upload, decode and preprocessing code as the edge; top-5 in the same shape). One intra-op
 * thread, like the cloud half's default. Started by scripts/bench.ts:
 *   node --import tsx scripts/bench/full-cloud.ts <full_fp.onnx> <manifest.json> <port>
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { readFileSync } from "node:fs";
import { OrtNodeRunner } from "../../cloud/src/infer/session.js";
import { topK } from "../../workers/src/infer/entropy.js";
import { preprocessImage } from "../../workers/src/image/preprocess.js";
import { readImageUpload } from "../../workers/src/image/upload.js";

const [onnxPath, manifestPath, portArg] = process.argv.slice(2);
if (!onnxPath || !manifestPath) throw new Error("usage: full-cloud.ts <full_fp.onnx> <manifest.json> [port]");
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
const runner = await OrtNodeRunner.create(readFileSync(onnxPath), 1);
const { height, width } = manifest.input;

const app = new Hono();
app.get("/healthz", (c) => c.json({ ok: true }));
app.post("/v1/classify", async (c) => {
  const input = preprocessImage(await readImageUpload(c.req.raw), manifest.input);
  const out = await runner.run({ image: { data: input, dims: [1, 3, height, width] } });
  const top = topK(out.logits!.data, manifest.labels, 5);
  return c.json({ label: top[0]!.label, score: top[0]!.score, top, exit: { at: "cloud" } });
});

serve({ fetch: app.fetch, port: Number(portArg ?? 0), hostname: "127.0.0.1" }, (info) => {
  console.log(`fogline bench full-cloud listening on http://127.0.0.1:${info.port}`);
});
