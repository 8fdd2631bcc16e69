"""FPSNet: shapes of every variant, what the classification path owns, pooling, validation."""

from __future__ import annotations

import pytest
import torch

from wiml.errors import ConfigError, InputError
from wiml.networks import (
    SCSE,
    FPSNet,
    FPSNetConfig,
    count_parameters,
    foreground_probability,
    global_pool,
    tag_probability,
)

VARIANTS = [
    dict(),
    dict(cls_pool="gmp"),
    dict(cls_pool="lse"),
    dict(cls_pool="topk"),
    dict(head="separate"),
    dict(attention="none"),
    dict(norm="instance"),
    dict(out_channels=2, num_classes=2),
    dict(out_channels=2, num_classes=2, cls_pool="topk"),
    dict(in_channels=2, depth=2),
]


@pytest.mark.parametrize("changes", VARIANTS, ids=[str(v) or "default" for v in VARIANTS])
def test_output_shapes(changes):
    cfg = FPSNetConfig(base_width=4, depth=3, **{k: v for k, v in changes.items() if k != "depth"})
    if "depth" in changes:
        cfg.depth = changes["depth"]
    torch.manual_seed(0)
    net = FPSNet(cfg).eval()
    out = net(torch.randn(3, cfg.in_channels, 32, 48))
    assert out.seg.shape == (3, cfg.out_channels, 32, 48)
    assert out.cls.shape == (3, cfg.num_classes)
    assert foreground_probability(out.seg).shape == (3, 32, 48)
    p = tag_probability(out.cls)
    assert p.shape == (3,) and bool(((p >= 0) & (p <= 1)).all())


def test_paper_preset_shapes_and_size():
    cfg = FPSNetConfig.paper()
    assert (cfg.base_width, cfg.in_channels, cfg.out_channels, cfg.num_classes) == (64, 3, 1, 2)
    net = FPSNet(cfg).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 32, 32))
    assert out.seg.shape == (1, 1, 32, 32) and out.cls.shape == (1, 2)
    assert count_parameters(net) > 20_000_000  # base width 64, five levels


def test_fps_classification_owns_only_its_1x1_conv():
    cfg = FPSNetConfig(base_width=4, depth=3, num_classes=2, out_channels=2)
    fps = FPSNet(cfg)
    free = FPSNet(FPSNetConfig(base_width=4, depth=3, num_classes=2, out_channels=2, cls_pool="gmp"))
    extra = set(fps.state_dict()) - set(free.state_dict())
    assert extra == {"cls_conv.weight", "cls_conv.bias"}
    assert set(free.state_dict()) <= set(fps.state_dict())
    assert fps.cls_conv.weight.shape == (2, 4, 1, 1)
    assert sum(p.numel() for p in fps.classification_parameters()) == 4 * 2 + 2
    assert free.classification_parameters() == []
    # full parameter sharing: a tags-only loss reaches every encoder and decoder weight, not the seg head
    out = fps(torch.randn(2, 1, 32, 32))
    out.cls.sum().backward()
    for name, p in fps.named_parameters():
        has_grad = p.grad is not None and bool(p.grad.abs().sum() > 0)
        if name.startswith("seg_head"):
            assert not has_grad, name
        elif (
            name.endswith(".weight") and p.ndim == 4 and ".cse.fc." not in name
        ):  # (tiny SE MLPs: dead ReLUs)
            assert has_grad, f"{name} gets no gradient from the tag loss"


def test_separate_head_owns_a_linear_layer_on_the_bottleneck():
    net = FPSNet(FPSNetConfig(base_width=4, depth=3, head="separate"))
    assert net.default_cam_layer == "encoders.2"
    assert sum(p.numel() for p in net.classification_parameters()) == 16 * 1 + 1


def test_global_pool_known_values():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    assert global_pool(x, "gap").item() == pytest.approx(7.5)
    assert global_pool(x, "gmp").item() == 15.0
    assert global_pool(x, "topk", topk_fraction=0.25).item() == pytest.approx((12 + 13 + 14 + 15) / 4)
    lse = global_pool(x, "lse", lse_r=1.0).item()
    assert 7.5 < lse < 15.0
    assert global_pool(x, "lse", lse_r=100.0).item() == pytest.approx(
        15.0 - torch.log(torch.tensor(16.0)).item() / 100, abs=1e-3
    )


def test_scse_keeps_shape_and_gates():
    block = SCSE(8)
    x = torch.randn(2, 8, 5, 7)
    y = block(x)
    assert y.shape == x.shape
    assert torch.all(y.abs() <= 2 * x.abs() + 1e-6)  # two gates in (0, 1), summed


def test_invalid_configs_and_inputs():
    with pytest.raises(ConfigError, match="num_classes"):
        FPSNet(FPSNetConfig(cls_pool="gmp", num_classes=2, out_channels=1))
    with pytest.raises(ConfigError, match="depth"):
        FPSNet(FPSNetConfig(depth=1))
    with pytest.raises(ConfigError):
        FPSNet({"base_width": 4, "unknown_key": 1})
    net = FPSNet(FPSNetConfig(base_width=4, depth=3))
    with pytest.raises(InputError, match="divisible by 4"):
        net(torch.randn(1, 1, 30, 32))
    with pytest.raises(InputError, match="expects"):
        net(torch.randn(1, 3, 32, 32))
