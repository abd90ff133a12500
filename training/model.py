"""Hybrid CIFAR ResNet-32 split into an edge part (stem, quantized blocks, early exit) and a
full-precision cloud tail (Long, Chakraborty, Roy 2020; docs/background.md#the-network).

The model holds no training code. ``forward`` always returns (exit_logits, split, logits) so
batching and export stay simple; the exit *policy* (entropy < threshold) is applied outside
it (``metrics.py``, as the Worker does).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .quant import FULL_PRECISION, quantize_activation, quantize_exit_weight, quantize_weight

BLOCKS_PER_STAGE = 5  # ResNet-32: 3 stages x 5 BasicBlocks x 2 convs = 30 convs + stem + FC
STAGE_WIDTHS = (16, 32, 64)
VALID_CUTS = (4, 10, 16, 20, 24)
VALID_BITS = (1, 2, 4, 8, 32)
EXIT_POOL = 3  # avg_pool2d(kernel 3, stride 3) before the exit FC, as the official code


@dataclass
class ModelConfig:
    num_classes: int = 10
    cut: int = 16  # quantized convs on the edge (2 per block)
    weight_bits: int = 1
    act_bits: int = 1

    def __post_init__(self) -> None:
        if self.cut not in VALID_CUTS:
            raise ValueError(f"cut must be one of {VALID_CUTS}, got {self.cut}")
        for name in ("weight_bits", "act_bits"):
            if getattr(self, name) not in VALID_BITS:
                raise ValueError(f"{name} must be one of {VALID_BITS}, got {getattr(self, name)}")

    @property
    def edge_blocks(self) -> int:
        return self.cut // 2

    @property
    def quantized(self) -> bool:
        return self.weight_bits < FULL_PRECISION or self.act_bits < FULL_PRECISION

    def to_dict(self) -> dict:
        return asdict(self)


def block_plan() -> list[tuple[int, int, int, int]]:
    """(in_channels, out_channels, stride, input_size) of the 15 BasicBlocks, in order."""
    plan, in_ch, size = [], STAGE_WIDTHS[0], 32
    for stage, width in enumerate(STAGE_WIDTHS):
        for i in range(BLOCKS_PER_STAGE):
            stride = 2 if stage > 0 and i == 0 else 1
            plan.append((in_ch, width, stride, size))
            in_ch, size = width, size // stride
    return plan


def split_shape(cut: int) -> tuple[int, int, int]:
    in_ch, out_ch, stride, size = block_plan()[cut // 2 - 1]
    return out_ch, size // stride, size // stride


def exit_features(cut: int) -> int:
    ch, h, w = split_shape(cut)
    return ch * (h // EXIT_POOL) * (w // EXIT_POOL)


class Shortcut(nn.Module):
    """Identity, or the full-precision 1x1 conv + BN when the block changes shape."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.project = stride != 1 or in_ch != out_ch
        if self.project:
            self.conv = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)
            self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x)) if self.project else x


class BasicBlock(nn.Module):
    """Full-precision block: conv-BN-ReLU-conv-BN, add shortcut, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = Shortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class QuantBlock(nn.Module):
    """Edge block in the paper's "BN -> quantize -> conv" order:
    BN -> q -> conv3x3 -> ReLU -> BN -> q -> conv3x3 -> BN -> + shortcut -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, weight_bits: int, act_bits: int) -> None:
        super().__init__()
        self.weight_bits, self.act_bits = weight_bits, act_bits
        self.bn_in = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn_mid = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn_out = nn.BatchNorm2d(out_ch)
        self.shortcut = Shortcut(in_ch, out_ch, stride)

    def qconv(self, conv: nn.Conv2d, x: Tensor) -> Tensor:
        x = quantize_activation(x, self.act_bits, self.training)
        w = quantize_weight(conv.weight, self.weight_bits)
        return F.conv2d(x, w, None, conv.stride, conv.padding)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.qconv(self.conv1, self.bn_in(x)))
        out = self.bn_out(self.qconv(self.conv2, self.bn_mid(out)))
        return F.relu(out + self.shortcut(x))


