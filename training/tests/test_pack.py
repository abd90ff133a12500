"""training.pack: the packed engine file holds exactly the edge graph's numbers (round trip), in
the binary format for a W1A1 edge and the k-bit one (training/pack_kbit.py) for W2A2..W4A4, and
anything else is refused (it stays on onnxruntime)."""
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from training.model import ModelConfig
from training.onnx_graph import build_edge
from training.pack import FILE_NAME, FORMAT, NotPackable, pack_edge, pack_folder, read_engine, sha256_bytes, unpack_bits
from training.pack_kbit import KBIT_FORMAT, unpack_nibbles

from .conftest import randomised

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "cifar10"
SHIPPED_KBIT = Path(__file__).resolve().parents[2] / "models" / "cifar100"


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def assert_parts_both_formats_share(e: dict, inits: dict[str, np.ndarray]) -> None:
    """Each block's input BN scale, conv2 scale and shortcut, and the exit head: the same
    initializers in both formats, bit for bit."""
    for i, b in enumerate(e["blocks"]):
        np.testing.assert_array_equal(b["bnScale"], inits[f"edge.{i}.bn_in.scale"].ravel())
        np.testing.assert_array_equal(b["scale"], inits[f"edge.{i}.conv2.scale"])
        if "shift" in b:
            np.testing.assert_array_equal(b["shift"], inits[f"edge.{i}.conv2.shift"].ravel())
        else:
            np.testing.assert_array_equal(b["shortcutWeight"], inits[f"edge.{i}.shortcut.weight"].ravel())
            np.testing.assert_array_equal(b["shortcutBias"], inits[f"edge.{i}.shortcut.bias"])
    np.testing.assert_array_equal(e["exit"]["weight"], inits["exit.fc.weight_codes"].ravel())
    np.testing.assert_array_equal(e["exit"]["weightScale"], inits["exit.fc.weight_scale"].ravel())
    np.testing.assert_array_equal(e["exit"]["bias"], inits["exit.fc.bias"])


def assert_round_trip(edge: onnx.ModelProto) -> None:
    """Every number of the engine file equals the ONNX initializer it came from, bit for bit."""
    data = pack_edge(edge.SerializeToString())
    e = read_engine(data)
    inits = initializers(edge)
    convs = [n for n in edge.graph.node if n.op_type == "ConvInteger"]
    assert len(convs) == 2 * len(e["blocks"])
    assert e["format"] == FORMAT and e["source"]["sha256"] == sha256_bytes(edge.SerializeToString())
    stem = next(n for n in edge.graph.node if n.op_type == "Conv")
    np.testing.assert_array_equal(e["stem"]["weight"], inits[stem.input[1]].ravel())
    np.testing.assert_array_equal(e["stem"]["bias"], inits[stem.input[2]])
    for i, b in enumerate(e["blocks"]):
        c1, c2 = convs[2 * i], convs[2 * i + 1]
        np.testing.assert_array_equal(unpack_bits(b["conv1"].reshape(b["cout"], 9), b["cin"]), inits[c1.input[1]])
        np.testing.assert_array_equal(unpack_bits(b["conv2"].reshape(b["cout"], 9), b["cout"]), inits[c2.input[1]])
        np.testing.assert_array_equal(b["threshold"], inits[f"edge.{i}.bn_mid.threshold"].ravel())
        np.testing.assert_array_equal(b["bnNegShift"], inits[f"edge.{i}.bn_in.neg_shift"].ravel())
    assert_parts_both_formats_share(e, inits)


@pytest.mark.parametrize("cut", [16, 20, 10, 4])
def test_round_trip_of_a_w1a1_edge(cut):
    model = randomised(ModelConfig(num_classes=10, cut=cut, weight_bits=1, act_bits=1))
    assert_round_trip(build_edge(model, True))


@pytest.mark.skipif(not (SHIPPED / "edge.onnx").exists(), reason="no shipped cifar10 model")
def test_round_trip_of_the_shipped_model_and_its_committed_engine_file():
    edge = onnx.load(SHIPPED / "edge.onnx")
    assert_round_trip(edge)
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    committed = (SHIPPED / FILE_NAME).read_bytes()
    assert manifest["files"]["engine"] == {"path": FILE_NAME, "sha256": sha256_bytes(committed), "format": FORMAT}
    assert committed == pack_edge((SHIPPED / "edge.onnx").read_bytes())  # deterministic, and up to date


