import json

import pytest
import torch

from training.config import TrainConfig, apply_overrides
from training.data import load_source, random_crop_flip, train_val_split
from training.checkpoint import lineage, load_checkpoint_model
from training.train import initial_weights, train


def tiny_config(tmp_path, folder, **kw) -> TrainConfig:
    base = dict(name="tiny", dataset="synthetic", data=str(folder), epochs=2, batch_size=16, lr=0.02,
                schedule="onecycle", warmup_epochs=0.5, val_size=32, out_dir=str(tmp_path / "runs"), threads=2,
                bn_recal_batches=2)  # the end-of-run BatchNorm pass (test_bn_stats.py), kept short
    base.update(kw)
    return TrainConfig(**base)


def test_two_epochs_on_synthetic_data_lower_the_loss_and_resume(tmp_path, synthetic_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the decoded-data cache goes under ./data/cache
    cfg = tiny_config(tmp_path, synthetic_folder, max_epochs_this_run=1)
    ckpt_path = train(cfg)
    log = [json.loads(l) for l in (cfg.run_dir() / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1]
    # resume: same config without the per-run cap finishes epoch 2 from the checkpoint
    cfg2 = tiny_config(tmp_path, synthetic_folder, epochs=2)
    train(cfg2)
    log = [json.loads(l) for l in (cfg.run_dir() / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    first_loss = log[0]["train_loss"]
    assert log[1]["train_loss"] < first_loss
    model, ckpt = load_checkpoint_model(ckpt_path)
    assert ckpt["epoch"] == 2 and ckpt["classes"] == ["blue", "green", "red", "yellow"]


def test_init_from_and_distillation_run(tmp_path, synthetic_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    teacher = train(tiny_config(tmp_path, synthetic_folder, name="teacher", epochs=1, weight_bits=32, act_bits=32))
    student = train(tiny_config(tmp_path, synthetic_folder, name="student", epochs=1, init_from=str(teacher),
                                teacher=str(teacher), kd_weight=0.5))
    model, ckpt = load_checkpoint_model(student)
    t_model, _ = load_checkpoint_model(teacher)
    # the stem is shared by both architectures, so init_from copied it before training moved it a little
    assert torch.allclose(model.stem.conv.weight, t_model.stem.conv.weight, atol=0.2)
    # the full-precision block's BN before the residual add starts the quantized block's bn_out
    start = initial_weights(torch.load(teacher, map_location="cpu", weights_only=False), model.config)
    assert torch.equal(start["edge.0.bn_out.weight"], t_model.edge[0].bn2.weight.detach())
    assert "edge.0.bn2.weight" not in start


def test_lineage_follows_init_from_and_survives_removed_ancestors(tmp_path, synthetic_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = train(tiny_config(tmp_path, synthetic_folder, name="first", epochs=1, weight_bits=32, act_bits=32))
    second = train(tiny_config(tmp_path, synthetic_folder, name="second", epochs=1, init_from=str(first)))
    third = train(tiny_config(tmp_path, synthetic_folder, name="third", epochs=2, init_from=str(second)))
    runs = lineage(third)
    assert [(r["config"]["name"], r["epochs"]) for r in runs] == [("first", 1), ("second", 1), ("third", 2)]
    first.unlink()  # the checkpoints a run started from may be removed later: it carries their provenance
    assert [r["config"]["name"] for r in lineage(third)] == ["first", "second", "third"]
    assert runs[0]["config"]["weight_bits"] == 32 and runs[0]["val"]["final_acc"] >= 0


def test_keep_slims_a_run_and_writes_its_lineage_in(tmp_path, synthetic_folder, monkeypatch):
    from training.keep import keep

    monkeypatch.chdir(tmp_path)
    first = train(tiny_config(tmp_path, synthetic_folder, name="first", epochs=1, weight_bits=32, act_bits=32))
    second = train(tiny_config(tmp_path, synthetic_folder, name="second", epochs=1, init_from=str(first)))
    kept = keep(second.parent, tmp_path / "kept")
    assert kept.name == "second.pt" and (tmp_path / "kept" / "second.log.jsonl").exists()
    ckpt = torch.load(kept, map_location="cpu", weights_only=False)
    assert not {"optimizer", "scheduler", "loader_rng"} & set(ckpt)
    assert [r["config"]["name"] for r in ckpt["lineage"]] == ["first"]
    model, _ = load_checkpoint_model(kept)  # export and init_from read it as before
    original, _ = load_checkpoint_model(second)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values()))


def test_grad_clip_bounds_every_step(tmp_path, synthetic_folder, monkeypatch):
    """With momentum and weight decay off, each step moves the weights by lr x the clipped
    gradient, so the whole run moves them at most steps x lr x clip; unclipped it moves further."""
    monkeypatch.chdir(tmp_path)
    start = train(tiny_config(tmp_path, synthetic_folder, name="start", epochs=1))

    def moved(name: str, clip: float) -> float:
        cfg = tiny_config(tmp_path, synthetic_folder, name=name, epochs=1, init_from=str(start), momentum=0.0,
                          weight_decay=0.0, grad_clip=clip)
        after, _ = load_checkpoint_model(train(cfg))
        before, _ = load_checkpoint_model(start)
        delta = torch.cat([(a.detach() - b.detach()).flatten() for a, b in zip(after.parameters(), before.parameters())])
        return delta.norm().item()

    clip = 1e-3
    clipped = moved("clipped", clip)
    free = moved("free", 0.0)
    steps = -(-(len(load_source(str(synthetic_folder))) - 32) // 16)
    assert clipped <= steps * 0.02 * clip * 1.0001
    assert free > 10 * steps * 0.02 * clip


def test_split_is_seeded_and_disjoint():
    a_train, a_val = train_val_split(1000, 100, seed=3)
    b_train, b_val = train_val_split(1000, 100, seed=3)
    assert (a_val == b_val).all() and len(set(a_train) & set(a_val)) == 0 and len(a_train) == 900
    assert not (train_val_split(1000, 100, seed=4)[1] == a_val).all()


def test_augmentation_keeps_shape_and_content():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    y = random_crop_flip(x, 4, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    # every output pixel is an input pixel or padding zero
    assert set(y.unique().tolist()) <= set(x.unique().tolist()) | {0.0}


def test_overrides_are_typed_and_unknown_keys_rejected():
    cfg = apply_overrides(TrainConfig(), ["epochs=3", "nesterov=true", "milestones=5,7", "lr=0.3", "teacher=none"])
    assert cfg.epochs == 3 and cfg.nesterov is True and cfg.milestones == [5, 7] and cfg.lr == 0.3 and cfg.teacher is None
    try:
        apply_overrides(TrainConfig(), ["nope=1"])
    except ValueError as e:
        assert "nope" in str(e)
    else:
        raise AssertionError("unknown key accepted")


def test_a_wall_clock_budget_needs_an_annealing_schedule():
    with pytest.raises(ValueError, match="onecycle or cosine"):
        apply_overrides(TrainConfig(), ["time_budget_minutes=7"])  # the default is multistep
    with pytest.raises(ValueError, match="schedule"):
        apply_overrides(TrainConfig(), ["schedule=linear"])
    with pytest.raises(ValueError, match="ema_decay"):
        apply_overrides(TrainConfig(), ["ema_decay=1.0"])
    for schedule in ("onecycle", "cosine"):
        assert apply_overrides(TrainConfig(), [f"schedule={schedule}", "time_budget_minutes=7"]).time_budget_minutes == 7


def test_cosine_schedule_warms_up_then_anneals_to_zero_at_the_last_epoch():
    from training.train import Clock, lr_factor

    cfg = TrainConfig(schedule="cosine", epochs=10, warmup_epochs=2)
    f = [lr_factor(cfg, step, 100, Clock()) for step in (50, 200, 600, 1000)]
    assert f[0] == pytest.approx(0.25) and f[1] == pytest.approx(1.0)
    assert f[2] == pytest.approx(0.5) and f[3] == pytest.approx(0.0, abs=1e-12)  # half-way through the decay: cos(pi/2)


def test_folder_loader_orders_classes_alphabetically(synthetic_folder, tmp_path):
    ds = load_source(synthetic_folder, cache_dir=tmp_path)
    assert ds.classes == ["blue", "green", "red", "yellow"] and ds.images.shape == (192, 32, 32, 3)
    assert (ds.labels[:48] == 0).all() and (ds.labels[-48:] == 3).all()


def _fake_cifar10_python(root):
    """A miniature CIFAR-10 "python" distribution (random pixels, the real file layout)."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [i % 10, 1, 2, 3]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return folder


def test_cifar_python_batches_and_download(tmp_path, monkeypatch):
    import hashlib
    import tarfile

    from training import data

    folder = _fake_cifar10_python(tmp_path / "src")
    ds = load_source(folder, cache_dir=None)
    assert ds.images.shape == (20, 32, 32, 3) and ds.classes[0] == "c0" and ds.labels[0] == 1
    # the downloader (network in real use; a file:// URL here): fetch, check md5, extract, load
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    url = archive.as_uri()
    monkeypatch.setitem(data.CIFAR_DOWNLOADS, "cifar10", (url, md5, "cifar-10-batches-py"))
    monkeypatch.chdir(tmp_path / "src")  # data/ is relative to the working directory
    got = load_source("download:cifar10", cache_dir=None)
    assert (got.images == ds.images).all()
    monkeypatch.setitem(data.CIFAR_DOWNLOADS, "cifar100", (url, "0" * 32, "cifar-100-python"))
    try:
        load_source("download:cifar100", cache_dir=None)
    except ValueError as e:
        assert "md5" in str(e)
    else:
        raise AssertionError("a wrong md5 was accepted")


def test_speed_probe_reports_a_step_time():
    from training.speed import time_steps

    r = time_steps(TrainConfig(batch_size=4, device="cpu", threads=1), steps=2, warmup=1)
    assert r["medianStepSeconds"] > 0 and r["projectedEpochSeconds"] == pytest.approx(r["medianStepSeconds"] * 11250, rel=1e-2)


def test_every_preset_parses_and_names_a_valid_model():
    """training/configs/*.json: known keys only, and a model the pipeline can build."""
    from pathlib import Path

    from training.model import VALID_BITS, VALID_CUTS

    presets = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))
    assert presets
    for p in presets:
        cfg = TrainConfig.from_json(str(p))
        assert cfg.name == p.stem, p
        assert cfg.cut in VALID_CUTS and cfg.weight_bits in VALID_BITS and cfg.act_bits in VALID_BITS, p
        assert (cfg.teacher is None) == (cfg.kd_weight == 0.0), p
