import numpy as np

from training.wire import js_round
from training.wire_accuracy import wire_roundtrip


def test_int8_wire_keeps_zero_exact_and_errs_by_at_most_half_a_step():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(0, 1, (32, 16, 16)), 0).astype(np.float32)  # post-ReLU, full of zeros
    y = wire_roundtrip(x, "int8")
    assert y.dtype == np.float32 and y.shape == x.shape
    assert (y[x == 0] == 0).all()
    step = np.float32((x.max() - 0) / 255)
    assert np.abs(y - x).max() <= step / 2 + 1e-6
    assert len(np.unique(y)) <= 256


def test_fp16_and_fp32_wires():
    x = np.array([0.1, 1 / 3, 65504.0, 1e-8], dtype=np.float32)
    np.testing.assert_array_equal(wire_roundtrip(x, "fp32"), x)
    np.testing.assert_array_equal(wire_roundtrip(x, "fp16"), x.astype(np.float16).astype(np.float32))


def test_js_round_rounds_halves_up():
    np.testing.assert_array_equal(js_round(np.array([-2.5, -0.5, 0.5, 1.5, 2.5])), [-2, 0, 1, 2, 3])
