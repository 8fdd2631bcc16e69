"""Weak (tags-only) training: fitting, sampler, metrics, resume, CLI and 2-process DDP on CPU."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training.synthetic import make_prepared
from wiml.cli.train_weak import main as train_weak_main
from wiml.config import load_config
from wiml.data.slices import load_slice, read_manifest
from wiml.errors import InputError
from wiml.networks import FPSNet, FPSNetConfig
from wiml.networks.checkpoint import load_model
from wiml.training.config import WeakConfig
from wiml.training.data import SliceDataset, WeightedEpochSampler, class_balanced_weights
from wiml.training.losses import tag_loss
from wiml.training.weak import model_config_for_data, tag_metrics, train_weak

TINY = [
    "model.base_width=4",
    "model.depth=3",
    "trainer.batch_size=4",
    "trainer.device=cpu",
    "trainer.progress=false",
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("weak") / "data")


def test_tiny_model_fits_eight_slices(prepared):
    records = read_manifest(prepared, "train")
    assert len(records) == 8
    x = torch.from_numpy(np.stack([load_slice(r)[0] for r in records]))
    y = torch.tensor([float(r.tag) for r in records])
    torch.manual_seed(0)
    net = FPSNet(FPSNetConfig(base_width=4, depth=3))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = tag_loss(net(x).cls, y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[0] > 0.5
    assert losses[-1] < 0.2 * losses[0], losses[::5]


def test_class_balanced_weights_and_sampler():
    tags = [0] * 6 + [1] * 2
    w = class_balanced_weights(tags)
    assert w[:6].sum() == pytest.approx(0.5) and w[6:].sum() == pytest.approx(0.5)
    s0 = WeightedEpochSampler(w, 1000, seed=1, rank=0, world_size=2)
    s1 = WeightedEpochSampler(w, 1000, seed=1, rank=1, world_size=2)
    a, b = list(s0), list(s1)
    assert len(a) == len(b) == len(s0) == 500
    share_pos = np.isin(a + b, [6, 7]).mean()
    assert 0.4 < share_pos < 0.6  # balanced although only 25 % of the slices are positive
    assert list(s0) == a  # same epoch, same draw
    s0.set_epoch(1)
    assert list(s0) != a
    with pytest.raises(InputError):
        WeightedEpochSampler([0, 0], 4)


def test_tag_metrics_known_values():
    m = tag_metrics(np.array([0.9, 0.8, 0.3, 0.2, 0.6]), np.array([1, 1, 1, 0, 0]))
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert m["auc"] == pytest.approx(5 / 6)  # 5 of 6 (pos, neg) pairs ranked right
    assert np.isnan(tag_metrics(np.array([0.1, 0.2]), np.array([1, 1]))["auc"])


def test_dataset_items_and_augmentation(prepared):
    from wiml.data.transforms import AugmentConfig, make_augmentation

    records = read_manifest(prepared, "train")
    ds = SliceDataset(records, make_augmentation(AugmentConfig()), use_masks=True, seed=3)
    item = ds[1]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (32, 32) and bool(item["has_mask"]) and float(item["tag"]) == 1.0
    ds.set_epoch(5)
    first = ds[1]["image"]
    ds.set_epoch(5)
    assert torch.equal(first, ds[1]["image"])  # reseeded epoch: same augmentation
    plain = SliceDataset(records, None, use_masks=False)
    assert not bool(plain[1]["has_mask"]) and int(plain[1]["mask"].sum()) == 0


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path)[0].state_dict()


@pytest.mark.slow
def test_train_writes_outputs_and_resume_continues(prepared, tmp_path):
    cfg = load_config(WeakConfig, None, TINY + ["trainer.epochs=3"])
    full = train_weak(cfg, prepared, tmp_path / "full")
    assert full["epochs_done"] == 3
    for name in (
        "best.safetensors",
        "best.json",
        "last.safetensors",
        "last.json",
        "state.pt",
        "log.csv",
        "curves.png",
        "config.yaml",
    ):
        assert (tmp_path / "full" / name).is_file(), name
    part = train_weak(cfg, prepared, tmp_path / "part", stop_after=2)
    assert part["epochs_done"] == 2
    assert load_model(tmp_path / "part" / "last.safetensors")[1]["epoch"] == 2
    resumed = train_weak(cfg, prepared, tmp_path / "part", resume=True)
    with (tmp_path / "part" / "log.csv").open() as fh:
        epochs = [int(r["epoch"]) for r in csv.DictReader(fh)]
    assert epochs == [1, 2, 3]
    assert resumed["last"]["epoch"] == 3
    a, b = _weights(tmp_path / "full" / "last.safetensors"), _weights(tmp_path / "part" / "last.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)  # resumed run == uninterrupted run


def test_train_refuses_single_class(tmp_path):
    from wiml.data.slices import write_manifest

    root = make_prepared(tmp_path / "d")
    rows = []
    with (root / "manifest.csv").open() as fh:
        for r in csv.DictReader(fh):
            r["tag"] = "1" if r["split"] == "train" else r["tag"]
            rows.append(r)
    write_manifest(root / "manifest.csv", rows)
    with pytest.raises(InputError, match="both classes"):
        train_weak(load_config(WeakConfig, None, TINY), root, tmp_path / "out")


def test_cli_runs_and_reports_bad_config(prepared, tmp_path, capsys):
    argv = [
        "--data",
        str(prepared),
        "--out",
        str(tmp_path / "cli"),
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--seed",
        "1",
    ]
    assert train_weak_main(argv + [f"--set={o}" for o in TINY]) == 0
    assert "train-weak: 1 epochs" in capsys.readouterr().out
    assert train_weak_main(argv + ["--set", "model.head=nope"]) == 2
    assert "model.head" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_cpu_processes(prepared, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "wiml.cli.train_weak",
        "--data",
        str(prepared),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--quiet",
    ] + [f"--set={o}" for o in TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model, meta = load_model(out / "last.safetensors")
    assert meta["epoch"] == 1
    with (out / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and np.isfinite(float(rows[0]["train_loss"]))


def test_model_config_for_data_fills_in_or_checks_the_channels(tmp_path):
    where = tmp_path / "slice_0001.npz"
    assert model_config_for_data(FPSNetConfig(in_channels=0), 3, where).in_channels == 3
    same = FPSNetConfig(in_channels=2)
    assert model_config_for_data(same, 2, where) is same
    with pytest.raises(InputError, match="in_channels=1 but the prepared slices have 3") as info:
        model_config_for_data(FPSNetConfig(in_channels=1), 3, where)
    assert "slice_0001.npz" in str(info.value)
