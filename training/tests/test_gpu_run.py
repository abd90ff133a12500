"""training/gpu_run.sh, the one command a lent GPU gets (no second try there): both stages, the
export and the archives, rehearsed on CPU with tiny synthetic data."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_run_trains_the_baseline_then_the_hybrid_from_it_and_exports(tmp_path, synthetic_folder):
    out, runs, model_out = tmp_path / "out", tmp_path / "runs", tmp_path / "models" / "cifar10"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "RUNS": str(runs),
           "MODEL_OUT": str(model_out), "DATA": str(synthetic_folder)}
    args = ["device=cpu", "threads=1", "epochs=1", "val_size=48", "batch_size=32"]
    done = subprocess.run(["bash", "training/gpu_run.sh", "cifar10", "0.1", "0.1", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "cifar10-fp32.tar.gz", "cifar10-w1a1-cut16.tar.gz", "model-cifar10.tar.gz", "train.log"]
    with tarfile.open(out / "cifar10-fp32.tar.gz") as t:
        assert sorted(t.getnames()) == ["cifar10-fp32/log.jsonl", "cifar10-fp32/model.pt"]
    with tarfile.open(out / "model-cifar10.tar.gz") as t:
        assert {"cifar10/manifest.json", "cifar10/edge.onnx", "cifar10/cloud.onnx"} <= set(t.getnames())

    manifest = json.loads((model_out / "manifest.json").read_text())
    shipped = json.loads((REPO / "models" / "cifar10" / "manifest.json").read_text())
    assert manifest["exit"]["calibration"]["goal"] == shipped["exit"]["calibration"]["goal"]
    assert (manifest["architecture"]["weightBits"], manifest["architecture"]["cut"]) == (1, 16)
    # the hybrid started from, and was distilled from, stage 1's network, which is its baseline
    training = manifest["training"]
    assert training["config"]["init_from"] == training["config"]["teacher"] == str(runs / "cifar10-fp32" / "model.pt")
    assert [r["config"]["name"] for r in training["lineage"]] == ["cifar10-fp32"]
    assert training["totalEpochs"] == 2
    assert manifest["baseline"]["config"]["name"] == "cifar10-fp32"
    # the shipped model was not touched
    assert json.loads((REPO / "models" / "cifar10" / "manifest.json").read_text()) == shipped
