"""Threshold calibration: sweep the entropy threshold over validation outputs and pick an
operating point for a goal. Pure functions (used by export.py and the sweep), the step that
writes a folder's calibration into its manifest, and a CLI that re-calibrates a shipped model
folder from its ONNX pair.

    python -m training calibrate --model models/cifar10 --data data/cifar10 --goal within=1.0
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .data import load_source, train_val_split
from .energy import EnergyModel, PartCounts, load_constants
from .manifest import write_json
from .metrics import operating_point, softmax_entropy
from .onnx_pair import run_pair_on_set


def sweep(exit_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray, energy: EnergyModel | None = None,
          steps: int = 201) -> dict:
    """The curve over thresholds from 0 (nothing exits) to ln(C) + epsilon (everything exits)."""
    max_entropy = float(np.log(exit_logits.shape[1]))
    thresholds = np.linspace(0.0, max_entropy + 1e-6, steps)
    return {
        "images": int(len(labels)),
        "finalAccuracy": float((logits.argmax(1) == labels).mean()),
        "exitAccuracy": float((exit_logits.argmax(1) == labels).mean()),
        "points": [operating_point(exit_logits, logits, labels, float(t), energy) for t in thresholds],
    }


def parse_goal(goal: str) -> tuple[str, float]:
    """``within=P``: most edge exits with hybrid accuracy at most P points below the final head;
    ``edge=F``: the smallest threshold putting at least fraction F at the edge;
    ``threshold=T``: a fixed threshold."""
    kind, _, value = goal.partition("=")
    if kind not in ("within", "edge", "threshold") or not value:
        raise ValueError(f"goal must be within=POINTS, edge=FRACTION or threshold=T, got {goal!r}")
    return kind, float(value)


def choose(curve: dict, goal: str) -> dict:
    kind, value = parse_goal(goal)
    points = curve["points"]
    if kind == "threshold":
        raise ValueError("threshold goals are evaluated with operating_point, not chosen from a curve")
    if kind == "within":
        floor = curve["finalAccuracy"] - value / 100.0
        ok = [p for p in points if p["hybridAccuracy"] >= floor - 1e-12]
        return max(ok, key=lambda p: (p["edgeFraction"], p["hybridAccuracy"], -p["threshold"]))
    ok = [p for p in points if p["edgeFraction"] >= value]
    return min(ok, key=lambda p: p["threshold"]) if ok else points[-1]


def calibrate(exit_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray, goal: str,
              energy: EnergyModel | None = None) -> tuple[dict, dict]:
    """Sweep, then refine: the chosen threshold is placed midway between the entropies around
    the decision so that tiny numeric differences between runtimes cannot move samples across."""
    kind, value = parse_goal(goal)
    if kind == "threshold":
        curve = sweep(exit_logits, logits, labels, energy)
        return curve, operating_point(exit_logits, logits, labels, value, energy)
    ent = np.sort(softmax_entropy(exit_logits))
    # candidate thresholds: midpoints between consecutive distinct entropies (exact sweep)
    mids = np.concatenate([[0.0], (ent[1:] + ent[:-1]) / 2, [ent[-1] + 1e-6]])
    exact = {"finalAccuracy": float((logits.argmax(1) == labels).mean()),
             "points": [operating_point(exit_logits, logits, labels, float(t)) for t in _thin(mids, 2000)]}
    best = choose(exact, goal)
    curve = sweep(exit_logits, logits, labels, energy)
    return curve, operating_point(exit_logits, logits, labels, best["threshold"], energy)


def _thin(values: np.ndarray, limit: int) -> np.ndarray:
    if len(values) <= limit:
        return values
    return values[np.linspace(0, len(values) - 1, limit).round().astype(int)]


def plot(curve: dict, chosen: dict, path: Path, title: str, paper_point: dict | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = curve["points"]
    edge = [100 * p["edgeFraction"] for p in pts]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    ax[0].plot(edge, [100 * p["hybridAccuracy"] for p in pts], label="hybrid accuracy")
    ax[0].axhline(100 * curve["finalAccuracy"], ls="--", c="gray", label="final exit only")
    ax[0].scatter([100 * chosen["edgeFraction"]], [100 * chosen["hybridAccuracy"]], c="red", zorder=3,
                  label=f"shipped threshold {chosen['threshold']:.3f}")
    ax[0].set_xlabel("% answered at the edge"); ax[0].set_ylabel("validation accuracy (%)"); ax[0].legend(); ax[0].grid(alpha=.3)
    if "paperEnergyRatio" in pts[0]:
        ax[1].plot(edge, [p["paperEnergyRatio"] for p in pts], label="paper model")
        ax[1].plot(edge, [p["opEnergyRatio"] for p in pts], label="45 nm op-level model")
        ax[1].scatter([100 * chosen["edgeFraction"]], [chosen["paperEnergyRatio"]], c="red", zorder=3)
        if paper_point:
            ax[1].scatter([paper_point["edgePercent"]], [paper_point["energyRatio"]], marker="*", s=160, c="black", zorder=3,
                          label=f"paper: {paper_point['edgePercent']}% at edge, {paper_point['energyRatio']}x")
        ax[1].set_xlabel("% answered at the edge"); ax[1].set_ylabel("energy saving vs FP ResNet-32 (x)"); ax[1].legend(); ax[1].grid(alpha=.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model folder (edge.onnx, cloud.onnx, manifest.json)")
    ap.add_argument("--data", required=True, help="the training source the model was trained on (validation is carved from it)")
    ap.add_argument("--goal", default="within=1.0")
    ap.add_argument("--seed", type=int, default=None, help="split seed (default: the manifest's training seed)")
    ap.add_argument("--val-size", type=int, default=None)
    args = ap.parse_args(argv)
    folder = Path(args.model)
    manifest = json.loads((folder / "manifest.json").read_text())
    seed = args.seed if args.seed is not None else manifest["training"]["seed"]
    val_size = args.val_size or manifest["training"]["config"].get("val_size", 5000)
    full = load_source(args.data)
    _, val_idx = train_val_split(len(full), val_size, seed)
    out = run_pair_on_set(folder, full.subset(val_idx))
    update_calibration(folder, out["exit_logits"], out["logits"], out["labels"], args.goal)
    print(json.dumps(json.loads((folder / "manifest.json").read_text())["validation"], indent=2))


if __name__ == "__main__":
    main()
