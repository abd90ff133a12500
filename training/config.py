"""Training configuration: a dataclass with the paper's recipe as defaults
(docs/background.md#training-recipe);
presets are JSON files in training/configs/ and every field is overridable on the command line."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class TrainConfig:
    name: str = "cifar10-w1a1-cut16"
    dataset: str = "cifar10"  # a name for reports and the manifest
    data: str = "../shared/datasets/cifar10-train-*.tar.gz"  # archives glob, folder or CIFAR python dir
    cut: int = 16
    weight_bits: int = 1
    act_bits: int = 1
    # optimisation (paper's code: SGD 0.1, momentum 0.9, wd 1e-4, batch 128, 150 epochs)
    epochs: int = 150
    batch_size: int = 128
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "multistep"  # multistep | onecycle (linear decay) | cosine
    milestones: list[int] = field(default_factory=lambda: [80, 120, 145])  # multistep, in epochs
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # onecycle / cosine: linear warm-up, then decay to 0 at the last epoch
    time_budget_minutes: float = 0.0  # onecycle on a wall-clock budget: progress = max(steps, time) share
    label_smoothing: float = 0.0
    # An exponential moving average of the weights (and BN statistics), evaluated beside the raw
    # weights every epoch and saved with each checkpoint; 0 = off. 0.999 at batch 128 averages
    # over the last ~3 epochs.
    ema_decay: float = 0.0
    # At the end of a run, recompute the BatchNorm statistics of the raw and the EMA weights over
    # this many augmented training batches (training/bn_stats.py) before choosing between them;
    # 0 = keep the statistics training ended with.
    bn_recal_batches: int = 100
    # Clip the gradient's global norm (0: off). A fine-tune from a trained model with a fresh exit
    # head needs it: the head's first gradients scale with the trained features' energy (~10x the
    # norm of the rest) and at lr 0.05 one step wrecks the whole edge (measured: 93 % -> 5 % in 12
    # steps at cut 10); clipped at 2 it trains smoothly (training.sweep's budget recipe).
    grad_clip: float = 0.0
    exit_weight: float = 0.5  # joint loss: w * CE(exit) + (1 - w) * CE(final)
    # distillation / initialisation
    teacher: str | None = None  # checkpoint of a trained (full-precision) model
    kd_weight: float = 0.0  # fraction of each CE replaced by KL to the teacher's final logits
    kd_temperature: float = 4.0
    init_from: str | None = None  # checkpoint: copy every matching tensor before training
    # data
    val_size: int = 5000
    train_fraction: float = 1.0  # seeded share of the training split actually used (cheap sweeps)
    seed: int = 0
    # hardware
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    # bf16 autocast on the CPU. Measured with training/speed.py on the project's AMD EPYC (Zen 4,
    # avx512_bf16) machine: a full-precision ResNet-32 step at 0.63x of its fp32 time (training/README).
    cpu_bf16: bool = False
    compile: bool = False  # torch.compile (worth it on GPU for long runs)
    threads: int = 0  # CPU threads; 0 = all cores
    # output
    out_dir: str = "runs"
    max_epochs_this_run: int = 0  # stop after this many epochs (resume later); 0 = no limit
    max_minutes: float = 0.0  # stop (after finishing the current epoch's checkpoint) past this; 0 = none

    def __post_init__(self) -> None:
        if self.schedule not in ("multistep", "onecycle", "cosine"):
            raise ValueError(f"schedule {self.schedule!r}: expected multistep, onecycle or cosine")
        if self.bn_recal_batches < 0:
            raise ValueError(f"bn_recal_batches must be >= 0, got {self.bn_recal_batches}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.time_budget_minutes > 0 and self.schedule == "multistep":
            # multistep has no notion of a deadline: the run would go on past the budget (on a lent
            # GPU, past the call's limit, and come back with nothing)
            raise ValueError("time_budget_minutes needs schedule=onecycle or cosine (a multistep run ignores a wall-clock budget)")

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**raw)

    def to_dict(self) -> dict:
        return asdict(self)

    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name


def parse_value(cur: object, text: str) -> object:
    """Parse a command-line override against the type of the current value."""
    if isinstance(cur, bool):
        return text.lower() in ("1", "true", "yes", "on")
    if isinstance(cur, int):
        return int(text)
    if isinstance(cur, float):
        return float(text)
    if isinstance(cur, list):
        return [int(v) for v in text.split(",") if v]
    if text.lower() in ("none", "null", ""):
        return None
    return text


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """``key=value`` pairs, e.g. ``epochs=30 schedule=onecycle``."""
    raw = cfg.to_dict()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in raw:
            raise ValueError(f"bad override {item!r}: expected key=value with key in {sorted(raw)}")
        raw[key] = parse_value(raw[key], value)
    return TrainConfig.from_dict(raw)
