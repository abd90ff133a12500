"""The edge graph reader both packed formats build on (training/pack.py: W1A1,
training/pack_kbit.py: k-bit): the graph's nodes in order with a cursor, its initializers as
numpy arrays, and the parts both formats share: the full-precision stem, a block's shortcut,
the split and the exit head. A graph of another shape raises NotPackable."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .contracts import EDGE_EXIT_LOGITS, EDGE_SPLIT


class NotPackable(ValueError):
    """The edge graph is not an edge of a shape the packed engine runs."""


class Graph:
    """The edge graph's nodes in order, with a cursor, and its initializers as numpy arrays."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.nodes = list(model.graph.node)
        self.i = 0
        self.inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    def take(self, op: str, first_input: str | None = None) -> onnx.NodeProto:
        if self.i >= len(self.nodes):
            raise NotPackable(f"graph ends where a {op} was expected")
        n = self.nodes[self.i]
        if n.op_type != op:
            raise NotPackable(f"node {self.i} ({n.name}) is {n.op_type}, expected {op}")
        if first_input is not None and n.input[0] != first_input:
            raise NotPackable(f"node {self.i} ({n.name}) reads {n.input[0]}, expected {first_input}")
        self.i += 1
        return n

    def peek(self) -> str | None:
        return self.nodes[self.i].op_type if self.i < len(self.nodes) else None

    def init(self, name: str, dtype: type | None = None) -> np.ndarray:
        if name not in self.inits:
            raise NotPackable(f"{name} is not an initializer")
        a = self.inits[name]
        if dtype is not None and a.dtype != dtype:
            raise NotPackable(f"{name} is {a.dtype}, expected {np.dtype(dtype)}")
        return a

    def scalar(self, name: str, dtype: type, value: int | float) -> None:
        a = self.init(name, dtype)
        if a.size != 1 or a.reshape(()) != value:
            raise NotPackable(f"{name} is {a.ravel()[:4]}, expected {value}")


