"""Recompute a trained network's BatchNorm statistics from its final weights.

Why: the running statistics a run ends with are an exponential average (momentum 0.1) over its
last ~10 batches, taken while the weights still moved, and the EMA copy averages statistics of
weights that no longer exist. A binarized edge turns every statistic into a sign threshold, so a
small error flips activations (measured figures: training/README.md, "BatchNorm statistics").
The fix is the standard one (SWA's ``update_bn``): a cumulative average over augmented training
batches, the distribution the network was trained on, in train mode with no gradient.
"""
from __future__ import annotations

import torch
from torch import nn

from .data import TensorLoader


def recalibrate_bn(model: nn.Module, loader: TensorLoader, batches: int) -> int:
    """Resets every BatchNorm's running statistics and re-estimates them as the plain average over
    ``batches`` batches of ``loader`` (shuffled and augmented: a training loader; passed over again
    where it has fewer). Returns the number of images seen. The weights are untouched; the model is
    left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or batches <= 0 or len(loader) == 0:
        return 0
    saved_momentum = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    seen, done = 0, 0
    with torch.no_grad():
        while done < batches:
            for x, _ in loader:
                if done >= batches:
                    break
                model(x)
                seen += len(x)
                done += 1
    for m, momentum in zip(norms, saved_momentum):
        m.momentum = momentum
    model.eval()
    return seen
