"""The packed engine file of a k-bit edge (issue 19): W2A2..W4A4 ConvInteger exports, e.g. the
W4A4 `cifar100` edge. `python -m training.pack` writes it (training/pack.py dispatches here).

Like the binary file it is derived from edge.onnx and holds exactly the reference graph's
numbers: the float32 initializers byte for byte, and each ConvInteger's uint8 weights with their
zero point. The graph shape it accepts is what training/onnx_graph.py builds for a k-bit block
(int_quant_block, act_bits >= 2):
    Mul(scale) Add(shift) Clip(-1, 1) Add(1) Mul(n/2) Round Mul(2) Cast(uint8)     bn_in -> q1
    ConvInteger(q1, W1, n, z1) DequantizeLinear(scale1) Relu                        conv1
    Mul Add Clip Add Mul Round Mul Cast                                             bn_mid -> q2
    ConvInteger(q2, W2, n, z2) DequantizeLinear(scale2)                             conv2
    Add(shift) Add(x) | Add(Conv1x1(x) + bias)   Relu                               shortcut
(a 4-bit weight arrives as nibbles unpacked by BitShift/Concat/[Slice]/Reshape, evaluated here).
Anything else raises NotPackable and the model stays on onnxruntime.

Header (same container as the binary file: magic, version, JSON header, blob):
    format "fogline-packed-kbit/2" (contracts.json packed.kbitFormat), source, input, stem,
    actBits (n = 2^actBits - 1: levels L in 0..n, ConvInteger input q = 2L, zero point n),
    blocks[]: cin, cout, stride, h, w, bnScale, bnShift, conv1, conv1Zero, conv1Scale, midScale,
        midShift, conv2, conv2Zero, scale, then shift | shortcutWeight + shortcutBias,
    split, exit (as the binary file), blobBytes.
A conv's weights (conv1, conv2) are the uint8 ConvInteger weights [cout][cin][3][3] halved (they
are even: odd codes plus an odd zero point) and stored two per byte as onnx_graph.uint8_weight
stores them: with half = ceil(count / 2), element i in the low nibble of byte i, element half + i
in its high one; the code the engine multiplies is 2 * nibble - zero.
Version 2 (issue 19): a tensor that edge.onnx holds byte for byte as an initializer's raw_data
(the nibble-packed weights, the float32 affines, the exit FC's int8 codes, ...) is not copied
into the blob but referred to, {"onnx": name, "length", "dtype"} in place of {"offset", ...}:
the Worker bundles edge.onnx anyway, so each weight ships once (the cifar100 file went from
171 KiB, 144 KiB gzip, to a header of a few KiB). The reader needs that edge.onnx (its sha256 is
the header's source.sha256 and the manifest's files.edge.sha256).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .contracts import PACKED, PACKED_DTYPES
from .pack_graph import Graph, NotPackable, attrs, channel_vector, conv_geometry, dequantize, parse_exit, parse_shortcut, parse_stem

KBIT_FORMAT: str = PACKED["kbitFormat"]
# 2..4-bit activations: a level L <= 15 is a valid operand of the engine's i8 x i7 dot product,
# and a pair of products (<= 2 * 15 * 15) keeps 72 of them summed in an i16 lane
# (workers/engine/kconv.ts)
MIN_ACT_BITS, MAX_ACT_BITS = 2, 4
MAX_CODE = 15  # |weight code|, the same bound
FILTERS = 4  # filters per pass of the conv kernel: cout must be a multiple


def _scalar_f32(g: Graph, name: str, value: float) -> None:
    g.scalar(name, np.float32, value)


def _quantizer(g: Graph, x: str, c: int) -> tuple[np.ndarray, np.ndarray, int, str]:
    """The affine + k-bit activation quantizer into uint8 levels; returns (scale, shift, n, q)."""
    mul = g.take("Mul", x)
    add = g.take("Add", mul.output[0])
    scale, shift = channel_vector(g, mul.input[1], c, np.float32), channel_vector(g, add.input[1], c, np.float32)
    clip = g.take("Clip", add.output[0])
    if len(clip.input) != 3:
        raise NotPackable(f"{clip.name}: expected Clip with min and max inputs")
    _scalar_f32(g, clip.input[1], -1.0)
    _scalar_f32(g, clip.input[2], 1.0)
    one = g.take("Add", clip.output[0])
    _scalar_f32(g, one.input[1], 1.0)
    half = g.take("Mul", one.output[0])
    half_n = g.init(half.input[1], np.float32)
    n = int(round(float(half_n.reshape(())) * 2)) if half_n.size == 1 else -1
    if n not in [2**b - 1 for b in range(MIN_ACT_BITS, MAX_ACT_BITS + 1)] or float(half_n.reshape(())) != n / 2:
        raise NotPackable(f"{half.name}: n/2 = {half_n.ravel()[:2]}, the engine runs {MIN_ACT_BITS}..{MAX_ACT_BITS}-bit activations")
    rnd = g.take("Round", half.output[0])
    two = g.take("Mul", rnd.output[0])
    _scalar_f32(g, two.input[1], 2.0)
    cast = g.take("Cast", two.output[0])
    if attrs(cast).get("to") != onnx.TensorProto.UINT8:
        raise NotPackable(f"{cast.name}: expected a Cast to uint8")
    return scale, shift, n, cast.output[0]


def _unpacked_weight(g: Graph, name: str) -> np.ndarray:
    """A ConvInteger weight: an initializer, or the nibble unpacking onnx_graph.uint8_weight
    builds (BitShift x4, Concat, optional Slice, Reshape), evaluated as ONNX defines it in uint8."""
    if name in g.inits:
        return g.init(name, np.uint8)
    l1 = g.take("BitShift")
    packed = g.init(l1.input[0], np.uint8)

    def shift(node: onnx.NodeProto, value: np.ndarray) -> np.ndarray:
        k = int(g.init(node.input[1], np.uint8).reshape(()))
        left = attrs(node).get("direction") in (b"LEFT", "LEFT")
        return (value << np.uint8(k)) if left else (value >> np.uint8(k))

    low = shift(l1, packed)
    l2 = g.take("BitShift", l1.output[0])
    low = shift(l2, low)
    h1 = g.take("BitShift", l1.input[0])
    high = shift(h1, packed)
    h2 = g.take("BitShift", h1.output[0])
    high = shift(h2, high)
    cat = g.take("Concat", l2.output[0])
    if list(cat.input) != [l2.output[0], h2.output[0]] or attrs(cat).get("axis") != 0:
        raise NotPackable(f"{cat.name}: expected Concat(low, high) on axis 0")
    flat = np.concatenate([low, high]).astype(np.uint8)
    last = cat.output[0]
    if g.peek() == "Slice":
        sl = g.take("Slice", last)
        start, end = int(g.init(sl.input[1]).ravel()[0]), int(g.init(sl.input[2]).ravel()[0])
        if start != 0 or len(sl.input) > 3:
            raise NotPackable(f"{sl.name}: expected Slice(0, end) on axis 0")
        flat, last = flat[:end], sl.output[0]
    rs = g.take("Reshape", last)
    if rs.output[0] != name:
        raise NotPackable(f"{rs.name}: unpacks {rs.output[0]}, expected {name}")
    return flat.reshape(tuple(int(d) for d in g.init(rs.input[1], np.int64)))


def _kbit_conv(g: Graph, q: str, n: int) -> tuple[onnx.NodeProto, np.ndarray, int, int]:
    """ConvInteger over k-bit levels: (node, uint8 weights halved [cout, cin, 3, 3], zero point, stride)."""
    name = next((m.input[1] for m in g.nodes[g.i:] if m.op_type == "ConvInteger"), None)
    if name is None:
        raise NotPackable(f"no ConvInteger reads {q}")
    w = _unpacked_weight(g, name)
    node = g.take("ConvInteger", q)
    if node.input[1] != name:
        raise NotPackable(f"{node.name}: unexpected weight {node.input[1]}")
    stride = conv_geometry(node, 3)
    g.scalar(node.input[2], np.uint8, n)
    zero = int(g.init(node.input[3], np.uint8).reshape(()))
    if stride not in (1, 2):
        raise NotPackable(f"{node.name}: stride {stride}, the engine runs strides 1 and 2")
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        raise NotPackable(f"{name}: weight shape {w.shape}")
    codes = w.astype(np.int32) - zero
    if (w % 2).any() or zero % 2 != 1 or np.abs(codes).max() > MAX_CODE:
        raise NotPackable(f"{name}: expected odd codes within +-{MAX_CODE} (even uint8 weights, odd zero point {zero})")
    cout, cin = w.shape[:2]
    if cin % 2 or cout % FILTERS:
        raise NotPackable(f"{node.name}: {cin} -> {cout} channels (the engine needs even inputs and outputs in fours)")
    return node, w // 2, zero, stride


def pack_nibbles(halves: np.ndarray) -> np.ndarray:
    """uint8 values < 16 -> bytes as onnx_graph.uint8_weight stores them: with half =
    ceil(count / 2), element i in the low nibble of byte i and element half + i in its high one
    (so a nibble-packed edge.onnx holds exactly these bytes, and the file refers to them)."""
    flat = halves.ravel().astype(np.uint8)
    half = (flat.size + 1) // 2
    u = np.zeros(2 * half, np.uint8)
    u[: flat.size] = flat
    return (u[:half] | (u[half:] << 4)).astype(np.uint8)


def unpack_nibbles(data: np.ndarray, count: int) -> np.ndarray:
    """Inverse of pack_nibbles: the first count values."""
    return np.concatenate([data & 15, data >> 4]).astype(np.uint8)[:count]


def onnx_raw_initializers(model: onnx.ModelProto) -> dict[tuple[str, bytes], str]:
    """(dtype name, little-endian bytes) -> name of each initializer stored as raw_data in one of
    the file's element types: what the writer refers to instead of copying (pack._write)."""
    names = {np.dtype(t): name for name, t in PACKED_DTYPES.items()}
    out: dict[tuple[str, bytes], str] = {}
    for t in model.graph.initializer:
        if not t.raw_data or t.data_location == onnx.TensorProto.EXTERNAL:
            continue
        a = numpy_helper.to_array(t)
        if a.dtype in names:
            out.setdefault((names[a.dtype], bytes(t.raw_data)), t.name)
    return out


