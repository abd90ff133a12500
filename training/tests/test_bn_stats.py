"""training.bn_stats: BatchNorm statistics recomputed from the final weights, at the end of a run
(train.py) and for a finished checkpoint (python -m training recalibrate-bn)."""
import numpy as np
import torch
from torch import nn

from training.bn_stats import recalibrate_bn
from training.data import ImageSet, TensorLoader, normalise
from training.recalibrate_bn import main as recalibrate_main
from training.train import train

from .test_train import tiny_config


def test_statistics_are_the_plain_average_over_the_batches_and_weights_stay():
    rng = np.random.default_rng(0)
    ds = ImageSet(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), np.zeros(64, dtype=np.int64), ["a"])
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
    model[1].running_mean.fill_(5.0)  # stale statistics
    weights = model[0].weight.detach().clone()
    loader = TensorLoader(ds, 16, torch.device("cpu"), train=False)
    assert recalibrate_bn(model, loader, batches=3) == 48
    with torch.no_grad():
        means = [model[0](normalise(torch.from_numpy(ds.images[i * 16:(i + 1) * 16]))).mean(dim=(0, 2, 3)) for i in range(3)]
    torch.testing.assert_close(model[1].running_mean, torch.stack(means).mean(0))  # each batch weighs the same
    assert model[1].momentum == 0.1 and not model.training
    torch.testing.assert_close(model[0].weight, weights)


def test_a_finished_run_keeps_recalibrated_statistics_and_the_figures_before(tmp_path, synthetic_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tmp_path, synthetic_folder, epochs=1, ema_decay=0.9, bn_recal_batches=2)
    kept = torch.load(train(cfg), weights_only=False)
    assert kept["bn_recal"]["batches"] == 2 and kept["bn_recal"]["images"] == 2 * 160  # 160 training images, batches of 160
    record = kept["bn_recal"][kept["weights"]]
    assert set(record) == {"saved", "recomputed"} and kept["val"] == record["recomputed"]
    resume = torch.load(cfg.run_dir() / "checkpoint.pt", weights_only=False)
    bn = next(k for k in resume["model"] if k.endswith("running_mean"))
    source = resume["ema"] if kept["weights"] == "ema" else resume["model"]
    assert not torch.equal(kept["model"][bn], source[bn])  # recomputed, not the statistics training ended with
    weight = bn.replace("running_mean", "weight")
    assert torch.equal(kept["model"][weight], source[weight])


def test_the_command_recalibrates_a_resume_checkpoint(tmp_path, synthetic_folder, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tmp_path, synthetic_folder, epochs=2, max_epochs_this_run=1, ema_decay=0.9)
    ckpt = train(cfg)  # stopped after epoch 1 of 2: a resume checkpoint, no model.pt
    out = tmp_path / "bn.pt"
    recalibrate_main([str(ckpt), "--out", str(out), "--batches", "2"])
    kept = torch.load(out, weights_only=False)
    assert "optimizer" not in kept and "ema" not in kept and kept["bn_recal"]["batches"] == 2
    assert "raw (float32): final" in capsys.readouterr().err
