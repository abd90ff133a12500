"""Run images through an exported model folder (edge.onnx + cloud.onnx) with exactly the
Worker's decision: entropy of the exit softmax < threshold -> edge answer, else cloud tail.

    python -m training.evaluate --model models/cifar10 --images path/to/<class>/<image> [--threshold T]

Class folders are matched to the manifest's labels by name, so the held-back CIFAR test split
(same layout as the training archives) can be run through it as it is.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from .calibrate import operating_point, softmax_entropy
from .contracts import CLOUD_INPUT, CLOUD_OUTPUT, EDGE_EXIT_LOGITS, EDGE_INPUT, EDGE_SPLIT
from .data import IMAGE_EXTS, ImageSet
from .energy import EnergyModel, PartCounts
from .preprocess import preprocess


def sessions(folder: Path) -> tuple[ort.InferenceSession, ort.InferenceSession, dict]:
    manifest = json.loads((folder / "manifest.json").read_text())
    opts = ort.SessionOptions()
    edge = ort.InferenceSession(str(folder / "edge.onnx"), opts, providers=["CPUExecutionProvider"])
    cloud = ort.InferenceSession(str(folder / "cloud.onnx"), opts, providers=["CPUExecutionProvider"])
    return edge, cloud, manifest


def normalise_u8(images_nhwc: np.ndarray, manifest: dict) -> np.ndarray:
    mean = np.asarray(manifest["input"]["mean"], dtype=np.float64)
    std = np.asarray(manifest["input"]["std"], dtype=np.float64)
    x = (images_nhwc.astype(np.float64) / 255.0 - mean) / std
    return x.transpose(0, 3, 1, 2).astype(np.float32)


def run_pair(edge: ort.InferenceSession, cloud: ort.InferenceSession, inputs: np.ndarray, batch: int = 250,
             progress: bool = False) -> dict[str, np.ndarray]:
    """Edge and cloud outputs for every input (the cloud is run on all, so curves can be drawn)."""
    exits, splits, logits = [], [], []
    for i in tqdm(range(0, len(inputs), batch), disable=not progress, desc="onnxruntime", file=sys.stderr):
        e, s = edge.run([EDGE_EXIT_LOGITS, EDGE_SPLIT], {EDGE_INPUT: inputs[i:i + batch]})
        (l,) = cloud.run([CLOUD_OUTPUT], {CLOUD_INPUT: s})
        exits.append(e); splits.append(s); logits.append(l)
    return {"exit_logits": np.concatenate(exits), "split": np.concatenate(splits), "logits": np.concatenate(logits)}


def run_pair_on_set(folder: Path, ds: ImageSet, progress: bool = True) -> dict[str, np.ndarray]:
    edge, cloud, manifest = sessions(folder)
    out = run_pair(edge, cloud, normalise_u8(ds.images, manifest), progress=progress)
    out["labels"] = ds.labels
    return out


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
