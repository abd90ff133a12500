"""Computational-energy models, with every constant read from shared/energy.json (the same file
the TypeScript side reads). See docs/background.md#the-energy-model and the "about" fields in that file."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .model import SplitResNet, count_macs, param_counts

ENERGY_JSON = Path(__file__).resolve().parent.parent / "shared" / "energy.json"


def load_constants(path: Path = ENERGY_JSON) -> dict:
    return json.loads(path.read_text())


@dataclass
class PartCounts:
    """What one model's parts cost: MACs and parameters, per precision class."""
    bits: int  # bit width of the quantized edge convs (max of weight and activation bits)
    edge_quantized_macs: int
    edge_fp_macs: int  # stem + downsample shortcuts
    exit_macs: int  # exit FC
    cloud_conv_macs: int
    cloud_fc_macs: int
    edge_quantized_params: int
    edge_fp_params: int
    cloud_params: int
    baseline_params: int  # full-precision ResNet-32 without exit

    @classmethod
    def from_manifest(cls, m: dict) -> "PartCounts":
        a, macs, params = m["architecture"], m["macs"], m["params"]
        return cls(bits=max(a["weightBits"], a["activationBits"]),
                   edge_quantized_macs=macs["edgeQuantized"], edge_fp_macs=macs["edgeFullPrecision"],
                   exit_macs=macs["exitHead"], cloud_conv_macs=macs["cloud"] - macs["cloudFc"], cloud_fc_macs=macs["cloudFc"],
                   edge_quantized_params=params["edgeQuantized"], edge_fp_params=params["edgeFullPrecision"],
                   cloud_params=params["cloud"], baseline_params=params["fullPrecisionBaseline"])

    @classmethod
    def from_model(cls, model: SplitResNet) -> "PartCounts":
        """Counts straight from a model definition (the design-space sweep has no manifest for
        most of its points); the same numbers ``build_manifest`` writes, so a manifest's
        ``from_manifest`` and this agree for the exported model."""
        m, p = count_macs(model), param_counts(model)
        return cls(bits=max(model.config.weight_bits, model.config.act_bits),
                   edge_quantized_macs=m.edge_quantized, edge_fp_macs=m.edge_full_precision,
                   exit_macs=m.exit_head, cloud_conv_macs=m.cloud - m.cloud_fc, cloud_fc_macs=m.cloud_fc,
                   edge_quantized_params=p["edgeQuantized"], edge_fp_params=p["edgeFullPrecision"],
                   cloud_params=p["cloud"], baseline_params=p["fullPrecisionBaseline"])

    @property
    def baseline_conv_macs(self) -> int:
        return self.edge_quantized_macs + self.edge_fp_macs + self.cloud_conv_macs


class EnergyModel:
    def __init__(self, counts: PartCounts, constants: dict | None = None) -> None:
        self.c = counts
        self.k = constants or load_constants()

    # -- paper model: units of one full-precision MAC
    def paper_edge(self) -> float:
        fp_bits = self.k["paper"]["fullPrecisionBits"]
        return self.c.edge_quantized_macs * min(self.c.bits, fp_bits) / fp_bits + self.c.edge_fp_macs

    def paper_cloud(self) -> float:
        return float(self.c.cloud_conv_macs)

    def paper_baseline(self) -> float:
        return float(self.c.baseline_conv_macs)

    # -- operation-level 45 nm model: picojoules
    def mac_pj(self, bits: int) -> float:
        pj = self.k["horowitz45nm"]["pj"]
        if bits >= self.k["paper"]["fullPrecisionBits"]:
            return pj["fp32Mult"] + pj["fp32Add"]
        if bits == 1:
            return pj["int8Add"]
        return pj["int8Mult"] + pj["int32Add"]

    def sram_pj(self, bits: int) -> float:
        return bits / 64.0 * self.k["horowitz45nm"]["pj"]["sramRead64Bit"]

    def op_edge(self) -> float:
        fp = self.mac_pj(32)
        compute = self.c.edge_quantized_macs * self.mac_pj(self.c.bits) + (self.c.edge_fp_macs + self.c.exit_macs) * fp
        memory = self.c.edge_quantized_params * self.sram_pj(self.c.bits) + self.c.edge_fp_params * self.sram_pj(32)
        return compute + memory

    def op_cloud(self) -> float:
        return (self.c.cloud_conv_macs + self.c.cloud_fc_macs) * self.mac_pj(32) + self.c.cloud_params * self.sram_pj(32)

    def op_baseline(self) -> float:
        macs = self.c.baseline_conv_macs + self.c.cloud_fc_macs
        return macs * self.mac_pj(32) + self.c.baseline_params * self.sram_pj(32)

    # -- per inference at an edge-exit fraction: every sample pays the edge, only the ones
    #    that do not exit pay the cloud tail
    def paper_total(self, edge_fraction: float) -> float:
        return self.paper_edge() + (1.0 - edge_fraction) * self.paper_cloud()

    def op_total(self, edge_fraction: float) -> float:
        return self.op_edge() + (1.0 - edge_fraction) * self.op_cloud()

    def request(self, at_cloud: bool) -> dict:
        """Modelled energy of one request, as every /v1/classify response reports it
        (workers/src/infer/energy.ts computes the same; test vectors carry these figures)."""
        def part(edge: float, cloud: float, baseline: float) -> dict:
            total = edge + (cloud if at_cloud else 0.0)
            return {"edge": edge, "cloud": cloud if at_cloud else 0.0, "total": total,
                    "fullPrecision": baseline, "saving": baseline / total}
        return {"paper": part(self.paper_edge(), self.paper_cloud(), self.paper_baseline()),
                "op45nm": part(self.op_edge(), self.op_cloud(), self.op_baseline())}

    def ratios(self, edge_fraction: float) -> dict:
        """Saving factor (baseline / hybrid) in both models at a given edge-exit fraction."""
        return {"paperEnergyRatio": self.paper_baseline() / self.paper_total(edge_fraction),
                "opEnergyRatio": self.op_baseline() / self.op_total(edge_fraction)}
