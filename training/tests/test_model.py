
import pytest
import torch

from training.model import VALID_CUTS, ModelConfig, SplitResNet, count_macs, exit_features, split_shape

# docs/background.md#cut-points (from the authors' code): cut -> (exit features, split shape, MACs in millions:
# quantized edge, full-precision edge, cloud)
EXPECTED = {
    4: (1600, (16, 32, 32), None),
    10: (1600, (16, 32, 32), None),
    16: (800, (32, 16, 16), (36.57, 0.57, 31.98)),
    20: (800, (32, 16, 16), None),
    24: (256, (64, 8, 8), (54.26, 0.70, 14.16)),
}


@pytest.mark.parametrize("cut", VALID_CUTS)
def test_shapes_and_macs_for_every_cut(cut):
    feats, shape, macs = EXPECTED[cut]
    assert exit_features(cut) == feats and split_shape(cut) == shape
    model = SplitResNet(ModelConfig(num_classes=100, cut=cut, weight_bits=1, act_bits=1)).eval()
    e, s, l = model(torch.randn(3, 3, 32, 32))
    assert e.shape == (3, 100) and s.shape == (3, *shape) and l.shape == (3, 100)
    c = count_macs(model)
    assert c.full_precision_baseline == 69_124_096  # 69.12 M conv MACs, every cut
    assert c.edge_quantized == 2_359_296 * cut - (1_179_648 if cut > 10 else 0) - (1_179_648 if cut > 20 else 0)
    if macs:
        assert round(c.edge_quantized / 1e6, 2) == macs[0]
        assert round(c.edge_full_precision / 1e6, 2) == macs[1]
        assert round((c.cloud - c.cloud_fc) / 1e6, 2) == macs[2]


def test_full_precision_config_uses_plain_blocks():
    from training.model import BasicBlock
    model = SplitResNet(ModelConfig(cut=16, weight_bits=32, act_bits=32))
    assert all(isinstance(b, BasicBlock) for b in model.edge)


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError):
        ModelConfig(cut=12)
    with pytest.raises(ValueError):
        ModelConfig(weight_bits=3)


def test_realign_blocks_lands_each_tensor_on_the_same_resnet_block():
    from training.model import load_matching, realign_blocks

    src = SplitResNet(ModelConfig(cut=16, weight_bits=32, act_bits=32))
    for cut, bits in [(10, 1), (24, 4), (4, 32)]:
        dst = SplitResNet(ModelConfig(cut=cut, weight_bits=bits, act_bits=bits))
        load_matching(dst, realign_blocks(src.state_dict(), 16, dst.config))
        blocks = list(dst.edge) + list(dst.tail)
        for b, original in enumerate(list(src.edge) + list(src.tail)):
            assert torch.equal(blocks[b].conv1.weight, original.conv1.weight)
            bn = blocks[b].bn_out if bits < 32 and b < cut // 2 else blocks[b].bn2
            assert torch.equal(bn.weight, original.bn2.weight)
