import json
from pathlib import Path

import pytest

from training.energy import ENERGY_JSON, EnergyModel, PartCounts
from training.model import ModelConfig, SplitResNet

MODELS = Path(__file__).resolve().parents[2] / "models"


def counts_for(cut: int, bits: int) -> PartCounts:
    return PartCounts.from_model(SplitResNet(ModelConfig(num_classes=10, cut=cut, weight_bits=bits, act_bits=bits)))


def test_paper_arithmetic_with_the_papers_rounded_macs():
    # docs/background.md#the-paper-model: 69.12 / (36.57/32 + 0.57 + 0.35*31.98) = 5.36; 69.12 / (54.26/8 + 0.70 + 0.48*14.16) = 4.84
    c10 = PartCounts(1, 36.57e6, 0.57e6, 0, 31.98e6, 0, 0, 0, 0, 0)
    c10_model = EnergyModel(c10)
    assert round(69.12e6 / (c10_model.paper_edge() + 0.35 * c10_model.paper_cloud()), 2) == 5.36
    c100 = EnergyModel(PartCounts(4, 54.26e6, 0.70e6, 0, 14.16e6, 0, 0, 0, 0, 0))
    assert round(69.12e6 / (c100.paper_edge() + 0.48 * c100.paper_cloud()), 2) == 4.84


@pytest.mark.parametrize("cut,bits,edge,expected", [(16, 1, 0.65, 5.36), (24, 4, 0.52, 4.84)])
def test_paper_model_reproduces_headline_from_our_mac_counts(cut, bits, edge, expected):
    ratio = EnergyModel(counts_for(cut, bits)).ratios(edge)["paperEnergyRatio"]
    assert ratio == pytest.approx(expected, abs=0.01)


def test_all_edge_and_all_cloud_limits():
    e = EnergyModel(counts_for(16, 1))
    # nothing exits: every sample pays the (cheap, binarized) edge and the whole tail
    assert e.ratios(0.0)["paperEnergyRatio"] == pytest.approx(69_124_096 / (36_569_088 / 32 + 573_440 + 31_981_568))
    assert e.ratios(1.0)["paperEnergyRatio"] == pytest.approx(69_124_096 / (36_569_088 / 32 + 573_440))
    assert e.ratios(0.65)["opEnergyRatio"] > 1.0


def test_full_precision_hybrid_has_no_saving_without_exits():
    e = EnergyModel(counts_for(16, 32))
    assert e.ratios(0.0)["paperEnergyRatio"] == pytest.approx(1.0)


def test_constants_come_from_the_shared_file():
    k = json.loads(ENERGY_JSON.read_text())
    e = EnergyModel(counts_for(16, 1))
    assert e.mac_pj(32) == k["horowitz45nm"]["pj"]["fp32Mult"] + k["horowitz45nm"]["pj"]["fp32Add"]
    assert e.mac_pj(4) == k["horowitz45nm"]["pj"]["int8Mult"] + k["horowitz45nm"]["pj"]["int32Add"]


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_part_counts_of_a_model_are_those_its_shipped_manifest_states(name):
    """The sweep counts from a model definition, the Worker and the report from the manifest the
    export wrote: both must price the shipped network the same."""
    manifest = json.loads((MODELS / name / "manifest.json").read_text())
    a = manifest["architecture"]
    model = SplitResNet(ModelConfig(num_classes=len(manifest["labels"]), cut=a["cut"], weight_bits=a["weightBits"],
                                    act_bits=a["activationBits"]))
    assert PartCounts.from_model(model) == PartCounts.from_manifest(manifest)


def test_totals_add_the_cloud_only_for_samples_that_stay():
    e = EnergyModel(counts_for(24, 4))
    assert e.paper_total(1.0) == pytest.approx(e.paper_edge())
    assert e.op_total(0.25) == pytest.approx(e.op_edge() + 0.75 * e.op_cloud())
