"""The serving rule's figures in numpy: the exit softmax's entropy and one operating point
(edge iff entropy < threshold), as the Worker decides. Used by calibration, evaluation, the
export's test vectors, the wire and OOD studies."""
from __future__ import annotations

import numpy as np

from .energy import EnergyModel


def softmax_entropy(logits: np.ndarray) -> np.ndarray:
    """Natural-log softmax entropy, float64, via log-sum-exp (same rule as the Worker)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -(np.exp(logp) * logp).sum(axis=1)


def operating_point(exit_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray, threshold: float,
                    energy: EnergyModel | None = None) -> dict:
    """Hybrid figures at one threshold with the serving rule: edge iff entropy < threshold."""
    at_edge = softmax_entropy(exit_logits) < threshold
    exit_ok = exit_logits.argmax(1) == labels
    final_ok = logits.argmax(1) == labels
    hybrid_ok = np.where(at_edge, exit_ok, final_ok)
    n_edge = int(at_edge.sum())
    point = {
        "threshold": float(threshold),
        "edgeFraction": n_edge / len(labels),
        "hybridAccuracy": float(hybrid_ok.mean()),
        "edgeAccuracy": float(exit_ok[at_edge].mean()) if n_edge else None,
        "cloudAccuracy": float(final_ok[~at_edge].mean()) if n_edge < len(labels) else None,
    }
    if energy is not None:
        point.update(energy.ratios(point["edgeFraction"]))
    return point
