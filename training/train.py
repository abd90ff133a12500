"""Train a hybrid (or full-precision) ResNet-32: quantization-aware, joint exit loss,
optional distillation, checkpoint every epoch, resume after a stop.

    python -m training.train --config training/configs/cifar10-w1a1-cut16.json [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from .bn_stats import recalibrate_bn
from .checkpoint import lineage_of, load_checkpoint_model, save_atomic, slim
from .config import TrainConfig, apply_overrides
from .data import ImageSet, TensorLoader, load_source, train_val_split
from .locks import hold, holder
from .model import ModelConfig, SplitResNet, entropy, load_matching, realign_blocks
from .status import status_line, write_status


# ---------------------------------------------------------------- hardware


def use_autocast(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast: on CUDA with ``amp``, on the CPU only where ``cpu_bf16`` says it was measured faster."""
    return cfg.amp if device.type == "cuda" else cfg.cpu_bf16


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------- model / checkpoints


def model_config(cfg: TrainConfig, num_classes: int) -> ModelConfig:
    return ModelConfig(num_classes=num_classes, cut=cfg.cut, weight_bits=cfg.weight_bits, act_bits=cfg.act_bits)


def initial_weights(src: dict, dst: ModelConfig) -> dict[str, Tensor]:
    """A loaded checkpoint's weights laid onto a model's blocks for ``init_from``. A checkpoint
    saved by train() carries its model config, so its blocks are renamed to land on the same
    ResNet blocks (model.realign_blocks: whatever the two cuts, and a full-precision block's bn2
    becomes a quantized block's bn_out, the BN before the residual add). The sweep's init files
    are realigned already and pass as they are."""
    source_config = src.get("model_config")
    return realign_blocks(src["model"], source_config["cut"], dst) if source_config else src["model"]


# ---------------------------------------------------------------- schedule / loss


class Clock:
    """Wall-clock seconds spent training, carried across resumes."""

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.start = before, time.time()

    def seconds(self) -> float:
        return self.before + time.time() - self.start


def progress(cfg: TrainConfig, step: int, steps_per_epoch: int, clock: Clock) -> float:
    """Fraction of the schedule done. With a time budget (CPU runs that must end with the
    session), the one-cycle decay follows whichever runs out first: epochs or minutes."""
    done = step / (steps_per_epoch * cfg.epochs)
    if cfg.time_budget_minutes > 0:
        done = max(done, clock.seconds() / (60 * cfg.time_budget_minutes))
    return min(done, 1.0)


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int, clock: Clock) -> float:
    epoch = step / steps_per_epoch
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule in ("onecycle", "cosine"):
        if epoch < cfg.warmup_epochs:
            return max(epoch / cfg.warmup_epochs, 1e-3)
        warm = cfg.warmup_epochs / cfg.epochs
        decayed = min(max((progress(cfg, step, steps_per_epoch, clock) - warm) / max(1.0 - warm, 1e-9), 0.0), 1.0)
        return 1.0 - decayed if cfg.schedule == "onecycle" else 0.5 * (1.0 + math.cos(math.pi * decayed))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def head_loss(logits: Tensor, labels: Tensor, teacher: Tensor | None, cfg: TrainConfig) -> Tensor:
    ce = F.cross_entropy(logits.float(), labels, label_smoothing=cfg.label_smoothing)
    if teacher is None or cfg.kd_weight <= 0:
        return ce
    t = cfg.kd_temperature
    kl = F.kl_div(F.log_softmax(logits.float() / t, -1), F.log_softmax(teacher.float() / t, -1),
                  reduction="batchmean", log_target=True) * t * t
    return (1 - cfg.kd_weight) * ce + cfg.kd_weight * kl


