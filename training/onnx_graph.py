"""Build the edge and cloud ONNX graphs by hand from a trained SplitResNet.

Why by hand rather than torch.onnx.export: full control over what ships (BatchNorm folded into
full-precision convs; quantized conv weights stored as int8 codes + per-filter scales through
DequantizeLinear, so a binarized edge is ~1/4 of the float size and the graph computes the
exact quantized values PyTorch uses), and no dependence on exporter behaviour that differs
between the torch versions we train with (2.11 on the GPU machine, 2.13 here).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from .contracts import CLOUD_INPUT, CLOUD_OUTPUT, EDGE_EXIT_LOGITS, EDGE_INPUT, EDGE_SPLIT
from .model import EXIT_POOL, BasicBlock, QuantBlock, Shortcut, SplitResNet, split_shape
from .quant import FULL_PRECISION, exit_weight_codes, levels, weight_codes

OPSET = 17
INT8_MAX_BITS = 7  # codes of up to 7-bit weights fit int8 (odd integers in [-(2^k-1), 2^k-1])


def f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def bn_affine(bn: nn.BatchNorm2d | nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BN as y = x * s + t (computed in float64)."""
    var = bn.running_var.detach().double().numpy()
    mean = bn.running_mean.detach().double().numpy()
    gamma = bn.weight.detach().double().numpy()
    beta = bn.bias.detach().double().numpy()
    s = gamma / np.sqrt(var + bn.eps)
    return s, beta - mean * s