def attrs(n: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


def conv_geometry(n: onnx.NodeProto, k: int) -> int:
    """Checks kernel k x k with 'same' padding (k // 2); returns the stride."""
    a = attrs(n)
    if list(a.get("kernel_shape", [k, k])) != [k, k] or list(a.get("pads", [0] * 4)) != [k // 2] * 4:
        raise NotPackable(f"{n.name}: expected a {k}x{k} kernel with pads {k // 2}, got {a}")
    if a.get("group", 1) != 1 or list(a.get("dilations", [1, 1])) != [1, 1]:
        raise NotPackable(f"{n.name}: groups and dilations are not supported")
    s = list(a.get("strides", [1, 1]))
    if s[0] != s[1]:
        raise NotPackable(f"{n.name}: unequal strides {s}")
    return int(s[0])


def channel_vector(g: Graph, name: str, c: int, dtype: type) -> np.ndarray:
    a = g.init(name, dtype)
    if a.size != c:
        raise NotPackable(f"{name}: {a.size} values for {c} channels")
    return a.reshape(c)


def dequantize(g: Graph, acc: str, cout: int) -> tuple[onnx.NodeProto, np.ndarray]:
    """A conv's DequantizeLinear of its int32 sums (both formats): one float32 scale per output
    channel on axis 1, no zero point. Returns the node and the scales."""
    dq = g.take("DequantizeLinear", acc)
    if len(dq.input) > 2 or attrs(dq).get("axis", 1) != 1:
        raise NotPackable(f"{dq.name}: expected a per-channel scale on axis 1 and no zero point")
    return dq, channel_vector(g, dq.input[1], cout, np.float32)


def parse_stem(g: Graph, model: onnx.ModelProto) -> tuple[list[int], np.ndarray, np.ndarray, str]:
    """The input [3, H, W] and the stem (3x3 Conv with bias, Relu): (dims, weight, bias, output name)."""
    inp = model.graph.input[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim][1:]
    if len(dims) != 3 or dims[0] != 3:
        raise NotPackable(f"input {inp.name} has shape {dims}, expected [3, H, W]")
    stem = g.take("Conv", inp.name)
    if conv_geometry(stem, 3) != 1 or len(stem.input) != 3:
        raise NotPackable("the stem must be a stride-1 3x3 Conv with a bias")
    sw, sb = g.init(stem.input[1], np.float32), g.init(stem.input[2], np.float32)
    return dims, sw, sb, g.take("Relu", stem.output[0]).output[0]


def parse_exit(g: Graph, x: str, c: int, h: int, w: int) -> dict:
    """The split (Identity of the last block's output x, c x h x w) and the exit head
    (AveragePool k x k stride k -> Flatten -> Gemm over the int8 exit weight); checks that the
    graph ends there."""
    split = g.take("Identity", x)
    if split.output[0] != EDGE_SPLIT:
        raise NotPackable("the last block must feed the split output")
    pool = g.take("AveragePool", EDGE_SPLIT)
    pa = attrs(pool)
    k = list(pa.get("kernel_shape", []))
    if len(k) != 2 or k[0] != k[1] or list(pa.get("strides", [1, 1])) != k or any(pa.get("pads", [0] * 4)) or pa.get("ceil_mode", 0):
        raise NotPackable(f"{pool.name}: expected AveragePool kernel k x k, stride k, no padding; got {pa}")
    flat = g.take("Flatten", pool.output[0])
    cast = g.take("Cast")
    mul = g.take("Mul", cast.output[0])
    fw, fscale = _exit_weight(g, cast, mul)
    gemm = g.take("Gemm", flat.output[0])
    ga = attrs(gemm)
    if ga.get("transB", 0) != 1 or ga.get("transA", 0) != 0 or ga.get("alpha", 1.0) != 1.0 or ga.get("beta", 1.0) != 1.0 or gemm.output[0] != EDGE_EXIT_LOGITS:
        raise NotPackable(f"{gemm.name}: expected exit_logits = flat @ W^T + b")
    if gemm.input[1] != mul.output[0]:
        raise NotPackable(f"{gemm.name}: the weight must be the int8 exit weight (Cast(codes) * scale)")
    fb = g.init(gemm.input[2], np.float32)
    features = c * ((h - k[0]) // k[0] + 1) * ((w - k[0]) // k[0] + 1)
    if fw.shape[1] != features or fb.shape != (fw.shape[0],):
        raise NotPackable(f"exit FC {fw.shape} does not take {features} features")
    if g.i != len(g.nodes):
        raise NotPackable(f"unexpected nodes after the exit head: {[n.op_type for n in g.nodes[g.i:]]}")
    return {"pool": k[0], "weight": fw, "weightScale": fscale, "bias": fb}


def _exit_weight(g: Graph, cast: onnx.NodeProto, mul: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray]:
    """The exit FC's weight: Cast(int8 codes [classes, features]) to float * a float32 scale per
    row ([classes, 1]), i.e. float(code) * scale (training.quant.exit_weight_codes)."""
    if attrs(cast).get("to") != onnx.TensorProto.FLOAT:
        raise NotPackable(f"{cast.name}: expected a Cast of the exit weight's int8 codes to float")
    codes = g.init(cast.input[0], np.int8)
    scale = g.init(mul.input[1], np.float32)
    if codes.ndim != 2 or scale.shape != (codes.shape[0], 1):
        raise NotPackable(f"{mul.name}: codes {codes.shape} and scale {scale.shape} do not match (one scale per row)")
    if np.any(codes == -128):
        raise NotPackable(f"{cast.name}: codes must lie in [-127, 127]")
    return codes, scale.ravel()


def parse_shortcut(g: Graph, block: dict, x: str, conv2_out: str) -> onnx.NodeProto:
    """A block's shortcut, the same in both formats, after its conv2 (output conv2_out): identity
    (+ shift, + the block input x) or projection (1x1 Conv of x with bias, then Add). Records
    shift or shortcutWeight + shortcutBias in block; returns the residual Add."""
    c, cout, stride = block["cin"], block["cout"], block["stride"]
    if g.peek() == "Add":  # identity shortcut: + shift, + x
        if stride != 1 or cout != c:
            raise NotPackable(f"block at {x}: an identity shortcut needs stride 1 and {c} -> {c} channels")
        shift = g.take("Add", conv2_out)
        block["shift"] = channel_vector(g, shift.input[1], cout, np.float32)
        add = g.take("Add", shift.output[0])
        if add.input[1] != x:
            raise NotPackable(f"{add.name}: the residual must add the block input {x}")
        return add
    # projection shortcut: Conv 1x1 of the block input (bias holds the bn_out shift)
    sc = g.take("Conv", x)
    if conv_geometry(sc, 1) != stride or len(sc.input) != 3:
        raise NotPackable(f"{sc.name}: expected a 1x1 conv with bias and stride {stride}")
    scw = g.init(sc.input[1], np.float32)
    if scw.shape != (cout, c, 1, 1):
        raise NotPackable(f"{sc.name}: weight shape {scw.shape}")
    block["shortcutWeight"] = scw.reshape(cout, c)
    block["shortcutBias"] = channel_vector(g, sc.input[2], cout, np.float32)
    add = g.take("Add", conv2_out)
    if add.input[1] != sc.output[0]:
        raise NotPackable(f"{add.name}: the residual must add the shortcut conv")
    return add
