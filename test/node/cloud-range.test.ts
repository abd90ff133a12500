/**
 * Issue 17: activations the cloud must refuse although they are signed. The real cloud process
 * (test/cloud-server.ts) gets validly signed frames of huge, non-finite or out-of-range values:
 * each is 400 `invalid_payload`, never a 200 whose JSON logits are null; values up to
 * MAX_ABS_ACTIVATION still get finite logits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorResponse } from "@fogline/shared/errors";
import { TailResponse, type WirePrecision } from "@fogline/shared/schemas/tail";
import { parseManifest, type Manifest } from "@fogline/shared/schemas/manifest";
import { encodeActivation, MAX_ABS_ACTIVATION } from "@fogline/shared/wire";
import { signedTailRequest, tailUrl } from "../../workers/src/cloud/tail-request.js";
import { startCloud, TEST_SECRET, type RunningCloud } from "../cloud-server.js";
import { manifests, modelsDir } from "../models.generated.js";
import { DEFAULT_MODEL } from "../shared/fixtures.js";

const manifest: Manifest = parseManifest(manifests[DEFAULT_MODEL], "manifest");
const per = manifest.split.shape.reduce((a, b) => a * b, 1);
let cloud: RunningCloud;

beforeAll(async () => {
  cloud = await startCloud(modelsDir);
}, 60_000);
afterAll(() => cloud?.close());

async function call(body: Uint8Array): Promise<{ status: number; text: string }> {
  const res = await fetch(tailUrl(`http://127.0.0.1:${cloud.port}`, DEFAULT_MODEL), await signedTailRequest({ secret: TEST_SECRET, fingerprint: manifest.fingerprint, body }));
  return { status: res.status, text: await res.text() };
}

const frame = (fill: (i: number) => number, precision: WirePrecision = "fp32", n = 1) =>
  encodeActivation(Float32Array.from({ length: n * per }, (_, i) => fill(i)), [n, ...manifest.split.shape], manifest.fingerprint, precision);

describe("the cloud refuses signed activations that are not finite or beyond +-MAX_ABS_ACTIVATION", () => {
  it.each<[string, () => Uint8Array]>([
    ["every value 3e38 (fp32)", () => frame(() => 3e38)],
    ["one value 1e30 among ordinary ones", () => frame((i) => (i === 77 ? 1e30 : (i % 7) / 4))],
    ["-1e9, just past the bound", () => frame((i) => (i === 0 ? -1e9 : 0.5))],
    ["Infinity (fp32)", () => frame((i) => (i === 5 ? Infinity : 0))],
    ["NaN in the second sample of a batch", () => frame((i) => (i === per + 3 ? NaN : 1), "fp32", 2)],
    ["Infinity (fp16)", () => {
      const b = frame(() => 1, "fp16");
      new DataView(b.buffer, b.byteOffset).setUint16(b.length - 2, 0x7c00, true);
      return b;
    }],
    ["an int8 frame whose scale makes 1e36", () => {
      const b = frame((i) => (i % 255) / 100, "int8");
      new DataView(b.buffer, b.byteOffset).setFloat32(40, 1e36, true); // scale 1e36: values up to 2.5e38, finite in float32 but far past the bound
      return b;
    }],
  ])("%s: 400 invalid_payload, no null logits", async (_name, body) => {
    const { status, text } = await call(body());
    expect(status, text).toBe(400);
    expect(ErrorResponse.parse(JSON.parse(text)).error.code).toBe("invalid_payload");
  });

  it("values of +-MAX_ABS_ACTIVATION, and an ordinary frame, get 200 with finite logits, in every precision", async () => {
    expect(MAX_ABS_ACTIVATION).toBe(1e8);
    for (const precision of ["fp32", "fp16", "int8"] as const) {
      for (const fill of [(i: number) => (i % 2 ? MAX_ABS_ACTIVATION : -MAX_ABS_ACTIVATION), () => MAX_ABS_ACTIVATION, (i: number) => (i % 5) / 3]) {
        const { status, text } = await call(frame(fill, precision, 2));
        expect(status, text).toBe(200);
        expect(text).not.toMatch(/null/);
        const r = TailResponse.parse(JSON.parse(text));
        expect(r.shape).toEqual([2, manifest.labels.length]);
        expect(r.logits.every(Number.isFinite)).toBe(true);
      }
    }
  });
});
