"""Recompute the BatchNorm statistics of a trained checkpoint's raw and EMA weights
(training/bn_stats.py), for a run that finished before training did this itself, and write it
slim: the better of the two on validation (float32), as export reads it.

    python -m training recalibrate-bn campaign/cifar10-w1a1-cut16/checkpoint.pt --out runs/cifar10-w1a1-cut16-bn.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .checkpoint import save_atomic, slim
from .config import TrainConfig
from .data import TensorLoader
from .train import load_data, pick_device, with_recalibrated_bn


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training recalibrate-bn", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a resume checkpoint (raw and EMA weights) or a slim one")
    ap.add_argument("--out", type=Path, required=True, help="slim checkpoint to write")
    ap.add_argument("--batches", type=int, default=TrainConfig.bn_recal_batches, help="augmented training batches of 256")
    ap.add_argument("--data", help="training source, if not where the checkpoint's config says")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_dict(ckpt["config"])
    cfg.bn_recal_batches = args.batches
    if args.data:
        cfg.data = args.data
    device = pick_device(cfg)
    train_set, val_set = load_data(cfg)
    val_loader = TensorLoader(val_set, 500, device, train=False)
    out = with_recalibrated_bn(ckpt, train_set, val_loader, cfg, device)
    for weights in ("raw", "ema"):
        if weights in out["bn_recal"]:
            r = out["bn_recal"][weights]
            was, now = r["saved"], r["recomputed"]
            print(f"{weights} (float32): final {100 * was['final_acc']:.2f} -> {100 * now['final_acc']:.2f} %, "
                  f"exit {100 * was['exit_acc']:.2f} -> {100 * now['exit_acc']:.2f} % with recomputed statistics",
                  file=sys.stderr)
    kept = slim(out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(kept, args.out)
    print(f"{args.out}: {kept['weights']} weights, BN statistics recomputed over {out['bn_recal']['images']} images, "
          f"val final {100 * kept['val']['final_acc']:.2f} %, exit {100 * kept['val']['exit_acc']:.2f} %", file=sys.stderr)


if __name__ == "__main__":
    main()
