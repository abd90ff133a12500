import { describe, expect, it } from "vitest";
import { parseManifest } from "../../shared/src/schemas/manifest.js";
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
});
