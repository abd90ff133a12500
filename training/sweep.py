"""Design-space exploration (issue 5): where to cut ResNet-32 and how far to quantize the edge.

For every (cut, edge bit width) it trains a hybrid model with the pipeline's own ``train()``,
sweeps the exit threshold on validation with ``calibrate()``, and records accuracy, % at the
edge, both energy models, the split tensor's wire bytes and the parameter bytes the edge ships.

    python -m training.sweep run --dataset cifar10 --data data/cifar10 \\
        --mode budget --init checkpoints/cifar10-fp32-cpu.pt --epochs 2 --subset 0.2 \\
        --cuts 10,16,24 --bits 1,4,32
    python -m training.sweep report sweeps/cifar10 sweeps/cifar100 --doc docs/design-space.md

``run`` appends one line per finished configuration to ``<out>/results.jsonl``; a rerun skips
those and resumes an interrupted one from its checkpoint (``<out>/runs/<name>/``). It then
writes ``results.csv``, ``results.json`` and the plots into ``<out>``. ``report`` turns one or
more sweep folders into docs/design-space.md (plots copied next to it).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .calibrate import calibrate
from .config import TrainConfig, apply_overrides
from .data import ImageSet, TensorLoader
from .contracts import WIRE_ELEMENT_BYTES, WIRE_FIXED_HEADER_BYTES, WIRE_SPLIT_RANK, wire_header_bytes
from .energy import EnergyModel, PartCounts, load_constants
from .model import VALID_BITS, VALID_CUTS, ModelConfig, QuantBlock, SplitResNet, describe, realign_blocks, split_shape
from .onnx_graph import INT8_MAX_BITS, build_edge
from .checkpoint import load_checkpoint_model
from .train import device_name, git_sha, load_data, pick_device, predict, train

# The configurations the shipped models use (docs/background.md#headline-numbers, the paper's two points, as
# shared/energy.json states them): always in a sweep of these datasets so that the published curve shows
# where the shipped model sits.
SHIPPED = {d: (p["cut"], p["bits"]) for d, p in load_constants()["paperOperatingPoints"].items()}

# The wire frame's header (fixed part + 4 bytes per dimension) at the split's rank (N, c, h, w), and
# the bytes per element of each precision: shared/contracts.json, which shared/src/wire.ts reads too.
WIRE_HEADER_BYTES = wire_header_bytes(WIRE_SPLIT_RANK)

# Budget mode: a short one-cycle fine-tune from a trained full-precision model (the CPU pilot's
# optimiser, docs/runtime.md#training-speed-on-the-projects-cpu, at a lower peak since the weights start trained), with the gradient norm
# clipped: the fresh exit head's first gradients otherwise wreck the trained edge (config.py,
# grad_clip). ``--set`` overrides.
BUDGET_RECIPE = {"schedule": "onecycle", "lr": 0.05, "warmup_epochs": 0.0, "nesterov": True,
                 "weight_decay": 5e-4, "exit_weight": 0.5, "grad_clip": 2.0}

# Fields that legitimately differ between two runs of the same seed (time, machine, commit).
VOLATILE = ("trainSeconds", "evalSeconds", "finishedAt", "gitSha", "device")

CSV_COLUMNS = [
    "dataset", "name", "cut", "bits", "shipped", "mode", "epochs", "epochsDone", "subset", "seed",
    "finalAccuracy", "exitAccuracy", "threshold", "hybridAccuracy", "edgeFraction", "edgeAccuracy", "cloudAccuracy",
    "paperEdge", "paperCloud", "paperBaseline", "paperTotal", "paperEnergyRatio",
    "opEdgePj", "opCloudPj", "opBaselinePj", "opTotalPj", "opEnergyRatio",
    "splitShape", "wireHeaderBytes", "wireBytesFp32", "wireBytesFp16", "wireBytesInt8",
    "edgeParamsQuantized", "edgeParamsFullPrecision", "edgeParamBytesStored", "edgeParamBytesPacked", "edgeOnnxBytes",
    "valImages", "goal", "device", "trainSeconds", "evalSeconds", "gitSha", "finishedAt",
]


@dataclass
class SweepSpec:
    """Everything that decides a sweep's figures (``recipe``) plus how to run it (the rest)."""
    dataset: str
    data: str
    out: Path
    mode: str = "budget"  # full | budget
    cuts: list[int] = field(default_factory=lambda: list(VALID_CUTS))
    bits: list[int] = field(default_factory=lambda: list(VALID_BITS))
    epochs: int | None = None  # None: the preset's (full) or 2 (budget)
    subset: float = 1.0
    init: str | None = None
    teacher: str | None = None
    kd_weight: float = 0.5
    goal: str = "within=1.0"
    seed: int = 0
    val_size: int = 5000
    preset: str | None = None
    overrides: list[str] = field(default_factory=list)
    include_shipped: bool = True
    threads: int = 0
    device: str = "auto"
    max_minutes: float = 0.0  # stop the sweep (between epochs) past this; rerun to resume

    def recipe(self) -> dict:
        """What must stay the same for the rows of one sweep folder to be comparable."""
        return {"dataset": self.dataset, "mode": self.mode, "epochs": self.resolved_epochs(), "subset": self.subset,
                "init": self.init, "teacher": self.teacher, "kdWeight": self.kd_weight if self.teacher else 0.0,
                "goal": self.goal, "seed": self.seed, "valSize": self.val_size, "preset": self.preset,
                "overrides": list(self.overrides)}

    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            return self.epochs
        return base_config(self).epochs if self.mode == "full" else 2


