"""An exported model folder's ONNX pair in onnxruntime: load the two sessions, normalise uint8
images as the manifest says, and run edge then cloud over a batch of inputs."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from .contracts import CLOUD_INPUT, CLOUD_OUTPUT, EDGE_EXIT_LOGITS, EDGE_INPUT, EDGE_SPLIT
from .data import ImageSet


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
