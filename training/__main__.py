"""``python -m training <command> [options]``: the one entry point of the training pipeline.

Each command is a module's ``main`` (``python -m training.<module>`` runs the same one, with the
same options); a command's module is imported only when that command runs, so ``--help`` is quick.
"""
from __future__ import annotations

import difflib
import importlib
import sys

# command -> (module whose main() it runs, one line for --help), in the order of a model's life
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.train", "train a preset (--config) with key=value overrides; resumes from the last epoch"),
    "campaign": ("training.campaign", "the background training campaign across sessions: start | status | stop"),
    "recalibrate-bn": ("training.recalibrate_bn", "recompute a finished checkpoint's BatchNorm statistics, keep the better weights"),
    "keep": ("training.keep", "keep a finished run in checkpoints/: slim weights, lineage, per-epoch log"),
    "speed": ("training.speed", "seconds per training step of a preset on random data, projected per epoch"),
    "export": ("training.export", "checkpoint -> model folder: ONNX pair, manifest, parity, calibration, engine file"),
    "pack": ("training.pack", "a model folder's edge.onnx -> edge.packed.bin, the Worker's packed engine file"),
    "calibrate": ("training.calibrate", "re-calibrate a model folder's exit threshold on validation for a goal"),
    "evaluate": ("training.evaluate", "a <class>/<image> folder through the ONNX pair with the Worker's decision"),
    "ood": ("training.ood", "fit the out-of-distribution flag's thresholds and measure its rates"),
    "wire-accuracy": ("training.wire_accuracy", "accuracy cost of fp32 / fp16 / int8 split activations on the wire"),
    "sweep": ("training.sweep.cli", "design-space exploration: run (train and measure a grid) | report"),
    "report": ("training.report", "docs/results.md and the README / docs/ood.md tables from the shipped manifests"),
    "bench-models": ("training.bench_models", "model folders with random weights for npm run bench"),
}

PROG = "python -m training"


def usage() -> str:
    width = max(map(len, COMMANDS)) + 2
    lines = [f"usage: {PROG} <command> [options]", "",
             "Fogline's training pipeline: train, export, calibrate and study the hybrid ResNet-32.", "", "commands:"]
    lines += [f"  {name:<{width}}{summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", f"`{PROG} <command> --help` shows a command's options; `python -m training.<module>` runs the same."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        print(usage(), file=sys.stderr)
        raise SystemExit(2)
    if args[0] in ("-h", "--help", "help"):
        print(usage())
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(f"{PROG}: unknown command {command!r}{hint}\n\n{usage()}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(COMMANDS[command][0])
    sys.argv[0] = f"{PROG} {command}"  # argparse's prog in the command's usage line
    module.main(rest)


if __name__ == "__main__":
    main()
