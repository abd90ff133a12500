import io

import numpy as np
from PIL import Image

from training.preprocess import area_resize, area_weights, decode_rgb, preprocess


def test_area_weights_are_row_stochastic_and_exact_for_integer_ratios():
    for src in (7, 20, 32, 45, 64, 1000):
        w = area_weights(src)
        np.testing.assert_allclose(w.sum(1), 1.0)
    w = area_weights(64)
    assert np.allclose(w[0, :2], 0.5) and np.count_nonzero(w[0]) == 2
    assert np.array_equal(area_weights(32), np.eye(32))


def test_downscale_averages_blocks():
    img = np.zeros((64, 64, 3), np.uint8)
    img[::2, ::2] = 200  # one bright pixel per 2x2 block
    np.testing.assert_allclose(area_resize(img), 50.0)


def test_preprocess_normalises_to_minus_one_one_and_drops_alpha():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 0  # fully transparent: alpha is dropped, not composited
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    x = preprocess(buf.getvalue(), [0.5] * 3, [0.5] * 3)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    assert np.all(x[0] == 1.0) and np.all(x[1] == -1.0)


def test_grey_is_replicated():
    buf = io.BytesIO()
    Image.fromarray(np.full((5, 5), 77, np.uint8), "L").save(buf, format="PNG")
    rgb = decode_rgb(buf.getvalue())
    assert rgb.shape == (5, 5, 3) and np.all(rgb == 77)
