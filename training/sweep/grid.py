"""The sweep's grid and the training config of each point: which (cut, edge bits) to train,
the shipped configurations always added, and the budget (fine-tune) or full recipe."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import TrainConfig, apply_overrides
from ..energy import load_constants
from ..model import VALID_BITS, VALID_CUTS, ModelConfig, describe, realign_blocks

# The configurations the shipped models use (docs/background.md#headline-numbers, the paper's two points, as
# shared/energy.json states them): always in a sweep of these datasets so that the published curve shows
# where the shipped model sits.
SHIPPED = {d: (p["cut"], p["bits"]) for d, p in load_constants()["paperOperatingPoints"].items()}

# Budget mode: a short one-cycle fine-tune from a trained full-precision model (the CPU pilot's
# optimiser, docs/runtime.md#training-speed-on-the-projects-cpu, at a lower peak since the weights start trained), with the gradient norm
# clipped: the fresh exit head's first gradients otherwise wreck the trained edge (config.py,
# grad_clip). ``--set`` overrides.
BUDGET_RECIPE = {"schedule": "onecycle", "lr": 0.05, "warmup_epochs": 0.0, "nesterov": True,
                 "weight_decay": 5e-4, "exit_weight": 0.5, "grad_clip": 2.0}


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