# ---------------------------------------------------------------- the grid


def parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def plan_points(spec: SweepSpec) -> list[tuple[int, int]]:
    """(cut, bits) in the order given, plus the shipped configuration of the dataset."""
    bad = [c for c in spec.cuts if c not in VALID_CUTS] + [b for b in spec.bits if b not in VALID_BITS]
    if bad:
        raise ValueError(f"cuts must be in {VALID_CUTS} and bits in {VALID_BITS}; got {bad}")
    points = [(c, b) for c in spec.cuts for b in spec.bits]
    shipped = SHIPPED.get(spec.dataset)
    if spec.include_shipped and shipped and shipped not in points:
        points.append(shipped)
    return list(dict.fromkeys(points))


def point_name(dataset: str, cut: int, bits: int) -> str:
    return f"{dataset}-{describe(ModelConfig(cut=cut, weight_bits=bits, act_bits=bits))}"


# ---------------------------------------------------------------- training configs


def base_config(spec: SweepSpec) -> TrainConfig:
    """The pipeline's recipe: a preset JSON, or TrainConfig's defaults (the paper's recipe)."""
    return TrainConfig.from_json(spec.preset) if spec.preset else TrainConfig()


def realigned_init(spec: SweepSpec, cut: int, bits: int) -> str | None:
    """Budget mode starts every configuration from the trained full-precision checkpoint. That
    checkpoint has its own cut, so its blocks are renamed to land on the same ResNet blocks
    (``model.realign_blocks``) and saved once per (cut, quantized?) under ``<out>/init/``;
    ``train()`` then loads it through its ordinary ``init_from``."""
    if not spec.init:
        return None
    dst = ModelConfig(cut=cut, weight_bits=bits, act_bits=bits)
    path = spec.out / "init" / f"cut{cut}-{'quantized' if dst.quantized else 'fp'}.pt"
    if not path.exists():
        src = torch.load(spec.init, map_location="cpu", weights_only=False)
        state = realign_blocks(src["model"], src["model_config"]["cut"], dst)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": state, "source": spec.init}, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    return str(path)


def train_config(spec: SweepSpec, cut: int, bits: int) -> TrainConfig:
    """The TrainConfig of one point: the base recipe (full) or the budget fine-tune, then
    the user's ``--set key=value`` overrides."""
    raw = base_config(spec).to_dict()
    raw.update(name=point_name(spec.dataset, cut, bits), dataset=spec.dataset, data=spec.data, cut=cut,
               weight_bits=bits, act_bits=bits, seed=spec.seed, val_size=spec.val_size, train_fraction=spec.subset,
               out_dir=str(spec.out / "runs"), threads=spec.threads, device=spec.device,
               epochs=spec.resolved_epochs())
    if spec.mode == "budget":
        raw.update(BUDGET_RECIPE, init_from=realigned_init(spec, cut, bits))
    if spec.teacher:
        raw.update(teacher=spec.teacher, kd_weight=spec.kd_weight)
    return apply_overrides(TrainConfig.from_dict(raw), spec.overrides)


