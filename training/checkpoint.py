"""Checkpoint files: what a training run saves, the slim form a finished run is kept in, and
the lineage (the runs a checkpoint started from) that travels inside both.

A resume checkpoint (``<run dir>/checkpoint.pt``, rewritten every epoch) holds the weights, the
optimizer, scheduler and data-order state, and with ``ema_decay`` the EMA weights. A finished run
is also written slim (``<run dir>/model.pt``): the better of the raw and EMA weights on
validation, as ``model``, and nothing needed only to resume. Export, ``init_from`` and a teacher
read either.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .model import ModelConfig, SplitResNet

RESUME_ONLY = ("optimizer", "scheduler", "loader_rng", "ema", "ema_steps", "val_ema")


def save_atomic(obj: dict, path: Path) -> None:
    """A kill mid-write never leaves half a file behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def run_summary(ckpt: dict) -> dict:
    return {"config": ckpt["config"], "epochs": ckpt["epoch"], "device": ckpt["device"],
            "wallSeconds": round(ckpt["elapsed_seconds"], 1), "gitSha": ckpt["git_sha"],
            "finishedAt": ckpt["saved_at"], "val": ckpt.get("val")}


def lineage(path: str | Path) -> list[dict]:
    """The training runs behind a checkpoint, oldest first, itself last: each run's config,
    epochs, device, wall time and validation, so that a fine-tune's provenance (and the commands
    that reproduce it) survive the removal of the checkpoints it started from. A checkpoint
    written since this existed carries its ancestors; an older one is followed through its
    ``init_from`` while those files exist; the sweep's init files through their ``source``."""
    return lineage_of(torch.load(path, map_location="cpu", weights_only=False))


def lineage_of(ckpt: dict) -> list[dict]:
    """lineage() of a checkpoint already loaded."""
    if "config" not in ckpt:
        return lineage(ckpt["source"]) if ckpt.get("source") else []
    before = ckpt.get("lineage")
    if before is None:
        parent = ckpt["config"].get("init_from")
        before = lineage(parent) if parent and Path(parent).exists() else []
    return [*before, run_summary(ckpt)]


def ema_is_better(ckpt: dict) -> bool:
    """The EMA weights win where their final head scored higher on validation."""
    ema_val, val = ckpt.get("val_ema"), ckpt.get("val") or {}
    return "ema" in ckpt and ema_val is not None and ema_val["final_acc"] > val.get("final_acc", -1.0)


def slim(ckpt: dict) -> dict:
    """A finished run as it is kept: the better weights (raw or EMA) as ``model`` with their
    validation figures, ``weights`` saying which, the lineage written in, no resume state."""
    out = {k: v for k, v in ckpt.items() if k not in RESUME_ONLY}
    if ema_is_better(ckpt):
        out["model"], out["val"], out["weights"] = ckpt["ema"], ckpt["val_ema"], "ema"
    else:
        out["weights"] = "raw"
    out["lineage"] = lineage_of(ckpt)[:-1]
    return out


def load_checkpoint_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[SplitResNet, dict]:
    """Rebuild a model from a checkpoint (its own model config travels with it)."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    model = SplitResNet(ModelConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
