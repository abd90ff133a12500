"""Measure training speed: median seconds per optimisation step of a preset on random data
(no dataset needed), and the projected seconds per 45,000-image epoch.

    python -m training speed --config training/configs/cifar10-w1a1-cut16.json [--steps 20] [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from .config import TrainConfig, apply_overrides
from .model import ModelConfig, SplitResNet
from .train import device_name, joint_loss, pick_device, use_autocast


def time_steps(cfg: TrainConfig, steps: int, warmup: int = 3, num_classes: int = 10) -> dict:
    device = pick_device(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    amp = use_autocast(cfg, device)
    model = SplitResNet(ModelConfig(num_classes, cfg.cut, cfg.weight_bits, cfg.act_bits)).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(cfg.batch_size, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (cfg.batch_size,), device=device)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            e, _, l = model(x)
            loss = joint_loss(e, l, y, None, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    return {"config": cfg.name, "device": device_name(device), "batch": cfg.batch_size, "steps": steps,
            "medianStepSeconds": round(step, 4), "projectedEpochSeconds": round(step * (45_000 // cfg.batch_size), 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    cfg = apply_overrides(TrainConfig.from_json(args.config), args.overrides)
    print(json.dumps(time_steps(cfg, args.steps)), file=sys.stdout)


if __name__ == "__main__":
    main()
