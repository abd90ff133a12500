"""manifest.json: what edge and cloud must agree on (schema: shared/src/schemas/manifest.ts,
described in docs/contracts.md)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .calibrate import calibrate, plot
from .data import MEAN, STD
from .energy import EnergyModel, PartCounts, load_constants
from .model import SplitResNet, count_macs, count_params, exit_features, split_shape, QuantBlock, BasicBlock

SCHEMA_VERSION = 1


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(edge: Path, cloud: Path) -> str:
    """sha256 over edge.onnx bytes then cloud.onnx bytes: any change to either half changes it."""
    h = hashlib.sha256()
    h.update(edge.read_bytes())
    h.update(cloud.read_bytes())
    return h.hexdigest()


def param_counts(model: SplitResNet) -> dict:
    quantized = sum(b.conv1.weight.numel() + b.conv2.weight.numel() for b in model.edge if isinstance(b, QuantBlock))
    edge_total = count_params(model.stem) + count_params(model.edge) + count_params(model.exit)
    baseline = SplitResNet(type(model.config)(num_classes=model.config.num_classes, cut=model.config.cut, weight_bits=32, act_bits=32))
    return {
        "edgeQuantized": quantized,
        "edgeFullPrecision": edge_total - quantized,
        "cloud": count_params(model.tail) + count_params(model.head),
        "fullPrecisionBaseline": count_params(baseline) - count_params(baseline.exit),
    }


def build_manifest(model: SplitResNet, name: str, dataset: str, labels: list[str], folder: Path,
                   training: dict, version: str) -> dict:
    cfg = model.config
    macs = count_macs(model)
    c, h, w = split_shape(cfg.cut)
    return {
        "schemaVersion": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "fingerprint": fingerprint(folder / "edge.onnx", folder / "cloud.onnx"),
        "dataset": dataset,
        "labels": labels,
        "input": {"height": 32, "width": 32, "channels": 3, "layout": "NCHW", "mean": list(MEAN), "std": list(STD), "resize": "area"},
        "architecture": {"base": "resnet32", "cut": cfg.cut, "weightBits": cfg.weight_bits, "activationBits": cfg.act_bits,
                         "exitHead": "avgpool3-fc", "exitFeatures": exit_features(cfg.cut)},
        "split": {"name": "split", "shape": [c, h, w]},
        "exit": {"threshold": float(np.log(len(labels))) / 2, "entropy": "natural", "rule": "entropy < threshold"},  # "calibration" added by update_calibration
        "macs": {"edgeQuantized": macs.edge_quantized, "edgeFullPrecision": macs.edge_full_precision, "exitHead": macs.exit_head,
                 "cloud": macs.cloud, "cloudFc": macs.cloud_fc, "fullPrecisionBaseline": macs.full_precision_baseline},
        "params": param_counts(model),
        "validation": None,
        "training": training,
        "files": {"edge": {"path": "edge.onnx", "sha256": sha256_file(folder / "edge.onnx")},
                  "cloud": {"path": "cloud.onnx", "sha256": sha256_file(folder / "cloud.onnx")}},
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def update_calibration(folder: Path, exit_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray, goal: str) -> dict:
    """Sweep on validation outputs of the ONNX pair, write calibration.json/.png, and put the
    chosen threshold and the validation figures into the manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    energy = EnergyModel(PartCounts.from_manifest(manifest))
    curve, chosen = calibrate(exit_logits, logits, labels, goal, energy)
    curve["goal"] = goal
    curve["chosen"] = chosen
    write_json(folder / "calibration.json", curve)
    paper = load_constants()["paperOperatingPoints"].get(manifest["dataset"])
    plot(curve, chosen, folder / "calibration.png", f"{manifest['name']} ({manifest['version']}), validation, {len(labels)} images", paper)
    manifest["exit"]["threshold"] = chosen["threshold"]
    manifest["exit"]["calibration"] = {"goal": goal, "split": "validation", "images": int(len(labels))}
    manifest["validation"] = {
        "images": int(len(labels)),
        "finalAccuracy": curve["finalAccuracy"],
        "exitAccuracy": curve["exitAccuracy"],
        **{k: v for k, v in chosen.items() if k != "threshold"},
    }
    write_json(folder / "manifest.json", manifest)
    return manifest