def joint_loss(exit_logits: Tensor, logits: Tensor, labels: Tensor, teacher: Tensor | None, cfg: TrainConfig) -> Tensor:
    """w * loss(exit) + (1 - w) * loss(final) (paper: w = 0.4..0.6)."""
    return cfg.exit_weight * head_loss(exit_logits, labels, teacher, cfg) + (1 - cfg.exit_weight) * head_loss(logits, labels, teacher, cfg)


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def predict(model: SplitResNet, loader: TensorLoader, amp: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Exit logits, final logits and labels over a loader (float32, on CPU)."""
    model.eval()
    exits, finals, labels = [], [], []
    for x, y in loader:
        with torch.autocast(loader.device.type, dtype=torch.bfloat16, enabled=amp):
            e, _, f = model(x)
        exits.append(e.float().cpu()); finals.append(f.float().cpu()); labels.append(y.cpu())
    return torch.cat(exits), torch.cat(finals), torch.cat(labels)


def summarize(exit_logits: Tensor, logits: Tensor, labels: Tensor, tolerance: float = 0.01) -> dict:
    """Accuracies of both heads, plus the largest edge share whose hybrid accuracy stays within
    ``tolerance`` of the final head (a quick operating point; calibrate.py does it properly)."""
    exit_ok = (exit_logits.argmax(1) == labels)
    final_ok = (logits.argmax(1) == labels)
    final_acc = final_ok.float().mean().item()
    ent = entropy(exit_logits)
    order = torch.argsort(ent)
    # exit the k lowest-entropy samples: accuracy = edge correct among them + final correct elsewhere
    edge_correct = torch.cumsum(exit_ok[order].double(), 0)
    cloud_correct_rest = final_ok[order].double().flip(0).cumsum(0).flip(0)
    n = len(labels)
    k = torch.arange(1, n + 1, dtype=torch.float64)
    hybrid = (edge_correct + torch.cat([cloud_correct_rest[1:], torch.zeros(1, dtype=torch.float64)])) / n
    ok = (hybrid >= final_acc - tolerance).nonzero()
    best_k = int(ok.max().item()) + 1 if len(ok) else 0
    return {
        "exit_acc": exit_ok.float().mean().item(),
        "final_acc": final_acc,
        "edge_share_within_1pt": best_k / n,
        "hybrid_acc_at_that_share": hybrid[best_k - 1].item() if best_k else final_acc,
    }


# ---------------------------------------------------------------- training


def train_one_epoch(model: nn.Module, loader: TensorLoader, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, cfg: TrainConfig,
                    teacher: nn.Module | None, amp: bool, desc: str, finished: Callable[[], bool] = lambda: False,
                    ema: AveragedModel | None = None) -> dict:
    model.train()
    total_loss, total_correct, total_exit_correct, seen = 0.0, 0, 0, 0
    bar = tqdm(loader, desc=desc, leave=False, mininterval=1.0 if sys.stderr.isatty() else 60.0, file=sys.stderr)
    for x, y in bar:
        with torch.autocast(loader.device.type, dtype=torch.bfloat16, enabled=amp):
            t_logits = None
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x)[2]
            exit_logits, _, logits = model(x)
            loss = joint_loss(exit_logits, logits, y, t_logits, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        bs = len(y)
        seen += bs
        total_loss += loss.item() * bs
        total_correct += (logits.argmax(1) == y).sum().item()
        total_exit_correct += (exit_logits.argmax(1) == y).sum().item()
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{total_correct / seen:.3f}", exit=f"{total_exit_correct / seen:.3f}", refresh=False)
        if finished():  # a time-budgeted schedule reached lr 0 mid-epoch
            break
    return {"train_loss": total_loss / seen, "train_acc": total_correct / seen, "train_exit_acc": total_exit_correct / seen}


def training_subset(train_idx: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded share of the training indices (budget sweeps on CPU). Validation is never
    touched, so every fraction is judged on the same images."""
    if fraction >= 1.0:
        return train_idx
    if fraction <= 0.0:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction}")
    keep = max(1, round(fraction * len(train_idx)))
    return np.sort(np.random.default_rng([seed, 1]).choice(train_idx, keep, replace=False))


def with_recalibrated_bn(ckpt: dict, train_set: ImageSet, val_loader: TensorLoader, cfg: TrainConfig,
                         device: torch.device) -> dict:
    """The checkpoint with the BatchNorm statistics of its raw and EMA weights recomputed over
    ``cfg.bn_recal_batches`` augmented training batches (training/bn_stats.py) and both
    re-validated in float32, as the exported graphs run (training's own figures may be bf16);
    ``bn_recal`` records the figures with the saved statistics beside. The weights are unchanged."""
    out = dict(ckpt)
    record: dict = {"batches": cfg.bn_recal_batches}
    for weights, val_key, name in (("model", "val", "raw"), ("ema", "val_ema", "ema")):
        if weights not in ckpt:
            continue
        model = SplitResNet(ModelConfig(**ckpt["model_config"])).to(device)
        model.load_state_dict(ckpt[weights])
        saved = summarize(*predict(model, val_loader, amp=False))
        loader = TensorLoader(train_set, min(256, len(train_set)), device, train=True, seed=cfg.seed + 1)
        record["images"] = recalibrate_bn(model, loader, cfg.bn_recal_batches)
        out[weights] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        out[val_key] = summarize(*predict(model, val_loader, amp=False))
        record[name] = {"saved": saved, "recomputed": out[val_key]}
    out["bn_recal"] = record
    return out


