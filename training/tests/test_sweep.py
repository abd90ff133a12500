"""A tiny design-space sweep on synthetic images: table rows, monotonic facts, resume,
determinism, report. One epoch on half of 160 images per point, one thread (the machine is
shared with a training run), so the whole file stays well under a minute."""
import csv
import json
import re
from dataclasses import replace

import numpy as np
import pytest

from training import sweep as sw
from training.config import TrainConfig
from training.sweep import SweepSpec, run_sweep, runner
from training.train import train, training_subset

# Fields that legitimately differ between two runs of the same seed (time, machine, commit).
VOLATILE = ("trainSeconds", "evalSeconds", "finishedAt", "gitSha", "device")


def figures(row: dict) -> dict:
    """A row without what legitimately differs between two identical runs."""
    return {k: v for k, v in row.items() if k not in VOLATILE and k != "trainConfig"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, synthetic_folder):
    """cwd for the module (the decoded-data cache goes under ./data/cache)."""
    path = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        yield path


@pytest.fixture(scope="module")
def fp_checkpoint(workdir, synthetic_folder) -> str:
    """A 'trained' full-precision model at cut 16, as runs/cifar10-fp32 would be."""
    cfg = TrainConfig(name="fp", dataset="synthetic", data=str(synthetic_folder), cut=16, weight_bits=32, act_bits=32,
                      epochs=1, batch_size=16, lr=0.02, schedule="onecycle", exit_weight=0.0, val_size=32, train_fraction=0.5,
                      out_dir=str(workdir / "runs"), threads=1, device="cpu", bn_recal_batches=2)
    return str(train(cfg))


@pytest.fixture(scope="module")
def spec(workdir, synthetic_folder, fp_checkpoint) -> SweepSpec:
    return SweepSpec(dataset="synthetic", data=str(synthetic_folder), out=workdir / "sweep", mode="budget",
                     cuts=[16, 24], bits=[1, 32], epochs=1, subset=0.5, init=fp_checkpoint, val_size=32,
                     overrides=["batch_size=16", "bn_recal_batches=2"], threads=1, device="cpu")


