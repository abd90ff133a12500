"""Accuracy cost of the wire precision (fp32 / fp16 / int8) of the split activation, on the
validation split: the edge graph runs once, its split tensor goes through exactly the
quantization of shared/src/wire.ts (encode then decode, one request = one tensor, as
POST /v1/classify sends it), and the cloud graph runs on the result.

    python -m training wire-accuracy --model models/cifar10 --data data/cifar10 [--out .bench/wire-accuracy.json]

Reports, per precision: final-exit accuracy (every sample through the cloud), hybrid accuracy at the
manifest's threshold, agreement of the cloud's argmax with fp32, and the largest logit change.
The wire default (int8) is justified when it costs <= 0.1 points (issue 7).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .contracts import CLOUD_INPUT, CLOUD_OUTPUT, EDGE_EXIT_LOGITS, EDGE_INPUT, EDGE_SPLIT, WIRE_ELEMENT_BYTES
from .data import load_source, train_val_split
from .metrics import softmax_entropy
from .onnx_pair import normalise_u8, sessions
from .wire import int8_params, quantize_int8

PRECISIONS = tuple(WIRE_ELEMENT_BYTES)


def wire_roundtrip(split: np.ndarray, precision: str) -> np.ndarray:
    """encodeActivation + decodeTensor of shared/src/wire.ts for one tensor (all of `split`),
    in the same arithmetic: doubles from float32 inputs, Math.fround on the scale."""
    x = np.asarray(split, dtype=np.float32)
    if precision == "fp32":
        return x.copy()
    if precision == "fp16":
        return x.astype(np.float16).astype(np.float32)  # IEEE round to nearest even, as toHalf
    if not np.isfinite(x).all():
        raise ValueError("cannot quantize a non-finite activation")
    scale, zero = int8_params(x)
    q = quantize_int8(x, scale, zero)
    return (np.float64(np.float32(scale)) * (q - zero)).astype(np.float32)


def evaluate(model_dir: Path, images: np.ndarray, labels: np.ndarray, batch: int = 250) -> dict:
    edge, cloud, manifest = sessions(model_dir)
    threshold = float(manifest["exit"]["threshold"])
    x = normalise_u8(images, manifest)
    exits, splits = [], []
    for i in range(0, len(x), batch):
        e, s = edge.run([EDGE_EXIT_LOGITS, EDGE_SPLIT], {EDGE_INPUT: x[i:i + batch]})
        exits.append(e)
        splits.append(s)
    exit_logits, split = np.concatenate(exits), np.concatenate(splits)
    at_edge = softmax_entropy(exit_logits) < threshold
    out: dict = {"model": manifest["name"], "version": manifest["version"], "images": int(len(labels)), "threshold": threshold,
                 "edgeFraction": float(at_edge.mean())}
    ref = None
    for p in PRECISIONS:
        wired = np.stack([wire_roundtrip(s, p) for s in split])  # one tensor per request (batch 1)
        logits = np.concatenate([cloud.run([CLOUD_OUTPUT], {CLOUD_INPUT: wired[i:i + batch]})[0] for i in range(0, len(wired), batch)])
        pred = logits.argmax(1)
        hybrid = np.where(at_edge, exit_logits.argmax(1), pred)
        if ref is None:
            ref = logits
        out[p] = {
            "finalAccuracy": float((pred == labels).mean()),
            "hybridAccuracy": float((hybrid == labels).mean()),
            "argmaxAgreementWithFp32": float((pred == ref.argmax(1)).mean()),
            "maxAbsLogitDiff": float(np.abs(logits - ref).max()),
            "splitMaxAbsError": float(np.abs(wired - split).max()),
        }
    for p in PRECISIONS:
        out[p]["finalCostPoints"] = round(100 * (out["fp32"]["finalAccuracy"] - out[p]["finalAccuracy"]), 3)
        out[p]["hybridCostPoints"] = round(100 * (out["fp32"]["hybridAccuracy"] - out[p]["hybridAccuracy"]), 3)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/cifar10")
    ap.add_argument("--data", default="data/cifar10")
    ap.add_argument("--out", default=".bench/wire-accuracy.json")
    args = ap.parse_args(argv)
    manifest = json.loads((Path(args.model) / "manifest.json").read_text())
    cfg = (manifest.get("training") or {}).get("config") or {}
    full = load_source(args.data)
    _, val_idx = train_val_split(len(full), cfg.get("val_size", 5000), cfg.get("seed", 0))
    val = full.subset(val_idx)
    report = evaluate(Path(args.model), val.images, val.labels)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    worst = max(report[p]["hybridCostPoints"] for p in ("int8",))
    print(f"int8 costs {worst:.3f} points of hybrid accuracy on validation ({'<=' if worst <= 0.1 else '>'} 0.1)", file=sys.stderr)


if __name__ == "__main__":
    main()
