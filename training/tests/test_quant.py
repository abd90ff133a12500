import torch

from training.quant import centred_clamped, quantize_activation, quantize_weight, weight_codes


def test_binary_weights_are_plus_minus_alpha_per_filter():
    w = torch.randn(8, 4, 3, 3) * 0.3
    q = quantize_weight(w, 1)
    wc = centred_clamped(w)
    alpha = wc.abs().mean(dim=(1, 2, 3))
    for o in range(8):
        vals = q[o].unique()
        assert len(vals) <= 2
        torch.testing.assert_close(vals.abs(), alpha[o].expand_as(vals))
    assert torch.equal(torch.sign(q), torch.where(wc >= 0, 1.0, -1.0))


def test_centring_is_over_input_channels_and_clamps():
    w = torch.randn(2, 5, 3, 3) * 4
    wc = centred_clamped(w)
    assert wc.abs().max() <= 1.0
    unclamped = w - w.mean(1, keepdim=True)
    inside = unclamped.abs() < 1
    torch.testing.assert_close(wc[inside], unclamped[inside])


def test_kbit_weights_use_at_most_2k_levels_in_alpha_range():
    w = torch.randn(6, 16, 3, 3) * 0.2
    for bits in (2, 4, 8):
        codes, scale = weight_codes(w, bits)
        n = 2**bits - 1
        assert codes.abs().max() <= n and torch.all(codes.remainder(2) == 1)  # odd integers
        q = quantize_weight(w, bits)
        alpha = centred_clamped(w).abs().mean(dim=(1, 2, 3))
        for o in range(6):
            assert len(q[o].unique()) <= 2**bits
            assert q[o].abs().max() <= alpha[o] + 1e-6


def test_full_precision_is_identity():
    w = torch.randn(3, 3, 3, 3)
    assert quantize_weight(w, 32) is w
    x = torch.randn(10)
    assert quantize_activation(x, 32, True) is x


def test_activation_values():
    x = torch.tensor([-2.0, -0.6, -0.0, 0.0, 0.2, 0.9, 3.0])
    assert quantize_activation(x, 1, False).tolist() == [-1, -1, 1, 1, 1, 1, 1]
    q2 = quantize_activation(x, 2, False)
    levels = {-1.0, -1 / 3, 1 / 3, 1.0}
    assert all(min(abs(v - l) for l in levels) < 1e-6 for v in q2.tolist())
    assert q2[0] == -1 and q2[-1] == 1  # clipped before rounding


def test_activation_ste_passes_gradient_only_inside_unit_interval():
    for bits in (1, 4):
        x = torch.tensor([-1.5, -0.5, 0.3, 0.99, 1.2], requires_grad=True)
        quantize_activation(x, bits, True).sum().backward()
        assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_weight_ste_reaches_latent_weights():
    w = (torch.randn(4, 3, 3, 3) * 0.3).requires_grad_()
    (quantize_weight(w, 1) * torch.randn(4, 3, 3, 3)).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
