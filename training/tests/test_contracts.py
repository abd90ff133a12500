"""shared/contracts.json on the Python side: the golden files in test/golden/ (written once by
scripts/golden.ts from shared/src/wire.ts, also checked by test/node/golden.test.ts) byte for byte,
and the modules that use a contract read it from training/contracts.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training import contracts, pack, pack_kbit, sweep
from training.pack import pack_edge, read_engine, sha256_bytes
from training.pack_kbit import unpack_nibbles
from training.wire import decode_activation, encode_activation
from training.wire_accuracy import wire_roundtrip

GOLDEN = Path(__file__).resolve().parents[2] / "test" / "golden"
INPUTS = json.loads((GOLDEN / "wire.json").read_text())


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_wire_golden_frame_byte_for_byte(precision):
    golden = (GOLDEN / INPUTS["frames"][precision]).read_bytes()
    data = np.array(INPUTS["data"], dtype=np.float32)
    assert encode_activation(data, INPUTS["shape"], INPUTS["fingerprint"], precision) == golden
    header, decoded = decode_activation(golden)
    assert header["shape"] == INPUTS["shape"] and header["fingerprint"] == INPUTS["fingerprint"]
    assert header["precision"] == precision
    assert len(golden) == contracts.wire_header_bytes(len(INPUTS["shape"])) + data.size * contracts.WIRE_ELEMENT_BYTES[precision]
    # the accuracy study's round trip is the decoded golden frame
    np.testing.assert_array_equal(wire_roundtrip(data, precision).reshape(INPUTS["shape"]), decoded)


def test_modules_read_the_contracts():
    c = contracts.CONTRACTS
    assert sweep.WIRE_HEADER_BYTES == c["wire"]["fixedHeaderBytes"] + 4 * c["wire"]["splitRank"]
    assert (pack.MAGIC.decode(), pack.VERSION, pack.FORMAT, pack.FILE_NAME, pack.MAX_CHANNELS) == (
        c["packed"]["magic"], c["packed"]["version"], c["packed"]["format"], c["packed"]["fileName"], c["packed"]["maxChannels"])
    assert list(contracts.PACKED_DTYPES) == c["packed"]["dtypes"]
    assert pack_kbit.KBIT_FORMAT == c["packed"]["kbitFormat"] != c["packed"]["format"]
    assert {k: np.dtype(v).itemsize * 8 for k, v in contracts.PACKED_DTYPES.items()} == {k: int(k[1:]) for k in c["packed"]["dtypes"]}
    assert contracts.MAX_BATCH == c["batch"]["maxBatch"]


def test_packed_golden_file_byte_for_byte():
    edge = (GOLDEN / "packed-edge.onnx").read_bytes()
    golden = (GOLDEN / "packed.bin").read_bytes()
    expected = json.loads((GOLDEN / "packed.json").read_text())
    assert sha256_bytes(edge) == expected["edgeSha256"] and sha256_bytes(golden) == expected["packedSha256"]
    assert pack_edge(edge) == golden
    e = read_engine(golden)
    assert golden[:4].decode() == contracts.PACKED["magic"] and e["format"] == contracts.PACKED["format"]
    assert e["split"] == expected["split"] and len(e["blocks"]) == expected["blocks"]
    np.testing.assert_array_equal(e["stem"]["bias"], np.float32(expected["stemBias"]))
    np.testing.assert_array_equal(e["exit"]["bias"], np.float32(expected["exitBias"]))


def test_packed_kbit_golden_file_byte_for_byte():
    edge = (GOLDEN / "packed-kbit-edge.onnx").read_bytes()
    golden = (GOLDEN / "packed-kbit.bin").read_bytes()
    expected = json.loads((GOLDEN / "packed-kbit.json").read_text())
    assert sha256_bytes(edge) == expected["edgeSha256"] and sha256_bytes(golden) == expected["packedSha256"]
    assert pack_edge(edge) == golden
    e = read_engine(golden, edge)
    assert golden[:4].decode() == contracts.PACKED["magic"] and e["format"] == contracts.PACKED["kbitFormat"]
    assert e["actBits"] == expected["actBits"] and e["split"] == expected["split"] and len(e["blocks"]) == expected["blocks"]
    np.testing.assert_array_equal(e["stem"]["bias"], np.float32(expected["stemBias"]))
    np.testing.assert_array_equal(e["exit"]["bias"], np.float32(expected["exitBias"]))
    codes = unpack_nibbles(e["blocks"][0]["conv1"], 16 * 16 * 9).astype(int) * 2 - e["blocks"][0]["conv1Zero"]
    assert codes[:len(expected["conv1Codes"])].tolist() == expected["conv1Codes"] and int(codes.sum()) == expected["conv1CodeSum"]


def test_wire_header_offsets_tile_the_fixed_header():
    """contracts.json's wire offsets (which wire.ts and wire.py both use) lay the fields end to end,
    in the documented order, and fill the fixed header exactly (the shape starts at its end)."""
    w = contracts.WIRE
    sizes = {"magic": len(w["magic"]), "version": 1, "dtype": 1, "rank": 1, "reserved": 1,
             "fingerprint": w["fingerprintBytes"], "scale": 4, "zeroPoint": 4}
    at = 0
    for field, size in sizes.items():
        assert w["offsets"][field] == at, field
        at += size
    assert at == w["fixedHeaderBytes"] and set(w["offsets"]) == set(sizes)