def assert_kbit_round_trip(edge: onnx.ModelProto, bits: int) -> None:
    """Every number of a k-bit engine file equals the ONNX graph's: the float32 initializers bit
    for bit, and the codes (nibbles * 2 - zero point) the uint8 ConvInteger weights minus theirs,
    compared with the plain (not nibble-packed) export of the same model."""
    data = edge.SerializeToString()
    e = read_engine(pack_edge(data), data)
    assert e["format"] == KBIT_FORMAT and e["actBits"] == bits
    inits = initializers(edge)
    convs = [n for n in edge.graph.node if n.op_type == "ConvInteger"]
    assert len(convs) == 2 * len(e["blocks"])
    for i, b in enumerate(e["blocks"]):
        for which, conv in (("conv1", convs[2 * i]), ("conv2", convs[2 * i + 1])):
            w = inits[conv.input[1]]
            zero = int(inits[conv.input[3]])
            assert e["blocks"][i][f"{which}Zero"] == zero and int(inits[conv.input[2]]) == 2**bits - 1
            np.testing.assert_array_equal(2 * unpack_nibbles(b[which], w.size).astype(np.int32), w.ravel())
        np.testing.assert_array_equal(b["bnShift"], inits[f"edge.{i}.bn_in.shift"].ravel())
        np.testing.assert_array_equal(b["conv1Scale"], inits[f"edge.{i}.conv1.scale"])
        np.testing.assert_array_equal(b["midScale"], inits[f"edge.{i}.bn_mid.scale"].ravel())
        np.testing.assert_array_equal(b["midShift"], inits[f"edge.{i}.bn_mid.shift"].ravel())
    assert_parts_both_formats_share(e, inits)


@pytest.mark.parametrize("bits,cut", [(4, 24), (4, 16), (2, 24), (2, 10)])
def test_round_trip_of_a_kbit_edge(bits, cut):
    model = randomised(ModelConfig(num_classes=10, cut=cut, weight_bits=bits, act_bits=bits))
    # plain uint8 weights: the initializers to compare with
    assert_kbit_round_trip(build_edge(model, True, pack_nibbles=False), bits)
    # 4-bit weights as nibbles unpacked by BitShift/Concat/Reshape: the same engine numbers
    nibbles_edge = build_edge(model, True).SerializeToString()
    with_nibbles = pack_edge(nibbles_edge)
    plain_edge = build_edge(model, True, pack_nibbles=False).SerializeToString()
    plain = read_engine(pack_edge(plain_edge), plain_edge)
    for a, b in zip(read_engine(with_nibbles, nibbles_edge)["blocks"], plain["blocks"]):
        np.testing.assert_array_equal(a["conv1"], b["conv1"])
        np.testing.assert_array_equal(a["conv2"], b["conv2"])


@pytest.mark.skipif(not (SHIPPED_KBIT / "edge.onnx").exists(), reason="no shipped cifar100 model")
def test_the_shipped_kbit_model_and_its_committed_engine_file():
    data = (SHIPPED_KBIT / "edge.onnx").read_bytes()
    manifest = json.loads((SHIPPED_KBIT / "manifest.json").read_text())
    committed = (SHIPPED_KBIT / FILE_NAME).read_bytes()
    assert manifest["files"]["engine"] == {"path": FILE_NAME, "sha256": sha256_bytes(committed), "format": KBIT_FORMAT}
    assert committed == pack_edge(data)  # deterministic, and up to date
    e = read_engine(committed, data)
    assert e["source"]["sha256"] == manifest["files"]["edge"]["sha256"] and e["actBits"] == manifest["architecture"]["activationBits"]


def test_a_kbit_file_refers_to_its_edge_onnx_instead_of_copying_it():
    """Format 2: every tensor edge.onnx holds byte for byte (the nibble-packed weights, the float32
    affines, the exit codes) is a reference by initializer name, so the Worker bundles each weight
    once; the nibbles are in the ONNX's order, so even the plain (one code per byte) export's
    nibbles, stored in the blob, read back the same."""
    model = randomised(ModelConfig(num_classes=10, cut=16, weight_bits=4, act_bits=4))
    edge = build_edge(model, True)
    data = edge.SerializeToString()
    packed = pack_edge(data)
    (n,) = np.frombuffer(packed[8:12], "<u4")
    header = json.loads(packed[12:12 + n])
    assert header["blobBytes"] == 0
    names = {t.name for t in edge.graph.initializer}
    for b in header["blocks"]:
        assert b["conv1"]["onnx"].endswith(".nibbles") and b["conv1"]["onnx"] in names and b["bnScale"]["onnx"] in names
    with pytest.raises(ValueError, match="pass edge_bytes"):
        read_engine(packed)
    with pytest.raises(ValueError, match="not the file the engine was built from"):
        read_engine(packed, build_edge(randomised(ModelConfig(num_classes=10, cut=16, weight_bits=4, act_bits=4), seed=1), True).SerializeToString())


