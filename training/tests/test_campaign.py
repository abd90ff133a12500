"""The training campaign: runs that resume, finish into a slim model.pt, lock against a second
process, report their status, and a supervisor that starts a hybrid once its teacher is done."""
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from training.campaign import load_plan, supervise
from training.checkpoint import load_checkpoint_model, slim
from training.locks import hold, holder
from training.status import status_line
from training.tests.test_train import tiny_config
from training.train import train


def test_a_finished_run_leaves_a_slim_model_with_the_better_weights_and_is_not_trained_again(tmp_path, synthetic_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # without the end-of-run BatchNorm pass, so the choice is made on the figures the resume file holds
    cfg = tiny_config(tmp_path, synthetic_folder, ema_decay=0.9, schedule="cosine", bn_recal_batches=0)
    path = train(cfg)
    assert path == cfg.run_dir() / "model.pt"
    kept = torch.load(path, map_location="cpu", weights_only=False)
    resume = torch.load(cfg.run_dir() / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert {"ema", "ema_steps", "val_ema", "optimizer"} <= set(resume)
    assert not {"ema", "optimizer", "scheduler", "loader_rng"} & set(kept)
    better = "ema" if resume["val_ema"]["final_acc"] > resume["val"]["final_acc"] else "raw"
    assert kept["weights"] == better
    assert kept["val"] == (resume["val_ema"] if better == "ema" else resume["val"])
    log = [json.loads(line) for line in (cfg.run_dir() / "log.jsonl").read_text().splitlines()]
    assert "val_ema_final_acc" in log[-1] and len(log) == 2
    # the same command again: no training, the same file back
    mtime = path.stat().st_mtime_ns
    assert train(cfg) == path and path.stat().st_mtime_ns == mtime
    assert len((cfg.run_dir() / "log.jsonl").read_text().splitlines()) == 2
    assert "finished | epoch 2/2" in (cfg.run_dir() / "status.txt").read_text()


def test_slim_prefers_ema_only_when_it_scored_higher():
    base = {"config": {"name": "x"}, "epoch": 3, "device": "cpu", "elapsed_seconds": 1.0, "git_sha": "abc",
            "saved_at": "now", "lineage": [], "model": {"w": 1}, "ema": {"w": 2}, "optimizer": {}}
    assert slim({**base, "val": {"final_acc": 0.5}, "val_ema": {"final_acc": 0.6}})["model"] == {"w": 2}
    tie = slim({**base, "val": {"final_acc": 0.5}, "val_ema": {"final_acc": 0.5}})
    assert tie["model"] == {"w": 1} and tie["weights"] == "raw" and "optimizer" not in tie


def test_one_process_per_run(tmp_path):
    first = hold(tmp_path / ".lock")
    assert first is not None and holder(tmp_path / ".lock") is not None
    assert hold(tmp_path / ".lock") is None  # flock is per open file: a second open conflicts, as another process would
    first.close()
    assert holder(tmp_path / ".lock") is None


def test_status_line_reads_epoch_validation_and_eta():
    now = datetime(2026, 12, 5, 20, 0, tzinfo=timezone.utc)
    line = status_line("cifar10-fp32", 10, 150, "running", {"final_acc": 0.8123, "exit_acc": 0.1},
                       {"final_acc": 0.82, "exit_acc": 0.1}, [130.0, 140.0, 500.0], now)
    assert line == ("2026-12-05T20:00Z | cifar10-fp32 | running | epoch 10/150 | val final 81.23% exit 10.00% | "
                    "ema final 82.00% exit 10.00% | 140 s/epoch | ETA 5h27m of training (~2026-12-06T01:27Z if it ran uninterrupted)")
    assert "ETA" not in status_line("x", 150, 150, "finished", epoch_seconds=[140.0], now=now)


def test_supervisor_trains_the_teacher_then_the_hybrid_from_it(tmp_path, synthetic_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "presets").mkdir()
    common = dict(dataset="synthetic", data=str(synthetic_folder), epochs=1, batch_size=16, lr=0.02, val_size=32,
                  schedule="cosine", out_dir="campaign", bn_recal_batches=2)
    teacher = {**common, "name": "teacher", "weight_bits": 32, "act_bits": 32, "exit_weight": 0.0}
    hybrid = {**common, "name": "hybrid", "init_from": "campaign/teacher/model.pt",
              "teacher": "campaign/teacher/model.pt", "kd_weight": 0.5}
    for preset in (hybrid, teacher):  # listed hybrid first: the order must not matter, the files do
        (tmp_path / "presets" / f"{preset['name']}.json").write_text(json.dumps(preset))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"parallel": 2, "runs": ["presets/hybrid.json", "presets/teacher.json"]}))
    runs, _ = load_plan(plan)
    assert [r.state() for r in runs] == ["waiting", "ready"]
    monkeypatch.setattr("training.campaign.POLL_SECONDS", 0.5)
    supervise(sys.executable, plan)  # returns once every run has its model.pt
    assert [r.state() for r in runs] == ["finished", "finished"]
    assert not (tmp_path / "campaign" / "teacher" / "checkpoint.pt").exists()  # resume state of a finished run goes
    model, ckpt = load_checkpoint_model(Path("campaign/hybrid/model.pt"))
    assert [r["config"]["name"] for r in ckpt["lineage"]] == ["teacher"]
