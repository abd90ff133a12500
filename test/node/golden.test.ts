/**
 * The cross-language contracts (shared/contracts.json): the golden wire frames in test/golden/
 * (written once by scripts/golden.ts) are checked byte for byte here and by
 * training/tests/test_contracts.py, so TypeScript and Python cannot drift apart silently.
 * Node only: workerd cannot read the files.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import contracts from "@fogline/shared/contracts.json" with { type: "json" };
import { MAX_BATCH } from "@fogline/shared/contracts";
import { ENGINE_FORMAT, ENGINE_KBIT_FORMAT, ENGINE_MAGIC, ENGINE_MAX_CHANNELS, ENGINE_VERSION, parsePackedEdge, verifyEngineChecksum } from "../../workers/src/engine/format/binary.js";
import type { Manifest } from "@fogline/shared/schemas/manifest";
import { CLOUD_INPUT, CLOUD_OUTPUT, EDGE_INPUT, EDGE_OUTPUTS } from "@fogline/shared/runner";
import type { WirePrecision } from "@fogline/shared/schemas/tail";
import { decodeActivation, DTYPE, encodeActivation, encodedSize, headerSize, WIRE_MAGIC, WIRE_VERSION } from "@fogline/shared/wire";
import { DEFAULT_MAX_BATCH } from "../../cloud/src/config.js";

const golden = (f: string) => new Uint8Array(readFileSync(new URL(`../golden/${f}`, import.meta.url)));
const inputs = JSON.parse(new TextDecoder().decode(golden("wire.json"))) as {
  shape: number[];
  fingerprint: string;
  data: number[];
  frames: Record<WirePrecision, string>;
};

describe("golden wire frames (test/golden, also checked by training/tests/test_contracts.py)", () => {
  for (const precision of ["fp32", "fp16", "int8"] as WirePrecision[]) {
    it(`encodes ${precision} byte for byte`, () => {
      const bytes = encodeActivation(Float32Array.from(inputs.data), inputs.shape, inputs.fingerprint, precision);
      expect(Buffer.from(bytes).equals(Buffer.from(golden(inputs.frames[precision])))).toBe(true);
      expect(bytes.length).toBe(encodedSize(inputs.shape, precision));
      const { header } = decodeActivation(golden(inputs.frames[precision]));
      expect(header).toMatchObject({ precision, shape: inputs.shape, fingerprint: inputs.fingerprint, headerBytes: headerSize(inputs.shape.length) });
    });
  }
});

describe("golden packed engine file (test/golden/packed.bin, written by training/pack.py)", () => {
  const expected = JSON.parse(new TextDecoder().decode(golden("packed.json"))) as {
    edgeSha256: string;
    packedSha256: string;
    input: number[];
    split: number[];
    classes: number;
    blocks: number;
    stemBias: number[];
    exitBias: number[];
  };
  // only what parsePackedEdge and verifyEngineChecksum read from a manifest
  const manifest = {
    name: "golden",
    input: { height: expected.input[1], width: expected.input[2] },
    split: { shape: expected.split },
    labels: Array.from({ length: expected.classes }, (_, i) => `c${i}`),
    files: { edge: { sha256: expected.edgeSha256 }, engine: { sha256: expected.packedSha256 } },
  } as unknown as Manifest;
  const bytes = golden("packed.bin");
  const buffer = () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;

  it("is the file byte for byte (sha256) and parses to the numbers it was written from", async () => {
    await verifyEngineChecksum(buffer(), manifest);
    const e = parsePackedEdge(buffer(), manifest);
    expect(e.sourceSha256).toBe(expected.edgeSha256);
    expect([...e.split]).toEqual(expected.split);
    expect(e.blocks).toHaveLength(expected.blocks);
    expect(Array.from(e.stem.bias)).toEqual(expected.stemBias);
    expect(Array.from(e.exit.bias)).toEqual(expected.exitBias);
  });
});

describe("shared/contracts.json is what the TypeScript side uses", () => {
  it("wire", () => {
    const w = contracts.wire;
    const magic = golden(inputs.frames.int8).subarray(0, 4);
    expect(new TextDecoder().decode(magic)).toBe(w.magic);
    expect(new DataView(magic.buffer, magic.byteOffset).getUint32(0, true)).toBe(WIRE_MAGIC);
    expect(WIRE_VERSION).toBe(w.version);
    expect(DTYPE).toEqual({ float32: w.dtypes.float32.code, float16: w.dtypes.float16.code, uint8: w.dtypes.uint8.code });
    expect(headerSize(w.splitRank)).toBe(w.fixedHeaderBytes + 4 * w.splitRank);
  });
  it("graph names, packed file, max batch", () => {
    expect({ EDGE_INPUT, ...EDGE_OUTPUTS }).toEqual({ EDGE_INPUT: contracts.graph.edge.input, exitLogits: contracts.graph.edge.exitLogits, split: contracts.graph.edge.split });
    expect([CLOUD_INPUT, CLOUD_OUTPUT]).toEqual([contracts.graph.cloud.input, contracts.graph.cloud.output]);
    expect([ENGINE_MAGIC, ENGINE_VERSION, ENGINE_FORMAT, ENGINE_MAX_CHANNELS]).toEqual([contracts.packed.magic, contracts.packed.version, contracts.packed.format, contracts.packed.maxChannels]);
    // the edge's MAX_BATCH (workers/src/infer/pipeline.ts) is this one; test/workers/oip.test.ts uses it
    expect([MAX_BATCH, DEFAULT_MAX_BATCH]).toEqual([contracts.batch.maxBatch, contracts.batch.maxBatch]);
  });
});

describe("golden k-bit engine file (test/golden/packed-kbit.bin + packed-kbit-edge.onnx, written by training/pack.py)", () => {
  const expected = JSON.parse(new TextDecoder().decode(golden("packed-kbit.json"))) as {
    edgeSha256: string;
    packedSha256: string;
    input: number[];
    split: number[];
    classes: number;
    actBits: number;
    blocks: number;
    stemBias: number[];
    exitBias: number[];
    conv1Codes: number[];
    conv1CodeSum: number;
  };
  const manifest = {
    name: "golden-kbit",
    input: { height: expected.input[1], width: expected.input[2] },
    split: { shape: expected.split },
    labels: Array.from({ length: expected.classes }, (_, i) => `c${i}`),
    files: { edge: { sha256: expected.edgeSha256 }, engine: { sha256: expected.packedSha256 } },
  } as unknown as Manifest;
  const own = (f: string) => {
    const b = golden(f);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  };

  it("is the file byte for byte (sha256, its edge.onnx too) and parses, with that ONNX, to the numbers it was written from", async () => {
    await verifyEngineChecksum(own("packed-kbit.bin"), manifest, own("packed-kbit-edge.onnx"));
    const e = parsePackedEdge(own("packed-kbit.bin"), manifest, own("packed-kbit-edge.onnx"));
    if (e.kind !== "kbit") throw new Error(`expected the k-bit format, got ${e.kind}`);
    expect(e.sourceSha256).toBe(expected.edgeSha256);
    expect(e.actBits).toBe(expected.actBits);
    expect([...e.split]).toEqual(expected.split);
    expect(e.blocks).toHaveLength(expected.blocks);
    expect(Array.from(e.stem.bias)).toEqual(expected.stemBias);
    expect(Array.from(e.exit.bias)).toEqual(expected.exitBias);
    expect(Array.from(e.blocks[0]!.conv1.subarray(0, expected.conv1Codes.length))).toEqual(expected.conv1Codes);
    expect(e.blocks[0]!.conv1.reduce((a, c) => a + c, 0)).toBe(expected.conv1CodeSum);
    const header = JSON.parse(new TextDecoder().decode(golden("packed-kbit.bin").subarray(12, 12 + new DataView(own("packed-kbit.bin")).getUint32(8, true)))) as { format: string };
    expect(header.format).toBe(ENGINE_KBIT_FORMAT);
    expect(ENGINE_KBIT_FORMAT).toBe(contracts.packed.kbitFormat);
  });

  it("needs its edge.onnx: without it, or with another, it is refused", () => {
    expect(() => parsePackedEdge(own("packed-kbit.bin"), manifest)).toThrow(/needs the model's edge.onnx/);
    expect(() => parsePackedEdge(own("packed-kbit.bin"), manifest, own("packed-edge.onnx"))).toThrow(/edge.onnx has no raw initializer/);
  });
});
