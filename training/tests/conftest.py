"""Shared fixtures: a tiny synthetic image folder (no dataset pixels), randomised BN stats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.model import ModelConfig, SplitResNet

COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 30), "yellow": (230, 220, 40)}


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes x 48 images: a noisy coloured square on a noisy background."""
    root = tmp_path_factory.mktemp("synthetic") / "train"
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(48):
            img = rng.integers(0, 90, (32, 32, 3))
            y, x = rng.integers(0, 16, 2)
            img[y:y + 16, x:x + 16] = np.clip(np.array(colour) + rng.integers(-25, 25, 3), 0, 255)
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i:03d}.png")
    return root


def randomised(config: ModelConfig, seed: int = 0) -> SplitResNet:
    """A model in eval mode whose BN layers hold non-trivial statistics (so folding matters)."""
    torch.manual_seed(seed)
    model = SplitResNet(config)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()
