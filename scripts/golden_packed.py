"""Writes the packed-file goldens of the cross-language contracts into test/golden/: a tiny
randomised W1A1 edge (cut 4, 10 classes) as packed-edge.onnx, its packed engine file packed.bin
(training/pack.py) and packed.json (what the TypeScript reader must find in it); the same for a
W4A4 edge in the k-bit format (training/pack_kbit.py): packed-kbit-edge.onnx, packed-kbit.bin
(which refers to the ONNX's initializers) and packed-kbit.json. Run once
(`.venv/bin/python scripts/golden_packed.py`) and commit the output: training/tests/test_contracts.py
repacks each ONNX and compares byte for byte, test/node/golden.test.ts parses each engine file with
workers/src/engine/format/binary.ts and compares it with its JSON."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from onnx import numpy_helper  # noqa: E402

from training.bench_models import randomised  # noqa: E402
from training.model import ModelConfig  # noqa: E402
from training.onnx_graph import build_edge  # noqa: E402
from training.pack import pack_edge  # noqa: E402
from training.pack_kbit import unpack_nibbles  # noqa: E402

out = ROOT / "test" / "golden"
out.mkdir(parents=True, exist_ok=True)
edge = build_edge(randomised(ModelConfig(num_classes=10, cut=4, weight_bits=1, act_bits=1)), True)
onnx_bytes = edge.SerializeToString()
packed = pack_edge(onnx_bytes)
(out / "packed-edge.onnx").write_bytes(onnx_bytes)
(out / "packed.bin").write_bytes(packed)
inits = {t.name: numpy_helper.to_array(t) for t in edge.graph.initializer}
split = [d.dim_value for d in edge.graph.output[1].type.tensor_type.shape.dim[1:]]
stem = next(n for n in edge.graph.node if n.op_type == "Conv")
(out / "packed.json").write_text(json.dumps({
    "about": "what packed.bin holds (scripts/golden_packed.py)",
    "edgeSha256": hashlib.sha256(onnx_bytes).hexdigest(),
    "packedSha256": hashlib.sha256(packed).hexdigest(),
    "input": [3, 32, 32], "split": split, "classes": 10,
    "blocks": sum(1 for n in edge.graph.node if n.op_type == "ConvInteger") // 2,
    "stemBias": inits[stem.input[2]].tolist(),
    "exitBias": inits["exit.fc.bias"].tolist(),
}, indent=1) + "\n")

# the k-bit golden: W4A4, nibble-packed weights (the file refers to them in the ONNX)
kedge = build_edge(randomised(ModelConfig(num_classes=10, cut=4, weight_bits=4, act_bits=4)), True)
kbytes = kedge.SerializeToString()
kpacked = pack_edge(kbytes)
(out / "packed-kbit-edge.onnx").write_bytes(kbytes)
(out / "packed-kbit.bin").write_bytes(kpacked)
kinits = {t.name: numpy_helper.to_array(t) for t in kedge.graph.initializer}
kstem = next(n for n in kedge.graph.node if n.op_type == "Conv")
kconv = next(n for n in kedge.graph.node if n.op_type == "ConvInteger")
kw = unpack_nibbles(kinits[f"{kconv.input[1]}.nibbles"], 16 * 16 * 9).astype(int) * 2 - int(kinits[kconv.input[3]])
(out / "packed-kbit.json").write_text(json.dumps({
    "about": "what packed-kbit.bin holds, read together with packed-kbit-edge.onnx (scripts/golden_packed.py)",
    "edgeSha256": hashlib.sha256(kbytes).hexdigest(),
    "packedSha256": hashlib.sha256(kpacked).hexdigest(),
    "input": [3, 32, 32], "split": [d.dim_value for d in kedge.graph.output[1].type.tensor_type.shape.dim[1:]], "classes": 10,
    "actBits": 4,
    "blocks": sum(1 for n in kedge.graph.node if n.op_type == "ConvInteger") // 2,
    "stemBias": kinits[kstem.input[2]].tolist(),
    "exitBias": kinits["exit.fc.bias"].tolist(),
    "conv1Codes": kw[:36].tolist(),
    "conv1CodeSum": int(kw.sum()),
}, indent=1) + "\n")
print(f"golden: wrote packed-kbit-edge.onnx ({len(kbytes)} bytes), packed-kbit.bin ({len(kpacked)} bytes), packed-kbit.json", file=sys.stderr)
print(f"golden: wrote packed-edge.onnx ({len(onnx_bytes)} bytes), packed.bin ({len(packed)} bytes), packed.json", file=sys.stderr)
