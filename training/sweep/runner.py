"""Running a sweep: train and measure every planned point not yet in results.jsonl (resumable,
one recipe per folder), then redraw the tables and plots."""
from __future__ import annotations

import json
import sys
import time

import torch

from ..checkpoint import load_checkpoint_model
from ..config import TrainConfig
from ..data import ImageSet
from ..model import describe
from ..train import load_data, pick_device, train
from .grid import SweepSpec, plan_points, point_name, train_config, training_finished
from .point import measure, validation_outputs
from .results import append_row, load_rows, outputs_stale, write_outputs

def check_recipe(spec: SweepSpec) -> None:
    """A sweep folder holds one recipe: rows made with other epochs/mode/seed would silently
    mix in the table, so a different recipe must use another ``--out``."""
    path = spec.out / "sweep.json"
    recipe = spec.recipe()
    if path.exists():
        saved = json.loads(path.read_text())["recipe"]
        if saved != recipe:
            diff = sorted(k for k in recipe if saved.get(k) != recipe[k])
            raise SystemExit(f"{spec.out} holds a sweep with another recipe (differs in {diff}); use another --out")
    else:
        spec.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"recipe": recipe}, indent=2) + "\n")


def reference(spec: SweepSpec, val: ImageSet) -> dict | None:
    """The full-precision ResNet-32 the sweep is judged against: the init (or teacher)
    checkpoint's final-head accuracy on the same validation images. Computed once."""
    source = spec.init or spec.teacher
    path = spec.out / "reference.json"
    if not source:
        return None
    if path.exists():
        return json.loads(path.read_text())
    device = pick_device(TrainConfig(device=spec.device))
    model, ckpt = load_checkpoint_model(source, device)
    _, finals, labels = validation_outputs(model, val, device)
    ref = {"source": source, "finalAccuracy": float((finals.argmax(1) == labels).mean()), "images": int(len(labels)),
           "architecture": describe(model.config)}
    path.write_text(json.dumps(ref, indent=2) + "\n")
    return ref


def run_sweep(spec: SweepSpec) -> list[dict]:
    """Train and measure every planned point not yet in results.jsonl; then write the tables
    and plots. Returns the rows (all finished points of this folder)."""
    check_recipe(spec)
    points = plan_points(spec)
    done = {r["name"] for r in load_rows(spec.out)}
    todo = [(c, b) for c, b in points if point_name(spec.dataset, c, b) not in done]
    print(f"sweep {spec.out}: {len(points)} points, {len(points) - len(todo)} done, {len(todo)} to run", file=sys.stderr)
    start = time.time()
    val = None
    for i, (cut, bits) in enumerate(todo):
        cfg = train_config(spec, cut, bits)
        if spec.max_minutes:
            left = spec.max_minutes - (time.time() - start) / 60
            if left <= 0 and i > 0:  # the first point always gets at least one epoch: progress
                print("sweep: out of --max-minutes; rerun the same command to go on", file=sys.stderr)
                break
            cfg.max_minutes = max(left, 1e-6)
        ckpt_path = train(cfg)
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if not training_finished(ckpt, cfg):
            print(f"sweep: {cfg.name} stopped at epoch {ckpt['epoch']}/{cfg.epochs}; rerun to resume", file=sys.stderr)
            break
        if val is None:
            val = load_data(cfg)[1]
            reference(spec, val)
        row, curve = measure(ckpt_path, cfg, spec, val)
        (spec.out / "curves").mkdir(exist_ok=True)
        (spec.out / "curves" / f"{cfg.name}.json").write_text(json.dumps(curve) + "\n")
        append_row(spec.out, row)
        print(f"sweep: {cfg.name} hybrid {row['hybridAccuracy']:.4f} at {row['edgeFraction']:.1%} edge, "
              f"{row['paperEnergyRatio']:.2f}x paper / {row['opEnergyRatio']:.2f}x 45nm", file=sys.stderr)
    rows = load_rows(spec.out)
    if outputs_stale(spec.out):
        write_outputs(spec.out, rows)
    return rows
