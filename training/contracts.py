"""The cross-language contracts (wire frame, graph names, packed file, batch limit), read from
shared/contracts.json, the file shared/src/contracts.ts reads too. Nothing here restates a value."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CONTRACTS_JSON = Path(__file__).resolve().parent.parent / "shared" / "contracts.json"
CONTRACTS: dict = json.loads(CONTRACTS_JSON.read_text())

MAX_BATCH: int = CONTRACTS["batch"]["maxBatch"]

WIRE: dict = CONTRACTS["wire"]
WIRE_FIXED_HEADER_BYTES: int = WIRE["fixedHeaderBytes"]
WIRE_SPLIT_RANK: int = WIRE["splitRank"]
WIRE_INT8: dict = WIRE["int8"]
# bytes per element by wire precision ("fp32", "fp16", "int8")
WIRE_ELEMENT_BYTES: dict[str, int] = {d["precision"]: d["bytes"] for d in WIRE["dtypes"].values()}


def wire_header_bytes(rank: int) -> int:
    """Header size of a wire frame of this rank (fixed part + one u32 per dimension)."""
    return WIRE_FIXED_HEADER_BYTES + 4 * rank


GRAPH: dict = CONTRACTS["graph"]
EDGE_INPUT: str = GRAPH["edge"]["input"]
EDGE_EXIT_LOGITS: str = GRAPH["edge"]["exitLogits"]
EDGE_SPLIT: str = GRAPH["edge"]["split"]
CLOUD_INPUT: str = GRAPH["cloud"]["input"]
CLOUD_OUTPUT: str = GRAPH["cloud"]["output"]

PACKED: dict = CONTRACTS["packed"]
# the engine file's element types by their header name ("f32" -> np.float32, ...)
PACKED_DTYPES: dict[str, type] = {name: np.dtype(f"{name[0]}{int(name[1:]) // 8}").type for name in PACKED["dtypes"]}
