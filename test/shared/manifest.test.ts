import { describe, expect, it } from "vitest";
import { parseManifest } from "@fogline/shared/schemas/manifest";
import { manifests } from "../models.generated.js";

describe("manifest schema", () => {
  it("accepts every shipped manifest, whose name is its folder", () => {
    expect(Object.keys(manifests).length).toBeGreaterThan(0);
    for (const [folder, m] of Object.entries(manifests)) expect(parseManifest(m).name).toBe(folder);
  });

  it("allows extra keys and refuses missing required ones", () => {
    const base = structuredClone(Object.values(manifests)[0]) as Record<string, unknown>;
    expect(() => parseManifest({ ...base, somethingNew: { a: 1 } })).not.toThrow();
    const { labels: _labels, ...noLabels } = base;
    expect(() => parseManifest(noLabels)).toThrow(/labels/);
    expect(() => parseManifest({ ...base, split: { name: "split" } })).toThrow(/split/);
  });

  it("takes files.engine as optional: manifests without a packed engine still validate, a malformed entry does not", () => {
    const base = structuredClone(Object.values(manifests)[0]) as { files: Record<string, unknown> };
    const { engine: _engine, ...files } = base.files;
    expect(parseManifest({ ...base, files }).files.engine).toBeUndefined();
    const engine = { path: "edge.packed.bin", sha256: "a".repeat(64), format: "fogline-packed-w1a1/2" };
    expect(parseManifest({ ...base, files: { ...files, engine } }).files.engine).toEqual(engine);
    expect(() => parseManifest({ ...base, files: { ...files, engine: { ...engine, sha256: "nope" } } })).toThrow(/engine/);
  });
});
