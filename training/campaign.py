"""The training campaign: the shipped models' recipes (training/campaign.json), trained in the
background across sessions, each run resuming from its last epoch.

    python -m training.campaign start     # start or resume, in the background, every run that can run
    python -m training.campaign status    # one line per run: epoch, validation, ETA
    python -m training.campaign stop      # stop the runs; `start` resumes them from their last epoch

A run is a preset trained with ``python -m training.train --config PRESET`` into
``campaign/<name>/`` (the presets set ``out_dir``): ``checkpoint.pt`` (resume state, rewritten
every epoch), ``log.jsonl``, ``status.txt`` and, once finished, the slim ``model.pt``. A run
starts once the files its preset reads exist (a hybrid's ``init_from`` and ``teacher`` are its
teacher's ``model.pt``), at most ``parallel`` at a time with one CPU thread each. ``start`` hands
the waiting to a supervisor process (log: ``campaign/supervisor.log``) that starts each run when
it can and exits when every run has finished.

Nothing survives a session but commits: commit ``campaign/`` (the in-flight ``checkpoint.pt`` of
each unfinished run, the finished runs' ``model.pt``) before the session ends.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig
from .locks import hold, holder

PLAN = Path("training/campaign.json")
POLL_SECONDS = 30
SUPERVISOR_LOCK = Path("campaign") / ".supervisor.lock"


@dataclass
class Run:
    preset: str
    config: TrainConfig

    @property
    def dir(self) -> Path:
        return self.config.run_dir()

    @property
    def needs(self) -> list[str]:
        return list(dict.fromkeys(p for p in (self.config.init_from, self.config.teacher) if p))

    def finished(self) -> bool:
        return (self.dir / "model.pt").exists()

    def running_pid(self) -> int | None:
        """The pid of the process training this run, or None."""
        return holder(self.dir / ".lock")

    def ready(self) -> bool:
        return all(Path(p).exists() for p in self.needs)

    def state(self) -> str:
        if self.finished():
            return "finished"
        if self.running_pid() is not None:
            return "running"
        return "resumable" if (self.dir / "checkpoint.pt").exists() else ("ready" if self.ready() else "waiting")

    def describe(self) -> str:
        status = self.dir / "status.txt"
        line = status.read_text().strip() if status.exists() else self.config.name
        state = self.state()
        if state == "waiting":
            return f"{self.config.name} | waiting for {', '.join(p for p in self.needs if not Path(p).exists())}"
        if state != "finished" and " | running | " in line and state != "running":
            line = line.replace(" | running | ", f" | {state} (not running now) | ", 1)
        return line


def load_plan(path: Path = PLAN) -> tuple[list[Run], int]:
    plan = json.loads(path.read_text())
    return [Run(p, TrainConfig.from_json(p)) for p in plan["runs"]], int(plan["parallel"])


def launch(run: Run, python: str) -> int:
    """Start one run detached from this process (its own session: it outlives the shell)."""
    run.dir.mkdir(parents=True, exist_ok=True)
    log = open(run.dir / "stderr.log", "a")
    proc = subprocess.Popen([python, "-m", "training.train", "--config", run.preset, "threads=1"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=child_env())
    return proc.pid


def child_env() -> dict[str, str]:
    """This checkout's training package importable from any working directory, output unbuffered."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def tidy_finished(run: Run) -> None:
    """A finished run keeps its slim model.pt; its resume state (optimizer and all) goes."""
    if run.finished() and run.running_pid() is None:
        (run.dir / "checkpoint.pt").unlink(missing_ok=True)


def step(runs: list[Run], parallel: int, python: str, say=print) -> bool:
    """One supervisor pass: start what can start; True while anything is left to do."""
    for run in runs:
        tidy_finished(run)
    running = sum(r.state() == "running" for r in runs)
    for run in runs:
        if running >= parallel:
            break
        if run.state() in ("ready", "resumable"):
            pid = launch(run, python)
            say(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} started {run.config.name} (pid {pid})")
            running += 1
    return not all(r.finished() for r in runs)


def supervise(python: str, plan: Path = PLAN) -> None:
    SUPERVISOR_LOCK.parent.mkdir(exist_ok=True)
    lock = hold(SUPERVISOR_LOCK)  # noqa: F841 (held while this process lives)
    if lock is None:
        return  # a supervisor is running already
    runs, parallel = load_plan(plan)
    while step(runs, parallel, python, say=lambda m: print(m, flush=True)):
        time.sleep(POLL_SECONDS)
    print("campaign finished: every run has its model.pt", flush=True)


def start(python: str, plan: Path = PLAN) -> None:
    Path("campaign").mkdir(exist_ok=True)
    with open(Path("campaign") / "supervisor.log", "a") as log:
        subprocess.Popen([python, "-m", "training.campaign", "supervise", "--plan", str(plan)], stdout=log,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=child_env())
    time.sleep(3)  # the supervisor's first pass starts the runs


def stop(runs: list[Run]) -> None:
    for run in runs:
        pid = run.running_pid()
        if pid and pid > 0:
            os.kill(pid, signal.SIGTERM)
            print(f"stopped {run.config.name} (pid {pid}); it resumes from its last finished epoch")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["start", "status", "stop", "supervise"])
    ap.add_argument("--plan", type=Path, default=PLAN, help=f"the campaign's runs (default {PLAN})")
    args = ap.parse_args(argv)
    runs, _ = load_plan(args.plan)
    if args.command == "start":
        start(sys.executable, args.plan)
    elif args.command == "supervise":
        supervise(sys.executable, args.plan)
        return
    elif args.command == "stop":
        supervisor = holder(SUPERVISOR_LOCK)
        if supervisor and supervisor > 0:
            os.kill(supervisor, signal.SIGTERM)
        stop(runs)
        return
    for run in runs:
        print(run.describe())


if __name__ == "__main__":
    main()
