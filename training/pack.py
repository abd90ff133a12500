"""Pack an edge graph into the packed engine's file: `python -m training.pack models/cifar10 models/cifar100`.

The packed engine (workers/src/engine/, docs/performance.md) runs the edge part with XNOR +
popcount (W1A1) or i8 x i7 dot products (k-bit, training/pack_kbit.py) instead of onnxruntime.
Its file is derived from edge.onnx, not from the checkpoint, so it holds exactly the reference
graph's numbers: the float32 initializers byte for byte, and the ConvInteger weights as bits
(W1A1) or as 4-bit codes (k-bit). This module reads the W1A1 shape training/onnx_graph.py builds
(stem Conv + Relu; blocks of Mul/GreaterOrEqual/Where -> ConvInteger -> GreaterOrEqual/Where ->
ConvInteger -> DequantizeLinear -> shift or projection shortcut -> Add -> Relu; Identity split;
AveragePool -> Flatten -> Gemm over Cast(int8 codes) * scale) and hands an edge whose blocks start
with the k-bit quantizer (Mul, Add, Clip) to pack_kbit. Anything else is refused with NotPackable,
and the model stays on onnxruntime (a float export, W8A8, more than 32 channels in W1A1).

File layout (little-endian; magic, version, format name and file name in shared/contracts.json, "packed"):
    0   4  magic
    4   4  u32 format version
    8   4  u32 n = byte length of the JSON header
    12  n  JSON header (utf-8, space-padded to a multiple of 4): shapes and, per tensor,
           {"offset", "length", "dtype"} into the blob (offsets relative to the blob, 4-aligned)
    12+n   blob: f32 / i32 / u32 / i8 / u8 arrays, each starting 4-aligned
Binary format (FORMAT) bits: one u32 word per (output filter, tap), bit c = input channel c, 1 means -1 (ConvInteger
weight level 0 with zero point 1), 0 means +1 (level 2). Thresholds are the graph's int32
`bn_mid.threshold`; the filter flips for negative BN scales are already in the codes. The exit
FC's weight is the graph's int8 codes (`exit.weight`) and per-row float32 scales
(`exit.weightScale`); the reader computes float(code) * scale as the graph's Cast and Mul do.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnx

from .contracts import PACKED, PACKED_DTYPES
from .pack_graph import Graph, NotPackable, channel_vector, conv_geometry, dequantize, parse_exit, parse_shortcut, parse_stem
from .pack_kbit import onnx_raw_initializers, parse_kbit_edge

# the file's constants: shared/contracts.json ("packed"), which workers/src/engine/format/binary.ts reads too
# (version history: 2 stores the exit FC's weight as int8 codes + a float32 scale per row)
MAGIC = PACKED["magic"].encode("ascii")
VERSION: int = PACKED["version"]
FORMAT: str = PACKED["format"]
FILE_NAME: str = PACKED["fileName"]
MAX_CHANNELS: int = PACKED["maxChannels"]  # one u32 word per pixel (workers/engine/binconv.ts)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sign_where(g: Graph, cond: str) -> str:
    """Where(cond, 2, 0) as uint8: the binary level (value = level - 1)."""
    w = g.take("Where", cond)
    g.scalar(w.input[1], np.uint8, 2)
    g.scalar(w.input[2], np.uint8, 0)
    return w.output[0]


def _binary_conv(g: Graph, x: str) -> tuple[onnx.NodeProto, np.ndarray, int]:
    """ConvInteger over binary levels: returns the node, the packed words [cout, 9] and the stride."""
    n = g.take("ConvInteger", x)
    stride = conv_geometry(n, 3)
    w = g.init(n.input[1], np.uint8)
    g.scalar(n.input[2], np.uint8, 1)
    g.scalar(n.input[3], np.uint8, 1)
    if not np.isin(w, (0, 2)).all():
        raise NotPackable(f"{n.input[1]}: weights are not binary levels (0 / 2)")
    cout, cin = w.shape[:2]
    if stride not in (1, 2):
        raise NotPackable(f"{n.name}: stride {stride}, the engine runs strides 1 and 2")
    if cin > MAX_CHANNELS or cout > MAX_CHANNELS:
        raise NotPackable(f"{n.name}: {cin} -> {cout} channels, the engine packs at most {MAX_CHANNELS}")
    return n, pack_bits(w == 0), stride


def pack_bits(negative: np.ndarray) -> np.ndarray:
    """[cout, cin, 3, 3] booleans (True = -1) -> u32 words [cout, 9], bit c = channel c."""
    cout, cin = negative.shape[:2]
    bits = negative.reshape(cout, cin, 9).astype(np.uint64) << np.arange(cin, dtype=np.uint64)[None, :, None]
    return bits.sum(axis=1).astype(np.uint32)


def unpack_bits(words: np.ndarray, cin: int) -> np.ndarray:
    """Inverse of pack_bits: u32 words [cout, 9] -> uint8 ConvInteger levels [cout, cin, 3, 3]."""
    bits = (words[:, None, :].astype(np.uint64) >> np.arange(cin, dtype=np.uint64)[None, :, None]) & 1
    return np.where(bits == 1, 0, 2).astype(np.uint8).reshape(len(words), cin, 3, 3)


def parse_edge(model: onnx.ModelProto) -> dict:
    """The W1A1 edge graph as the engine's structure (numpy arrays, exact copies of the initializers)."""
    g = Graph(model)
    dims, sw, sb, x = parse_stem(g, model)
    _, h, w = dims
    c = sw.shape[0]
    if c > MAX_CHANNELS:
        raise NotPackable(f"stem has {c} channels, the engine packs at most {MAX_CHANNELS}")
    blocks = []
    while g.peek() == "Mul":
        mul = g.take("Mul", x)
        ge = g.take("GreaterOrEqual", mul.output[0])
        scale, neg_shift = channel_vector(g, mul.input[1], c, np.float32), channel_vector(g, ge.input[1], c, np.float32)
        q1 = _sign_where(g, ge.output[0])
        conv1, w1, stride = _binary_conv(g, q1)
        cout = len(w1)
        thr_ge = g.take("GreaterOrEqual", conv1.output[0])
        thr = channel_vector(g, thr_ge.input[1], cout, np.int32)
        q2 = _sign_where(g, thr_ge.output[0])
        conv2, w2, stride2 = _binary_conv(g, q2)
        if stride2 != 1 or len(w2) != cout or g.init(conv2.input[1]).shape[1] != cout:
            raise NotPackable(f"{conv2.name}: expected a stride-1 {cout} -> {cout} conv")
        dq, scale2 = dequantize(g, conv2.output[0], cout)
        block = {"cin": c, "cout": cout, "stride": stride, "h": h, "w": w, "bnScale": scale, "bnNegShift": neg_shift,
                 "conv1": w1, "threshold": thr, "conv2": w2, "scale": scale2}
        add = parse_shortcut(g, block, x, dq.output[0])
        x = g.take("Relu", add.output[0]).output[0]
        blocks.append(block)
        c, h, w = cout, (h - 1) // stride + 1, (w - 1) // stride + 1
    if not blocks:
        raise NotPackable("no binary block after the stem (not a W1A1 ConvInteger export)")
    exit_head = parse_exit(g, x, c, h, w)
    if dims[2] % 8 or any(b["w"] % 4 or ((b["w"] - 1) // b["stride"] + 1) % 4 for b in blocks):
        raise NotPackable("plane widths must be multiples of 4 (four pixels per SIMD vector; the input's of 8)")
    return {"input": [3, dims[1], dims[2]], "stem": {"weight": sw, "bias": sb}, "blocks": blocks,
            "split": [c, h, w], "exit": exit_head}


def _write(structure: dict, onnx_refs: dict[tuple[str, bytes], str] | None = None) -> bytes:
    """The file; with onnx_refs ((dtype, little-endian bytes) -> initializer name of the source
    edge.onnx, k-bit format), a tensor the graph holds byte for byte as an initializer's raw_data
    is written as a reference {"onnx": name, "length", "dtype"} instead of a copy in the blob."""
    blob = bytearray()

    def tensor(a: np.ndarray) -> dict:
        dtype = {np.dtype(t): name for name, t in PACKED_DTYPES.items()}[a.dtype]
        data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        if onnx_refs and (dtype, data) in onnx_refs:
            return {"onnx": onnx_refs[(dtype, data)], "length": int(a.size), "dtype": dtype}
        ref = {"offset": len(blob), "length": int(a.size), "dtype": dtype}
        blob.extend(data)
        blob.extend(b"\0" * (-len(blob) % 4))  # every tensor starts 4-aligned (typed array views)
        return ref

    def walk(v):
        if isinstance(v, np.ndarray):
            return tensor(v)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    header = walk({k: v for k, v in structure.items() if k not in ("source", "format")})
    header = {"format": structure.get("format", FORMAT), "source": structure["source"], **header, "blobBytes": 0}
    header["blobBytes"] = len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    return MAGIC + struct.pack("<II", VERSION, len(text)) + text + bytes(blob)


def pack_edge(edge_bytes: bytes) -> bytes:
    """edge.onnx bytes -> engine file bytes (raises NotPackable): the binary format for a W1A1
    edge, the k-bit one (training/pack_kbit.py) for an edge whose blocks quantize their
    activations to k bits (its first block starts Mul, Add, Clip where a binary one compares)."""
    model = onnx.load_model_from_string(edge_bytes)
    ops = [n.op_type for n in model.graph.node[:5]]
    if ops[2:5] == ["Mul", "Add", "Clip"]:
        structure = parse_kbit_edge(model)
        structure["source"] = {"file": "edge.onnx", "sha256": sha256_bytes(edge_bytes)}
        return _write(structure, onnx_raw_initializers(model))
    structure = parse_edge(model)
    structure["source"] = {"file": "edge.onnx", "sha256": sha256_bytes(edge_bytes)}
    return _write(structure)


def engine_format(data: bytes) -> str:
    """The format name in an engine file's header (FORMAT or pack_kbit.KBIT_FORMAT)."""
    (n,) = struct.unpack_from("<I", data, 8)
    return str(json.loads(data[12:12 + n])["format"])


def read_engine(data: bytes, edge_bytes: bytes | None = None) -> dict:
    """Engine file -> header with every tensor ref replaced by its numpy array (for tests and
    tools); edge_bytes: the source edge.onnx, for the references to its initializers (k-bit)."""
    if data[:4] != MAGIC:
        raise ValueError("not a packed engine file (magic)")
    version, n = struct.unpack_from("<II", data, 4)
    if version != VERSION:
        raise ValueError(f"engine format version {version}, expected {VERSION}")
    header = json.loads(data[12:12 + n])
    blob = memoryview(data)[12 + n:]
    if len(blob) != header["blobBytes"]:
        raise ValueError("engine file is truncated or has trailing bytes")

    inits: dict[str, onnx.TensorProto] = {}
    if edge_bytes is not None:
        if sha256_bytes(edge_bytes) != header["source"]["sha256"]:
            raise ValueError("edge.onnx is not the file the engine was built from")
        inits = {t.name: t for t in onnx.load_model_from_string(edge_bytes).graph.initializer}

    def walk(v):
        if isinstance(v, dict) and set(v) == {"offset", "length", "dtype"}:
            return np.frombuffer(blob, np.dtype(PACKED_DTYPES[v["dtype"]]).newbyteorder("<"), v["length"], v["offset"]).copy()
        if isinstance(v, dict) and set(v) == {"onnx", "length", "dtype"}:
            if v["onnx"] not in inits:
                raise ValueError(f"the engine refers to edge.onnx's {v['onnx']!r}: pass edge_bytes (the source edge.onnx)")
            return np.frombuffer(inits[v["onnx"]].raw_data, np.dtype(PACKED_DTYPES[v["dtype"]]).newbyteorder("<"), v["length"]).copy()
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(header)


def pack_folder(folder: Path) -> Path | None:
    """Writes folder/edge.packed.bin and records it in manifest.json (files.engine); returns its
    path, or None (and removes a stale engine entry) when the edge is not packable."""
    folder = Path(folder)
    edge = (folder / "edge.onnx").read_bytes()
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    recorded = manifest.get("files", {}).get("edge", {}).get("sha256")
    if recorded and recorded != sha256_bytes(edge):
        raise SystemExit(f"{folder}/edge.onnx differs from manifest.files.edge.sha256: export again first")
    out = folder / FILE_NAME
    try:
        data = pack_edge(edge)
    except NotPackable as e:
        if manifest.get("files", {}).pop("engine", None) is not None:
            manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        out.unlink(missing_ok=True)
        print(f"pack: {folder}: no packed engine ({e}); the model runs on onnxruntime", file=sys.stderr)
        return None
    out.write_bytes(data)
    manifest.setdefault("files", {})["engine"] = {"path": FILE_NAME, "sha256": sha256_bytes(data), "format": engine_format(data)}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"pack: wrote {out} ({len(data)} bytes, {engine_format(data)})", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="model folders, e.g. models/cifar10")
    args = ap.parse_args(argv)
    for f in args.folders:
        pack_folder(f)


if __name__ == "__main__":
    main()