@pytest.fixture(scope="module")
def rows(spec) -> list[dict]:
    return run_sweep(spec)


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def test_one_row_per_point_with_every_column_and_the_files(rows, spec):
    assert sorted(r["name"] for r in rows) == ["synthetic-w1a1-cut16", "synthetic-w1a1-cut24",
                                                "synthetic-w32a32-cut16", "synthetic-w32a32-cut24"]
    for r in rows:
        assert set(sw.CSV_COLUMNS) <= set(r)
        assert r["mode"] == "budget" and r["epochs"] == 1 and r["epochsDone"] == 1 and r["subset"] == 0.5
        assert r["valImages"] == 32 and r["trainConfig"]["train_fraction"] == 0.5
        assert 0.0 <= r["edgeFraction"] <= 1.0 and 0.0 <= r["hybridAccuracy"] <= 1.0
        # the calibrated point honours its goal (within 1 point of the final exit)
        assert r["hybridAccuracy"] >= r["finalAccuracy"] - 0.01 - 1e-12
        assert (spec.out / "curves" / f"{r['name']}.json").exists()
    with open(spec.out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert [(int(t["cut"]), int(t["bits"])) for t in table] == [(16, 1), (16, 32), (24, 1), (24, 32)]
    data = json.loads((spec.out / "results.json").read_text())
    assert data["recipe"]["mode"] == "budget" and data["recipe"]["epochs"] == 1 and len(data["rows"]) == 4
    assert data["reference"]["architecture"] == "w32a32-cut16" and data["devices"]
    for png in ("energy-accuracy", "edge-accuracy", "threshold-curves"):
        assert (spec.out / f"{png}.png").stat().st_size > 10_000


def test_monotonic_facts(rows):
    r = by_name(rows)
    for cut in (16, 24):
        b1, b32 = r[f"synthetic-w1a1-cut{cut}"], r[f"synthetic-w32a32-cut{cut}"]
        assert b32["paperEdge"] > b1["paperEdge"] and b32["opEdgePj"] > b1["opEdgePj"]
        assert b32["edgeParamBytesStored"] > b1["edgeParamBytesStored"] >= b1["edgeParamBytesPacked"]
        assert b32["edgeOnnxBytes"] > b1["edgeOnnxBytes"]
        # edge.onnx is the stored parameters plus a little graph structure
        assert b1["edgeParamBytesStored"] < b1["edgeOnnxBytes"] < 1.1 * b1["edgeParamBytesStored"] + 20_000
        for row in (b1, b32):
            h = row["wireHeaderBytes"]
            assert row["wireBytesInt8"] - h == (row["wireBytesFp32"] - h) // 4
            assert row["wireBytesFp16"] - h == (row["wireBytesFp32"] - h) // 2
            assert row["paperTotal"] == pytest.approx(row["paperEdge"] + (1 - row["edgeFraction"]) * row["paperCloud"])
            assert row["paperBaseline"] == 69_124_096
    assert r["synthetic-w1a1-cut16"]["wireBytesFp32"] == 64 + 32 * 16 * 16 * 4  # docs/background.md#serving-choices: 32 KiB + header
    assert r["synthetic-w1a1-cut24"]["wireBytesFp32"] == 64 + 64 * 8 * 8 * 4
    # a deeper cut moves more (quantized) work to the edge
    assert r["synthetic-w1a1-cut24"]["paperEdge"] > r["synthetic-w1a1-cut16"]["paperEdge"]


def test_rerun_trains_nothing(rows, spec, monkeypatch):
    def no_training(cfg):
        raise AssertionError(f"retrained {cfg.name}")

    monkeypatch.setattr(runner, "train", no_training)
    monkeypatch.setattr(runner, "write_outputs", lambda *a: pytest.fail("redrew unchanged outputs"))
    again = run_sweep(spec)
    assert [figures(r) for r in again] == [figures(r) for r in rows]
    assert len((spec.out / "results.jsonl").read_text().splitlines()) == 4


def test_another_recipe_in_the_same_folder_is_refused(rows, spec):
    with pytest.raises(SystemExit, match="epochs"):
        run_sweep(replace(spec, epochs=2))


def test_same_seed_same_figures(rows, spec, workdir):
    (twin,) = run_sweep(replace(spec, out=workdir / "sweep-twin", cuts=[16], bits=[1]))
    assert figures(twin) == figures(by_name(rows)[twin["name"]])


def test_an_interrupted_point_resumes_from_its_checkpoint(spec, workdir, rows):
    one = replace(spec, out=workdir / "sweep-resume", cuts=[16], bits=[1], epochs=2, include_shipped=False)
    assert run_sweep(replace(one, max_minutes=1e-4)) == []  # stops after epoch 1 of 2, no row
    ckpt_log = one.out / "runs" / "synthetic-w1a1-cut16" / "log.jsonl"
    assert [json.loads(l)["epoch"] for l in ckpt_log.read_text().splitlines()] == [1]
    (row,) = run_sweep(one)
    assert row["epochsDone"] == 2
    assert [json.loads(l)["epoch"] for l in ckpt_log.read_text().splitlines()] == [1, 2]


def test_report_states_mode_epochs_and_machine(rows, spec, workdir):
    doc = sw.write_report([spec.out], workdir / "docs" / "design-space.md")
    text = doc.read_text()
    assert "`budget` mode, 1 epoch per configuration" in text and "50% of the training split" in text
    assert rows[0]["device"] in text and "Recommended operating point:" in text
    table = [l for l in text.splitlines() if re.match(r"\| (16|24) \| (1|32) \|", l)]
    assert len(table) == 4
    links = re.findall(r"\]\(([^)]+\.png)\)", text)
    assert len(links) == 3  # the sweep's own plots, linked where they are (no copy)
    for link in links:
        assert (doc.parent / link).exists()


def test_plan_adds_the_shipped_configuration_and_rejects_unknown_points(tmp_path):
    base = SweepSpec(dataset="cifar10", data="x", out=tmp_path, cuts=[10, 24], bits=[4, 32])
    assert sw.plan_points(base) == [(10, 4), (10, 32), (24, 4), (24, 32), (16, 1)]
    assert (24, 4) in sw.plan_points(replace(base, dataset="cifar100")) and len(sw.plan_points(replace(base, dataset="cifar100"))) == 4
    assert (16, 1) not in sw.plan_points(replace(base, include_shipped=False))
    with pytest.raises(ValueError):
        sw.plan_points(replace(base, cuts=[12]))


def test_budget_config_fine_tunes_from_the_realigned_init_and_full_uses_the_recipe(spec):
    cfg = sw.train_config(spec, 24, 1)
    assert cfg.init_from.endswith("cut24-quantized.pt") and cfg.schedule == "onecycle" and cfg.batch_size == 16
    full = sw.train_config(replace(spec, mode="full", epochs=None, init=None, overrides=[]), 24, 1)
    assert full.init_from is None and full.epochs == 150 and full.schedule == "multistep"


def test_training_subset_is_seeded_and_sized():
    idx = np.arange(100, 1100)
    a, b = training_subset(idx, 0.25, 3), training_subset(idx, 0.25, 3)
    assert len(a) == 250 and (a == b).all() and set(a) <= set(idx)
    assert not (training_subset(idx, 0.25, 4) == a).all()
    assert training_subset(idx, 1.0, 3) is idx


def test_recommendation_is_the_cheapest_within_tolerance():
    def row(name, acc, paper, op):
        return {"name": name, "hybridAccuracy": acc, "finalAccuracy": acc, "paperEnergyRatio": paper, "opEnergyRatio": op}

    rows = [row("fp", 0.92, 1.5, 1.4), row("w4", 0.915, 3.0, 2.0), row("w1", 0.90, 5.0, 3.0)]
    best, why = sw.recommend(rows, (0.92, "ref"), tolerance=1.0)
    assert best["name"] == "w4" and "2 of 3" in why
    best, why = sw.recommend(rows, (0.99, "ref"), tolerance=1.0)
    assert best["name"] == "fp" and "No configuration" in why


def test_pareto_front_keeps_only_undominated_points():
    pts = [(10, 80), (20, 85), (15, 79), (30, 84), (40, 90)]
    assert sw.pareto_front(pts) == [(10, 80), (20, 85), (40, 90)]


def test_command_line_maps_to_the_same_sweep_and_writes_the_report(rows, spec, workdir, fp_checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(runner, "train", lambda cfg: (_ for _ in ()).throw(AssertionError(f"retrained {cfg.name}")))
    sw.main(["run", "--dataset", "synthetic", "--data", spec.data, "--out", str(spec.out), "--mode", "budget",
             "--init", fp_checkpoint, "--epochs", "1", "--subset", "0.5", "--cuts", "16,24", "--bits", "1,32",
             "--val-size", "32", "--set", "batch_size=16", "--set", "bn_recal_batches=2", "--threads", "1", "--device", "cpu"])
    doc = workdir / "cli-docs" / "design-space.md"
    sw.main(["report", str(spec.out), "--doc", str(doc), "--tolerance", "0.5"])
    text = doc.read_text()
    assert "tolerance 0.5 points" in text and (spec.out / "energy-accuracy.png").exists()
    assert not (doc.parent / "design-space").exists()  # the sweep's plots are linked, not copied
