"""The edge->cloud activation frame in Python: encode and decode exactly as shared/src/wire.ts does,
byte for byte, with every constant from shared/contracts.json ("wire"). Used by
training.wire_accuracy (the int8 round trip) and by the golden-file tests (test/golden/)."""
from __future__ import annotations

import struct

import numpy as np

from .contracts import WIRE, WIRE_FIXED_HEADER_BYTES, WIRE_INT8, wire_header_bytes

_BY_PRECISION = {d["precision"]: d for d in WIRE["dtypes"].values()}
_BY_CODE = {d["code"]: (name, d) for name, d in WIRE["dtypes"].items()}
_FINGERPRINT = WIRE["fingerprintBytes"]
_MAGIC = WIRE["magic"].encode("ascii")
_AT: dict[str, int] = WIRE["offsets"]  # each header field's byte offset, as wire.ts reads them


def js_round(x: np.ndarray) -> np.ndarray:
    """JavaScript's Math.round: halves round up (towards +Infinity), unlike numpy's to-even."""
    return np.floor(x + 0.5)


def int8_params(x: np.ndarray) -> tuple[float, int]:
    """(scale, zeroPoint) of the int8 precision for float32 values `x` (finite), as wire.ts: the
    range always contains 0; the scale is rounded to float32 (Math.fround)."""
    xd = np.asarray(x, dtype=np.float32).astype(np.float64)
    lo, hi = min(0.0, float(xd.min(initial=0.0))), max(0.0, float(xd.max(initial=0.0)))
    scale = float(np.float32((hi - lo) / WIRE_INT8["levels"])) if hi > lo else 1.0
    zero = int(min(WIRE_INT8["qmax"], max(WIRE_INT8["qmin"], js_round(np.float64(-lo / scale)))))
    return scale, zero


def quantize_int8(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    xd = np.asarray(x, dtype=np.float32).astype(np.float64)
    return np.clip(js_round(xd / scale) + zero, WIRE_INT8["qmin"], WIRE_INT8["qmax"])


def encode_activation(data: np.ndarray, shape: list[int], fingerprint: str, precision: str) -> bytes:
    """encodeActivation of shared/src/wire.ts."""
    x = np.asarray(data, dtype=np.float32).ravel()
    fp = bytes.fromhex(fingerprint)
    if len(fp) != _FINGERPRINT:
        raise ValueError(f"fingerprint must be {_FINGERPRINT} bytes of sha256")
    if not 1 <= len(shape) <= WIRE["maxRank"] or int(np.prod(shape)) != x.size:
        raise ValueError(f"shape {shape} does not fit {x.size} values")
    d = _BY_PRECISION[precision]
    scale, zero = 1.0, 0
    if precision == "fp32":
        payload = x.astype("<f4").tobytes()
    elif precision == "fp16":
        payload = x.astype("<f2").tobytes()  # no saturation here: callers pass values within fp16
    else:
        if not np.isfinite(x).all():
            raise ValueError("cannot quantize a non-finite activation")
        scale, zero = int8_params(x)
        payload = quantize_int8(x, scale, zero).astype(np.uint8).tobytes()
    head = bytearray(wire_header_bytes(len(shape)))
    head[_AT["magic"]:_AT["magic"] + len(_MAGIC)] = _MAGIC
    for field, value in (("version", WIRE["version"]), ("dtype", d["code"]), ("rank", len(shape)), ("reserved", 0)):
        struct.pack_into("<B", head, _AT[field], value)
    head[_AT["fingerprint"]:_AT["fingerprint"] + _FINGERPRINT] = fp
    struct.pack_into("<f", head, _AT["scale"], scale)
    struct.pack_into("<i", head, _AT["zeroPoint"], zero)
    struct.pack_into(f"<{len(shape)}I", head, WIRE_FIXED_HEADER_BYTES, *shape)
    return bytes(head) + payload


def decode_activation(frame: bytes) -> tuple[dict, np.ndarray]:
    """decodeHeader + decodeTensor of shared/src/wire.ts (header checks only as far as the tests need)."""
    if frame[_AT["magic"]:_AT["magic"] + len(_MAGIC)] != _MAGIC:
        raise ValueError("bad magic: not a Fogline activation")
    version, code, rank = (frame[_AT[f]] for f in ("version", "dtype", "rank"))
    if version != WIRE["version"] or code not in _BY_CODE:
        raise ValueError(f"version {version} / dtype {code} not supported")
    name, d = _BY_CODE[code]
    fp = frame[_AT["fingerprint"]:_AT["fingerprint"] + _FINGERPRINT].hex()
    (scale,) = struct.unpack_from("<f", frame, _AT["scale"])
    (zero,) = struct.unpack_from("<i", frame, _AT["zeroPoint"])
    shape = list(struct.unpack_from(f"<{rank}I", frame, WIRE_FIXED_HEADER_BYTES))
    body = frame[wire_header_bytes(rank):]
    if len(body) != int(np.prod(shape)) * d["bytes"]:
        raise ValueError("payload length does not match the header")
    if name == "float32":
        data = np.frombuffer(body, "<f4").astype(np.float32)
    elif name == "float16":
        data = np.frombuffer(body, "<f2").astype(np.float32)
    else:
        data = (np.float64(scale) * (np.frombuffer(body, np.uint8).astype(np.float64) - zero)).astype(np.float32)
    return {"precision": d["precision"], "fingerprint": fp, "scale": scale, "zeroPoint": zero, "shape": shape}, data.reshape(shape)
