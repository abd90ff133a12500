/**
 * Modelled computational energy of one request, in the two models of docs/background.md#the-energy-model. Every constant
 * comes from shared/energy.json, which training/energy.py reads too; the formulas mirror
 * `EnergyModel` there (a test compares both on the shipped models' test vectors).
 *
 * - paper: units of one full-precision MAC; a b-bit MAC costs b/32; conv MACs only.
 * - op45nm: picojoules, Horowitz ISSCC 2014 operation energies plus SRAM weight reads.
 */
import constants from "@fogline/shared/energy.json" with { type: "json" };
import type { Manifest } from "@fogline/shared/schemas/manifest";

export interface EnergyPart {
  edge: number;
  cloud: number;
  total: number;
  fullPrecision: number;
  /** fullPrecision / total: how many times cheaper than the full-precision ResNet-32 */
  saving: number;
}

export interface RequestEnergy {
  paper: EnergyPart & { unit: "fp32-mac" };
  op45nm: EnergyPart & { unit: "pJ" };
}

const pj = constants.horowitz45nm.pj;
const FP_BITS = constants.paper.fullPrecisionBits;

function macPj(bits: number): number {
  if (bits >= FP_BITS) return pj.fp32Mult + pj.fp32Add;
  if (bits === 1) return pj.int8Add; // XNOR + popcount: assumption stated in energy.json
  return pj.int8Mult + pj.int32Add;
}

const sramPj = (bits: number): number => (bits / 64) * pj.sramRead64Bit;

/** Per-part costs of a model, computed once per manifest. */
export interface EnergyProfile {
  paper: { edge: number; cloud: number; baseline: number };
  op45nm: { edge: number; cloud: number; baseline: number };
}

export function energyProfile(m: Pick<Manifest, "architecture" | "macs" | "params">): EnergyProfile {
  const bits = Math.max(m.architecture.weightBits, m.architecture.activationBits);
  const { macs, params } = m;
  const cloudConv = macs.cloud - macs.cloudFc;
  const baselineConv = macs.edgeQuantized + macs.edgeFullPrecision + cloudConv;
  const fp = macPj(FP_BITS);
  return {
    paper: {
      edge: (macs.edgeQuantized * Math.min(bits, FP_BITS)) / FP_BITS + macs.edgeFullPrecision,
      cloud: cloudConv,
      baseline: baselineConv,
    },
    op45nm: {
      edge:
        macs.edgeQuantized * macPj(bits) +
        (macs.edgeFullPrecision + macs.exitHead) * fp +
        params.edgeQuantized * sramPj(bits) +
        params.edgeFullPrecision * sramPj(FP_BITS),
      cloud: macs.cloud * fp + params.cloud * sramPj(FP_BITS),
      baseline: (baselineConv + macs.cloudFc) * fp + params.fullPrecisionBaseline * sramPj(FP_BITS),
    },
  };
}

function part(costs: { edge: number; cloud: number; baseline: number }, atCloud: boolean): EnergyPart {
  const cloud = atCloud ? costs.cloud : 0;
  const total = costs.edge + cloud;
  return { edge: costs.edge, cloud, total, fullPrecision: costs.baseline, saving: costs.baseline / total };
}

/** Energy of one request: the edge always runs; the tail only when the cloud answered. */
export function requestEnergy(profile: EnergyProfile, atCloud: boolean): RequestEnergy {
  return {
    paper: { unit: "fp32-mac", ...part(profile.paper, atCloud) },
    op45nm: { unit: "pJ", ...part(profile.op45nm, atCloud) },
  };
}

/** Paper-model saving at a given share of requests answered at the edge (the check in docs/background.md#the-paper-model). */
export function paperSavingAt(profile: EnergyProfile, edgeFraction: number): number {
  const p = profile.paper;
  return p.baseline / (p.edge + (1 - edgeFraction) * p.cloud);
}
