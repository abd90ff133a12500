"""Design-space exploration (issue 5): where to cut ResNet-32 and how far to quantize the edge.

For every (cut, edge bit width) it trains a hybrid model with the pipeline's own ``train()``,
sweeps the exit threshold on validation with ``calibrate()``, and records accuracy, % at the
edge, both energy models, the split tensor's wire bytes and the parameter bytes the edge ships.

    python -m training sweep run --dataset cifar10 --data data/cifar10 \\
        --mode budget --init checkpoints/cifar10-fp32-cpu.pt --epochs 2 --subset 0.2 \\
        --cuts 10,16,24 --bits 1,4,32
    python -m training sweep report sweeps/cifar10 sweeps/cifar100 --doc docs/design-space.md

``run`` appends one line per finished configuration to ``<out>/results.jsonl``; a rerun skips
those and resumes an interrupted one from its checkpoint (``<out>/runs/<name>/``). It then
writes ``results.csv``, ``results.json`` and the plots into ``<out>``. ``report`` turns one or
more sweep folders into docs/design-space.md (plots copied next to it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import TrainConfig
from ..model import VALID_BITS, VALID_CUTS
from .grid import SweepSpec, parse_ints
from .report import write_report
from .runner import run_sweep

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

