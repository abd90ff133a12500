"""A run's one-line status file (``<run dir>/status.txt``): where a long background run stands,
readable with ``cat`` by anyone on the machine, rewritten at start and after every epoch."""
from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from pathlib import Path


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def status_line(name: str, epoch: int, epochs: int, state: str, val: dict | None = None,
                val_ema: dict | None = None, epoch_seconds: list[float] | None = None,
                now: datetime | None = None) -> str:
    """``state`` is running, stopped or finished; the ETA extrapolates the median epoch of this
    process (epoch times depend on what else shares the machine)."""
    now = now or datetime.now(timezone.utc)
    parts = [now.strftime("%Y-%m-%dT%H:%MZ"), name, state, f"epoch {epoch}/{epochs}"]
    if val:
        parts.append(f"val final {100 * val['final_acc']:.2f}% exit {100 * val['exit_acc']:.2f}%")
    if val_ema:
        parts.append(f"ema final {100 * val_ema['final_acc']:.2f}% exit {100 * val_ema['exit_acc']:.2f}%")
    if epoch_seconds:
        per_epoch = statistics.median(epoch_seconds)
        parts.append(f"{per_epoch:.0f} s/epoch")
        if state == "running" and epoch < epochs:
            left = 60 * round(per_epoch * (epochs - epoch) / 60)  # whole minutes: the duration and the clock time agree
            parts.append(f"ETA {_duration(left)} of training (~{(now + timedelta(seconds=left)).strftime('%Y-%m-%dT%H:%MZ')} if it ran uninterrupted)")
    return " | ".join(parts)


def write_status(run_dir: Path, line: str) -> None:
    tmp = run_dir / "status.tmp"
    tmp.write_text(line + "\n")
    tmp.replace(run_dir / "status.txt")
