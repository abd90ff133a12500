"""The figures of one sweep point from its finished checkpoint: accuracies at the calibrated
threshold, both energy models, wire bytes and the edge's parameter bytes."""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..calibrate import calibrate
from ..checkpoint import load_checkpoint_model
from ..config import TrainConfig
from ..contracts import WIRE_ELEMENT_BYTES, WIRE_SPLIT_RANK, wire_header_bytes
from ..data import ImageSet, TensorLoader
from ..energy import EnergyModel, PartCounts
from ..model import QuantBlock, SplitResNet, split_shape
from ..onnx_graph import INT8_MAX_BITS, build_edge
from ..train import git_sha, pick_device, predict
from .grid import SHIPPED, SweepSpec

# The wire frame's header (fixed part + 4 bytes per dimension) at the split's rank (N, c, h, w), and
# the bytes per element of each precision: shared/contracts.json, which shared/src/wire.ts reads too.
WIRE_HEADER_BYTES = wire_header_bytes(WIRE_SPLIT_RANK)


def wire_bytes(cut: int) -> dict:
    """Bytes on the wire for one image's split tensor in each wire precision (header included)."""
    c, h, w = split_shape(cut)
    return {f"wireBytes{p.capitalize()}": WIRE_HEADER_BYTES + c * h * w * size for p, size in WIRE_ELEMENT_BYTES.items()}


def edge_param_bytes(model: SplitResNet) -> dict:
    """Parameter bytes of the edge part. ``stored``: as edge.onnx holds them (codes of <= 7-bit
    weights as int8 plus a float32 scale and an int8 zero point per filter; 8- and 32-bit
    weights as float32; the exit FC's weight as int8 plus a float32 scale and an int8 zero point
    per row; everything else float32). ``packed``: the theoretical size with quantized weights
    packed at ``bits``/8 bytes each (plus the float32 scales)."""
    counts = PartCounts.from_model(model)
    bits = counts.bits
    filters = sum(b.conv1.out_channels + b.conv2.out_channels for b in model.edge if isinstance(b, QuantBlock))
    q, fp = counts.edge_quantized_params, counts.edge_fp_params
    exit_weight = model.exit.fc.weight
    exit_bytes = exit_weight.numel() + exit_weight.shape[0] * (4 + 1)
    other_fp = fp - exit_weight.numel()
    if bits <= INT8_MAX_BITS:
        stored = q + filters * (4 + 1)
    else:
        stored = 4 * q
    packed = math.ceil(q * min(bits, 32) / 8) + (4 * filters if bits < 32 else 0)
    return {"edgeParamsQuantized": q, "edgeParamsFullPrecision": fp,
            "edgeParamBytesStored": stored + 4 * other_fp + exit_bytes, "edgeParamBytesPacked": packed + 4 * other_fp + exit_bytes}


def energy_figures(energy: EnergyModel, edge_fraction: float) -> dict:
    """Edge, cloud, baseline and per-inference total in both models at an edge fraction.
    Paper model in full-precision-MAC equivalents, the 45 nm model in picojoules."""
    return {
        "paperEdge": energy.paper_edge(), "paperCloud": energy.paper_cloud(), "paperBaseline": energy.paper_baseline(),
        "paperTotal": energy.paper_total(edge_fraction),
        "opEdgePj": energy.op_edge(), "opCloudPj": energy.op_cloud(), "opBaselinePj": energy.op_baseline(),
        "opTotalPj": energy.op_total(edge_fraction),
        **energy.ratios(edge_fraction),
    }


def validation_outputs(model: SplitResNet, val: ImageSet, device: torch.device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exit logits, final logits, labels on the validation images (float32 autocast off, so
    GPU and CPU figures differ only by kernel rounding)."""
    exits, finals, labels = predict(model, TensorLoader(val, 500, device, train=False))
    return exits.numpy(), finals.numpy(), labels.numpy()


def measure(ckpt_path: Path, cfg: TrainConfig, spec: SweepSpec, val: ImageSet) -> tuple[dict, dict]:
    """One table row and its threshold curve, from a finished checkpoint."""
    device = pick_device(cfg)
    t0 = time.time()
    model, ckpt = load_checkpoint_model(ckpt_path, device)
    exits, finals, labels = validation_outputs(model, val, device)
    model = model.cpu()
    energy = EnergyModel(PartCounts.from_model(model))
    curve, chosen = calibrate(exits, finals, labels, spec.goal, energy)
    c, h, w = split_shape(cfg.cut)
    row = {
        "dataset": spec.dataset, "name": cfg.name, "cut": cfg.cut, "bits": cfg.weight_bits,
        "shipped": SHIPPED.get(spec.dataset) == (cfg.cut, cfg.weight_bits),
        "mode": spec.mode, "epochs": cfg.epochs, "epochsDone": ckpt["epoch"], "subset": spec.subset, "seed": cfg.seed,
        "init": spec.init, "teacher": spec.teacher, "kdWeight": cfg.kd_weight if cfg.teacher else 0.0,
        "valImages": int(len(labels)), "goal": spec.goal,
        "finalAccuracy": curve["finalAccuracy"], "exitAccuracy": curve["exitAccuracy"],
        "threshold": chosen["threshold"], "hybridAccuracy": chosen["hybridAccuracy"], "edgeFraction": chosen["edgeFraction"],
        "edgeAccuracy": chosen["edgeAccuracy"], "cloudAccuracy": chosen["cloudAccuracy"],
        **energy_figures(energy, chosen["edgeFraction"]),
        "splitShape": f"{c}x{h}x{w}", "wireHeaderBytes": WIRE_HEADER_BYTES, **wire_bytes(cfg.cut),
        **edge_param_bytes(model), "edgeOnnxBytes": build_edge(model).ByteSize(),
        "device": ckpt["device"], "trainSeconds": round(ckpt["elapsed_seconds"], 1), "evalSeconds": round(time.time() - t0, 1),
        "gitSha": git_sha(), "finishedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "trainConfig": cfg.to_dict(),
    }
    return row, curve
