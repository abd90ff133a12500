"""The serving rule in numpy (training/metrics.py): entropy of the exit softmax, and edge iff it
is strictly below the threshold."""
import math

import numpy as np
import pytest
import torch

from training.metrics import operating_point, softmax_entropy
from training.model import entropy


def test_entropy_is_ln_c_for_a_flat_exit_and_matches_the_training_side():
    logits = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [1e4, -1e4, 0.0]], dtype=np.float32)
    h = softmax_entropy(logits)
    assert h[0] == pytest.approx(math.log(3), abs=1e-12) and 0 < h[1] < 0.01 and h[2] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(h, entropy(torch.from_numpy(logits)).numpy(), rtol=1e-12, atol=1e-15)


def test_operating_point_exits_strictly_below_the_threshold():
    exit_logits = np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # confident, flat (entropy ln 3)
    logits = np.array([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    labels = np.array([0, 2])
    at_ln3 = operating_point(exit_logits, logits, labels, float(softmax_entropy(exit_logits)[1]))
    assert at_ln3["edgeFraction"] == 0.5 and at_ln3["edgeAccuracy"] == 1.0 and at_ln3["cloudAccuracy"] == 1.0
    assert at_ln3["hybridAccuracy"] == 1.0  # each image answered by the head that is right about it
    everything = operating_point(exit_logits, logits, labels, 1.2)  # ln 3 = 1.0986 < 1.2
    assert everything["edgeFraction"] == 1.0 and everything["cloudAccuracy"] is None and everything["hybridAccuracy"] == 0.5
    nothing = operating_point(exit_logits, logits, labels, 0.0)
    assert nothing["edgeFraction"] == 0.0 and nothing["edgeAccuracy"] is None and nothing["hybridAccuracy"] == 0.5  # final head alone
