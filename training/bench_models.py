"""Model folders and graphs for `npm run bench` (scripts/bench.ts), built with the export code
from a SplitResNet of the shipped model's configuration. Weights are random (seeded): speed does
not depend on them, and nothing here is served outside the benchmark.

    python -m training bench-models --like models/cifar10 --out .bench

writes (all git-ignored, ~3 MB):
    <out>/models/<name>/              the shipped model folder, copied (the round-trip rows)
    <out>/models/bench-edge-float/    same config, quantized convs as float Conv over DequantizeLinear
    <out>/models/bench-edge-integer/  the same weights, quantized convs as ConvInteger (export default)
    <out>/models/bench-full-edge/     "everything at the edge": the whole full-precision ResNet-32 as
                                      the edge graph (exit_logits = final logits), cloud = head only
    <out>/graphs/full_fp.onnx         "everything in the cloud": full-precision ResNet-32, image -> logits
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import onnx
import torch

from .manifest import build_manifest, write_json
from .model import ModelConfig, SplitResNet
from .onnx_graph import build_cloud, build_edge, build_full, build_head


def randomised(config: ModelConfig, seed: int = 0) -> SplitResNet:
    """Random weights and non-trivial BN statistics (so no branch of the graph is degenerate)."""
    torch.manual_seed(seed)
    model = SplitResNet(config)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def write_folder(folder: Path, edge: onnx.ModelProto, cloud: onnx.ModelProto, model: SplitResNet, name: str,
                 like: dict, note: str, split_shape: list[int] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(edge, folder / "edge.onnx")
    onnx.save(cloud, folder / "cloud.onnx")
    training = {"note": note, "config": None, "epochs": 0}
    m = build_manifest(model, name, like["dataset"], like["labels"], folder, training, f"bench-{name}")
    m["exit"]["calibration"] = {"goal": "none: benchmark model, random weights"}
    if split_shape:
        m["split"]["shape"] = split_shape
    write_json(folder / "manifest.json", m)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--like", default="models/cifar10", help="shipped model folder whose configuration to copy")
    ap.add_argument("--out", default=".bench")
    args = ap.parse_args(argv)
    like_dir, out = Path(args.like), Path(args.out)
    like = json.loads((like_dir / "manifest.json").read_text())
    arch = like["architecture"]
    n = len(like["labels"])
    models = out / "models"
    if models.exists():
        shutil.rmtree(models)
    shutil.copytree(like_dir, models / like["name"], ignore=shutil.ignore_patterns("*.png", "calibration.json"))

    hybrid = randomised(ModelConfig(num_classes=n, cut=arch["cut"], weight_bits=arch["weightBits"], act_bits=arch["activationBits"]))
    cloud = build_cloud(hybrid)
    for form, integer in (("float", False), ("integer", True)):
        write_folder(models / f"bench-edge-{form}", build_edge(hybrid, integer), cloud, hybrid, f"bench-edge-{form}", like,
                     f"benchmark only: random weights, {form} quantized convs")

    fp = randomised(ModelConfig(num_classes=n, cut=24, weight_bits=32, act_bits=32))  # cut 24: split [64,8,8] = last feature map
    write_folder(models / "bench-full-edge", build_full(fp, edge_form=True), build_head(fp), fp, "bench-full-edge", like,
                 "benchmark only: the whole full-precision ResNet-32 as the edge graph", [64, 8, 8])
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    onnx.save(build_full(fp), out / "graphs" / "full_fp.onnx")
    print(json.dumps({"models": sorted(p.name for p in models.iterdir()), "graphs": ["full_fp.onnx"]}))


if __name__ == "__main__":
    main()