class GraphBuilder:
    def __init__(self, integer_convs: bool = False, binary_thresholds: bool = True, pack_nibbles: bool = True) -> None:
        self.integer_convs = integer_convs
        self.pack_nibbles = pack_nibbles
        self.binary_thresholds = binary_thresholds
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def shared(self, name: str, array: np.ndarray) -> str:
        """An initializer that many nodes use, stored once."""
        if not any(t.name == name for t in self.inits):
            self.init(name, array)
        return name

    def node(self, op: str, inputs: list[str], stem: str, output: str | None = None, **attrs) -> str:
        out = output or self.fresh(stem)
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.fresh(op), **attrs))
        return out

    # -- layers
    def conv(self, x: str, name: str, weight: np.ndarray, bias: np.ndarray | None, stride: int, pad: int) -> str:
        inputs = [x, self.init(f"{name}.weight", f32(weight))]
        if bias is not None:
            inputs.append(self.init(f"{name}.bias", f32(bias)))
        return self._conv(inputs, name, weight.shape[2], stride, pad)

    def dq_conv(self, x: str, name: str, codes: np.ndarray, scale: np.ndarray, bias: np.ndarray | None, stride: int, pad: int) -> str:
        """Conv whose weight is DequantizeLinear(int8 codes, per-output-filter scale)."""
        q = self.init(f"{name}.weight_codes", codes.astype(np.int8))
        s = self.init(f"{name}.weight_scale", f32(scale))
        z = self.init(f"{name}.weight_zero", np.zeros(len(scale), dtype=np.int8))
        w = self.node("DequantizeLinear", [q, s, z], f"{name}.weight", axis=0)
        inputs = [x, w] + ([self.init(f"{name}.bias", f32(bias))] if bias is not None else [])
        return self._conv(inputs, name, codes.shape[2], stride, pad)

    def _conv(self, inputs: list[str], name: str, k: int, stride: int, pad: int) -> str:
        return self.node("Conv", inputs, name, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)

    def affine(self, x: str, name: str, s: np.ndarray, t: np.ndarray) -> str:
        shape = (1, -1, 1, 1)
        y = self.node("Mul", [x, self.init(f"{name}.scale", f32(s.reshape(shape)))], name)
        return self.node("Add", [y, self.init(f"{name}.shift", f32(t.reshape(shape)))], name)

    def quant_act(self, x: str, name: str, bits: int) -> str:
        """Same float operations, in the same order, as quant.quantize_activation (eval)."""
        if bits >= FULL_PRECISION:
            return x
        if bits == 1:
            ge = self.node("GreaterOrEqual", [x, self.init(f"{name}.zero", f32(np.zeros(())))], name)
            return self.node("Where", [ge, self.init(f"{name}.pos", f32(np.ones(()))), self.init(f"{name}.neg", f32(-np.ones(())))], name)
        n = float(levels(bits) - 1)
        c = self.node("Clip", [x, self.init(f"{name}.lo", f32(-np.ones(()))), self.init(f"{name}.hi", f32(np.ones(())))], name)
        c = self.node("Add", [c, self.init(f"{name}.one", f32(np.ones(())))], name)
        c = self.node("Mul", [c, self.init(f"{name}.half_n", f32(np.array(n / 2.0)))], name)
        c = self.node("Round", [c], name)
        c = self.node("Mul", [c, self.init(f"{name}.two_over_n", f32(np.array(2.0 / n)))], name)
        return self.node("Sub", [c, f"{name}.one"], name)

    def affine_act_u8(self, x: str, name: str, s: np.ndarray, t: np.ndarray, bits: int) -> str:
        """quant_act(x * s + t) as a uint8 level for ConvInteger: q = 2L for level L in 0..n
        (n = 2^bits - 1), so that q - n = 2L - n = n * value, value = (2L - n)/n in [-1, 1]
        (1 bit: q is 0 or 2 and q - 1 = sign). For 1 bit the BN shift moves into the comparison:
        fl(x*s + t) >= 0 exactly when fl(x*s) >= -t (round-to-nearest keeps the sign of a sum
        and gives 0 only for an exact 0), so this is the float graph's decision, one op cheaper."""
        shape = (1, -1, 1, 1)
        if bits == 1:
            y = self.node("Mul", [x, self.init(f"{name}.scale", f32(s.reshape(shape)))], name)
            ge = self.node("GreaterOrEqual", [y, self.init(f"{name}.neg_shift", -f32(t.reshape(shape)))], name)
            return self.node("Where", [ge, self.init(f"{name}.two_u8", np.array(2, np.uint8)), self.init(f"{name}.zero_u8", np.array(0, np.uint8))], name)
        x = self.affine(x, name, s, t)
        n = float(levels(bits) - 1)
        c = self.node("Clip", [x, self.init(f"{name}.lo", f32(-np.ones(()))), self.init(f"{name}.hi", f32(np.ones(())))], name)
        c = self.node("Add", [c, self.init(f"{name}.one", f32(np.ones(())))], name)
        c = self.node("Mul", [c, self.init(f"{name}.half_n", f32(np.array(n / 2.0)))], name)
        c = self.node("Round", [c], name)
        c = self.node("Mul", [c, self.init(f"{name}.two", f32(np.array(2.0)))], name)
        return self.node("Cast", [c], name, to=TensorProto.UINT8)

    def int_conv(self, x_u8: str, name: str, act_bits: int, codes: np.ndarray, scale: np.ndarray | None, stride: int, pad: int) -> str:
        """Exact integer conv, no bias: ConvInteger over uint8 activation levels and uint8 weight
        codes, both with a zero point, so sum (x - zx)(w - zw) = sum (n * value) * code in int32
        (exact; padding takes the zero point, i.e. contributes 0 like the float conv's zeros),
        then DequantizeLinear(int32, per-filter scale), i.e. Cast and Mul in one op.
        uint8 on both sides: onnxruntime's WASM build has a fast U8U8 kernel (U8S8 measured 6x
        slower), and its ConvInteger takes only a scalar weight zero point, which odd codes in
        [-(2^k-1), 2^k-1] shifted by 2^k-1 satisfy."""
        n_act = levels(act_bits) - 1
        zw = max(int(np.abs(codes).max()), 1)
        wq = self.uint8_weight(f"{name}.weight_u8", (codes.astype(np.int32) + zw).astype(np.uint8))
        xz = self.init(f"{name}.x_zero", np.array(n_act, np.uint8))
        wz = self.init(f"{name}.w_zero", np.array(zw, np.uint8))
        k = codes.shape[2]
        acc = self.node("ConvInteger", [x_u8, wq, xz, wz], name, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)
        if scale is None:
            return acc  # the int32 sums, for a consumer that thresholds them (binary_sign_of_conv)
        return self.node("DequantizeLinear", [acc, self.init(f"{name}.scale", f32(scale / n_act))], name, axis=1)

    def uint8_weight(self, name: str, w: np.ndarray) -> str:
        """A ConvInteger weight of k-bit codes shifted by their zero point. For k >= 2 the shifted
        codes are even (odd code + odd zero point) and at most 2 * 15, so w / 2 fits a nibble:
        stored two per byte, first half of the tensor in the low nibbles, second half in the high,
        and unpacked by shifts (exact in uint8). All inputs are constant, so onnxruntime folds the
        unpacking into a uint8 initializer at session creation: the ConvInteger runs as before.
        Why: gzip packs one 4-bit code per byte to ~4.1 bits, two per byte to ~3.1 (the codes'
        entropy is ~3.3), i.e. 108 -> 92 KiB for a W4A4 cut-24 edge in the Worker bundle.
        Binary and 2-bit weights (at most 6) stay plain: gzip already codes them near their
        entropy (nibbles made a random 2-bit edge 4 % larger), and the packed engine reads binary
        ones as they are."""
        if self.pack_nibbles and 6 < w.max() <= 30 and not (w % 2).any():
            half = (w.size + 1) // 2
            u = np.zeros(2 * half, np.uint8)
            u[: w.size] = w.ravel() // 2
            packed = self.init(f"{name}.nibbles", (u[:half] | (u[half:] << 4)).astype(np.uint8))
            four, three, one = (self.shared(f"nibbles.shift{k}", np.array(k, np.uint8)) for k in (4, 3, 1))
            low = self.node("BitShift", [self.node("BitShift", [packed, four], name, direction="LEFT"), three], name, direction="RIGHT")
            high = self.node("BitShift", [self.node("BitShift", [packed, four], name, direction="RIGHT"), one], name, direction="LEFT")
            flat = self.node("Concat", [low, high], name, axis=0)
            if u.size != w.size:  # an odd count: drop the padding code
                flat = self.node("Slice", [flat, self.init(f"{name}.start", np.array([0], np.int64)), self.init(f"{name}.end", np.array([w.size], np.int64))], name)
            return self.node("Reshape", [flat, self.init(f"{name}.shape", np.array(w.shape, np.int64))], name, output=name)
        return self.init(name, w)

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], "relu")

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b], "add")


