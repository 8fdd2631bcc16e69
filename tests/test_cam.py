"""Grad-CAM and CAM -> initial mask; ``wiml cam`` on a tiny trained model."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from tests.training.synthetic import make_prepared
from wiml.cam import (
    body_mask,
    cam_for_image,
    cam_to_initial_mask,
    compute_grad_cam,
    grad_cam,
    graph_cut_image,
)
from wiml.cli.cam import main as cam_main
from wiml.config import load_config
from wiml.errors import InputError
from wiml.evaluation.metrics import dice_score
from wiml.networks import FPSNet, FPSNetConfig
from wiml.training.config import WeakConfig
from wiml.training.weak import train_weak

VARIANTS = [
    dict(),
    dict(cls_pool="lse"),
    dict(cls_pool="gmp"),
    dict(head="separate"),
    dict(num_classes=2, out_channels=2),
    dict(attention="none"),
]


@pytest.mark.parametrize("changes", VARIANTS, ids=[str(v) or "default" for v in VARIANTS])
def test_cams_finite_in_unit_range_and_batched(changes):
    torch.manual_seed(0)
    net = FPSNet(FPSNetConfig(base_width=4, depth=3, **changes)).train()
    x = torch.randn(3, 1, 32, 32)
    cams, out = compute_grad_cam(net, x)
    assert cams.shape == (3, 32, 32) and cams.dtype == np.float32
    assert np.isfinite(cams).all() and cams.min() >= 0.0 and cams.max() <= 1.0
    assert net.training  # mode restored
    assert out.cls.shape[0] == 3
    single = grad_cam(net, x[1:2])
    np.testing.assert_allclose(single[0], cams[1], atol=1e-5)  # batching does not mix slices


def test_unknown_layer_refused():
    net = FPSNet(FPSNetConfig(base_width=4, depth=2))
    with pytest.raises(InputError, match="not found"):
        grad_cam(net, torch.zeros(1, 1, 8, 8), layer="nope")
    with pytest.raises(InputError):
        grad_cam(net, torch.zeros(1, 8, 8))


def test_cam_for_image_matches_grad_cam_and_keeps_to_the_body():
    torch.manual_seed(0)
    net = FPSNet(FPSNetConfig(base_width=4, depth=3, in_channels=2)).eval()
    image = np.zeros((2, 32, 40), np.float32)
    image[:, 4:28, 6:34] = np.random.default_rng(0).normal(
        1.0, 0.3, (2, 24, 28)
    )  # a "body" on a flat background
    free = cam_for_image(net, image, restrict_to_body=False)
    np.testing.assert_allclose(free, grad_cam(net, torch.from_numpy(image)[None])[0], atol=1e-5)
    cam = cam_for_image(net, image)  # default: inside the body only
    assert cam.shape == (32, 40) and cam.dtype == np.float32 and 0.0 <= cam.min() and cam.max() <= 1.0
    assert not cam[~body_mask(image)].any()
    assert cam_for_image(net, image[0], input_size_px=32).shape == (32, 40)  # grey slice, resized and back
    with pytest.raises(InputError, match="channels"):
        cam_for_image(net, np.zeros((3, 32, 32), np.float32))
    with pytest.raises(InputError):
        cam_for_image(net, np.zeros((1, 1, 32, 32), np.float32))


def test_cam_to_initial_mask_recovers_a_disk():
    yy, xx = np.mgrid[:64, :64]
    disk = ((yy - 30) ** 2 + (xx - 34) ** 2) <= 12**2
    rng = np.random.default_rng(0)
    image = (0.2 + 0.5 * disk + rng.normal(0, 0.03, disk.shape)).astype(np.float32)
    cam = ndimage.gaussian_filter(disk.astype(np.float32), 6)
    cam = np.roll(cam / cam.max(), 3, axis=1)  # a blurry, slightly shifted CAM, as Grad-CAM gives
    mask = cam_to_initial_mask(graph_cut_image(image), cam)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert dice_score(mask, disk) > 0.9
    assert dice_score((cam >= 0.5), disk) < dice_score(mask, disk)  # the graph cut snaps to the edges
    assert cam_to_initial_mask(image[None], np.zeros_like(cam)).sum() == 0


@pytest.mark.slow
def test_cam_cli_on_tiny_trained_model(tmp_path, capsys):
    data = make_prepared(tmp_path / "data", n_per_patient=12)
    cfg = load_config(
        WeakConfig,
        None,
        [
            "model.base_width=8",
            "model.depth=3",
            "trainer.batch_size=4",
            "trainer.epochs=6",
            "trainer.device=cpu",
            "trainer.progress=false",
            "optim.lr=0.003",
        ],
    )
    train_weak(cfg, data, tmp_path / "weak")
    out = tmp_path / "cam"
    assert (
        cam_main(
            [
                "--checkpoint",
                str(tmp_path / "weak" / "best.safetensors"),
                "--data",
                str(data),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--set",
                "taus=[0.3,0.5]",
            ]
        )
        == 0
    )
    assert "cam: 12 test slices" in capsys.readouterr().out
    assert len(list((out / "overlays").glob("*.png"))) == 12
    assert len(list((out / "initial_masks").glob("*.png"))) == 12
    with (out / "cam_quality.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["cam", "cam", "initial_mask", "initial_mask_gated"]
    assert all(0.0 <= float(r["dice_mean"]) <= 1.0 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_positive_with_mask"] == 6 and summary["n_negative"] == 6
    assert 0.0 <= summary["classification"]["auc"] <= 1.0
    assert (
        cam_main(
            ["--checkpoint", str(tmp_path / "missing.safetensors"), "--data", str(data), "--out", str(out)]
        )
        == 2
    )


def test_body_mask_and_restricted_cam():
    from wiml.cam import body_mask, restrict_cam

    yy, xx = np.mgrid[:48, :48]
    head = ((yy - 24) ** 2 + (xx - 24) ** 2) <= 15**2
    image = np.where(head, 1.0 + 0.1 * np.sin(xx), 0.0).astype(np.float32)
    image[20:24, 20:24] = 0.0  # a hole of background value inside the head is filled
    body = body_mask(image[None])
    assert body.dtype == bool and np.array_equal(body, head)
    cam = np.ones((2, 48, 48), np.float32)
    cam[0, 0, 0] = 5.0  # peak outside the body
    out = restrict_cam(cam, body)
    assert out.shape == cam.shape and out[:, ~head].max() == 0.0
    np.testing.assert_allclose(out[:, head].max(axis=-1), 1.0)
    assert body_mask(np.zeros((1, 8, 8), np.float32)).all()  # nothing found: nothing masked
