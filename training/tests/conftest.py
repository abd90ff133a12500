"""Shared fixtures: a tiny synthetic image folder (no dataset pixels), randomised BN stats."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.bench_models import randomised  # noqa: F401  (re-exported for the tests)

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
