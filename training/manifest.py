"""manifest.json: what edge and cloud must agree on (schema: shared/src/schemas/manifest.ts,
described in docs/contracts.md)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .data import MEAN, STD
from .model import SplitResNet, count_macs, exit_features, param_counts, split_shape

SCHEMA_VERSION = 1


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(edge: Path, cloud: Path) -> str:
    """sha256 over edge.onnx bytes then cloud.onnx bytes: any change to either half changes it."""
    h = hashlib.sha256()
    h.update(edge.read_bytes())
    h.update(cloud.read_bytes())
    return h.hexdigest()


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
        "exit": {"threshold": float(np.log(len(labels))) / 2, "entropy": "natural", "rule": "entropy < threshold"},  # "calibration" added by calibrate.update_calibration
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
