import base64
import gzip
import json
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from training.config import TrainConfig
from training.export import main as export_main, parity
from training.data import ImageSet
from training.model import ModelConfig
from training.onnx_graph import build_cloud, build_edge
from training.preprocess import preprocess
from training.quant import quantize_exit_weight

from .conftest import randomised


@pytest.mark.parametrize("integer", [True, False], ids=["convinteger", "float"])
@pytest.mark.parametrize("cut,bits", [(16, 1), (24, 4), (10, 2), (4, 8), (20, 32)])
def test_onnx_pair_matches_pytorch(cut, bits, integer):
    model = randomised(ModelConfig(num_classes=10, cut=cut, weight_bits=bits, act_bits=bits))
    x = torch.randn(32, 3, 32, 32)
    with torch.no_grad():
        e, s, l = model(x)
    edge = ort.InferenceSession(build_edge(model, integer).SerializeToString())
    cloud = ort.InferenceSession(build_cloud(model).SerializeToString())
    oe, os_ = edge.run(None, {"image": x.numpy()})
    (ol,) = cloud.run(None, {"split": s.numpy()})  # the tail on PyTorch's own split: no edge flips
    assert (oe.argmax(1) == e.numpy().argmax(1)).mean() >= 0.95
    assert (np.abs(oe - e.numpy()).max(1) <= 1e-3).mean() >= 0.9
    np.testing.assert_allclose(ol, l.numpy(), atol=1e-3)
    if bits == 1:  # binarized edges are exact up to float rounding
        np.testing.assert_allclose(os_, s.numpy(), atol=1e-4)


def test_quantized_weights_ship_as_int8_codes():
    model = randomised(ModelConfig(cut=16, weight_bits=1, act_bits=1))
    g = build_edge(model, integer_convs=False)
    int8 = [t for t in g.graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("weight_codes")]
    assert len(int8) == 16 + 1  # the quantized convs and the exit FC
    codes = onnx.numpy_helper.to_array(int8[0])
    assert set(np.unique(codes).tolist()) <= {-1, 1}


def test_the_exit_fc_ships_as_the_int8_weights_the_model_computes_with():
    """The exit weight is int8 per row in the model (so training, calibration and parity all see
    it) and in edge.onnx (Cast * scale); the float32 weight is not in the graph."""
    model = randomised(ModelConfig(num_classes=100, cut=24, weight_bits=4, act_bits=4)).eval()
    g = build_edge(model, integer_convs=True)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.graph.initializer}
    assert "exit.fc.weight" not in inits
    codes, scale = inits["exit.fc.weight_codes"], inits["exit.fc.weight_scale"]
    assert codes.dtype == np.int8 and codes.shape == (100, 256) and np.abs(codes).max() == 127 and scale.shape == (100, 1)
    dequantized = codes.astype(np.float32) * scale
    np.testing.assert_array_equal(dequantized, quantize_exit_weight(model.exit.fc.weight.detach()).numpy())
    np.testing.assert_allclose(dequantized, model.exit.fc.weight.detach().numpy(), atol=scale.max() / 2 + 1e-7)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_integer_edge_runs_every_quantized_conv_as_convinteger(bits):
    model = randomised(ModelConfig(cut=16, weight_bits=bits, act_bits=bits))
    g = build_edge(model, integer_convs=True)
    ops = [n.op_type for n in g.graph.node]
    assert ops.count("ConvInteger") == 16 and ops.count("Conv") == 2  # stem + one projection shortcut
    u8 = conv_integer_weights(g)
    assert len(u8) == 16 and all(w.dtype == np.uint8 for w in u8.values())
    nibbles = [t for t in g.graph.initializer if t.name.endswith("weight_u8.nibbles")]
    assert len(nibbles) == (16 if bits == 4 else 0)  # 4-bit codes: two per byte in the file
    zero = {t.name: int(onnx.numpy_helper.to_array(t)) for t in g.graph.initializer if t.name.endswith("w_zero")}
    n = 2**bits - 1  # codes are odd integers in [-n, n], shifted by the zero point n
    assert set(zero.values()) <= set(range(1, n + 1))
    assert all(w.max() <= 2 * n for w in u8.values())


def conv_integer_weights(g: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Every ConvInteger's weight as onnxruntime sees it: a plain initializer, or the nibble
    unpacking that it folds into one (read back from the optimised model)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with tempfile.TemporaryDirectory() as tmp:
        opts.optimized_model_filepath = f"{tmp}/basic.onnx"
        ort.InferenceSession(g.SerializeToString(), opts)
        folded = onnx.load(opts.optimized_model_filepath)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in folded.graph.initializer}
    return {n.input[1]: inits[n.input[1]] for n in folded.graph.node if n.op_type == "ConvInteger"}