class ExitHead(nn.Module):
    """avg_pool2d(3, 3) -> flatten -> one FC (the paper's exit classifier), whose weights are
    int8 per row (quant.exit_weight_codes), as the edge ships them."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.flatten(F.avg_pool2d(x, EXIT_POOL, EXIT_POOL), 1)
        return F.linear(pooled, quantize_exit_weight(self.fc.weight), self.fc.bias)


class FinalHead(nn.Module):
    """Global average pool -> BatchNorm1d -> FC."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(features)
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.bn(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)))


class Stem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, STAGE_WIDTHS[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(STAGE_WIDTHS[0])

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class SplitResNet(nn.Module):
    """edge = stem + first ``cut/2`` blocks (quantized unless 32 bits) + exit head;
    cloud = remaining full-precision blocks + final head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        plan = block_plan()
        n_edge = config.edge_blocks

        def edge_block(i: int, o: int, s: int) -> nn.Module:
            if config.quantized:
                return QuantBlock(i, o, s, config.weight_bits, config.act_bits)
            return BasicBlock(i, o, s)

        self.stem = Stem()
        self.edge = nn.Sequential(*(edge_block(i, o, s) for i, o, s, _ in plan[:n_edge]))
        self.exit = ExitHead(exit_features(config.cut), config.num_classes)
        self.tail = nn.Sequential(*(BasicBlock(i, o, s) for i, o, s, _ in plan[n_edge:]))
        self.head = FinalHead(STAGE_WIDTHS[-1], config.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # zero-init the last BN of each residual branch: blocks start as identities
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def edge_forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        split = self.edge(self.stem(image))
        return self.exit(split), split

    def cloud_forward(self, split: Tensor) -> Tensor:
        return self.head(self.tail(split))

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        exit_logits, split = self.edge_forward(image)
        return exit_logits, split, self.cloud_forward(split)


def entropy(logits: Tensor) -> Tensor:
    """Softmax entropy in nats, computed stably from log-softmax (float64)."""
    logp = F.log_softmax(logits.double(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


# ---- MAC and parameter counting (from the module structure, cross-checked against ONNX) ----

@dataclass
class MacCounts:
    edge_quantized: int = 0
    edge_full_precision: int = 0
    exit_head: int = 0
    cloud: int = 0  # tail convs + final FC
    cloud_fc: int = 0
    per_layer: list[dict] = field(default_factory=list)

    @property
    def full_precision_baseline(self) -> int:
        """Conv MACs of the plain ResNet-32 (no exit): edge + cloud convs (FCs excluded)."""
        return self.edge_quantized + self.edge_full_precision + self.cloud - self.cloud_fc


def conv_macs(conv: nn.Conv2d, out_size: int) -> int:
    k = conv.kernel_size[0] * conv.kernel_size[1]
    return conv.in_channels // conv.groups * conv.out_channels * k * out_size * out_size


def count_macs(model: SplitResNet) -> MacCounts:
    """Multiply-accumulates per image. Convs counted as in the paper (69.12 M conv MACs for
    ResNet-32); FC layers counted separately (exit head) or inside the cloud part."""
    counts = MacCounts()
    counts.edge_full_precision += conv_macs(model.stem.conv, 32)
    counts.per_layer.append({"layer": "stem.conv", "part": "edge", "bits": 32, "macs": conv_macs(model.stem.conv, 32)})
    plan = block_plan()
    for idx, (block, (_, _, stride, size)) in enumerate(zip(list(model.edge) + list(model.tail), plan)):
        out = size // stride
        on_edge = idx < len(model.edge)
        quant = on_edge and isinstance(block, QuantBlock)
        bits = min(model.config.weight_bits, model.config.act_bits) if quant else 32
        for name, conv, o in (("conv1", block.conv1, out), ("conv2", block.conv2, out)):
            macs = conv_macs(conv, o)
            counts.per_layer.append({"layer": f"block{idx}.{name}", "part": "edge" if on_edge else "cloud", "bits": bits, "macs": macs})
            if quant:
                counts.edge_quantized += macs
            elif on_edge:
                counts.edge_full_precision += macs
            else:
                counts.cloud += macs
        if block.shortcut.project:
            macs = conv_macs(block.shortcut.conv, out)
            counts.per_layer.append({"layer": f"block{idx}.shortcut", "part": "edge" if on_edge else "cloud", "bits": 32, "macs": macs})
            if on_edge:
                counts.edge_full_precision += macs
            else:
                counts.cloud += macs
    counts.exit_head = model.exit.fc.in_features * model.exit.fc.out_features
    fc = model.head.fc.in_features * model.head.fc.out_features
    counts.cloud += fc
    counts.cloud_fc = fc
    return counts


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def param_counts(model: SplitResNet) -> dict:
    """Parameters per precision class (the manifest's ``params``, the energy model's memory
    term): quantized edge conv weights, the rest of the edge (stem, BN, shortcuts, exit head),
    the cloud part, and the full-precision ResNet-32 without the exit."""
    quantized = sum(b.conv1.weight.numel() + b.conv2.weight.numel() for b in model.edge if isinstance(b, QuantBlock))
    edge_total = count_params(model.stem) + count_params(model.edge) + count_params(model.exit)
    baseline = SplitResNet(type(model.config)(num_classes=model.config.num_classes, cut=model.config.cut, weight_bits=32, act_bits=32))
    return {
        "edgeQuantized": quantized,
        "edgeFullPrecision": edge_total - quantized,
        "cloud": count_params(model.tail) + count_params(model.head),
        "fullPrecisionBaseline": count_params(baseline) - count_params(baseline.exit),
    }


def load_matching(model: nn.Module, state: dict[str, Tensor]) -> list[str]:
    """Copy every tensor whose name and shape match (initialisation from another config,
    e.g. a full-precision checkpoint into a hybrid). Returns the names copied."""
    own = model.state_dict()
    copied = [k for k, v in state.items() if k in own and own[k].shape == v.shape]
    own.update({k: state[k] for k in copied})
    model.load_state_dict(own)
    return copied


# BN names that play the same role in a full-precision and a quantized block (the BN before the
# residual add); the others (bn1 after conv1 vs bn_in/bn_mid before the quantizers) do not.
_BN_FP_TO_QUANT = {"bn2": "bn_out"}
_BN_QUANT_TO_FP = {v: k for k, v in _BN_FP_TO_QUANT.items()}


def _block_of(key: str, edge_blocks: int) -> tuple[int, str] | None:
    """'edge.3.conv1.weight' -> (3, 'conv1.weight'); 'tail.0.x' -> (edge_blocks, 'x')."""
    part, _, rest = key.partition(".")
    if part not in ("edge", "tail"):
        return None
    index, _, name = rest.partition(".")
    return (int(index) if part == "edge" else edge_blocks + int(index)), name


def realign_blocks(state: dict[str, Tensor], src_cut: int, dst: ModelConfig) -> dict[str, Tensor]:
    """Rename a checkpoint's block tensors so that each lands on the *same ResNet block* in a
    model with another cut: block b is ``edge.b`` before the cut and ``tail.(b - cut/2)`` after.
    Without this, ``load_matching`` would copy ``tail.0`` of a cut-16 model (block 8) into
    ``tail.0`` of a cut-10 model (block 5) whenever the shapes agree. Convs and shortcuts keep
    their names; between a full-precision and a quantized block only the BN before the residual
    add is carried over. Tensors outside the blocks (stem, exit, head) pass unchanged."""
    src_edge, dst_edge = src_cut // 2, dst.edge_blocks
    quant_src = set()  # blocks that were quantized in the source (only those have bn_in)
    for key in state:
        hit = _block_of(key, src_edge)
        if hit and hit[1].startswith("bn_in."):
            quant_src.add(hit[0])
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        hit = _block_of(key, src_edge)
        if hit is None:
            out[key] = value
            continue
        block, name = hit
        quant_dst = block < dst_edge and dst.quantized
        layer, _, field = name.partition(".")
        if block in quant_src and not quant_dst:
            layer = _BN_QUANT_TO_FP.get(layer, layer)
        elif block not in quant_src and quant_dst:
            layer = _BN_FP_TO_QUANT.get(layer, layer)
        prefix = f"edge.{block}" if block < dst_edge else f"tail.{block - dst_edge}"
        out[f"{prefix}.{layer}.{field}"] = value
    return out


def describe(config: ModelConfig) -> str:
    return f"w{config.weight_bits}a{config.act_bits}-cut{config.cut}"

