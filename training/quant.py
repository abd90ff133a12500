"""Quantizers for the edge blocks (XNOR-Net style weights, sign / k-bit activations).

Both quantizers are written so that, in eval mode, they compute *exactly* the sequence of
float operations the exported ONNX graph computes (see export.py), which is what makes
PyTorch/onnxruntime parity hold bit for bit in all but boundary cases.
In training mode the straight-through estimator (STE) passes gradients through the rounding.
"""
from __future__ import annotations

import torch
from torch import Tensor

FULL_PRECISION = 32


def levels(bits: int) -> int:
    return 2**bits


def centred_clamped(weight: Tensor) -> Tensor:
    """XNOR-Net preprocessing: centre each filter over its input channels, clamp to [-1, 1]."""
    return (weight - weight.mean(dim=1, keepdim=True)).clamp(-1.0, 1.0)


def weight_codes(weight: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """Integer codes and per-output-filter scales of a quantized conv weight.

    The quantized weight is ``codes * scale[:, None, None, None]`` with odd integer codes in
    [-(L-1), L-1] (L = 2**bits levels, uniform in [-alpha, alpha]) and scale = alpha / (L-1),
    alpha = mean |w| per output filter. For 1 bit this is alpha * sign(w).
    """
    w = centred_clamped(weight)
    alpha = w.abs().mean(dim=(1, 2, 3))
    n = levels(bits) - 1
    if bits == 1:
        codes = torch.where(w >= 0, 1.0, -1.0)
    else:
        # normalise by the per-filter max so every level is reachable, then snap to the grid
        peak = w.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
        idx = torch.round((w / peak + 1.0) * (n / 2.0))
        codes = 2.0 * idx - n
    return codes, alpha / n


def quantize_weight(weight: Tensor, bits: int) -> Tensor:
    """Quantized weight with an STE: forward value is the quantized one, gradient flows to the
    latent (clamped, centred) real weight."""
    if bits >= FULL_PRECISION:
        return weight
    codes, scale = weight_codes(weight, bits)
    q = codes * scale.view(-1, 1, 1, 1)
    if not weight.requires_grad:
        return q
    w = centred_clamped(weight)
    return w + (q - w).detach()


def exit_weight_codes(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row symmetric int8 codes in [-127, 127] and float32 scales of the exit FC's weight
    ([classes, features]): the weight is ``codes * scale[:, None]``, scale = max |w| / 127.

    Why: the exit FC is the largest float tensor the Worker bundles (CIFAR-100: 100 x 256), and
    as int8 it is 4x smaller (gzip ~4x too) for a change far below the validation noise. The
    model computes its exit with these weights (``quantize_exit_weight``) and edge.onnx holds the
    same codes as ``Cast(codes) * scale``, this product exactly."""
    w = weight.detach()
    scale = w.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    codes = torch.round(w / scale[:, None]).clamp(-127.0, 127.0)
    return codes, scale


def quantize_exit_weight(weight: Tensor) -> Tensor:
    """The exit FC's weight as int8 codes x scale; an STE passes the gradient on. w + (q - w) is q
    exactly: q and w lie within half a step of each other, so q - w is exact (Sterbenz)."""
    codes, scale = exit_weight_codes(weight)
    q = codes * scale[:, None]
    return weight + (q - weight).detach() if weight.requires_grad else q


def quantize_activation(x: Tensor, bits: int, training: bool) -> Tensor:
    """Binary: sign(x) in {-1, +1} (0 maps to +1). k-bit: clip to [-1, 1] and snap to 2**k
    uniform levels in [-1, 1]. STE: gradient 1 where |x| < 1, else 0 (paper's code, with the
    clip it forgot before k-bit rounding)."""
    if bits >= FULL_PRECISION:
        return x
    if bits == 1:
        q = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    else:
        n = float(levels(bits) - 1)
        q = torch.round((x.clamp(-1.0, 1.0) + 1.0) * (n / 2.0)) * (2.0 / n) - 1.0
    if not training:
        return q
    clipped = x.clamp(-1.0, 1.0)
    return clipped + (q - clipped).detach()