def test_nibble_packed_weights_compute_exactly_the_plain_graph_and_ship_smaller():
    model = randomised(ModelConfig(cut=16, weight_bits=4, act_bits=4), seed=5)
    packed, plain = build_edge(model, True, pack_nibbles=True), build_edge(model, True, pack_nibbles=False)
    assert "BitShift" in {n.op_type for n in packed.graph.node} and "BitShift" not in {n.op_type for n in plain.graph.node}
    a, b = conv_integer_weights(packed), conv_integer_weights(plain)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    x = torch.randn(8, 3, 32, 32).numpy()
    for p, q in zip(ort.InferenceSession(packed.SerializeToString()).run(None, {"image": x}),
                    ort.InferenceSession(plain.SerializeToString()).run(None, {"image": x})):
        np.testing.assert_array_equal(p, q)
    gz = lambda m: len(gzip.compress(m.SerializeToString(), 9))
    assert gz(packed) < 0.93 * gz(plain), (gz(packed), gz(plain))


def test_integer_edge_split_is_bitwise_close_to_float_edge():
    """Both forms of the W1A1 edge compute the same quantized network; they may differ only by float rounding."""
    model = randomised(ModelConfig(cut=16, weight_bits=1, act_bits=1), seed=3)
    x = torch.randn(64, 3, 32, 32).numpy()
    a = ort.InferenceSession(build_edge(model, True).SerializeToString()).run(None, {"image": x})
    b = ort.InferenceSession(build_edge(model, False).SerializeToString()).run(None, {"image": x})
    for p, q in zip(a, b):
        np.testing.assert_allclose(p, q, atol=1e-4)


def test_export_cli_writes_a_servable_folder(tmp_path, synthetic_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = randomised(ModelConfig(num_classes=4, cut=16, weight_bits=1, act_bits=1))
    cfg = TrainConfig(name="t", dataset="synthetic", data=str(synthetic_folder), val_size=64)
    ckpt = tmp_path / "c.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "model_config": model.config.to_dict(),
                "classes": ["blue", "green", "red", "yellow"], "epoch": 1, "elapsed_seconds": 1.0, "device": "cpu",
                "git_sha": "x", "saved_at": "now"}, ckpt)
    out = tmp_path / "models" / "synthetic"
    export_main(["--checkpoint", str(ckpt), "--out", str(out), "--name", "synthetic", "--data", str(synthetic_folder), "--goal", "within=2"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["shape"] == [32, 16, 16] and manifest["labels"][0] == "blue"
    assert manifest["validation"]["images"] == 64 and 0 <= manifest["validation"]["edgeFraction"] <= 1
    assert manifest["exit"]["threshold"] == json.loads((out / "calibration.json").read_text())["chosen"]["threshold"]
    assert json.loads((out / "parity.json").read_text())["passed"]
    assert (out / "calibration.png").stat().st_size > 10_000
    vectors = json.loads((out / "testvectors.json").read_text())
    assert vectors["fingerprint"] == manifest["fingerprint"]
    v = vectors["vectors"][2]  # odd-sized PNG: preprocessing includes the area resize
    x = preprocess(base64.b64decode(v["imageBase64"]), [0.5] * 3, [0.5] * 3)
    np.testing.assert_allclose(x.ravel(), v["input"], atol=1e-6)
    edge = ort.InferenceSession(str(out / "edge.onnx"))
    e, _ = edge.run(None, {"image": x[None]})
    np.testing.assert_allclose(e[0], v["exitLogits"], atol=1e-5)


def save_checkpoint(path, model, cfg) -> None:
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "model_config": model.config.to_dict(),
                "classes": ["blue", "green", "red", "yellow"], "epoch": 3, "elapsed_seconds": 60.0, "device": "cpu",
                "git_sha": "y", "saved_at": "now"}, path)


def test_export_records_our_full_precision_baseline(tmp_path, synthetic_folder):
    from training.data import TensorLoader, load_source, train_val_split
    from training.export import baseline_figures
    from training.train import predict
    cfg = TrainConfig(name="fp", dataset="synthetic", data=str(synthetic_folder), val_size=64, weight_bits=32, act_bits=32)
    fp = randomised(ModelConfig(num_classes=4, cut=16, weight_bits=32, act_bits=32))
    save_checkpoint(tmp_path / "fp.pt", fp, cfg)
    full = load_source(str(synthetic_folder))
    val = full.subset(train_val_split(len(full), 64, 0)[1])
    figures = baseline_figures(str(tmp_path / "fp.pt"), cfg.to_dict(), val)
    _, logits, labels = predict(fp, TensorLoader(val, 500, torch.device("cpu"), train=False))
    assert figures["accuracy"] == pytest.approx(float((logits.argmax(1) == labels).float().mean()))
    assert figures["images"] == 64 and figures["epochs"] == 3 and figures["config"]["name"] == "fp"
    with pytest.raises(SystemExit, match="val_size"):  # another validation split: not comparable
        baseline_figures(str(tmp_path / "fp.pt"), {**cfg.to_dict(), "val_size": 100}, val)
    w1 = randomised(ModelConfig(num_classes=4, cut=16, weight_bits=1, act_bits=1))
    save_checkpoint(tmp_path / "w1.pt", w1, cfg)
    with pytest.raises(SystemExit, match="not full precision"):
        baseline_figures(str(tmp_path / "w1.pt"), cfg.to_dict(), val)


