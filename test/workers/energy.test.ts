import { describe, expect, it } from "vitest";
import constants from "@fogline/shared/energy.json" with { type: "json" };
import { energyProfile, paperSavingAt, requestEnergy, type EnergyProfile } from "../../workers/src/infer/energy.js";
import { parseManifest } from "@fogline/shared/schemas/manifest";
import { manifests } from "../models.generated.js";
import { modelsWithVectors, vectorsFor } from "../shared/fixtures.js";

/** A profile from the paper's rounded MAC counts (millions), to check its arithmetic. */
function paperProfile(quantized: number, fp: number, cloud: number, bits: number): EnergyProfile {
  return energyProfile({
    architecture: { base: "resnet32", cut: 0, weightBits: bits, activationBits: bits, exitHead: "", exitFeatures: 1 },
    macs: { edgeQuantized: quantized, edgeFullPrecision: fp, exitHead: 0, cloud, cloudFc: 0, fullPrecisionBaseline: 69.12 },
    params: { edgeQuantized: 0, edgeFullPrecision: 0, cloud: 0, fullPrecisionBaseline: 0 },
  });
}

describe("energy model", () => {
  it("reproduces the paper's headline arithmetic (docs/background.md#the-paper-model)", () => {
    // 16 binary layers at 65 % edge exits -> 5.36x; 24 four-bit layers at 52 % -> 4.84x
    const c10 = paperProfile(36.57, 0.57, 31.98, 1);
    expect(69.12 / (c10.paper.edge + 0.35 * c10.paper.cloud)).toBeCloseTo(5.36, 2);
    const c100 = paperProfile(54.26, 0.7, 14.16, 4);
    expect(69.12 / (c100.paper.edge + 0.48 * c100.paper.cloud)).toBeCloseTo(4.84, 2);
  });

  it("matches training/energy.py on every shipped model, for edge and cloud answers", () => {
    let checked = 0;
    for (const name of modelsWithVectors()) {
      const vectors = vectorsFor(name);
      const profile = energyProfile(parseManifest(manifests[name]));
      for (const [key, atCloud] of [["edgeExit", false], ["cloudExit", true]] as const) {
        const ts = requestEnergy(profile, atCloud);
        for (const model of ["paper", "op45nm"] as const) {
          for (const [field, value] of Object.entries(vectors.energy[key][model])) {
            expect(ts[model][field as keyof (typeof ts)[typeof model]] as number).toBeCloseTo(value, 6);
          }
        }
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it("charges the tail only when the cloud answered, and saves more the more exits", () => {
    const profile = energyProfile(parseManifest(Object.values(manifests)[0]));
    const edge = requestEnergy(profile, false);
    const cloud = requestEnergy(profile, true);
    expect(edge.paper.cloud).toBe(0);
    expect(cloud.paper.total).toBeCloseTo(edge.paper.edge + profile.paper.cloud, 6);
    expect(edge.paper.saving).toBeGreaterThan(cloud.paper.saving);
    expect(paperSavingAt(profile, 0.9)).toBeGreaterThan(paperSavingAt(profile, 0.5));
    expect(edge.op45nm.unit).toBe("pJ");
  });

  it("reads its constants from shared/energy.json", () => {
    const fpOnly = energyProfile({
      architecture: { base: "resnet32", cut: 0, weightBits: 32, activationBits: 32, exitHead: "", exitFeatures: 1 },
      macs: { edgeQuantized: 0, edgeFullPrecision: 1, exitHead: 0, cloud: 0, cloudFc: 0, fullPrecisionBaseline: 1 },
      params: { edgeQuantized: 0, edgeFullPrecision: 0, cloud: 0, fullPrecisionBaseline: 0 },
    });
    expect(fpOnly.op45nm.edge).toBe(constants.horowitz45nm.pj.fp32Mult + constants.horowitz45nm.pj.fp32Add);
  });
});