def training_finished(ckpt: dict, cfg: TrainConfig) -> bool:
    """All epochs done, or a wall-clock one-cycle schedule annealed to zero."""
    if ckpt["epoch"] >= cfg.epochs:
        return True
    return cfg.schedule == "onecycle" and cfg.time_budget_minutes > 0 and ckpt["elapsed_seconds"] >= 60 * cfg.time_budget_minutes


# ---------------------------------------------------------------- the figures of one point


def wire_bytes(cut: int) -> dict:
    """Bytes on the wire for one image's split tensor in each wire precision (header included)."""
    c, h, w = split_shape(cut)
    return {f"wireBytes{p.capitalize()}": WIRE_HEADER_BYTES + c * h * w * size for p, size in WIRE_ELEMENT_BYTES.items()}


def edge_param_bytes(model: SplitResNet) -> dict:
    """Parameter bytes of the edge part. ``stored``: as edge.onnx holds them (codes of <= 7-bit
    weights as int8 plus a float32 scale and an int8 zero point per filter; 8- and 32-bit
    weights as float32; the exit FC's weight as int8 plus a float32 scale and an int8 zero point
    per row; everything else float32). ``packed``: the theoretical size with quantized weights
    packed at ``bits``/8 bytes each (plus the float32 scales)."""
    counts = PartCounts.from_model(model)
    bits = counts.bits
    filters = sum(b.conv1.out_channels + b.conv2.out_channels for b in model.edge if isinstance(b, QuantBlock))
    q, fp = counts.edge_quantized_params, counts.edge_fp_params
    exit_weight = model.exit.fc.weight
    exit_bytes = exit_weight.numel() + exit_weight.shape[0] * (4 + 1)
    other_fp = fp - exit_weight.numel()
    if bits <= INT8_MAX_BITS:
        stored = q + filters * (4 + 1)
    else:
        stored = 4 * q
    packed = math.ceil(q * min(bits, 32) / 8) + (4 * filters if bits < 32 else 0)
    return {"edgeParamsQuantized": q, "edgeParamsFullPrecision": fp,
            "edgeParamBytesStored": stored + 4 * other_fp + exit_bytes, "edgeParamBytesPacked": packed + 4 * other_fp + exit_bytes}


def energy_figures(energy: EnergyModel, edge_fraction: float) -> dict:
    """Edge, cloud, baseline and per-inference total in both models at an edge fraction.
    Paper model in full-precision-MAC equivalents, the 45 nm model in picojoules."""
    return {
        "paperEdge": energy.paper_edge(), "paperCloud": energy.paper_cloud(), "paperBaseline": energy.paper_baseline(),
        "paperTotal": energy.paper_total(edge_fraction),
        "opEdgePj": energy.op_edge(), "opCloudPj": energy.op_cloud(), "opBaselinePj": energy.op_baseline(),
        "opTotalPj": energy.op_total(edge_fraction),
        **energy.ratios(edge_fraction),
    }


