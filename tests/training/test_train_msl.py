"""MSL training on a tiny prepared set: val Dice rises in 2 epochs; strong-label sources; resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from wiml.cli import train_msl as train_msl_cli
from wiml.config import load_config
from wiml.data.io import write_slice
from wiml.data.slices import read_manifest
from wiml.errors import InputError
from wiml.networks.fpsnet import FPSNet, FPSNetConfig
from wiml.training.data import SliceDataset
from wiml.training.msl import MSLConfig, dice_val_metrics, dice_val_step, train_msl
from wiml.training.strong_labels import select_strong_slices, wia_strong_labels

SMALL = [
    "model.base_width=4",
    "model.depth=3",
    "trainer.batch_size=4",
    "trainer.progress=false",
    "trainer.device=cpu",
    "optim.lr=0.01",
    "augment.enabled=false",
    "init=scratch",
]


def _initial_val_dice(data, seed):
    torch.manual_seed(seed)
    model = FPSNet(FPSNetConfig(in_channels=1, base_width=4, depth=3)).eval()
    val = [r for r in read_manifest(data, "val")]
    loader = DataLoader(SliceDataset(val, use_masks=True), batch_size=4)
    step = dice_val_step()
    parts = [step(model, b) for b in loader]
    values = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return dice_val_metrics(val)(values)["dice"]


@pytest.mark.slow
def test_two_epochs_raise_val_dice(tiny_prepared, tmp_path):
    config = load_config(MSLConfig, None, SMALL + ["trainer.epochs=2", "strong.k=3"])
    start = _initial_val_dice(tiny_prepared, 0)
    summary = train_msl(config, tiny_prepared, tmp_path / "msl")
    assert summary["n_strong"] == 3 and summary["epochs_done"] == 2
    assert summary["best_dice"] > start + 0.1
    for name in (
        "best.safetensors",
        "last.json",
        "state.pt",
        "log.csv",
        "curves.png",
        "config.yaml",
        "strong_labels.json",
    ):
        assert (tmp_path / "msl" / name).is_file(), name
    side = json.loads((tmp_path / "msl" / "best.json").read_text())
    assert side["kind"] == "msl-mixed" and side["run_config"]["image_size"] == 32


def test_strong_selection_spread_and_random(tiny_prepared):
    train = read_manifest(tiny_prepared, "train")
    spread = select_strong_slices(train, 3, "spread")
    assert len(spread) == 3 and all(train[i].tag == 1 for i in spread)
    assert len({train[i].patient_id for i in spread}) == 3  # one per training patient here
    assert select_strong_slices(train, 3, "random", seed=1) == select_strong_slices(
        train, 3, "random", seed=1
    )
    with pytest.raises(InputError, match="only"):
        select_strong_slices(train, 100)


def test_wia_labels_are_matched_by_name_and_test_slices_refused(tiny_prepared, tmp_path):
    train = read_manifest(tiny_prepared, "train")
    result = tmp_path / "result"
    write_slice(result / "strong_label" / "p1_0003.png", np.full((32, 32), 255, np.uint8))
    (result / "recording").mkdir()
    (result / "recording" / "p1_0003.json").write_text(
        json.dumps({"clicks": [{"row": 1, "col": 2, "label": 1}]})
    )
    masks, recs = wia_strong_labels(train, result, read_manifest(tiny_prepared))
    (idx,) = masks
    assert (train[idx].patient_id, train[idx].slice_index) == ("p1", 3) and masks[idx].all()
    assert len(recs[0]["clicks"]) == 1
    write_slice(result / "strong_label" / "p4_0003.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match="'test' split"):
        wia_strong_labels(train, result, read_manifest(tiny_prepared))


@pytest.mark.slow
def test_cli_strong_only_and_resume(tiny_prepared, tmp_path, capsys):
    out = tmp_path / "so"
    args = ["--data", str(tiny_prepared), "--out", str(out), "--mode", "strong_only", "--k", "2", "--quiet"]
    args += [a for s in SMALL for a in ("--set", s)]
    assert train_msl_cli.main(args + ["--epochs", "1"]) == 0
    assert train_msl_cli.main(args + ["--epochs", "2", "--resume"]) == 0
    log = (out / "log.csv").read_text().strip().splitlines()
    assert len(log) == 3  # header + 2 epochs, the first kept
    assert "strong_only" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["msl_default.yaml", "msl_paper.yaml", "msl_brats.yaml"])
def test_msl_configs_load(project_root, name):
    cfg = load_config(MSLConfig, project_root / "configs" / name)
    assert cfg.trainer.monitor == "dice" and cfg.strong.k == 5
    if name == "msl_paper.yaml":  # the original recipe
        assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.trainer.epochs) == (1e-4, 1e-4, 60)
        assert cfg.loss.seg_loss == "bce" and cfg.model.num_classes == 2 and cfg.init == "weak"


@pytest.mark.parametrize("name", ["demo.yaml", "brats2015.yaml"])
def test_pipeline_configs_load(project_root, tmp_path, name):
    from wiml.experiments.pipeline import build_steps, load_pipeline_config

    raw = [f"raw={tmp_path}"] if name == "brats2015.yaml" else []  # the real set may be absent here
    cfg = load_pipeline_config(project_root / "configs" / name, raw, run=tmp_path / "run")
    steps = build_steps(cfg, tmp_path / "run")
    assert [s.name for s in steps][-1] == "report" and cfg.k == 5


def _write_wia_labels(result, names, size=32):
    for name in names:
        write_slice(result / "strong_label" / f"{name}.png", np.full((size, size), 255, np.uint8))
        (result / "recording").mkdir(parents=True, exist_ok=True)
        (result / "recording" / f"{name}.json").write_text(json.dumps({"image": name, "clicks": []}))


def test_wia_labels_k_of_the_found_ones(tiny_prepared, tmp_path):
    train = read_manifest(tiny_prepared, "train")
    names = ["p0_0002", "p0_0004", "p1_0003", "p2_0002", "p2_0005"]
    _write_wia_labels(tmp_path / "result", names)
    every, recs = wia_strong_labels(train, tmp_path / "result")
    assert len(every) == 5 and len(recs) == 5
    assert wia_strong_labels(train, tmp_path / "result", k=5)[0].keys() == every.keys()
    three, recs3 = wia_strong_labels(train, tmp_path / "result", k=3, select="spread")
    # spread over the 5 labels in (patient, slice) order: positions 0, 2, 4
    assert [f"{train[i].patient_id}_{train[i].slice_index:04d}" for i in sorted(three)] == [
        "p0_0002",
        "p1_0003",
        "p2_0005",
    ]
    assert sorted(r["image"] for r in recs3) == ["p0_0002", "p1_0003", "p2_0005"]
    random_a = wia_strong_labels(train, tmp_path / "result", k=2, select="random", seed=1)[0]
    random_b = wia_strong_labels(train, tmp_path / "result", k=2, select="random", seed=1)[0]
    assert len(random_a) == 2 and random_a.keys() == random_b.keys() and set(random_a) <= set(every)
    with pytest.raises(InputError, match="5 strong label"):
        wia_strong_labels(train, tmp_path / "result", k=6)


def test_init_checkpoint_defaults_to_the_runs_weak_model(tmp_path):
    from wiml.layout import RunLayout
    from wiml.training.msl import with_default_init

    run = RunLayout(tmp_path / "run")
    config = MSLConfig()
    assert with_default_init(config, run.data).init_checkpoint is None  # nothing there yet
    run.weak.root.mkdir(parents=True)
    run.weak.best.write_bytes(b"x")
    assert with_default_init(config, run.data).init_checkpoint == str(run.weak.best.resolve())
    assert with_default_init(MSLConfig(init_checkpoint="given"), run.data).init_checkpoint == "given"
    assert with_default_init(MSLConfig(init="scratch"), run.data).init_checkpoint is None