def onnx_conv_macs(model: onnx.ModelProto) -> int:
    """Conv MACs read off an exported graph: weight shape x output spatial size (shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in
              list(inferred.graph.value_info) + list(inferred.graph.output)}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    dq = {n.output[0]: inits[n.input[0]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits}
    total = 0
    for n in model.graph.node:
        if n.op_type in ("Conv", "ConvInteger"):
            o, i, kh, kw = inits.get(n.input[1]) or dq.get(n.input[1]) or shapes[n.input[1]]  # or unpacked nibbles
            h, w = shapes[n.output[0]][2:]
            total += o * i * kh * kw * h * w
    return total


@pytest.mark.parametrize("cut,bits", [(4, 1), (16, 1), (24, 4), (10, 32)])
def test_mac_counts_match_the_exported_graphs(cut, bits):
    from training.model import count_macs
    model = randomised(ModelConfig(num_classes=10, cut=cut, weight_bits=bits, act_bits=bits))
    c = count_macs(model)
    assert onnx_conv_macs(build_edge(model, True)) == c.edge_quantized + c.edge_full_precision
    assert onnx_conv_macs(build_edge(model, False)) == c.edge_quantized + c.edge_full_precision
    assert onnx_conv_macs(build_cloud(model)) == c.cloud - c.cloud_fc


def test_full_graph_is_the_whole_network_without_the_exit():
    """The benchmark's baselines: build_full computes the same logits as the split pair."""
    from training.onnx_graph import build_full, build_head
    model = randomised(ModelConfig(num_classes=10, cut=24, weight_bits=32, act_bits=32))
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        _, split, logits = model(x)
        features = model.tail(split)  # the last feature map, [N,64,8,8]
    (full,) = ort.InferenceSession(build_full(model).SerializeToString()).run(None, {"image": x.numpy()})
    np.testing.assert_allclose(full, logits.numpy(), atol=1e-3)
    e, s = ort.InferenceSession(build_full(model, edge_form=True).SerializeToString()).run(None, {"image": x.numpy()})
    np.testing.assert_allclose(e, logits.numpy(), atol=1e-3)
    np.testing.assert_allclose(s, features.numpy(), atol=1e-3)
    (head,) = ort.InferenceSession(build_head(model).SerializeToString()).run(None, {"split": features.numpy()})
    np.testing.assert_allclose(head, logits.numpy(), atol=1e-3)


def test_binary_sign_thresholds_decide_like_the_float_chain():
    """[relu(acc * scale) * s + t >= 0] per channel == [flip * acc >= threshold] for every int32 sum."""
    from training.onnx_graph import binary_sign_thresholds
    rng = np.random.default_rng(0)
    c = 256
    scale = rng.uniform(0.001, 0.05, c)
    s = rng.normal(0, 1, c)
    s[:4] = 0.0
    scale[4:8] = 0.0  # a filter of zeros
    t = rng.normal(0, 1, c)
    flip, thr = binary_sign_thresholds(scale, s, t)
    acc = np.arange(-600, 601)[:, None]
    want = np.maximum(acc * scale, 0) * s + t >= 0
    got = flip * acc >= thr
    assert (want == got).all()


def test_parity_of_a_four_bit_edge_uses_the_rounding_boundary_criteria(tmp_path, synthetic_folder):
    from training.data import load_source
    from training.export import write_onnx
    from training.manifest import build_manifest, write_json
    model = randomised(ModelConfig(num_classes=4, cut=24, weight_bits=4, act_bits=4))
    folder = tmp_path / "m"
    write_onnx(model, folder)
    write_json(folder / "manifest.json", build_manifest(model, "m", "synthetic", ["blue", "green", "red", "yellow"], folder, {}, "v"))
    report = parity(model, folder, load_source(str(synthetic_folder)))
    assert report["criteria"] == "rounding-boundary" and report["passed"]
    assert report["cloudOnly"]["maxAbsDiff"] <= 1e-3
    for head in ("exit_logits", "logits"):
        assert abs(report[head]["accuracyOnnx"] - report[head]["accuracyPytorch"]) <= 0.003
