"""Threshold calibration (training/calibrate.py): the goal's choice on a synthetic validation set."""
import numpy as np

from training.calibrate import calibrate
from training.metrics import operating_point, softmax_entropy


def test_calibration_picks_most_edge_exits_within_tolerance():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)
    conf = rng.uniform(0, 8, 2000)
    exit_logits = rng.normal(0, 1, (2000, 10))
    right = rng.uniform(size=2000) < 0.5 + conf / 16  # confident exits are right more often
    exit_logits[np.arange(2000), np.where(right, labels, (labels + 1) % 10)] += conf
    logits = np.full((2000, 10), -5.0)
    logits[np.arange(2000), labels] = 5.0  # the final head is always right
    curve, chosen = calibrate(exit_logits, logits, labels, "within=5.0")
    assert chosen["hybridAccuracy"] >= 0.95 - 1e-12
    # a slightly higher threshold would break the goal (the choice is the largest edge share)
    ent = np.sort(softmax_entropy(exit_logits))
    nxt = ent[ent >= chosen["threshold"]]
    if len(nxt) > 1:
        assert operating_point(exit_logits, logits, labels, float(nxt[1]) + 1e-9)["hybridAccuracy"] < 0.95
    assert curve["points"][0]["edgeFraction"] == 0.0 and curve["points"][-1]["edgeFraction"] == 1.0
    _, fixed = calibrate(exit_logits, logits, labels, "threshold=0.5")
    assert fixed["threshold"] == 0.5
