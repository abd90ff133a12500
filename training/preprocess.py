"""Image preprocessing shared (by specification, docs/contracts.md) with the TypeScript edge:
decode -> RGB uint8 -> area-average resize to 32x32 -> normalise. ``workers/src/image/preprocess.ts``
implements the same arithmetic; test vectors written by export.py keep the two in step."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

SIZE = 32


def area_weights(src: int, dst: int = SIZE) -> np.ndarray:
    """Row-stochastic [dst, src] matrix: output i averages source pixels overlapping
    [i*src/dst, (i+1)*src/dst), each weighted by its overlap."""
    w = np.zeros((dst, src), dtype=np.float64)
    scale = src / dst
    for i in range(dst):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), src)):
            w[i, j] = min(hi, j + 1) - max(lo, j)
        w[i] /= w[i].sum()
    return w


def area_resize(rgb_u8: np.ndarray, size: int = SIZE) -> np.ndarray:
    """uint8 HxWx3 -> float64 size x size x 3 (values 0..255, not rounded)."""
    h, w = rgb_u8.shape[:2]
    ry, rx = area_weights(h, size), area_weights(w, size)
    img = rgb_u8.astype(np.float64)
    return np.einsum("ih,hwc,jw->ijc", ry, img, rx)


def area_resize_uint8_batch(rgb_u8: np.ndarray) -> np.ndarray:
    """For training sets with odd-sized images: resize and round to uint8."""
    return np.clip(np.rint(area_resize(rgb_u8)), 0, 255).astype(np.uint8)


def decode_rgb(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> uint8 HxWx3. Grey is replicated, alpha dropped (not composited):
    PIL's convert("RGB") does exactly that."""
    with Image.open(io.BytesIO(data)) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def preprocess(data: bytes, mean: list[float], std: list[float]) -> np.ndarray:
    """Encoded image -> float32 [3, 32, 32] normalised input of edge.onnx."""
    x = area_resize(decode_rgb(data)) / 255.0
    x = (x - np.asarray(mean)) / np.asarray(std)
    return x.transpose(2, 0, 1).astype(np.float32)