def validation_outputs(model: SplitResNet, val: ImageSet, device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exit logits, final logits, labels on the validation images (float32 autocast off, so
    GPU and CPU figures differ only by kernel rounding)."""
    exits, finals, labels = predict(model, TensorLoader(val, 500, device, train=False))
    return exits.numpy(), finals.numpy(), labels.numpy()


def measure(ckpt_path: Path, cfg: TrainConfig, spec: SweepSpec, val: ImageSet) -> tuple[dict, dict]:
    """One table row and its threshold curve, from a finished checkpoint."""
    device = pick_device(cfg)
    t0 = time.time()
    model, ckpt = load_checkpoint_model(ckpt_path, device)
    exits, finals, labels = validation_outputs(model, val, device)
    model = model.cpu()
    energy = EnergyModel(PartCounts.from_model(model))
    curve, chosen = calibrate(exits, finals, labels, spec.goal, energy)
    c, h, w = split_shape(cfg.cut)
    row = {
        "dataset": spec.dataset, "name": cfg.name, "cut": cfg.cut, "bits": cfg.weight_bits,
        "shipped": SHIPPED.get(spec.dataset) == (cfg.cut, cfg.weight_bits),
        "mode": spec.mode, "epochs": cfg.epochs, "epochsDone": ckpt["epoch"], "subset": spec.subset, "seed": cfg.seed,
        "init": spec.init, "teacher": spec.teacher, "kdWeight": cfg.kd_weight if cfg.teacher else 0.0,
        "valImages": int(len(labels)), "goal": spec.goal,
        "finalAccuracy": curve["finalAccuracy"], "exitAccuracy": curve["exitAccuracy"],
        "threshold": chosen["threshold"], "hybridAccuracy": chosen["hybridAccuracy"], "edgeFraction": chosen["edgeFraction"],
        "edgeAccuracy": chosen["edgeAccuracy"], "cloudAccuracy": chosen["cloudAccuracy"],
        **energy_figures(energy, chosen["edgeFraction"]),
        "splitShape": f"{c}x{h}x{w}", "wireHeaderBytes": WIRE_HEADER_BYTES, **wire_bytes(cfg.cut),
        **edge_param_bytes(model), "edgeOnnxBytes": build_edge(model).ByteSize(),
        "device": ckpt["device"], "trainSeconds": round(ckpt["elapsed_seconds"], 1), "evalSeconds": round(time.time() - t0, 1),
        "gitSha": git_sha(), "finishedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "trainConfig": cfg.to_dict(),
    }
    return row, curve


# ---------------------------------------------------------------- results on disk


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


# ---------------------------------------------------------------- tables


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
    text = f"{recipe['mode']} mode, {_plural(recipe['epochs'], 'epoch')}"
    if recipe.get("subset", 1.0) < 1.0:
        text += f", {recipe['subset']:.0%} of the training split"
    if recipe["mode"] == "budget" and recipe.get("init"):
        text += ", fine-tuned from FP"
    if recipe.get("teacher"):
        text += f", KD {recipe['kdWeight']}"
    return text


# ---------------------------------------------------------------- plots


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten on both axes (lower x = energy, higher y = accuracy), by x."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _by_bits(rows: list[dict]) -> dict[int, list[dict]]:
    groups: dict[int, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["cut"]):
        groups.setdefault(r["bits"], []).append(r)
    return dict(sorted(groups.items()))


def plot_energy_accuracy(rows: list[dict], path: Path, title: str, ref: tuple[float, str] | None) -> None:
    """Energy per inference (% of the FP ResNet-32) vs hybrid accuracy, both energy models;
    one curve per bit width through the cuts; the Pareto front dashed; shipped point starred."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, key, label in ((axes[0], "paperEnergyRatio", "paper model (b-bit MAC = b/32)"),
                           (axes[1], "opEnergyRatio", "45 nm op-level model (Horowitz)")):
        for bits, group in _by_bits(rows).items():
            xs = [100 / r[key] for r in group]
            ys = [100 * r["hybridAccuracy"] for r in group]
            ax.plot(xs, ys, marker="o", label=f"{bits}-bit edge" if bits < 32 else "32-bit (FP) edge")
            for r, x, y in zip(group, xs, ys):
                ax.annotate(f"c{r['cut']}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        front = pareto_front([(100 / r[key], 100 * r["hybridAccuracy"]) for r in rows])
        ax.plot(*zip(*front), ls="--", c="gray", lw=1, marker="o", mfc="none", ms=11, label="Pareto front")
        for r in rows:
            if r["shipped"]:
                ax.scatter([100 / r[key]], [100 * r["hybridAccuracy"]], marker="*", s=220, c="black", zorder=4, label="shipped config")
        if ref:
            ax.axhline(100 * ref[0], ls=":", c="red", lw=1, label="FP ResNet-32 reference")
        ax.set_xlabel("energy per inference, % of FP ResNet-32"); ax.set_ylabel("hybrid validation accuracy (%)")
        ax.set_title(label, fontsize=10); ax.grid(alpha=.3); ax.legend(fontsize=7)
    fig.suptitle(f"{title} — each point at its calibrated threshold ({rows[0]['goal']})")
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def plot_edge_accuracy(rows: list[dict], path: Path, title: str) -> None:
    """% answered at the edge vs hybrid accuracy (one curve per bit width), and each exit's
    own accuracy per cut (edge exit solid, final exit dashed)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for bits, group in _by_bits(rows).items():
        xs = [100 * r["edgeFraction"] for r in group]
        ys = [100 * r["hybridAccuracy"] for r in group]
        line, = axes[0].plot(xs, ys, marker="o", label=f"{bits}-bit edge")
        for r, x, y in zip(group, xs, ys):
            axes[0].annotate(f"c{r['cut']}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
        cuts = [r["cut"] for r in group]
        axes[1].plot(cuts, [100 * r["exitAccuracy"] for r in group], marker="o", c=line.get_color(), label=f"{bits}-bit: edge exit")
        axes[1].plot(cuts, [100 * r["finalAccuracy"] for r in group], marker="s", ls="--", c=line.get_color(), label=f"{bits}-bit: final exit")
    axes[0].set_xlabel("% answered at the edge"); axes[0].set_ylabel("hybrid validation accuracy (%)"); axes[0].grid(alpha=.3); axes[0].legend(fontsize=7)
    axes[1].set_xlabel("cut (quantized convs on the edge)"); axes[1].set_ylabel("accuracy of each exit (%)"); axes[1].grid(alpha=.3); axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(title); fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def plot_threshold_curves(out: Path, rows: list[dict], path: Path, title: str) -> None:
    """The whole threshold sweep of every point (accuracy vs % at edge), one panel per bit
    width: a single operating point can be cherry-picked, a curve cannot (docs/background.md#data-and-evaluation)."""
    plt = _plt()
    groups = _by_bits(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(max(3.6 * len(groups), 7.5), 3.9), squeeze=False, sharey=True)
    for ax, (bits, group) in zip(axes[0], groups.items()):
        for r in group:
            curve_path = out / "curves" / f"{r['name']}.json"
            if not curve_path.exists():
                continue
            pts = json.loads(curve_path.read_text())["points"]
            line, = ax.plot([100 * p["edgeFraction"] for p in pts], [100 * p["hybridAccuracy"] for p in pts], label=f"cut {r['cut']}")
            ax.scatter([100 * r["edgeFraction"]], [100 * r["hybridAccuracy"]], color=line.get_color(), s=18, zorder=3)
        ax.set_title(f"{bits}-bit edge", fontsize=10); ax.set_xlabel("% at edge"); ax.grid(alpha=.3); ax.legend(fontsize=7)
    axes[0][0].set_ylabel("hybrid validation accuracy (%)")
    fig.suptitle(f"{title}\nthreshold sweeps (dots: calibrated points)", fontsize=9); fig.tight_layout(); fig.savefig(path, dpi=100); plt.close(fig)


# ---------------------------------------------------------------- report


def recommend(rows: list[dict], ref: tuple[float, str] | None, tolerance: float) -> tuple[dict, str]:
    """The paper's objective: least edge+cloud energy at the accuracy of the full-precision
    network. Among points whose hybrid accuracy is within ``tolerance`` points of the
    reference, the one with the largest paper-model saving (45 nm saving breaks ties);
    if none qualifies, the most accurate point, said plainly."""
    ref_acc = ref[0] if ref else max(r["finalAccuracy"] for r in rows)
    floor = ref_acc - tolerance / 100
    ok = [r for r in rows if r["hybridAccuracy"] >= floor - 1e-12]
    if not ok:
        best = max(rows, key=lambda r: (r["hybridAccuracy"], r["paperEnergyRatio"]))
        return best, (f"No configuration came within {_plural(tolerance, 'point')} of the reference ({100 * ref_acc:.2f} %) in this mode, "
                      f"so this is simply the most accurate one ({100 * (ref_acc - best['hybridAccuracy']):.2f} points under it); "
                      "the energy comparison needs longer training before it means much.")
    best = max(ok, key=lambda r: (r["paperEnergyRatio"], r["opEnergyRatio"]))
    op_rank = 1 + sorted(ok, key=lambda r: -r["opEnergyRatio"]).index(best)
    op_best = max(ok, key=lambda r: r["opEnergyRatio"])
    why = (f"{len(ok)} of {len(rows)} configurations keep the hybrid accuracy within {_plural(tolerance, 'point')} of the reference "
           f"({100 * ref_acc:.2f} %); among them this one needs the least modelled energy per inference in the paper model "
           f"({100 / best['paperEnergyRatio']:.1f} % of the FP ResNet-32, {best['paperEnergyRatio']:.2f}x less).")
    if op_rank == 1:
        why += " It is also the cheapest of them in the 45 nm op-level model."
    else:
        why += (f" In the 45 nm op-level model it ranks {op_rank}; the cheapest there is {op_best['name']} "
                f"({op_best['opEnergyRatio']:.2f}x vs {best['opEnergyRatio']:.2f}x), because that model also charges weight reads "
                "and prices a low-bit MAC differently.")
    return best, why


def _plural(n: float, word: str) -> str:
    return f"{n:g} {word}" + ("" if n == 1 else "s")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def markdown_table(rows: list[dict]) -> str:
    head = ("| cut | bits | final | edge exit | hybrid | at edge | edge acc | cloud acc | threshold | edge energy, paper (% FP) "
            "| total, paper (% FP) | saving, paper | edge, 45 nm (µJ) | total, 45 nm (µJ) | saving, 45 nm "
            "| wire fp32 / fp16 / int8 (B) | edge params stored / packed (KiB) | edge.onnx (KiB) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in sorted_rows(rows):
        mark = " ★" if r["shipped"] else ""
        lines.append(
            f"| {r['cut']}{mark} | {r['bits']} | {_pct(r['finalAccuracy'])} | {_pct(r['exitAccuracy'])} | {_pct(r['hybridAccuracy'])} "
            f"| {_pct(r['edgeFraction'])} | {_pct(r['edgeAccuracy'])} | {_pct(r['cloudAccuracy'])} | {r['threshold']:.3f} "
            f"| {100 * r['paperEdge'] / r['paperBaseline']:.1f} | {100 * r['paperTotal'] / r['paperBaseline']:.1f} | {r['paperEnergyRatio']:.2f}x "
            f"| {r['opEdgePj'] / 1e6:.1f} | {r['opTotalPj'] / 1e6:.1f} | {r['opEnergyRatio']:.2f}x "
            f"| {r['wireBytesFp32']} / {r['wireBytesFp16']} / {r['wireBytesInt8']} "
            f"| {r['edgeParamBytesStored'] / 1024:.1f} / {r['edgeParamBytesPacked'] / 1024:.1f} | {r['edgeOnnxBytes'] / 1024:.1f} |")
    return "\n".join(lines)


def epochs_run(rows: list[dict]) -> str:
    """A wall-clock schedule (``time_budget_minutes``) can end before the nominal epochs."""
    done = sorted({r["epochsDone"] for r in rows})
    return str(done[0]) if len(done) == 1 else f"{done[0]}-{done[-1]}"


def dataset_section(out: Path, doc_dir: Path, tolerance: float) -> str:
    """One dataset's part of docs/design-space.md; its plots are copied to docs/design-space/."""
    data = json.loads((out / "results.json").read_text())
    rows, recipe = data["rows"], data["recipe"]
    dataset = rows[0]["dataset"]
    ref = reference_accuracy(data)
    best, why = recommend(rows, ref, tolerance)
    img_dir = doc_dir / "design-space"
    img_dir.mkdir(parents=True, exist_ok=True)
    for kind in PLOTS:
        shutil.copyfile(out / f"{kind}.png", img_dir / f"{dataset}-{kind}.png")
    produced = (f"`{recipe['mode']}` mode, {_plural(recipe['epochs'], 'epoch')} per configuration"
                + (f", fine-tuned from `{recipe['init']}`" if recipe.get("init") else ", trained from scratch by the pipeline's recipe")
                + (f" on a seeded {recipe['subset']:.0%} of the training split" if recipe["subset"] < 1 else " on the whole training split")
                + (f", distilled from `{recipe['teacher']}` (weight {recipe['kdWeight']})" if recipe.get("teacher") else "")
                + (f", overrides `{' '.join(recipe['overrides'])}`" if recipe.get("overrides") else "")
                + f"; epochs actually run: {epochs_run(rows)}"
                + f"; validation: {rows[0]['valImages']} seeded images (seed {recipe['seed']}), threshold goal `{recipe['goal']}`"
                + f"; device: {', '.join(data['devices'])}; {data['trainHours']} h of training; commit {', '.join(data['gitShas'])}.")
    shipped = [r for r in rows if r["shipped"]]
    lines = [f"## {dataset} (`{out}`)", "", f"**Produced by:** {produced}", ""]
    if recipe["mode"] == "budget":
        lines += ["> Budget mode: every configuration had only a short fine-tune, so the accuracies are lower bounds and the",
                  "> ranking between bit widths can change with full training. The full mode (`--mode full`, GPU) replaces them.", ""]
    lines += [f"**Recommended operating point:** {best['name']} at threshold {best['threshold']:.3f}: hybrid accuracy "
              f"{_pct(best['hybridAccuracy'])} %, {_pct(best['edgeFraction'])} % answered at the edge, "
              f"{best['paperEnergyRatio']:.2f}x less energy (paper model), {best['opEnergyRatio']:.2f}x (45 nm model), "
              f"{best['wireBytesInt8']} B on the wire in int8.", "", f"*Why:* {why}",
              f"Reference: {ref[1]}, {_pct(ref[0])} %." if ref else "", ""]
    for s in shipped:
        lines += [f"The shipped configuration ({s['name']}, ★) reaches {_pct(s['hybridAccuracy'])} % with "
                  f"{_pct(s['edgeFraction'])} % at the edge and {s['paperEnergyRatio']:.2f}x (paper) / {s['opEnergyRatio']:.2f}x (45 nm) "
                  f"in this sweep.", ""]
    lines += [markdown_table(rows), "",
              f"![energy vs accuracy](design-space/{dataset}-energy-accuracy.png)", "",
              f"![% at edge vs accuracy, and each exit's accuracy](design-space/{dataset}-edge-accuracy.png)", "",
              f"![threshold sweeps](design-space/{dataset}-threshold-curves.png)", ""]
    return "\n".join(lines)


def models_section() -> str:
    """The energy formulas and constants next to the figures (docs/background.md#the-energy-model), read from the shared file."""
    k = load_constants()
    pj = k["horowitz45nm"]["pj"]
    return "\n".join([
        "## How the columns are computed", "",
        "- *Accuracies* are on the seeded validation slice of the training set (never the official test split). "
        "*final* / *edge exit*: each head on every image; *hybrid*, *at edge*, *edge acc*, *cloud acc*: at the threshold "
        "`calibrate()` chose for the goal (entropy of the exit softmax < threshold exits at the edge).",
        f"- *Paper model* (units of one full-precision MAC, conv MACs only): edge = quantized MACs x b/{k['paper']['fullPrecisionBits']} "
        "+ full-precision edge MACs; total = edge + (1 - edge fraction) x cloud; saving = 69.12 M / total.",
        f"- *45 nm op-level model* (Horowitz, ISSCC 2014): full-precision MAC = {pj['fp32Mult']} + {pj['fp32Add']} pJ; "
        f"2..8-bit MAC = {pj['int8Mult']} + {pj['int32Add']} pJ (int8 mult + int32 add); 1-bit MAC = {pj['int8Add']} pJ; "
        f"plus every weight bit read once from SRAM at {pj['sramRead64Bit']} pJ per 64 bits; FC layers included. "
        "Constants: `shared/energy.json` (the TypeScript side reads the same file).",
        "- Modelled energy is not measured time ([performance.md](performance.md) measures time): the Worker runs quantized "
        "convs as integer convolutions in onnxruntime-web, and W1A1 edges of at most 32 channels as XNOR + popcount in the "
        "packed engine.",
        f"- *Wire bytes*: one image's split tensor c x h x w x ({', '.join(str(b) for b in WIRE_ELEMENT_BYTES.values())}) bytes "
        f"plus the {WIRE_HEADER_BYTES}-byte header of `shared/src/wire.ts` ({WIRE_FIXED_HEADER_BYTES} fixed bytes + 4 per "
        f"dimension, rank {WIRE_SPLIT_RANK}).",
        f"- *Edge params stored*: as `edge.onnx` holds them — codes of <= {INT8_MAX_BITS}-bit weights as int8 (1 byte each) plus a "
        "float32 scale and an int8 zero point per filter; 8- and 32-bit weights as float32; the exit FC's weight as int8 "
        "per row (+ float32 scale); all other edge parameters (stem, BN, shortcuts, biases) float32. *packed*: quantized weights at b/8 bytes each (+ float32 scales). "
        "*edge.onnx*: the serialized graph's actual size.", ""])


def write_report(outs: list[Path], doc: Path, tolerance: float = 1.0) -> Path:
    """docs/design-space.md from one or more sweep folders (each with results.json)."""
    for out in outs:
        if not load_rows(out):
            raise SystemExit(f"{out}: no finished configuration yet (results.jsonl is empty or missing)")
        if outputs_stale(out):
            write_outputs(out, load_rows(out))
    sections = [dataset_section(out, doc.parent, tolerance) for out in outs]
    header = ["# Design-space exploration", "",
              "Where to cut the hybrid ResNet-32 and how far to quantize its edge part (issue 5). Every point is one trained "
              "configuration (cut x edge bit width, weights = activations) with its exit threshold calibrated on validation. "
              f"Generated by `python -m training.sweep report {' '.join(str(o) for o in outs)} --doc {doc}` on "
              f"{datetime.now(timezone.utc).strftime('%Y-%m-%d')}; recommendation tolerance {_plural(tolerance, 'point')}. "
              "Each section says which mode, epochs and machine produced its figures.", ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(header + sections + [models_section()]))
    return doc


# ---------------------------------------------------------------- CLI


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    dataset = args.dataset or (TrainConfig.from_json(args.preset).dataset if args.preset else "cifar10")
    data = args.data or (TrainConfig.from_json(args.preset).data if args.preset else f"../shared/datasets/{dataset}-train-*.tar.gz")
    if args.mode == "budget" and not args.init:
        print("sweep: budget mode without --init trains every point from scratch for a few epochs", file=sys.stderr)
    return SweepSpec(dataset=dataset, data=data, out=Path(args.out or f"sweeps/{dataset}"), mode=args.mode,
                     cuts=parse_ints(args.cuts), bits=parse_ints(args.bits), epochs=args.epochs, subset=args.subset,
                     init=args.init, teacher=args.teacher, kd_weight=args.kd_weight, goal=args.goal, seed=args.seed,
                     val_size=args.val_size, preset=args.preset, overrides=args.set, include_shipped=not args.no_shipped,
                     threads=args.threads, device=args.device, max_minutes=args.max_minutes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and measure the grid (resumable), write tables and plots")
    run.add_argument("--dataset", help="name for reports (default: the preset's, else cifar10)")
    run.add_argument("--data", help="training source (default: ../shared/datasets/<dataset>-train-*.tar.gz)")
    run.add_argument("--out", help="sweep folder (default sweeps/<dataset>: results are committed, its runs/ and init/ are git-ignored)")
    run.add_argument("--mode", choices=("full", "budget"), default="budget")
    run.add_argument("--cuts", default=",".join(map(str, VALID_CUTS)))
    run.add_argument("--bits", default=",".join(map(str, VALID_BITS)), help="edge weight = activation bit widths")
    run.add_argument("--epochs", type=int, help="full: default the preset's; budget: default 2")
    run.add_argument("--subset", type=float, default=1.0, help="fraction of the training split (seeded)")
    run.add_argument("--init", help="budget mode: trained full-precision checkpoint to start every point from")
    run.add_argument("--teacher", help="distil from this checkpoint's final logits")
    run.add_argument("--kd-weight", type=float, default=0.5)
    run.add_argument("--goal", default="within=1.0", help="threshold goal per point (calibrate.py)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--val-size", type=int, default=5000)
    run.add_argument("--preset", help="full mode: base TrainConfig JSON (default: the paper's recipe)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="TrainConfig override for every point")
    run.add_argument("--no-shipped", action="store_true", help="do not add the shipped configuration of the dataset")
    run.add_argument("--threads", type=int, default=0)
    run.add_argument("--device", default="auto")
    run.add_argument("--max-minutes", type=float, default=0.0, help="stop between epochs past this; rerun resumes")
    run.add_argument("--doc", help="also write this markdown report from this sweep alone")
    rep = sub.add_parser("report", help="docs/design-space.md from sweep folders")
    rep.add_argument("outs", nargs="+", type=Path)
    rep.add_argument("--doc", type=Path, default=Path("docs/design-space.md"))
    rep.add_argument("--tolerance", type=float, default=1.0, help="points under the FP reference a recommendation may be")
    args = ap.parse_args(argv)
    if args.command == "run":
        spec = spec_from_args(args)
        rows = run_sweep(spec)
        print(f"{len(rows)} points in {spec.out}/results.csv", file=sys.stderr)
        if args.doc and rows:
            print(write_report([spec.out], Path(args.doc)))
    else:
        print(write_report(args.outs, args.doc, args.tolerance))


if __name__ == "__main__":
    main()
