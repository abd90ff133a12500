"""Run images through an exported model folder (edge.onnx + cloud.onnx) with exactly the
Worker's decision: entropy of the exit softmax < threshold -> edge answer, else cloud tail.

    python -m training evaluate --model models/cifar10 --images path/to/<class>/<image> [--threshold T]

Class folders are matched to the manifest's labels by name, so the held-back CIFAR test split
(same layout as the training archives) can be run through it as it is.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .data import IMAGE_EXTS
from .energy import EnergyModel, PartCounts
from .metrics import operating_point, softmax_entropy
from .onnx_pair import run_pair, sessions
from .preprocess import preprocess


def load_encoded_folder(root: Path, labels: list[str]) -> tuple[list[Path], np.ndarray]:
    index = {name: i for i, name in enumerate(labels)}
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_EXTS)
    unknown = sorted({p.parent.name for p in files} - set(index))
    if unknown:
        raise SystemExit(f"class folders not in the model's labels: {unknown[:5]}")
    if not files:
        raise SystemExit(f"no <class>/<image> files under {root}")
    return files, np.array([index[p.parent.name] for p in files])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True, help="folder of <class>/<image> files")
    ap.add_argument("--threshold", type=float, default=None, help="override the manifest's threshold")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    folder = Path(args.model)
    edge, cloud, manifest = sessions(folder)
    files, labels = load_encoded_folder(Path(args.images), manifest["labels"])
    mean, std = manifest["input"]["mean"], manifest["input"]["std"]
    inputs = np.stack([preprocess(p.read_bytes(), mean, std) for p in tqdm(files, desc="decode", file=sys.stderr)])
    out = run_pair(edge, cloud, inputs, progress=True)
    threshold = manifest["exit"]["threshold"] if args.threshold is None else args.threshold
    energy = EnergyModel(PartCounts.from_manifest(manifest))
    result = {
        "model": manifest["name"], "fingerprint": manifest["fingerprint"], "images": len(files),
        "finalAccuracy": float((out["logits"].argmax(1) == labels).mean()),
        "exitAccuracy": float((out["exit_logits"].argmax(1) == labels).mean()),
        **operating_point(out["exit_logits"], out["logits"], labels, threshold, energy),
        "meanExitEntropy": float(softmax_entropy(out["exit_logits"]).mean()),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