def load_data(cfg: TrainConfig) -> tuple[ImageSet, ImageSet]:
    full = load_source(cfg.data)
    train_idx, val_idx = train_val_split(len(full), cfg.val_size, cfg.seed)
    return full.subset(training_subset(train_idx, cfg.train_fraction, cfg.seed)), full.subset(val_idx)


# Settings that may change between the sessions of one run without changing what it computes.
RESUMABLE_CHANGES = {"max_epochs_this_run", "max_minutes", "device", "threads", "compile", "data", "time_budget_minutes", "bn_recal_batches"}


def check_same_recipe(saved_config: dict, cfg: TrainConfig, path: Path) -> None:
    saved = {**TrainConfig().to_dict(), **saved_config}  # keys added since: their defaults
    changed = {k for k, v in cfg.to_dict().items() if saved.get(k) != v} - RESUMABLE_CHANGES
    if changed:
        raise SystemExit(f"{path} was made with a different config ({sorted(changed)}); use another name= or --no-resume")


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Run (or resume) training; returns the checkpoint path: the slim ``model.pt`` once the run
    has finished (running the same command again then just returns it), else ``checkpoint.pt``."""
    device = pick_device(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    amp = use_autocast(cfg, device)
    channels_last = True  # faster convs on CPU (docs/runtime.md#training-speed-on-the-projects-cpu) and on tensor cores

    run_dir = cfg.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = hold(run_dir / ".lock")  # held until the process exits: two processes on one run would overwrite each other
    if lock is None:
        raise SystemExit(f"{run_dir} is being trained by another process (pid {holder(run_dir / '.lock')})")
    ckpt_path = run_dir / "checkpoint.pt"
    model_path = run_dir / "model.pt"
    log_path = run_dir / "log.jsonl"
    if resume and model_path.exists():
        check_same_recipe(torch.load(model_path, map_location="cpu", weights_only=False)["config"], cfg, model_path)
        print(f"{cfg.name}: finished already ({model_path})", file=sys.stderr)
        return model_path
    model_path.unlink(missing_ok=True)

    train_set, val_set = load_data(cfg)
    train_loader = TensorLoader(train_set, cfg.batch_size, device, train=True, seed=cfg.seed, channels_last=channels_last)
    val_loader = TensorLoader(val_set, 500, device, train=False, channels_last=channels_last)

    mcfg = model_config(cfg, len(train_set.classes))
    model = SplitResNet(mcfg).to(device).to(memory_format=torch.channels_last)
    ancestors: list[dict] = []  # the runs this one starts from (lineage), saved with every checkpoint
    if cfg.init_from:
        src = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
        copied = load_matching(model, initial_weights(src, mcfg))
        ancestors = lineage_of(src)
        print(f"init: copied {len(copied)} tensors from {cfg.init_from}", file=sys.stderr)
    teacher = None
    if cfg.teacher and cfg.kd_weight > 0:
        teacher, _ = load_checkpoint_model(cfg.teacher, device)
        teacher = teacher.to(memory_format=torch.channels_last)
        for p in teacher.parameters():
            p.requires_grad_(False)
        if cfg.compile:  # its forward is ~1/4 of a distilled step: 0.50 -> 0.42 s per CPU batch
            teacher = torch.compile(teacher)

    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    # the EMA averages BN statistics too (use_buffers), so its copy can be evaluated as it is
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True) if cfg.ema_decay > 0 else None
    steps_per_epoch = len(train_loader)
    clock = Clock()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s, steps_per_epoch, clock))

    start_epoch, elapsed = 0, 0.0
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        check_same_recipe(ckpt["config"], cfg, ckpt_path)
        model.load_state_dict(ckpt["model"]); opt.load_state_dict(ckpt["optimizer"]); sched.load_state_dict(ckpt["scheduler"])
        if ema is not None:
            ema.module.load_state_dict(ckpt["ema"]); ema.n_averaged.fill_(ckpt["ema_steps"])
        train_loader.generator.set_state(ckpt["loader_rng"])
        start_epoch, elapsed = ckpt["epoch"], ckpt["elapsed_seconds"]
        clock.before = elapsed
        print(f"resumed {ckpt_path} at epoch {start_epoch}", file=sys.stderr)
    elif log_path.exists():
        log_path.unlink()

    step_model = torch.compile(model) if cfg.compile else model
    print(f"{cfg.name}: {len(train_set)} train / {len(val_set)} val, {len(train_set.classes)} classes, "
          f"device {device_name(device)}, epochs {start_epoch}->{cfg.epochs}", file=sys.stderr)

    run_start, epochs_done = time.time(), 0
    clock.start = run_start
    epoch_times: list[float] = []
    write_status(run_dir, status_line(cfg.name, start_epoch, cfg.epochs, "running"))

    def finished() -> bool:
        return cfg.schedule in ("onecycle", "cosine") and progress(cfg, sched.last_epoch, steps_per_epoch, clock) >= 1.0

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        stats = train_one_epoch(step_model, train_loader, opt, sched, cfg, teacher, amp, f"epoch {epoch + 1}/{cfg.epochs}", finished, ema)
        train_seconds = time.time() - t0
        metrics = summarize(*predict(model, val_loader, amp))
        ema_metrics = summarize(*predict(ema.module, val_loader, amp)) if ema is not None else None
        elapsed = clock.seconds()
        record = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], **stats, **{f"val_{k}": v for k, v in metrics.items()},
                  **{f"val_ema_{k}": v for k, v in (ema_metrics or {}).items()},
                  "epoch_seconds": round(train_seconds, 2), "elapsed_seconds": round(elapsed, 1)}
        with open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), file=sys.stderr)
        ckpt = {
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "loader_rng": train_loader.generator.get_state(), "epoch": epoch + 1, "config": cfg.to_dict(),
            "model_config": mcfg.to_dict(), "classes": train_set.classes, "elapsed_seconds": elapsed, "lineage": ancestors,
            "device": device_name(device), "git_sha": git_sha(), "val": metrics,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if ema is not None:
            ckpt["ema"], ckpt["ema_steps"], ckpt["val_ema"] = ema.module.state_dict(), int(ema.n_averaged), ema_metrics
        save_atomic(ckpt, ckpt_path)
        epochs_done += 1
        epoch_times.append(time.time() - t0)
        done = finished() or epoch + 1 >= cfg.epochs
        write_status(run_dir, status_line(cfg.name, epoch + 1, cfg.epochs, "finished" if done else "running",
                                          metrics, ema_metrics, epoch_times))
        if done:
            if cfg.bn_recal_batches:
                ckpt = with_recalibrated_bn(ckpt, train_set, val_loader, cfg, device)
                write_status(run_dir, status_line(cfg.name, epoch + 1, cfg.epochs, "finished", ckpt["val"], ckpt.get("val_ema"), epoch_times))
            kept = slim(ckpt)
            save_atomic(kept, model_path)
            print(f"schedule complete after {epoch + 1} epochs ({elapsed / 60:.1f} min): {model_path} "
                  f"({kept['weights']} weights, val final {100 * kept['val']['final_acc']:.2f} %)", file=sys.stderr)
            return model_path
        if cfg.max_epochs_this_run and epochs_done >= cfg.max_epochs_this_run:
            break
        if cfg.max_minutes and (time.time() - run_start) / 60 > cfg.max_minutes - (train_seconds / 60):
            print(f"stopping: next epoch would pass max_minutes={cfg.max_minutes}", file=sys.stderr)
            break
    return ckpt_path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="preset JSON (training/configs/*.json)")
    ap.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    ap.add_argument("overrides", nargs="*", help="key=value overrides of the config")
    args = ap.parse_args(argv)
    cfg = TrainConfig.from_json(args.config) if args.config else TrainConfig()
    cfg = apply_overrides(cfg, args.overrides)
    path = train(cfg, resume=not args.no_resume)
    print(path)


if __name__ == "__main__":
    main()