def conv_bn(g: GraphBuilder, x: str, name: str, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> str:
    """Full-precision conv with its BN folded in."""
    s, t = bn_affine(bn)
    w = conv.weight.detach().double().numpy() * s[:, None, None, None]
    return g.conv(x, name, w, t, conv.stride[0], conv.padding[0])


def shortcut(g: GraphBuilder, x: str, name: str, sc: Shortcut) -> str:
    return conv_bn(g, x, f"{name}.shortcut", sc.conv, sc.bn) if sc.project else x


def basic_block(g: GraphBuilder, x: str, name: str, b: BasicBlock) -> str:
    out = g.relu(conv_bn(g, x, f"{name}.conv1", b.conv1, b.bn1))
    out = conv_bn(g, out, f"{name}.conv2", b.conv2, b.bn2)
    return g.relu(g.add(out, shortcut(g, x, name, b.shortcut)))


def integer_path(b: QuantBlock, g: GraphBuilder) -> bool:
    """ConvInteger is exact where both activation levels and weight codes fit uint8 with a zero point."""
    return g.integer_convs and b.act_bits <= INT8_MAX_BITS and b.weight_bits <= INT8_MAX_BITS


def quant_conv(g: GraphBuilder, x: str, name: str, conv: nn.Conv2d, bits: int,
               out_affine: tuple[np.ndarray, np.ndarray] | None) -> str:
    """Quantized-weight conv; a following BN (out_affine) folds into the per-filter scale."""
    s_out, t_out = out_affine if out_affine else (None, None)
    stride, pad = conv.stride[0], conv.padding[0]
    if bits >= FULL_PRECISION:
        w = conv.weight.detach().double().numpy()
        if s_out is not None:
            w = w * s_out[:, None, None, None]
        return g.conv(x, name, w, t_out, stride, pad)
    codes, scale = weight_codes(conv.weight.detach(), bits)
    codes_np, scale_np = codes.numpy(), scale.double().numpy()
    if s_out is not None:
        scale_np = scale_np * s_out
    if bits <= INT8_MAX_BITS:
        return g.dq_conv(x, name, codes_np, scale_np, t_out, stride, pad)
    return g.conv(x, name, codes_np.astype(np.float64) * scale_np[:, None, None, None], t_out, stride, pad)


def quant_block(g: GraphBuilder, x: str, name: str, b: QuantBlock) -> str:
    if integer_path(b, g):
        return int_quant_block(g, x, name, b)
    out = g.affine(x, f"{name}.bn_in", *bn_affine(b.bn_in))
    out = g.quant_act(out, f"{name}.act1", b.act_bits)
    out = g.relu(quant_conv(g, out, f"{name}.conv1", b.conv1, b.weight_bits, None))
    out = g.affine(out, f"{name}.bn_mid", *bn_affine(b.bn_mid))
    out = g.quant_act(out, f"{name}.act2", b.act_bits)
    out = quant_conv(g, out, f"{name}.conv2", b.conv2, b.weight_bits, bn_affine(b.bn_out))
    return g.relu(g.add(out, shortcut(g, x, name, b.shortcut)))


THRESHOLD_NEVER = 2**30  # |int32 sums| of a binary 3x3 conv stay below 9 * 64 channels


def binary_sign_thresholds(scale: np.ndarray, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sign(BN(ReLU(conv))) of a binary block's first conv as an integer test on its int32 sums.

    The next activation is [relu(acc * scale) * s + t >= 0] per output channel (scale > 0). For
    s > 0 that is acc >= ceil(-t / (scale s)) (always true when t >= 0); for s < 0 it is
    acc <= floor(t / (scale |s|)) (never when t < 0), which the filter's codes negated turn into
    -acc >= -floor(...); s = 0 leaves the constant t >= 0. Returns (per-filter sign to apply to
    the codes, int32 thresholds). Computed in float64: the real-valued decision, which the float
    graph and PyTorch approximate in float32."""
    flip = np.where(s < 0, -1, 1)
    thr = np.empty(len(s), dtype=np.int64)
    for c, (a, sc, tc) in enumerate(zip(scale, s, t)):
        if a * sc == 0:  # a zero filter or a zero BN scale: the decision is the constant t >= 0
            thr[c] = -THRESHOLD_NEVER if tc >= 0 else THRESHOLD_NEVER
        elif sc > 0:
            thr[c] = -THRESHOLD_NEVER if tc >= 0 else min(THRESHOLD_NEVER, np.ceil(-tc / (a * sc)))
        elif sc < 0:
            thr[c] = THRESHOLD_NEVER if tc < 0 else -min(THRESHOLD_NEVER, np.floor(tc / (a * -sc)))
    return flip, thr.astype(np.int32)  # every entry in [-2^30, 2^30]


def int_quant_block(g: GraphBuilder, x: str, name: str, b: QuantBlock) -> str:
    """The same block with ConvInteger (see GraphBuilder.int_conv): BN -> q as uint8 levels ->
    ConvInteger -> per-filter scale -> ReLU -> BN -> q -> ConvInteger -> scale (bn_out folded)
    -> + bn_out shift + shortcut -> ReLU. A projection shortcut absorbs the bn_out shift in its bias."""
    c1, c2 = b.conv1, b.conv2
    codes1, scale1 = (a.numpy() for a in weight_codes(c1.weight.detach(), b.weight_bits))
    codes2, scale2 = (a.numpy() for a in weight_codes(c2.weight.detach(), b.weight_bits))
    s_out, t_out = bn_affine(b.bn_out)
    q = g.affine_act_u8(x, f"{name}.bn_in", *bn_affine(b.bn_in), b.act_bits)
    if b.act_bits == 1 and g.binary_thresholds:
        # ConvInteger -> one integer comparison -> uint8 sign level (3 float ops fewer per block)
        flip, thr = binary_sign_thresholds(scale1.astype(np.float64), *bn_affine(b.bn_mid))
        acc = g.int_conv(q, f"{name}.conv1", b.act_bits, codes1 * flip[:, None, None, None], None, c1.stride[0], c1.padding[0])
        ge = g.node("GreaterOrEqual", [acc, g.init(f"{name}.bn_mid.threshold", thr.reshape(1, -1, 1, 1))], f"{name}.bn_mid")
        q = g.node("Where", [ge, g.init(f"{name}.bn_mid.two_u8", np.array(2, np.uint8)), g.init(f"{name}.bn_mid.zero_u8", np.array(0, np.uint8))], f"{name}.bn_mid")
    else:
        out = g.relu(g.int_conv(q, f"{name}.conv1", b.act_bits, codes1, scale1.astype(np.float64), c1.stride[0], c1.padding[0]))
        q = g.affine_act_u8(out, f"{name}.bn_mid", *bn_affine(b.bn_mid), b.act_bits)
    out = g.int_conv(q, f"{name}.conv2", b.act_bits, codes2, scale2.astype(np.float64) * s_out, c2.stride[0], c2.padding[0])
    sc = b.shortcut
    if sc.project:
        s, t = bn_affine(sc.bn)
        w = sc.conv.weight.detach().double().numpy() * s[:, None, None, None]
        short = g.conv(x, f"{name}.shortcut", w, t + t_out, sc.conv.stride[0], sc.conv.padding[0])
    else:
        out = g.node("Add", [out, g.init(f"{name}.conv2.shift", f32(t_out.reshape(1, -1, 1, 1)))], f"{name}.conv2")
        short = x
    return g.relu(g.add(out, short))


def block(g: GraphBuilder, x: str, name: str, b: nn.Module) -> str:
    return quant_block(g, x, name, b) if isinstance(b, QuantBlock) else basic_block(g, x, name, b)


def make_model(g: GraphBuilder, inputs: list, outputs: list, name: str) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fogline-training")
    m.ir_version = 8  # readable by every onnxruntime >= 1.14 (web and node)
    onnx.checker.check_model(m, full_check=True)
    return m


def tensor_info(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# Quantized edge convs as exact ConvInteger (uint8 levels x uint8 codes, int32 sums) rather than
# float Conv over DequantizeLinear'd weights: onnxruntime-web's edge graph of the cut-16 W1A1
# model ran in ~0.7x the time (docs/performance.md). `export --conv float` goes back.
DEFAULT_INTEGER_CONVS = True


def build_edge(model: SplitResNet, integer_convs: bool = DEFAULT_INTEGER_CONVS, pack_nibbles: bool = True) -> onnx.ModelProto:
    g = GraphBuilder(integer_convs, pack_nibbles=pack_nibbles)
    x = g.relu(conv_bn(g, EDGE_INPUT, "stem.conv", model.stem.conv, model.stem.bn))
    for i, b in enumerate(model.edge):
        x = block(g, x, f"edge.{i}", b)
    split = g.node("Identity", [x], EDGE_SPLIT, output=EDGE_SPLIT)
    pooled = g.node("AveragePool", [split], "exit.pool", kernel_shape=[EXIT_POOL] * 2, strides=[EXIT_POOL] * 2)
    flat = g.node("Flatten", [pooled], "exit.flat", axis=1)
    fc = model.exit.fc
    # The int8 weights the model's exit computes with, as Cast(codes) * scale: constant inputs, so
    # onnxruntime folds them into a float initializer at session creation and the Gemm runs (and
    # sums) exactly as over a float weight. A DequantizeLinear is not folded (ORT keeps it for its
    # QDQ fusions): the Gemm then takes a computed weight and sums in another order.
    codes, scale = exit_weight_codes(fc.weight)
    cast = g.node("Cast", [g.init("exit.fc.weight_codes", codes.numpy().astype(np.int8))], "exit.fc.weight", to=TensorProto.FLOAT)
    weight = g.node("Mul", [cast, g.init("exit.fc.weight_scale", f32(scale.numpy()[:, None]))], "exit.fc.weight")
    g.node("Gemm", [flat, weight, g.init("exit.fc.bias", f32(fc.bias.detach().numpy()))], "exit.fc", output=EDGE_EXIT_LOGITS, transB=1)
    c, h, w = model_split_shape(model)
    n = model.config.num_classes
    return make_model(g, [tensor_info(EDGE_INPUT, ["N", 3, 32, 32])],
                      [tensor_info(EDGE_EXIT_LOGITS, ["N", n]), tensor_info(EDGE_SPLIT, ["N", c, h, w])], "fogline_edge")


def build_cloud(model: SplitResNet) -> onnx.ModelProto:
    g = GraphBuilder()
    x = CLOUD_INPUT
    offset = len(model.edge)
    for i, b in enumerate(model.tail):
        x = block(g, x, f"tail.{offset + i}", b)
    pooled = g.node("GlobalAveragePool", [x], "head.pool")
    flat = g.node("Flatten", [pooled], "head.flat", axis=1)
    s, t = bn_affine(model.head.bn)  # fold BatchNorm1d into the FC: W(xs + t) + b
    w = model.head.fc.weight.detach().double().numpy()
    b = model.head.fc.bias.detach().double().numpy()
    g.node("Gemm", [flat, g.init("head.fc.weight", f32(w * s[None, :])), g.init("head.fc.bias", f32(w @ t + b))],
           "head.fc", output=CLOUD_OUTPUT, transB=1)
    c, h, w_ = model_split_shape(model)
    return make_model(g, [tensor_info(CLOUD_INPUT, ["N", c, h, w_])], [tensor_info(CLOUD_OUTPUT, ["N", model.config.num_classes])], "fogline_cloud")


def model_split_shape(model: SplitResNet) -> tuple[int, int, int]:
    return split_shape(model.config.cut)


def build_full(model: SplitResNet, edge_form: bool = False) -> onnx.ModelProto:
    """The whole network in one graph, without the exit head: image -> logits. For the
    full-precision ResNet-32 baselines of the benchmark ("everything in the cloud", "everything at
    the edge"). With edge_form the outputs take the edge contract's names, exit_logits (the final
    logits) and split (the last feature map, [N,64,8,8]), so the Worker can serve it unchanged."""
    g = GraphBuilder()
    x = g.relu(conv_bn(g, EDGE_INPUT, "stem.conv", model.stem.conv, model.stem.bn))
    for i, b in enumerate(list(model.edge) + list(model.tail)):
        x = block(g, x, f"block.{i}", b)
    features = g.node("Identity", [x], EDGE_SPLIT, output=EDGE_SPLIT) if edge_form else x
    pooled = g.node("GlobalAveragePool", [features], "head.pool")
    flat = g.node("Flatten", [pooled], "head.flat", axis=1)
    s, t = bn_affine(model.head.bn)
    w = model.head.fc.weight.detach().double().numpy()
    b = model.head.fc.bias.detach().double().numpy()
    out = EDGE_EXIT_LOGITS if edge_form else CLOUD_OUTPUT
    g.node("Gemm", [flat, g.init("head.fc.weight", f32(w * s[None, :])), g.init("head.fc.bias", f32(w @ t + b))],
           "head.fc", output=out, transB=1)
    n = model.config.num_classes
    outputs = [tensor_info(out, ["N", n])] + ([tensor_info(EDGE_SPLIT, ["N", 64, 8, 8])] if edge_form else [])
    return make_model(g, [tensor_info(EDGE_INPUT, ["N", 3, 32, 32])], outputs, "fogline_full")


def build_head(model: SplitResNet) -> onnx.ModelProto:
    """Only the final head (global pool -> BN1d folded into FC): split [N,64,8,8] -> logits."""
    g = GraphBuilder()
    pooled = g.node("GlobalAveragePool", [CLOUD_INPUT], "head.pool")
    flat = g.node("Flatten", [pooled], "head.flat", axis=1)
    s, t = bn_affine(model.head.bn)
    w = model.head.fc.weight.detach().double().numpy()
    b = model.head.fc.bias.detach().double().numpy()
    g.node("Gemm", [flat, g.init("head.fc.weight", f32(w * s[None, :])), g.init("head.fc.bias", f32(w @ t + b))],
           "head.fc", output=CLOUD_OUTPUT, transB=1)
    return make_model(g, [tensor_info(CLOUD_INPUT, ["N", 64, 8, 8])], [tensor_info(CLOUD_OUTPUT, ["N", model.config.num_classes])], "fogline_head")