def parse_kbit_edge(model: onnx.ModelProto) -> dict:
    """The k-bit edge graph as the engine's structure (numpy arrays, exact copies of the initializers)."""
    g = Graph(model)
    dims, sw, sb, x = parse_stem(g, model)
    _, h, w = dims
    c = sw.shape[0]
    blocks: list[dict] = []
    act_n: int | None = None
    while g.peek() == "Mul":
        scale_in, shift_in, n, q1 = _quantizer(g, x, c)
        if act_n not in (None, n):
            raise NotPackable(f"activation levels change from {act_n} to {n} between blocks")
        act_n = n
        conv1, w1, z1, stride = _kbit_conv(g, q1, n)
        cout = w1.shape[0]
        if w1.shape[1] != c:
            raise NotPackable(f"{conv1.name}: reads {w1.shape[1]} channels, the block input has {c}")
        dq1, scale1 = dequantize(g, conv1.output[0], cout)
        relu = g.take("Relu", dq1.output[0])
        mid_scale, mid_shift, n2, q2 = _quantizer(g, relu.output[0], cout)
        if n2 != n:
            raise NotPackable(f"block {len(blocks)}: activation levels {n} then {n2}")
        conv2, w2, z2, stride2 = _kbit_conv(g, q2, n)
        if stride2 != 1 or w2.shape[:2] != (cout, cout):
            raise NotPackable(f"{conv2.name}: expected a stride-1 {cout} -> {cout} conv")
        dq2, scale2 = dequantize(g, conv2.output[0], cout)
        block = {"cin": c, "cout": cout, "stride": stride, "h": h, "w": w, "bnScale": scale_in, "bnShift": shift_in,
                 "conv1": pack_nibbles(w1), "conv1Zero": z1, "conv1Scale": scale1, "midScale": mid_scale, "midShift": mid_shift,
                 "conv2": pack_nibbles(w2), "conv2Zero": z2, "scale": scale2}
        add = parse_shortcut(g, block, x, dq2.output[0])
        x = g.take("Relu", add.output[0]).output[0]
        blocks.append(block)
        c, h, w = cout, (h - 1) // stride + 1, (w - 1) // stride + 1
    if not blocks or act_n is None:
        raise NotPackable("no k-bit block after the stem (not a ConvInteger export with 2-4 bit activations)")
    exit_head = parse_exit(g, x, c, h, w)
    # the kernels' vector shapes: 8 pixels per quantizer step and conv vector, 16 per conv pass
    for b in blocks:
        ho, wo = (b["h"] - 1) // b["stride"] + 1, (b["w"] - 1) // b["stride"] + 1
        if b["w"] % 8 or wo % 8 or (ho * wo) % 16:
            raise NotPackable(f"plane {b['h']}x{b['w']} -> {ho}x{wo}: widths must be multiples of 8 and planes of 16 pixels")
    if dims[2] % 8:
        raise NotPackable("the input width must be a multiple of 8")
    return {"format": KBIT_FORMAT, "input": [3, dims[1], dims[2]], "actBits": int(act_n).bit_length(),
            "stem": {"weight": sw, "bias": sb}, "blocks": blocks, "split": [c, h, w], "exit": exit_head}