@pytest.mark.parametrize("bits,integer,cut,why", [
    (8, True, 16, "2..4-bit activations"),  # W8A8: levels beyond the engine's i7 operand
    (4, False, 16, r"expected 2\.0"),  # W4A4 --conv float export: the quantizer ends Mul(2/n), Sub
    (1, False, 16, "expected (ConvInteger|GreaterOrEqual)"),  # --conv float export
    (1, True, 24, "at most 32"),  # stage 3 has 64 channels
])
def test_refuses_edges_it_cannot_run(bits, integer, cut, why):
    model = randomised(ModelConfig(num_classes=10, cut=cut, weight_bits=bits, act_bits=bits))
    with pytest.raises(NotPackable, match=why):
        pack_edge(build_edge(model, integer).SerializeToString())


def write_folder(folder: Path, edge: onnx.ModelProto) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = edge.SerializeToString()
    (folder / "edge.onnx").write_bytes(data)
    (folder / "manifest.json").write_text(json.dumps({"name": "t", "files": {"edge": {"path": "edge.onnx", "sha256": sha256_bytes(data)}}}))


def test_pack_folder_records_the_engine_and_removes_a_stale_one(tmp_path):
    w1 = randomised(ModelConfig(num_classes=10, cut=16, weight_bits=1, act_bits=1))
    write_folder(tmp_path, build_edge(w1, True))
    out = pack_folder(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert out == tmp_path / FILE_NAME and manifest["files"]["engine"]["sha256"] == sha256_bytes(out.read_bytes())
    # re-exported as W8A8 (not packable) into the same folder: the old engine must not survive
    w4 = randomised(ModelConfig(num_classes=10, cut=16, weight_bits=8, act_bits=8))
    write_folder(tmp_path, build_edge(w4, True))
    (tmp_path / FILE_NAME).write_bytes(out.read_bytes() if out.exists() else b"")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"]["engine"] = {"path": FILE_NAME, "sha256": "0" * 64, "format": FORMAT}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert pack_folder(tmp_path) is None
    assert not (tmp_path / FILE_NAME).exists()
    assert "engine" not in json.loads((tmp_path / "manifest.json").read_text())["files"]


def test_pack_folder_refuses_an_edge_that_differs_from_its_manifest(tmp_path):
    w1 = randomised(ModelConfig(num_classes=10, cut=16, weight_bits=1, act_bits=1))
    write_folder(tmp_path, build_edge(w1, True))
    (tmp_path / "edge.onnx").write_bytes((tmp_path / "edge.onnx").read_bytes() + b"\0")
    with pytest.raises(SystemExit, match="differs from manifest"):
        pack_folder(tmp_path)


def test_read_engine_refuses_damaged_files():
    model = randomised(ModelConfig(num_classes=10, cut=16, weight_bits=1, act_bits=1))
    data = pack_edge(build_edge(model, True).SerializeToString())
    with pytest.raises(ValueError, match="truncated"):
        read_engine(data[:-4])
    with pytest.raises(ValueError, match="magic"):
        read_engine(b"XXXX" + data[4:])


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_export_packs_w1a1_and_kbit_edges_and_only_those(tmp_path, bits):
    import torch

    from training.config import TrainConfig
    from training.export import main as export_main

    model = randomised(ModelConfig(num_classes=4, cut=16, weight_bits=bits, act_bits=bits))
    cfg = TrainConfig(name="t", dataset="synthetic", data="unused", val_size=64)
    ckpt = tmp_path / "c.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "model_config": model.config.to_dict(),
                "classes": ["blue", "green", "red", "yellow"], "epoch": 1, "elapsed_seconds": 1.0, "device": "cpu",
                "git_sha": "x", "saved_at": "now"}, ckpt)
    out = tmp_path / "synthetic"
    export_main(["--checkpoint", str(ckpt), "--out", str(out), "--name", "synthetic"])
    files = json.loads((out / "manifest.json").read_text())["files"]
    if bits <= 4:
        assert files["engine"]["sha256"] == sha256_bytes((out / FILE_NAME).read_bytes())
        assert files["engine"]["format"] == (FORMAT if bits == 1 else KBIT_FORMAT)
        assert read_engine((out / FILE_NAME).read_bytes(), (out / "edge.onnx").read_bytes())["source"]["sha256"] == files["edge"]["sha256"]
    else:
        assert "engine" not in files and not (out / FILE_NAME).exists()
