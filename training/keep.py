"""Keep a finished training run in checkpoints/ for later sessions: the weights and everything
export and init_from read, without the optimizer, scheduler and loader state (a third of the
size; a kept run is a starting point, not a run to resume), with the runs it started from
written into it (`lineage`, so its provenance outlives their files), and its per-epoch log.

    python -m training keep runs/cifar10-w1a1-cut16-ft2-cpu [--to checkpoints]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from .checkpoint import save_atomic, slim


def keep(run_dir: Path, to: Path) -> Path:
    """A finished run's own slim model.pt (its BatchNorm statistics recomputed at the end) where it
    has one; else its resume checkpoint, slimmed (a run stopped early, or from before model.pt)."""
    finished = run_dir / "model.pt"
    src = finished if finished.exists() else run_dir / "checkpoint.pt"
    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    name = ckpt["config"]["name"]
    to.mkdir(parents=True, exist_ok=True)
    out = to / f"{name}.pt"
    save_atomic(ckpt if src == finished else slim(ckpt), out)
    if (run_dir / "log.jsonl").exists():
        shutil.copyfile(run_dir / "log.jsonl", to / f"{name}.log.jsonl")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a run folder holding model.pt or checkpoint.pt (runs/<name>)")
    ap.add_argument("--to", type=Path, default=Path("checkpoints"))
    args = ap.parse_args(argv)
    out = keep(args.run, args.to)
    ckpt = torch.load(out, map_location="cpu", weights_only=False)
    behind = " <- ".join(f"{r['config']['name']} ({r['epochs']} epochs)" for r in reversed(ckpt["lineage"]))
    print(f"{out}: {ckpt['epoch']} epochs, {out.stat().st_size / 2**20:.1f} MiB" + (f", from {behind}" if behind else ""))


if __name__ == "__main__":
    main()
