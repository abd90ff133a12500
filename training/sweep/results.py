"""A sweep folder's results: results.jsonl (one line per finished point), and the tables and
plots drawn from it (results.csv, results.json, three PNGs)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..energy import load_constants
from .plots import plot_edge_accuracy, plot_energy_accuracy, plot_threshold_curves
from .point import WIRE_HEADER_BYTES

CSV_COLUMNS = [
    "dataset", "name", "cut", "bits", "shipped", "mode", "epochs", "epochsDone", "subset", "seed",
    "finalAccuracy", "exitAccuracy", "threshold", "hybridAccuracy", "edgeFraction", "edgeAccuracy", "cloudAccuracy",
    "paperEdge", "paperCloud", "paperBaseline", "paperTotal", "paperEnergyRatio",
    "opEdgePj", "opCloudPj", "opBaselinePj", "opTotalPj", "opEnergyRatio",
    "splitShape", "wireHeaderBytes", "wireBytesFp32", "wireBytesFp16", "wireBytesInt8",
    "edgeParamsQuantized", "edgeParamsFullPrecision", "edgeParamBytesStored", "edgeParamBytesPacked", "edgeOnnxBytes",
    "valImages", "goal", "device", "trainSeconds", "evalSeconds", "gitSha", "finishedAt",
]


def load_rows(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_row(out: Path, row: dict) -> None:
    """One line per finished configuration, flushed at once: a killed sweep loses at most the
    configuration it was on (and that one resumes from its checkpoint)."""
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def sorted_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["dataset"], r["cut"], r["bits"]))


def summary(out: Path, rows: list[dict]) -> dict:
    """results.json: provenance (mode, epochs, subset, devices, reference) and the rows."""
    recipe = json.loads((out / "sweep.json").read_text())["recipe"] if (out / "sweep.json").exists() else {}
    ref_path = out / "reference.json"
    return {
        "recipe": recipe,
        "reference": json.loads(ref_path.read_text()) if ref_path.exists() else None,
        "devices": sorted({r["device"] for r in rows}),
        "trainHours": round(sum(r["trainSeconds"] for r in rows) / 3600, 2),
        "gitShas": sorted({r["gitSha"] for r in rows}),
        "wireHeaderBytes": WIRE_HEADER_BYTES,
        "energyConstants": load_constants(),
        "rows": sorted_rows(rows),
    }


PLOTS = ("energy-accuracy", "edge-accuracy", "threshold-curves")


def outputs_stale(out: Path) -> bool:
    """Tables and plots are older than results.jsonl (or missing): a rerun that finished
    nothing new does not redraw them."""
    results, table = out / "results.jsonl", out / "results.json"
    if not results.exists():
        return False
    outputs = [table] + [out / f"{kind}.png" for kind in PLOTS]
    return any(not o.exists() or o.stat().st_mtime_ns < results.stat().st_mtime_ns for o in outputs)


def write_outputs(out: Path, rows: list[dict]) -> None:
    """results.csv, results.json and the three plots of one sweep folder."""
    if not rows:
        return
    rows = sorted_rows(rows)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    data = summary(out, rows)
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    ref = reference_accuracy(data)
    title = f"{rows[0]['dataset']}: {describe_mode(data['recipe'])}"
    plot_energy_accuracy(rows, out / "energy-accuracy.png", title, ref)
    plot_edge_accuracy(rows, out / "edge-accuracy.png", title)
    plot_threshold_curves(out, rows, out / "threshold-curves.png", title)


def reference_accuracy(data: dict) -> tuple[float, str] | None:
    """FP ResNet-32 accuracy: the init/teacher checkpoint's, else the best 32-bit row's final head."""
    if data.get("reference"):
        ref = data["reference"]
        return ref["finalAccuracy"], f"full-precision ResNet-32 `{ref['source']}` ({ref['architecture']})"
    fp = [r for r in data["rows"] if r["bits"] == 32]
    if fp:
        best = max(fp, key=lambda r: r["finalAccuracy"])
        return best["finalAccuracy"], f"final head of the full-precision sweep point {best['name']}"
    return None


def describe_mode(recipe: dict) -> str:
    if not recipe:
        return "unknown mode"
    text = f"{recipe['mode']} mode, {plural(recipe['epochs'], 'epoch')}"
    if recipe.get("subset", 1.0) < 1.0:
        text += f", {recipe['subset']:.0%} of the training split"
    if recipe["mode"] == "budget" and recipe.get("init"):
        text += ", fine-tuned from FP"
    if recipe.get("teacher"):
        text += f", KD {recipe['kdWeight']}"
    return text


def plural(n: float, word: str) -> str:
    return f"{n:g} {word}" + ("" if n == 1 else "s")
